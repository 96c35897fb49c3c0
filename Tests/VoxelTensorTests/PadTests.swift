import Testing
@testable import VoxelTensor
import _TestSupport

/// The padded, row-interleaved copy every direct and Winograd layer reads (`padVolumeInterleaved`)
/// against index arithmetic: `[D'][H'][C][phase][W'/phases]`, padded column w' stored in phase
/// w' % phases at w' / phases, zeros outside the input, negative pads cropping.
@Suite struct PadTests {
    /// (width, begin w, end w, phases): rows long and short enough for the vector split and its
    /// scalar ends, both parities of the begin pad, crops, and 1-4 phases. Two and four phases split
    /// 32 columns at a time (`splitRows` on AVX-512; the AVX2 copy for a cropped begin):
    /// whole and partial blocks of 32, every begin pad mod 4, cropped ends.
    static let rows: [(Int, Int, Int, Int)] = [
        (32, 1, 1, 2), (33, 1, 2, 2), (64, 1, 1, 2), (67, 2, 0, 2), (70, 0, 3, 2), (40, -1, 1, 2), (96, 3, 2, 2),
        (37, 3, 1, 2), (5, 1, 1, 2), (48, -2, -1, 2), (29, 1, 1, 1), (31, 2, 1, 3), (64, 1, 2, 1),
        (32, 1, 1, 4), (70, 2, 3, 4), (67, 0, 0, 4), (45, 3, 2, 4), (40, -1, 2, 4), (48, 3, -1, 4), (7, 1, 1, 4),
    ]

    @Test(arguments: rows.indices)
    func paddedCopyMatchesIndexArithmetic(_ k: Int) {
        let (w, bw, ew, phases) = Self.rows[k]
        let size = Size3(3, 4, w), channels = 3
        let begin = Size3(1, 2, bw), end = Size3(0, 1, ew)
        let x = Tensor.random([channels, size.d, size.h, size.w], seed: UInt64(90 + k))
        let st = interleavedStrides(channels: channels, size: size, begin: begin, end: end, phases: phases)
        let padded = Size3(size.d + begin.d + end.d, size.h + begin.h + end.h, size.w + begin.w + end.w)
        var out = [Float](repeating: .nan, count: st.count)
        x.scalars.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                padVolumeInterleaved(xb.baseAddress!, channels: channels, size: size, begin: begin, end: end,
                                     phases: phases, into: ob.baseAddress!)
            }
        }
        var wrong = 0
        for d in 0..<padded.d { for h in 0..<padded.h { for c in 0..<channels {
            for r in 0..<phases { for q in 0..<st.phaseLength {
                let (id, ih, iw) = (d - begin.d, h - begin.h, q * phases + r - begin.w)
                let inside = id >= 0 && id < size.d && ih >= 0 && ih < size.h && iw >= 0 && iw < size.w
                    && q * phases + r < padded.w
                let expected: Float = inside ? x.scalars[((c * size.d + id) * size.h + ih) * size.w + iw] : 0
                let got = out[d * st.plane + h * st.row + c * st.channel + r * st.phaseLength + q]
                if got != expected { wrong += 1 }
            }}
        }}}
        #expect(wrong == 0, "\(wrong) wrong values for width \(w), pads \(bw)/\(ew), \(phases) phases")
    }
}

import Testing
@testable import VoxelTensor
import _TestSupport

/// The stride-2 Winograd kernel (3x3x3, stride 2, one group, at least 16 inputs, AVX-512): against the
/// Double reference at the engine's tolerance, on odd sizes (partial tiles), split and whole tile
/// vectors, asymmetric padding, residuals and activations; the same bits for any chunking and for
/// boxes of the output recomputed from their input crops.
@Suite struct Conv3DWinogradStride2Tests {
    static let cases: [ConvCase] = [
        // Output rows of 16: split vectors, 8 tiles of two rows of tiles each.
        ConvCase(name: "64->24 W32 split", cin: 64, cout: 24, size: Size3(6, 8, 32), kernel: 3, stride: 2, padding: 1),
        // Output 7x6x11 (odd: partial tiles; 3 rows of tiles, so a split vector reads a row of zeros).
        ConvCase(name: "odd 16->11 relu", cin: 16, cout: 11, size: Size3(13, 11, 21), kernel: 3, stride: 2,
                 padding: 1, activation: .relu),
        // Output rows of 32 and 28 columns: whole tile vectors, the second partial.
        ConvCase(name: "whole vectors 20->16 W64", cin: 20, cout: 16, size: Size3(4, 5, 64), kernel: 3, stride: 2,
                 padding: 1, activation: .leakyRelu(alpha: 0.1)),
        ConvCase(name: "no padding W57 batch 2", batch: 2, cin: 17, cout: 9, size: Size3(5, 6, 57), kernel: 3,
                 stride: 2),
        ConvCase(name: "asymmetric pad W30 clip", cin: 16, cout: 40, size: Size3(6, 7, 30), kernel: 3, stride: 2,
                 padding: [0, 1, 2, 2, 0, 1], activation: .clip(min: -0.5, max: 0.5)),
        // One group of tile vectors and 10 blocks of 8 outputs, split over the cores by blocks: parts
        // of 2 blocks, 5 of them (on 2 cores 8 were wanted, and the 7th's range trapped until stop 20).
        ConvCase(name: "80 outputs one tile group", cin: 16, cout: 80, size: Size3(6, 8, 32), kernel: 3, stride: 2,
                 padding: 1),
    ]

    static func outputSize(_ c: ConvCase) -> Size3 {
        let p = c.padding
        return Size3((c.size.d + p.begin.d + p.end.d - 3) / 2 + 1, (c.size.h + p.begin.h + p.end.h - 3) / 2 + 1,
                     (c.size.w + p.begin.w + p.end.w - 3) / 2 + 1)
    }

    @Test(arguments: cases)
    func matchesReference(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 180)
        let conv = try PackedConv3D(weight: w, bias: b, stride: c.stride, padding: c.padding, activation: c.activation)
        #expect(conv.usesWinograd(width: Self.outputSize(c).w) == (Conv3DEngine.isa == .avx512))
        let ref = try conv3dReference(x, weight: w, bias: b, stride: c.stride, padding: c.padding, activation: c.activation)
        let fast = try conv.forward(x)
        #expect(convClose(fast, ref, terms: c.terms), "max diff \(maxAbsDifference(fast.scalars, ref.scalars))")
        let plain = try conv3dReference(x, weight: w, bias: b, stride: c.stride, padding: c.padding)
        let r = Tensor.random(plain.shape, seed: 181)
        let withResidual = try conv.forward(x, residual: r)
        let refResidual = activate(try add(plain, r), c.activation)
        #expect(convClose(withResidual, refResidual, terms: c.terms + 1))
        for chunk in [1, 2, 3, 5] { #expect(try conv.forward(x, depthChunk: chunk) == fast, "chunks of \(chunk)") }
    }

    /// The input gradient runs the same products transposed (tiles of 4x4x4 gradients aligned with
    /// the input): odd and even padding per axis, partial tiles, split and whole vectors.
    static let gradientCases: [ConvCase] = cases + [
        ConvCase(name: "even padding 2 W48", cin: 8, cout: 16, size: Size3(7, 9, 48), kernel: 3, stride: 2, padding: 2),
        ConvCase(name: "padding 3,0,1 W70", cin: 12, cout: 20, size: Size3(9, 6, 70), kernel: 3, stride: 2,
                 padding: [3, 0, 1, 1, 2, 0]),
    ]

    @Test(arguments: gradientCases)
    func inputGradientMatchesReference(_ c: ConvCase) throws {
        let (x, w, _) = c.inputs(seed: 185)
        let grad = try PackedConv3DInputGradient(weight: w, stride: c.stride, padding: c.padding)
        let winograd = (Conv3DEngine.isa == .avx512) && c.cout >= 16 && c.cin >= 8
        #expect(grad.usesWinograd(width: c.size.w) == winograd)
        let y = try conv3dReference(x, weight: w, stride: c.stride, padding: c.padding)
        let gy = Tensor.random(y.shape, seed: 186)
        let gx = try grad.backward(gy, inputShape: x.shape)
        let ref = try conv3dBackwardInputReference(gradOutput: gy, weight: w, inputShape: x.shape, stride: c.stride,
                                                   padding: c.padding)
        #expect(convClose(gx, ref, terms: c.cout * 27), "max diff \(maxAbsDifference(gx.scalars, ref.scalars))")
        for chunk in [1, 4, 5, 9] {
            #expect(try grad.backward(gy, inputShape: x.shape, depthChunk: chunk) == gx, "chunks of \(chunk)")
        }
    }

    /// A box of the output starting at even coordinates, recomputed from the input it reads with the
    /// padding kept only at the border, has the whole run's bits (the incremental runner's boxes).
    @Test(arguments: [64, 32])
    func boxesFromEvenStartsAreBitIdentical(width: Int) throws {
        let size = Size3(11, 14, width)
        let x = Tensor.random([1, 16, size.d, size.h, size.w], seed: 190)
        let conv = try PackedConv3D(weight: Tensor.random([10, 16, 3, 3, 3], seed: 191), bias: Tensor.random([10], seed: 192),
                                    stride: 2, padding: 1)
        let whole = try conv.forward(x)
        let O = Size3(whole.shape[2], whole.shape[3], whole.shape[4])
        #expect(conv.outputTile(wholeOutputWidth: O.w) == ((Conv3DEngine.isa == .avx512) ? 2 : 1))
        for (lo, hi) in [(Size3(0, 0, 0), Size3(3, 5, 7)), (Size3(2, 4, 6), Size3(6, 7, O.w)), (Size3(4, 2, 10), Size3(5, 7, 13))] {
            // Inputs [2o - 1, 2(hi - 1) + 2) of each axis, clamped; padding where the clamp cut.
            let start = Size3(2 * lo.d - 1, 2 * lo.h - 1, 2 * lo.w - 1), end = Size3(2 * hi.d, 2 * hi.h, 2 * hi.w)
            let cl = Size3(max(0, start.d), max(0, start.h), max(0, start.w))
            let ch = Size3(min(size.d, end.d), min(size.h, end.h), min(size.w, end.w))
            let crop = try slice(x, starts: cl.array, ends: ch.array, axes: [2, 3, 4])
            let pad = Padding3(begin: Size3(cl.d - start.d, cl.h - start.h, cl.w - start.w),
                               end: Size3(end.d - ch.d, end.h - ch.h, end.w - ch.w))
            let part = try conv.forward(crop, padding: pad, residual: nil, wholeOutputWidth: O.w)
            let expected = try slice(whole, starts: lo.array, ends: hi.array, axes: [2, 3, 4])
            #expect(part == expected, "box \(lo)..<\(hi)")
        }
    }
}

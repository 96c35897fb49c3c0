import VoxelTensorAVX512

// Winograd F(2x2x2, 3x3x3) forward pass for 3x3x3 convolutions with stride 1, no dilation and one
// group, on AVX-512 (kernels: VoxelTensorAVX512/Winograd512.swift, which explains the transforms).
// Each 2x2x2 output tile costs 64 products per channel pair instead of 216, so a 16->16 layer at 64^3
// runs at more "direct-convolution GFLOP/s" than the machine's FMA peak (docs/engine.md).
//
// Results differ from the direct engine by rounding (the transforms add and subtract inputs before
// multiplying): tests compare with the Double reference at 1e-5 of the sum of |products| per output,
// and the fixture models with PyTorch at their stated tolerances. Within this path every output is
// computed the same way whatever the tiling, chunking or thread count: tiles start at even output
// coordinates, so a box of the output recomputed from its own input crop (incremental runs) gives the
// same bits when its start is even (`PackedConv3D.outputTile`).

/// Weights of a 3x3x3 layer transformed for F(2x2x2, 3x3x3): `[64][Cin][coutPadded]`, output channels
/// padded to a multiple of 8 with zeros. `U = G g G^T` per axis, computed in Double.
@usableFromInline struct WinogradWeights: Sendable {
    let inChannels: Int, outChannels: Int, coutPadded: Int
    let data: [Float]

    /// `weight`: `[Cout][Cin][3][3][3]` scalars.
    init(weight: [Float], outChannels: Int, inChannels: Int) {
        self.inChannels = inChannels; self.outChannels = outChannels
        let cp = (outChannels + 7) / 8 * 8
        coutPadded = cp
        let G: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        var out = [Float](repeating: 0, count: 64 * inChannels * cp)
        for co in 0..<outChannels { for ci in 0..<inChannels {
            let g = (0..<27).map { Double(weight[(co * inChannels + ci) * 27 + $0]) }
            // Along W, then H, then D: t[a][b][k] = sum_c G[k][c] g[a][b][c], and so on.
            var tw = [Double](repeating: 0, count: 36), th = [Double](repeating: 0, count: 48)
            for a in 0..<3 { for b in 0..<3 { for k in 0..<4 {
                tw[(a * 3 + b) * 4 + k] = (0..<3).reduce(0) { $0 + G[k][$1] * g[(a * 3 + b) * 3 + $1] }
            }}}
            for a in 0..<3 { for j in 0..<4 { for k in 0..<4 {
                th[(a * 4 + j) * 4 + k] = (0..<3).reduce(0) { $0 + G[j][$1] * tw[(a * 3 + $1) * 4 + k] }
            }}}
            for i in 0..<4 { for j in 0..<4 { for k in 0..<4 {
                let u = (0..<3).reduce(0) { $0 + G[i][$1] * th[($1 * 4 + j) * 4 + k] }
                out[(((i * 4 + j) * 4 + k) * inChannels + ci) * cp + co] = Float(u)
            }}}
        }}
        data = out
    }

    /// Whether a layer may run this way: 3x3x3, stride 1, dilation 1, one group, at least 4 input and
    /// 8 output channels, non-negative padding, on AVX-512. With fewer channels the transforms cost
    /// more than the products they save: at 64^3, 1->16 took 3.5 ms against 1.0 direct, and the
    /// 16->1 input gradient under it 3.4 against 1.8 (7 of 8 output lanes idle); 4->16 ran 253 against
    /// 238 GFLOP/s, 8->16 347 against 249.
    static func applies(weightShape: [Int], stride: Size3, padding: Padding3, dilation: Size3, groups: Int,
                        isa: ConvISA) -> Bool {
        isa == .avx512 && weightShape.count == 5 && weightShape[1] >= 4 && weightShape[0] >= 8
            && weightShape[2...] == [3, 3, 3]
            && stride == Size3(1)
            && dilation == Size3(1) && groups == 1
            && [padding.begin.d, padding.begin.h, padding.begin.w, padding.end.d, padding.end.h, padding.end.w].allSatisfy { $0 >= 0 }
    }

    /// Whether outputs `width` columns wide run this way. A tile vector holds 16 tiles (32 columns)
    /// along W, so narrow rows leave lanes idle: at 16 columns half of them, and there the direct
    /// engine (~90% of peak at 16^3) is as fast.
    static func prefers(width: Int) -> Bool { width >= minimumWidth }
    static let minimumWidth = 24
}

extension Activation {
    /// The activation as the AVX-512 kernels take it: 0 identity, 1 relu, 2 leaky relu (a), 3 clip (a...b).
    var kernelCode: (Int, Float, Float) {
        switch self {
        case .identity: return (0, 0, 0)
        case .relu: return (1, 0, 0)
        case .leakyRelu(let alpha): return (2, alpha, 0)
        case .clip(let lo, let hi): return (3, lo, hi)
        }
    }
}

/// Runs `y = act(conv(x) + bias + residual)` with Winograd F(2x2x2, 3x3x3) over raw buffers
/// (`x` holds `geo.inputShape`, `y` receives `geo.outputShape`), in depth chunks of `chunk` output
/// planes (rounded up to even).
func winogradForward(_ x: UnsafePointer<Float>, geo: Conv3DGeometry, weights wg: WinogradWeights, bias: [Float]?,
                     activation: Activation, into y: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?,
                     chunk: Int) {
    let I = geo.input, O = geo.output, C = geo.inChannels, Cout = geo.outChannels
    let T = Size3((O.d + 1) / 2, (O.h + 1) / 2, (O.w + 1) / 2)
    // One more zero plane, row or column after an odd output size, so every tile's 4x4x4 patch lies
    // inside the padded volume.
    let end = Size3(geo.padding.end.d + O.d % 2, geo.padding.end.h + O.h % 2, geo.padding.end.w + O.w % 2)
    let st = interleavedStrides(channels: C, size: I, begin: geo.padding.begin, end: end, phases: 2)
    let chunkTiles = max(1, (min(chunk, O.d) + 1) / 2)
    var scratch = makeSourceScratch(SourceStrides(channel: st.channel, row: st.row, plane: st.plane,
                                                  count: (2 * chunkTiles + 2) * st.plane, phases: 2,
                                                  phaseLength: st.phaseLength))
    var biasPadded = [Float](repeating: 0, count: wg.coutPadded)
    if let bias { for co in 0..<Cout { biasPadded[co] = bias[co] } }
    let (act, actA, actB) = activation.kernelCode
    let vectorsPerRow = (T.w + 15) / 16
    scratch.withUnsafeMutableBufferPointer { sBuf in
        for n in 0..<geo.batch {
            let xn = x + n * C * I.product
            let yn = SharedPointer(y + n * Cout * O.product)
            let rn = residual.map { SharedConstPointer($0 + n * Cout * O.product) }
            var td0 = 0
            while td0 < T.d {
                let td1 = min(T.d, td0 + chunkTiles)
                padPlanes(xn, channels: C, size: I, begin: geo.padding.begin, end: end, phases: 2,
                          planes: (2 * td0)..<(2 * td1 + 2), into: sBuf.baseAddress!)
                // Tile vectors of the chunk: (source offset, output offset, valid planes, rows, columns),
                // in groups of 3 (the last group repeats its last vector with nothing to store).
                var list: [Int] = []
                for td in td0..<td1 { for th in 0..<T.h { for tv in 0..<vectorsPerRow {
                    list += [2 * (td - td0) * st.plane + 2 * th * st.row + 16 * tv,
                             2 * td * O.h * O.w + 2 * th * O.w + 32 * tv,
                             min(2, O.d - 2 * td), min(2, O.h - 2 * th), min(32, O.w - 32 * tv)]
                }}}
                while list.count % 15 != 0 { list += list[(list.count - 5)..<(list.count - 2)] + [0, 0] }
                let groups = list.count / 15
                // At least 4 tasks per core, of equal size.
                let tasks = min(groups, 4 * Parallel.threadCount * max(1, groups / (16 * Parallel.threadCount)))
                let perTask = (groups + tasks - 1) / tasks
                let src = SharedConstPointer(UnsafePointer(sBuf.baseAddress!))
                list.withUnsafeBufferPointer { lBuf in wg.data.withUnsafeBufferPointer { uBuf in
                    biasPadded.withUnsafeBufferPointer { bBuf in
                        let lp = SharedConstPointer(lBuf.baseAddress!), up = SharedConstPointer(uBuf.baseAddress!)
                        let bp = SharedConstPointer(bBuf.baseAddress!)
                        Parallel.forEach((groups + perTask - 1) / perTask) { task in
                            let g0 = task * perTask, g1 = min(groups, g0 + perTask)
                            let floats = winograd512ScratchFloats(channels: C)
                            let work = UnsafeMutableRawPointer.allocate(byteCount: 4 * floats, alignment: 64)
                            defer { work.deallocate() }
                            let job = Winograd512Job(
                                src: src.base, channelStride: st.channel, rowStride: st.row, planeStride: st.plane,
                                phaseLength: st.phaseLength, channels: C, u: up.base, coutPadded: wg.coutPadded,
                                cout: Cout, bias: bp.base, dst: yn.base, dstChannelStride: O.product,
                                dstPlaneStride: O.h * O.w, dstRowStride: O.w, vectors: lp + 15 * g0,
                                vectorCount: 3 * (g1 - g0), activation: act, actA: actA, actB: actB,
                                residual: rn?.base)
                            winograd512Run(job, scratch: work.assumingMemoryBound(to: Float.self))
                        }
                    }
                }}
                td0 = td1
            }
        }
    }
}

import Foundation
import VoxelTensorAVX512

// Winograd forward pass for 3x3x3 convolutions with stride 2 (no dilation, one group) on AVX-512:
// per axis the two outputs of a tile read five samples, and F(2,2) on the odd samples gives 5
// products instead of 6, so 125 per 2x2x2 tile and channel pair instead of 216 (kernel and
// transforms: VoxelTensorAVX512/WinogradStride2_512.swift; measurements: docs/engine.md).
//
// Rounding differs from the direct sum (the transforms subtract samples before multiplying): tests
// compare with the Double reference at the engine's tolerance. Tiles start at even output
// coordinates, so every output is computed the same way whatever the chunking, tiling or thread
// count, and a box of the output that starts on even coordinates gives the whole run's bits.

/// Weights of a 3x3x3 stride-2 layer transformed for `winogradStride2Run`:
/// `[125][coutPadded / 8][Cin][8]`, output channels padded to a multiple of 8 with zeros.
/// Per axis `u = (g0, g0 + g2, g2, g1, g1)`, computed in Double.
@usableFromInline struct WinogradStride2Weights: Sendable {
    let inChannels: Int, outChannels: Int, coutPadded: Int
    let data: [Float]

    /// From a forward weight `[Cout][Cin][3][3][3]`; `transposed`: for the input gradient instead, the
    /// kernel flipped on every axis and its channels swapped (`w'[ci][co][k] = w[co][ci][26 - k]`).
    /// Parallel over output channels.
    init(weight: Tensor, transposed: Bool = false) {
        let (fwdOut, fwdIn) = (weight.shape[0], weight.shape[1])
        let (cout, cin) = transposed ? (fwdIn, fwdOut) : (fwdOut, fwdIn)
        inChannels = cin; outChannels = cout
        let cp = (cout + 7) / 8 * 8, nb = cp / 8
        coutPadded = cp
        data = [Float](unsafeUninitializedCapacity: 125 * cin * cp) { buf, count in
            buf.initialize(repeating: 0)
            let out = SharedPointer(buf.baseAddress!)
            weight.scalars.withUnsafeBufferPointer { wb in
                let w = SharedConstPointer(wb.baseAddress!)
                Parallel.forEach(cout) { co in
                    var g = [Double](repeating: 0, count: 27), u = [Double](repeating: 0, count: 125)
                    for ci in 0..<cin {
                        let base = transposed ? (ci * fwdIn + co) * 27 : (co * fwdIn + ci) * 27
                        for k in 0..<27 { g[k] = Double(w[base + (transposed ? 26 - k : k)]) }
                        Self.transform(g, into: &u)
                        for pos in 0..<125 { out[((pos * nb + co / 8) * cin + ci) * 8 + co % 8] = Float(u[pos]) }
                    }
                }
            }
            count = 125 * cin * cp
        }
    }

    /// `g: [3][3][3]` -> `u: [5][5][5]`, per axis position p taking `g0` (p = 0), `g0 + g2` (1), `g2` (2)
    /// or `g1` (3, 4): along W, then H, then D (the per-term triple loop took about 25 ms for a
    /// 64->128 layer, more than running it).
    static func transform(_ g: [Double], into u: inout [Double]) {
        @inline(__always) func ax(_ a: Double, _ b: Double, _ c: Double) -> (Double, Double, Double, Double, Double) {
            (a, a + c, c, b, b)
        }
        // Along W: [3][3][5]; along H: [3][5][5]; along D: [5][5][5].
        var w = [Double](repeating: 0, count: 45), h = [Double](repeating: 0, count: 75)
        for r in 0..<9 {
            let v = ax(g[3 * r], g[3 * r + 1], g[3 * r + 2])
            w[5 * r] = v.0; w[5 * r + 1] = v.1; w[5 * r + 2] = v.2; w[5 * r + 3] = v.3; w[5 * r + 4] = v.4
        }
        for a in 0..<3 { for k in 0..<5 {
            let v = ax(w[(a * 3) * 5 + k], w[(a * 3 + 1) * 5 + k], w[(a * 3 + 2) * 5 + k])
            h[(a * 5) * 5 + k] = v.0; h[(a * 5 + 1) * 5 + k] = v.1; h[(a * 5 + 2) * 5 + k] = v.2
            h[(a * 5 + 3) * 5 + k] = v.3; h[(a * 5 + 4) * 5 + k] = v.4
        }}
        for jk in 0..<25 {
            let v = ax(h[jk], h[25 + jk], h[50 + jk])
            u[jk] = v.0; u[25 + jk] = v.1; u[50 + jk] = v.2; u[75 + jk] = v.3; u[100 + jk] = v.4
        }
    }

    /// Whether a layer may run this way: 3x3x3, stride 2 on every axis, dilation 1, one group, at
    /// least 16 input and 8 output channels, non-negative padding, on AVX-512.
    static func applies(weightShape: [Int], stride: Size3, padding: Padding3, dilation: Size3, groups: Int,
                        isa: ConvISA) -> Bool {
        winogradLayerFits(weightShape: weightShape, stride: stride, padding: padding, dilation: dilation, groups: groups,
                          isa: isa, kernelStride: 2, minInputChannels: 16)
    }

    /// Whether outputs `width` columns wide run this way: rows of 9-16 (split vectors) or at least 24
    /// columns. (Rows of 4 tiles would leave half the lanes of a split vector idle; the stride-1 kernel
    /// packs four rows of tiles into a vector there, this one does not.)
    static func prefers(width: Int) -> Bool { width >= 24 || (9...16).contains(width) }
}

/// Planes of tiles per depth chunk for the stride-2 kernels: about `wanted`, a multiple of 3 /
/// gcd(3, vectors per plane) so that the groups of three tile vectors fill up (but for the last
/// chunk; chunks of 4 planes of tiles left 11% of the slots empty), at most `total`.
func stride2ChunkTiles(wanted: Int, total: Int, tilesPerRow: Int, rowsOfTiles: Int) -> Int {
    let vectorsPerPlane = tilesPerRow <= 8 ? (rowsOfTiles + 1) / 2 : rowsOfTiles * ((tilesPerRow + 15) / 16)
    let step = vectorsPerPlane % 3 == 0 ? 1 : 3
    return min(total, max(step, max(1, wanted) / step * step))
}

/// Runs `body` on every group of three tile vectors of `list` (whole groups, `tileVectorList`),
/// split into output-channel parts of the `blockCount` 8-channel blocks when there are too few
/// groups to keep every core busy to the end; `body` gets the group's vectors, its blocks and a
/// scratch buffer from `pool`.
func forEachTileGroup(_ list: [Int], blockCount nb: Int, pool: ScratchPool,
                      _ body: @escaping @Sendable (UnsafePointer<Int>, Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
    let groups = list.count / 18
    let (perPart, parts) = evenParts(nb, wanted: min(nb, (4 * Parallel.threadCount + groups - 1) / groups))
    list.withUnsafeBufferPointer { lBuf in
        let lp = SharedConstPointer(lBuf.baseAddress!)
        Parallel.forEach(groups * parts) { task in
            let g = task / parts, part = task % parts
            let blocks = (part * perPart)..<min(nb, (part + 1) * perPart)
            let work = pool.take()
            defer { pool.give(work) }
            body(lp + 18 * g, blocks, work)
        }
    }
}

/// Output planes per chunk of `winogradStride2Forward`.
func winogradStride2DepthChunk(_ geo: Conv3DGeometry) -> Int {
    let I = geo.input, O = geo.output, p = geo.padding
    let rowFloats = (I.h + p.begin.h + p.end.h) * (I.w + p.begin.w + p.end.w)
    return PackedConv3D.depthChunk(outputDepth: O.d, sourcePlaneFloats: 2 * rowFloats * geo.inChannels,
                                   outputPlaneFloats: geo.outChannels * O.h * O.w, rowsPerPlane: O.h)
}

/// Runs `y = act(conv(x) + bias + residual)` for a 3x3x3 stride-2 layer with the stride-2 Winograd
/// kernel over raw buffers, in depth chunks of `chunk` output planes (rounded up to even).
func winogradStride2Forward(_ x: UnsafePointer<Float>, geo: Conv3DGeometry, weights wg: WinogradStride2Weights,
                            bias: [Float]?, activation: Activation, into y: UnsafeMutablePointer<Float>,
                            residual: UnsafePointer<Float>?, chunk: Int) {
    let I = geo.input, O = geo.output, C = geo.inChannels, Cout = geo.outChannels
    let T = Size3((O.d + 1) / 2, (O.h + 1) / 2, (O.w + 1) / 2)
    let split = T.w <= 8
    // Tile t reads padded samples 4t..4t+4 on each axis: pad the end so the last tile's lie inside
    // (split vectors read one more row of tiles when the count of tile rows is odd).
    let pb = geo.padding.begin, pe = geo.padding.end
    @inline(__always) func endPad(_ i: Int, _ b: Int, _ e: Int, _ t: Int) -> Int { e + max(0, 4 * t + 1 - (i + b + e)) }
    let end = Size3(endPad(I.d, pb.d, pe.d, T.d), endPad(I.h, pb.h, pe.h, T.h) + (split && T.h % 2 == 1 ? 4 : 0),
                    endPad(I.w, pb.w, pe.w, T.w))
    let st = interleavedStrides(channels: C, size: I, begin: pb, end: end, phases: 4)
    let chunkTiles = stride2ChunkTiles(wanted: (min(chunk, O.d) + 1) / 2, total: T.d, tilesPerRow: T.w, rowsOfTiles: T.h)
    var scratch = makeSourceScratch(SourceStrides(channel: st.channel, row: st.row, plane: st.plane,
                                                  count: (4 * chunkTiles + 1) * st.plane, phases: 4,
                                                  phaseLength: st.phaseLength))
    var biasPadded = [Float](repeating: 0, count: wg.coutPadded)
    if let bias { for co in 0..<Cout { biasPadded[co] = bias[co] } }
    let (act, actA, actB) = activation.kernelCode
    let stores = outputStores(bytes: 4 * Cout * O.product, callBytes: geo.bytesMoved)
    let nb = wg.coutPadded / 8
    let pool = ScratchPool(bytes: 4 * winogradStride2ScratchFloats(channels: C, blocks: nb), count: Parallel.threadCount)
    defer { pool.release() }
    scratch.withUnsafeMutableBufferPointer { sBuf in
        for n in 0..<geo.batch {
            let xn = x + n * C * I.product
            let yn = SharedPointer(y + n * Cout * O.product)
            let rn = residual.map { SharedConstPointer($0 + n * Cout * O.product) }
            var td0 = 0
            while td0 < T.d {
                let td1 = min(T.d, td0 + chunkTiles)
                padPlanes(xn, channels: C, size: I, begin: pb, end: end, phases: 4,
                          planes: (4 * td0)..<(4 * td1 + 1), into: sBuf.baseAddress!)
                let list = tileVectorList(planes: td0..<td1, first: td0, tiles: T, tileSize: 2, output: O,
                                          rowsPerVector: split ? 2 : 1, sourcePlane: 4 * st.plane, sourceRow: 4 * st.row)
                let src = SharedConstPointer(UnsafePointer(sBuf.baseAddress!))
                wg.data.withUnsafeBufferPointer { uBuf in biasPadded.withUnsafeBufferPointer { bBuf in
                    let up = SharedConstPointer(uBuf.baseAddress!), bp = SharedConstPointer(bBuf.baseAddress!)
                    forEachTileGroup(list, blockCount: nb, pool: pool) { vectors, blocks, work in
                        var base = Winograd512Job(
                            src: src.base, channelStride: st.channel, rowStride: st.row, planeStride: st.plane,
                            phaseLength: st.phaseLength, channels: C, u: up.base, coutPadded: wg.coutPadded,
                            cout: Cout, bias: bp.base, dst: yn.base, dstChannelStride: O.product,
                            dstPlaneStride: O.h * O.w, dstRowStride: O.w, vectors: vectors,
                            vectorCount: 3, split: split, halfSource: 4 * st.row,
                            halfDestination: 2 * O.w, activation: act, actA: actA, actB: actB,
                            residual: rn?.base)
                        base.streaming = stores.streaming
                        winogradStride2Run(WinogradStride2Job(base: base, blocks: blocks), scratch: work)
                    }
                }}
                td0 = td1
            }
        }
    }
}

/// The input gradient of a 3x3x3 stride-2 layer with the stride-2 Winograd kernel, transposed
/// (`winogradStride2GradientRun`): `gy` holds `geo.outputShape`, `gx` receives `geo.inputShape`.
/// `weights` are `WinogradStride2Weights(weight:transposed: true)`. In depth chunks of about
/// `chunk` gradient planes.
func winogradStride2BackwardInput(_ gy: UnsafePointer<Float>, geo: Conv3DGeometry, weights wg: WinogradStride2Weights,
                                  into gx: UnsafeMutablePointer<Float>, chunk: Int) {
    let I = geo.input, O = geo.output, C = geo.outChannels, Cin = geo.inChannels
    let p = geo.padding.begin
    // Tiles of 4 gradients per axis, aligned with the input; tile t reads output-gradient samples
    // 2t + beta + k (k = 0...2), that is 2t + b + k of the gradient padded by q before.
    let S = Size3((I.d + 3) / 4, (I.h + 3) / 4, (I.w + 3) / 4)
    let split = S.w <= 8
    let beta = Size3((p.d - 1) >> 1, (p.h - 1) >> 1, (p.w - 1) >> 1)
    let q = Size3(max(0, -beta.d), max(0, -beta.h), max(0, -beta.w))
    let b = Size3(beta.d + q.d, beta.h + q.h, beta.w + q.w)
    @inline(__always) func endPad(_ o: Int, _ q: Int, _ b: Int, _ s: Int) -> Int { max(0, 2 * s + b + 1 - (o + q)) }
    let end = Size3(endPad(O.d, q.d, b.d, S.d), endPad(O.h, q.h, b.h, S.h) + (split && S.h % 2 == 1 ? 2 : 0),
                    endPad(O.w, q.w, b.w, S.w))
    let st = interleavedStrides(channels: C, size: O, begin: q, end: end, phases: 2)
    let chunkTiles = stride2ChunkTiles(wanted: (min(chunk, I.d) + 3) / 4, total: S.d, tilesPerRow: S.w, rowsOfTiles: S.h)
    var scratch = makeSourceScratch(SourceStrides(channel: st.channel, row: st.row, plane: st.plane,
                                                  count: (2 * chunkTiles + 1) * st.plane, phases: 2,
                                                  phaseLength: st.phaseLength))
    let zeros = [Float](repeating: 0, count: wg.coutPadded)
    let nb = wg.coutPadded / 8
    let pool = ScratchPool(bytes: 4 * winogradStride2GradientScratchFloats(channels: C, blocks: nb),
                           count: Parallel.threadCount)
    defer { pool.release() }
    let odd = (p.d & 1) | (p.h & 1) << 1 | (p.w & 1) << 2
    scratch.withUnsafeMutableBufferPointer { sBuf in
        for n in 0..<geo.batch {
            let yn = gy + n * C * O.product
            let xn = SharedPointer(gx + n * Cin * I.product)
            var s0 = 0
            while s0 < S.d {
                let s1 = min(S.d, s0 + chunkTiles)
                padPlanes(yn, channels: C, size: O, begin: q, end: end, phases: 2,
                          planes: (2 * s0 + b.d)..<(2 * s1 + b.d + 1), into: sBuf.baseAddress!)
                let list = tileVectorList(planes: s0..<s1, first: s0, tiles: S, tileSize: 4, output: I,
                                          rowsPerVector: split ? 2 : 1, sourcePlane: 2 * st.plane, sourceRow: 2 * st.row,
                                          sourceOrigin: b.h * st.row)
                let src = SharedConstPointer(UnsafePointer(sBuf.baseAddress!))
                wg.data.withUnsafeBufferPointer { uBuf in zeros.withUnsafeBufferPointer { zBuf in
                    let up = SharedConstPointer(uBuf.baseAddress!), zp = SharedConstPointer(zBuf.baseAddress!)
                    forEachTileGroup(list, blockCount: nb, pool: pool) { vectors, blocks, work in
                        let base = Winograd512Job(
                            src: src.base, channelStride: st.channel, rowStride: st.row, planeStride: st.plane,
                            phaseLength: st.phaseLength, channels: C, u: up.base, coutPadded: wg.coutPadded,
                            cout: Cin, bias: zp.base, dst: xn.base, dstChannelStride: I.product,
                            dstPlaneStride: I.h * I.w, dstRowStride: I.w, vectors: vectors,
                            vectorCount: 3, split: split, halfSource: 2 * st.row,
                            halfDestination: 4 * I.w, activation: 0, actA: 0, actB: 0, residual: nil)
                        winogradStride2GradientRun(WinogradStride2GradientJob(base: base, blocks: blocks, odd: odd,
                                                                              columnPhase: b.w), scratch: work)
                    }
                }}
                s0 = s1
            }
        }
    }
}

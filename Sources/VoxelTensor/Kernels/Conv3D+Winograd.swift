import Foundation
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

    /// From a forward weight `[Cout][Cin][3][3][3]`; `flipped`: for the input gradient instead, the
    /// convolution with the kernel flipped on every axis and its channels swapped
    /// (`w'[ci][co][k] = w[co][ci][2 - k]`). Parallel over output channels.
    init(weight: Tensor, flipped: Bool) {
        let (fwdOut, fwdIn) = (weight.shape[0], weight.shape[1])
        let (cout, cin) = flipped ? (fwdIn, fwdOut) : (fwdOut, fwdIn)
        inChannels = cin; outChannels = cout
        let cp = (cout + 7) / 8 * 8
        coutPadded = cp
        data = [Float](unsafeUninitializedCapacity: 64 * cin * cp) { buf, count in
            buf.initialize(repeating: 0)
            let out = SharedPointer(buf.baseAddress!)
            weight.scalars.withUnsafeBufferPointer { wb in
                let w = SharedConstPointer(wb.baseAddress!)
                Parallel.forEach(cout) { co in
                    var g = [Double](repeating: 0, count: 27), t = [Double](repeating: 0, count: 64)
                    for ci in 0..<cin {
                        // g[a][b][c] of the layer this transform is for.
                        let base = flipped ? (ci * fwdIn + co) * 27 : (co * fwdIn + ci) * 27
                        for k in 0..<27 { g[k] = Double(w[base + (flipped ? 26 - k : k)]) }
                        Self.transform(g, into: &t)
                        for pos in 0..<64 { out[(pos * cin + ci) * cp + co] = Float(t[pos]) }
                    }
                }
            }
            count = 64 * cin * cp
        }
    }

    /// `u = G g G^T` on every axis: `g: [3][3][3]` -> `u: [4][4][4]`, with `G g` per axis
    /// `(g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2)`.
    static func transform(_ g: [Double], into u: inout [Double]) {
        @inline(__always) func gt(_ a: Double, _ b: Double, _ c: Double) -> (Double, Double, Double, Double) {
            (a, (a + b + c) / 2, (a - b + c) / 2, c)
        }
        // Along W: [3][3][4]; along H: [3][4][4]; along D: [4][4][4].
        var w = [Double](repeating: 0, count: 36), h = [Double](repeating: 0, count: 48)
        for r in 0..<9 {
            let v = gt(g[3 * r], g[3 * r + 1], g[3 * r + 2])
            w[4 * r] = v.0; w[4 * r + 1] = v.1; w[4 * r + 2] = v.2; w[4 * r + 3] = v.3
        }
        for a in 0..<3 { for k in 0..<4 {
            let v = gt(w[(a * 3) * 4 + k], w[(a * 3 + 1) * 4 + k], w[(a * 3 + 2) * 4 + k])
            h[(a * 4) * 4 + k] = v.0; h[(a * 4 + 1) * 4 + k] = v.1; h[(a * 4 + 2) * 4 + k] = v.2; h[(a * 4 + 3) * 4 + k] = v.3
        }}
        for jk in 0..<16 {
            let v = gt(h[jk], h[16 + jk], h[32 + jk])
            u[jk] = v.0; u[16 + jk] = v.1; u[32 + jk] = v.2; u[48 + jk] = v.3
        }
    }

    /// Whether a layer may run this way: 3x3x3, stride 1, dilation 1, one group, at least 4 input and
    /// 8 output channels, non-negative padding, on AVX-512. With fewer channels the transforms cost
    /// more than the products they save: at 64^3, 1->16 took 3.5 ms against 1.0 direct, and the
    /// 16->1 input gradient under it 3.4 against 1.8 (7 of 8 output lanes idle); 4->16 ran 253 against
    /// 238 GFLOP/s, 8->16 347 against 249.
    static func applies(weightShape: [Int], stride: Size3, padding: Padding3, dilation: Size3, groups: Int,
                        isa: ConvISA) -> Bool {
        winogradLayerFits(weightShape: weightShape, stride: stride, padding: padding, dilation: dilation, groups: groups,
                          isa: isa, kernelStride: 1, minInputChannels: 4)
    }

    /// Whether outputs `width` columns wide run this way. A tile vector holds 16 tiles (32 columns)
    /// along W, so narrow rows leave lanes idle: at 16 columns half of them, and there the direct
    /// engine (~90% of peak at 16^3) is as fast.
    static func prefers(width: Int) -> Bool { width >= 24 || (7...16).contains(width) }
}

/// A value made on first use and then kept, under a lock: a layer's Winograd weights (most layers
/// that could take the path never see rows wide enough, ResNet-18's 512-channel layers at 4^3).
@usableFromInline final class Lazy<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var cached: Value?
    private let make: @Sendable () -> Value

    init(_ make: @escaping @Sendable () -> Value) { self.make = make }

    /// The value (made by the first caller; the others wait for it).
    var value: Value {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let v = make()
        cached = v
        return v
    }
}

/// Whether a layer fits a Winograd kernel of stride `kernelStride`: 3x3x3, that stride on every
/// axis, dilation 1, one group, at least `minInputChannels` input and 8 output channels, non-negative
/// padding, on AVX-512 (`WinogradWeights.applies`, `WinogradStride2Weights.applies`).
func winogradLayerFits(weightShape: [Int], stride: Size3, padding: Padding3, dilation: Size3, groups: Int,
                       isa: ConvISA, kernelStride: Int, minInputChannels: Int) -> Bool {
    isa == .avx512 && weightShape.count == 5 && weightShape[1] >= minInputChannels && weightShape[0] >= 8
        && weightShape[2...] == [3, 3, 3]
        && stride == Size3(kernelStride)
        && dilation == Size3(1) && groups == 1
        && (padding.begin.array + padding.end.array).allSatisfy { $0 >= 0 }
}

/// Transform scratch for the tasks of one Winograd call, allocated by the calling thread, one buffer
/// per core, and lent to tasks. (Allocated per task in the worker threads, each of glibc's per-thread
/// arenas kept what its threads freed: evaluate on the sample model peaked at 75 MiB against 57 with
/// the direct engine alone.)
final class ScratchPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [UnsafeMutableRawPointer]
    private var all: [UnsafeMutableRawPointer]
    private let bytes: Int

    init(bytes: Int, count: Int) {
        self.bytes = bytes
        free = (0..<max(1, count)).map { _ in UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64) }
        all = free
    }

    /// A buffer of `bytes` (64-byte aligned); a new one only if more tasks run at once than expected.
    func take() -> UnsafeMutablePointer<Float> {
        lock.lock()
        defer { lock.unlock() }
        let p = free.popLast() ?? {
            let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            all.append(p)
            return p
        }()
        return p.assumingMemoryBound(to: Float.self)
    }

    func give(_ p: UnsafeMutablePointer<Float>) {
        lock.lock()
        free.append(UnsafeMutableRawPointer(p))
        lock.unlock()
    }

    /// Frees every buffer (after the parallel work).
    func release() { for p in all { p.deallocate() } }
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

/// The tile vectors of the planes of tiles `planes` of a chunk whose first plane of tiles is `first`,
/// as the Winograd kernels take them, 6 ints each: source offset, destination offset (channel 0),
/// valid planes, valid rows, valid columns, and for `rowsPerVector` 2 the second half's valid rows,
/// for 4 the valid rows of all four rows of tiles. Tiles are `tileSize` outputs per axis and
/// `sourcePlane`, `sourceRow` floats apart in the source (plus `sourceOrigin`); a whole vector is 16
/// tiles along W, so 16 source columns of its phase. The list is then filled to whole groups of
/// three with copies of the last vector's offsets that store nothing (no valid planes, rows or
/// columns).
func tileVectorList(planes: Range<Int>, first: Int, tiles T: Size3, tileSize ts: Int, output O: Size3,
                    rowsPerVector: Int, sourcePlane: Int, sourceRow: Int, sourceOrigin: Int = 0) -> [Int] {
    var list: [Int] = []
    let vectorsPerRow = rowsPerVector > 1 ? 1 : (T.w + 15) / 16
    for td in planes {
        for th in stride(from: 0, to: T.h, by: rowsPerVector) { for tv in 0..<vectorsPerRow {
            let rest = rowsPerVector == 4 ? min(4 * ts, O.h - ts * th)
                : rowsPerVector == 2 ? (th + 1 < T.h ? min(ts, O.h - ts * th - ts) : 0) : 0
            list += [(td - first) * sourcePlane + th * sourceRow + sourceOrigin + 16 * tv,
                     ts * (td * O.h * O.w + th * O.w) + 16 * ts * tv,
                     min(ts, O.d - ts * td), min(ts, O.h - ts * th),
                     rowsPerVector > 1 ? O.w : min(16 * ts, O.w - 16 * ts * tv), rest]
        }}
    }
    while list.count % 18 != 0 { list += list[(list.count - 6)..<(list.count - 4)] + [0, 0, 0, 0] }
    return list
}

/// Output planes per chunk of `winogradForward`: about `PackedConv3D.chunkBytes` of padded source and
/// output together, as the direct engine's chunks.
func winogradDepthChunk(_ geo: Conv3DGeometry) -> Int {
    let I = geo.input, O = geo.output, p = geo.padding
    let rowFloats = (I.h + p.begin.h + p.end.h) * (I.w + p.begin.w + p.end.w)
    return PackedConv3D.depthChunk(outputDepth: O.d, sourcePlaneFloats: rowFloats * geo.inChannels,
                                   outputPlaneFloats: geo.outChannels * O.h * O.w, rowsPerPlane: O.h)
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
    // inside the padded volume. Rows of at most 8 tiles run as split vectors, two rows of tiles per
    // vector (`Winograd512Job.split`); an odd count of tile rows then reads two more rows of zeros.
    let split = T.w <= 8, quad = T.w <= 4
    // Rows of tiles per vector, and the rows of zeros a last vector reads past the last row of tiles.
    let rowsPerVector = quad ? 4 : split ? 2 : 1
    let extraRows = 2 * ((T.h + rowsPerVector - 1) / rowsPerVector * rowsPerVector - T.h)
    let end = Size3(geo.padding.end.d + O.d % 2, geo.padding.end.h + O.h % 2 + extraRows,
                    geo.padding.end.w + O.w % 2)
    let st = interleavedStrides(channels: C, size: I, begin: geo.padding.begin, end: end, phases: 2)
    let chunkTiles = max(1, (min(chunk, O.d) + 1) / 2)
    let strides = SourceStrides(channel: st.channel, row: st.row, plane: st.plane,
                                count: (2 * chunkTiles + 2) * st.plane, phases: 2, phaseLength: st.phaseLength)
    var biasPadded = [Float](repeating: 0, count: wg.coutPadded)
    if let bias { for co in 0..<Cout { biasPadded[co] = bias[co] } }
    let (act, actA, actB) = activation.kernelCode
    let stores = outputStores(bytes: 4 * Cout * O.product, callBytes: geo.bytesMoved)
    let channelBlock = Conv3DEngine.winogradChannelBlock ?? 0
    let pool = ScratchPool(bytes: 4 * winograd512ScratchFloats(channels: C, coutPadded: wg.coutPadded, channelBlock: channelBlock),
                           count: Parallel.threadCount)
    defer { pool.release() }
    var chunks: [SourceChunk] = []
    for n in 0..<geo.batch {
        var td0 = 0
        while td0 < T.d {
            let td1 = min(T.d, td0 + chunkTiles)
            chunks.append(SourceChunk(item: n, first: td0, end: td1, planes: (2 * td0)..<(2 * td1 + 2)))
            td0 = td1
        }
    }
    let xs = SharedConstPointer(x), pb = geo.padding.begin
    wg.data.withUnsafeBufferPointer { uBuf in biasPadded.withUnsafeBufferPointer { bBuf in
        let up = SharedConstPointer(uBuf.baseAddress!), bp = SharedConstPointer(bBuf.baseAddress!)
        forEachChunkAhead(chunks, strides: strides, copy: { chunk, planes, dst in
            padPlanes(xs + chunk.item * C * I.product, channels: C, size: I, begin: pb, end: end, phases: 2,
                      planes: planes, into: dst)
        }, tasks: { chunk, src in
            let yn = SharedPointer(y + chunk.item * Cout * O.product)
            let rn = residual.map { SharedConstPointer($0 + chunk.item * Cout * O.product) }
            let list = tileVectorList(planes: chunk.first..<chunk.end, first: chunk.first, tiles: T, tileSize: 2, output: O,
                                      rowsPerVector: rowsPerVector, sourcePlane: 2 * st.plane, sourceRow: 2 * st.row)
            let groups = list.count / 18
            // At least 4 tasks per core, of equal size.
            let tasks = min(groups, 4 * Parallel.threadCount * max(1, groups / (16 * Parallel.threadCount)))
            let perTask = (groups + tasks - 1) / tasks
            let tileList = TileList(list)
            return ((groups + perTask - 1) / perTask, { task in
                let g0 = task * perTask, g1 = min(groups, g0 + perTask)
                let work = pool.take()
                defer { pool.give(work) }
                var job = Winograd512Job(
                    src: src.base, channelStride: st.channel, rowStride: st.row, planeStride: st.plane,
                    phaseLength: st.phaseLength, channels: C, u: up.base, coutPadded: wg.coutPadded,
                    cout: Cout, bias: bp.base, dst: yn.base, dstChannelStride: O.product,
                    dstPlaneStride: O.h * O.w, dstRowStride: O.w, vectors: tileList.base + 18 * g0,
                    vectorCount: 3 * (g1 - g0), split: split, halfSource: 2 * st.row,
                    halfDestination: 2 * O.w, activation: act, actA: actA, actB: actB,
                    residual: rn?.base)
                job.quad = quad
                job.streaming = stores.streaming
                job.prefetchStores = stores.prefetch
                job.channelBlock = channelBlock
                winograd512Run(job, scratch: work)
            })
        })
    }}
}

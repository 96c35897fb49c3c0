import CStream

// AVX-512 micro-kernels of the direct 3D convolution engine (see VoxelTensor/Kernels/Conv3D+Direct.swift).
//
// This module is compiled with `-target-cpu skylake-avx512` (AVX-512 F/CD/BW/DQ/VL; Intel Skylake-SP
// and later, AMD Zen 4 and later). Nothing in it may run before VoxelTensor has checked at run time
// that the CPU has those features (`Conv3DEngine.isa`); it has no global state and no initialisers.
//
// Problem (one tile of rows for one block of output channels):
//   dst[co, row, c] = act(bias[co] + sum_ci sum_t src[ci, rowSrc[row] + c*colStep + tap[t]] * W[ci, t, co])
// Micro-tiles are 3 rows x C columns, the rows taken from a flattened list of (d, h) rows so narrow
// volumes (8^3) waste nothing at row ends. Three kernels, chosen by the weights' packing (which the
// caller picks per output width, see `DirectWeights.preferredBlock`):
//   block 32 (channel-vectorised): 3 rows x 4 columns x 2 SIMD16 over output channels = 24 zmm
//     accumulators; per tap 2 weight loads and 12 broadcasts of source values. Columns step by a
//     compile-time constant (1 or 2), so every broadcast is `[rowPointer + tap + constant]`.
//   block 8 (W-vectorised, for rows that fill its vectors, narrow layers and stems): 3 rows x 16 columns (one SIMD16 along W) x 8
//     output channels = 24 accumulators; per tap 3 source vector loads and 8 weight broadcasts;
//     stores are whole vectors along W. Needs column step 1.
//   block 1 (W-vectorised, at most 4 outputs per group): 6 rows x 64 columns of one channel.
// Columns past `cols` and rows past `rows` are computed on in-buffer data and never stored (the
// caller's source buffer has slack after its end). Each stored value is summed in the order bias, ci,
// tap with one FMA per product: the same order and operations as the AVX2 kernel, so both ISAs give
// bit-identical results.

/// Arguments of one tile (raw pointers owned by the caller for the duration of the call).
public struct Direct512Tile {
    /// The group's first source channel (padded, row-interleaved; readable slack after the end).
    public var src: UnsafePointer<Float>
    /// Floats between consecutive source channels, and the number of input channels summed.
    public var srcChannelStride: Int, channels: Int
    /// Offsets of the kernel taps inside one source channel, and their count.
    public var taps: UnsafePointer<Int>, tapCount: Int
    /// `[channels][tapCount][block]`.
    public var weights: UnsafePointer<Float>
    /// `[block]`.
    public var bias: UnsafePointer<Float>
    /// The block's first output channel; channel stride; channels of the block that exist.
    public var dst: UnsafeMutablePointer<Float>
    public var dstChannelStride: Int, validChannels: Int
    /// Source and destination offsets of each row of the tile.
    public var rowSrc: UnsafePointer<Int>, rowDst: UnsafePointer<Int>, rows: Int
    /// Output columns per row, and the column step in the source and in the output.
    public var cols: Int, colSrcStep: Int, colDstStep: Int
    /// 0 identity, 1 relu, 2 leaky relu (alpha = actA), 3 clip (actA...actB).
    public var activation: Int, actA: Float, actB: Float
    /// A tensor laid out like `dst` whose values are added before the activation (a residual
    /// connection fused into the store), or nil.
    public var residual: UnsafePointer<Float>?
    /// Block 1 only, for reusing source rows across kernel rows (`runW1`): the taps form a grid of
    /// `tapRows` (kh) x `tapCols` (kw) per kd, listed kd, kw, kh (kernel rows fastest), whose kh
    /// neighbours lie `tapRowStep` floats apart, and consecutive output rows of one plane read source rows
    /// `rowStride` floats apart. Reuse needs `tapRowStep == ±rowStride`; 0 means no reuse.
    public var rowStride = 0, tapRowStep = 0, tapRows = 0, tapCols = 0
    /// Store whole vectors along W with streaming stores (outputs larger than the caches).
    public var streaming = false
    /// Block 8: prefetch for writing the lines the next micro-tile stores (outputs larger than the
    /// caches, stored plainly).
    public var prefetchStores = false
    /// Block 1 with row reuse only: memory to prefetch while the tile computes (its driver's next
    /// source plane).
    public var prefetch = PrefetchLines()

    /// Memberwise.
    public init(src: UnsafePointer<Float>, srcChannelStride: Int, channels: Int, taps: UnsafePointer<Int>,
                tapCount: Int, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                dst: UnsafeMutablePointer<Float>, dstChannelStride: Int, validChannels: Int,
                rowSrc: UnsafePointer<Int>, rowDst: UnsafePointer<Int>, rows: Int,
                cols: Int, colSrcStep: Int, colDstStep: Int, activation: Int, actA: Float, actB: Float,
                residual: UnsafePointer<Float>? = nil) {
        self.src = src; self.srcChannelStride = srcChannelStride; self.channels = channels
        self.taps = taps; self.tapCount = tapCount; self.weights = weights; self.bias = bias
        self.dst = dst; self.dstChannelStride = dstChannelStride; self.validChannels = validChannels
        self.rowSrc = rowSrc; self.rowDst = rowDst; self.rows = rows
        self.cols = cols; self.colSrcStep = colSrcStep; self.colDstStep = colDstStep
        self.activation = activation; self.actA = actA; self.actB = actB; self.residual = residual
    }
}

/// Whether `direct512Run` handles a weight block (1, 8 or 32) with a column step (1 and 8 need step 1;
/// 32 takes 1 or 2). Other combinations use the AVX2 kernel.
public func direct512Supports(colSrcStep: Int, block: Int) -> Bool {
    block == 1 || block == 8 ? colSrcStep == 1 : (block == 32 && (colSrcStep == 1 || colSrcStep == 2))
}

/// Runs one tile with output-channel block 1 or 8 (W-vectorised) or 32 (the weights' packing).
public func direct512Run(_ p: Direct512Tile, block: Int) {
    precondition(block == 1 || block == 8 || block == 32, "direct512Run: block must be 1, 8 or 32")
    precondition(direct512Supports(colSrcStep: p.colSrcStep, block: block), "direct512Run: unsupported column step")
    switch (block, p.colSrcStep) {
    case (1, _): runW1(p)
    case (8, _): runW8(p)
    case (_, 1): run32(p, sw: 1)
    default: run32(p, sw: 2)
    }
    if p.streaming { vx_store_fence() }
}

/// Staging for one micro-tile's 24 accumulators on their way to memory, allocated once per tile call.
/// (Not `withUnsafeTemporaryAllocation`: 1.5 KB is above its stack limit, so it called malloc and
/// free per micro-tile, which took 9% of a 16->16 layer at 64^3 in glibc's arena lock.)
@inline(__always) func stagingTile() -> UnsafeMutableBufferPointer<SIMD16<Float>> {
    .allocate(capacity: 24)
}

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

/// Memory a kernel prefetches while it computes (its driver's next source, on its way from memory):
/// runs of `runLines` 64-byte lines `runStride` floats apart, the lines numbered run by run; a call
/// fetches lines `from ..< to` of them. Prefetches are hints: they never fault and never change a
/// result, so lines past the end of the source are harmless.
public struct PrefetchLines {
    public var base: UnsafePointer<Float>?
    public var runLines = 1, runStride = 0, from = 0, to = 0

    /// Nothing to prefetch.
    public init() {}

    /// Lines `from ..< to` of the runs from `base`.
    public init(base: UnsafePointer<Float>, runLines: Int, runStride: Int, from: Int, to: Int) {
        self.base = base; self.runLines = max(1, runLines); self.runStride = runStride
        self.from = from; self.to = max(from, to)
    }

    /// Share `i` of `n` equal shares of the lines.
    @inline(__always) public func share(_ i: Int, of n: Int) -> PrefetchLines {
        var p = self
        let each = (to - from + n - 1) / max(1, n)
        p.from = min(to, from + i * each)
        p.to = min(to, p.from + each)
        return p
    }

    /// Lines per step to cover them all in `steps` steps.
    @inline(__always) func perStep(_ steps: Int) -> Int { base == nil ? 0 : (to - from + steps - 1) / max(1, steps) }

    /// Prefetches the next `count` lines.
    @inline(__always) mutating func issue(_ count: Int) {
        guard let b = base else { return }
        var n = 0
        while n < count && from < to {
            let run = from / runLines
            vx_prefetch(b + (run &* runStride &+ (from &- run &* runLines) &* 16))
            from &+= 1; n &+= 1
        }
    }
}

/// Stores 16 floats at `d`: with a streaming store (no read of the line first) when asked and `d` is
/// 64-byte aligned (the vector is one whole cache line), else a plain store.
///
/// Never a streaming store of part of a line: the rest of such a line is written by another vector,
/// thousands of cycles later, so the write-combining buffer is flushed half full and memory merges the
/// halves. On Intel (Xeon, Emerald Rapids) that cost more than the reads it saves: the 7x7x7 stem's
/// forward pass took 89-105 ms with 16-byte streaming stores into an output that malloc had aligned to
/// 16 bytes, and 66-68 ms with plain stores. `RowStreamer` streams whole lines of misaligned rows.
/// (Streaming is on only on AMD now, `Conv3DEngine.streamingStores`; there the Winograd kernel's
/// `streamColumns` and `RowStreamer` do stream partial lines as 16-byte pieces, measured faster.)
@inline(__always) func storeVector(_ d: UnsafeMutablePointer<Float>, _ v: SIMD16<Float>, streaming: Bool) {
    if streaming && Int(bitPattern: d) & 63 == 0 {
        vx_stream16(d, v)
    } else {
        UnsafeMutableRawPointer(d).storeBytes(of: v, as: SIMD16<Float>.self)
    }
}

/// Streaming stores of whole 64-byte lines for rows whose start is not line-aligned (tensors are Swift
/// arrays, which malloc aligns to 16 bytes): a kernel that writes each row of a micro-tile 16 floats
/// at a time, left to right, passes every vector through its row's slot. A vector at `m` floats past a
/// line start completes the line that the previous vector of the row began: that line (the previous
/// vector's last `m` floats and this one's first `16 - m`) is streamed from the slot, and this one's last
/// `m` floats wait there for the next vector. The row's first partial line and its last are stored
/// plainly (their other floats belong to other rows). Only values move; results are the same bits.
///
/// Since stop 19 that staging is only for rows not even 16-byte aligned (widths not a multiple of 4):
/// a 16-byte aligned vector goes straight out as streaming stores, whole or as four 16-byte pieces
/// that the write-combining buffers merge (streaming is on only on AMD). Batches on Zen 5, alternated
/// over four to six output alignments: 16 volumes at 1->16, 64^3 17.4 against 18.2 ms, 8 volumes
/// through the 7x7x7 stem 212 against 234 ms (the staging's unaligned reload across two stores, and
/// the plain stores of each row's end lines, each read from memory first).
struct RowStreamer {
    /// `[slots][32]` floats: the previous vector of a row, then the current one.
    let slots: UnsafeMutablePointer<Float>

    /// Staging for `count` rows (free it with `deallocate`).
    init(count: Int) { slots = .allocate(capacity: 32 * count) }

    func deallocate() { slots.deallocate() }

    /// Stores `v` at `d`, the next 16 floats of row slot `slot`: `first` for a row's first vector,
    /// `last` when no whole vector of the row follows (the caller stores the rest plainly).
    @inline(__always) func store(_ d: UnsafeMutablePointer<Float>, _ v: SIMD16<Float>, slot: Int, first: Bool, last: Bool) {
        let m = (Int(bitPattern: d) >> 2) & 15
        if Int(bitPattern: d) & 15 == 0 { vx_stream16(d, v); return }
        let s = slots + 32 * slot
        UnsafeMutableRawPointer(s + 16).storeBytes(of: v, as: SIMD16<Float>.self)
        if first {
            for l in 0..<(16 - m) { d[l] = s[16 + l] }
        } else {
            vx_stream16(d - m, load16(s + 16 - m))
        }
        if last {
            for l in (16 - m)..<16 { d[l] = s[16 + l] }
        } else {
            UnsafeMutableRawPointer(s).storeBytes(of: v, as: SIMD16<Float>.self)
        }
    }
}

/// The activation with kernel code `code` (0 identity, 1 relu, 2 leaky relu with slope `a`, 3 clip to
/// `a...b`), shared by the direct and Winograd kernels.
@_transparent func activate(_ x: SIMD16<Float>, code: Int, a: Float, b: Float) -> SIMD16<Float> {
    switch code {
    case 1: return x.replacing(with: 0, where: x .< 0)
    case 2: return x.replacing(with: x * a, where: x .< 0)
    case 3: return x.replacing(with: a, where: x .< a).replacing(with: b, where: x .> b)  // NaN stays NaN
    default: return x
    }
}

@_transparent func activate(_ x: SIMD16<Float>, _ p: Direct512Tile) -> SIMD16<Float> {
    activate(x, code: p.activation, a: p.actA, b: p.actB)
}

/// Stores a micro-tile kept in `acc: [3 rows][cols][halves] SIMD16` (activated here): rows past
/// `rows - r` and columns past `cols - c` are skipped, as are channels past `validChannels`.
@inline(__always) func storeTile(_ acc: UnsafeMutableBufferPointer<SIMD16<Float>>, _ p: Direct512Tile,
                                 r: Int, c: Int, cols: Int, halves: Int) {
    let nr = min(3, p.rows - r), nc = min(cols, p.cols - c)
    let cs = p.dstChannelStride
    if cols == 4 && nc == 4 && p.colDstStep == 1 && p.residual == nil {
        // Whole rows of 4 columns: each full half of 16 channels stored transposed, 4 floats per channel.
        for rr in 0..<nr {
            let base = p.rowDst[r + rr] &+ c
            for h in 0..<halves {
                let n = min(16, p.validChannels - 16 * h)
                if n <= 0 { continue }
                let d = p.dst + base + 16 * h * cs
                let k = rr * 4 * halves + h
                if n == 16 {
                    vx_store4x16(activate(acc[k], p), activate(acc[k + halves], p), activate(acc[k + 2 * halves], p),
                                 activate(acc[k + 3 * halves], p), d, cs)
                } else {
                    for j in 0..<4 {
                        let v = activate(acc[k + j * halves], p)
                        for l in 0..<n { d[l &* cs &+ j] = v[l] }
                    }
                }
            }
        }
        return
    }
    let flat = UnsafeMutableRawPointer(acc.baseAddress!).assumingMemoryBound(to: Float.self)
    for rr in 0..<nr {
        let base = p.rowDst[r + rr] &+ c &* p.colDstStep
        for j in 0..<nc {
            let off = base &+ j &* p.colDstStep
            for h in 0..<halves {
                let k = (rr * cols + j) * halves + h
                let n = min(16, p.validChannels - 16 * h)
                if n <= 0 { continue }
                let src = flat + 16 * k
                if let res = p.residual {
                    let r = res + off + 16 * h * cs
                    for l in 0..<n { src[l] += r[l &* cs] }
                }
                acc[k] = activate(acc[k], p)
                let d = p.dst + off + 16 * h * cs
                if n == 16 {
                    for l in 0..<16 { d[l &* cs] = src[l] }
                } else {
                    for l in 0..<n { d[l &* cs] = src[l] }
                }
            }
        }
    }
}

// Note on `q0[o + 2 * sw]` below: the checked `+` keeps LLVM from hoisting all 12 broadcasts above
// the FMAs (measured: with `&+` it did, needed 38 zmm registers, spilled accumulators in the inner
// loop and ran 25-40% slower). Check the loop for `(%rsp)` operands after touching it.
@inline(__always) func run32(_ p: Direct512Tile, sw: Int) {
    let t = stagingTile()
    defer { t.deallocate() }
    let bias0 = load16(p.bias), bias1 = load16(p.bias + 16)
    var r = 0
    while r < p.rows {
        let ra = r, rb = min(r + 1, p.rows - 1), rc = min(r + 2, p.rows - 1)
        var c = 0
        while c < p.cols {
            let s0 = p.rowSrc[ra] + c * sw, s1 = p.rowSrc[rb] + c * sw, s2 = p.rowSrc[rc] + c * sw
            var a000 = bias0, a001 = bias1, a010 = bias0, a011 = bias1, a020 = bias0, a021 = bias1, a030 = bias0, a031 = bias1
            var a100 = bias0, a101 = bias1, a110 = bias0, a111 = bias1, a120 = bias0, a121 = bias1, a130 = bias0, a131 = bias1
            var a200 = bias0, a201 = bias1, a210 = bias0, a211 = bias1, a220 = bias0, a221 = bias1, a230 = bias0, a231 = bias1
            var wp = p.weights
            var s = p.src
            for _ in 0..<p.channels {
                let q0 = s + s0, q1 = s + s1, q2 = s + s2
                for t in 0..<p.tapCount {
                    let o = p.taps[t]
                    let w0 = load16(wp), w1 = load16(wp + 16)
                    wp += 32
                    var x = SIMD16<Float>(repeating: q0[o])
                    a000 = a000.addingProduct(x, w0); a001 = a001.addingProduct(x, w1)
                    x = SIMD16<Float>(repeating: q0[o + sw])
                    a010 = a010.addingProduct(x, w0); a011 = a011.addingProduct(x, w1)
                    x = SIMD16<Float>(repeating: q0[o + 2 * sw])
                    a020 = a020.addingProduct(x, w0); a021 = a021.addingProduct(x, w1)
                    x = SIMD16<Float>(repeating: q0[o + 3 * sw])
                    a030 = a030.addingProduct(x, w0); a031 = a031.addingProduct(x, w1)
                    x = SIMD16<Float>(repeating: q1[o])
                    a100 = a100.addingProduct(x, w0); a101 = a101.addingProduct(x, w1)
                    x = SIMD16<Float>(repeating: q1[o + sw])
                    a110 = a110.addingProduct(x, w0); a111 = a111.addingProduct(x, w1)
                    x = SIMD16<Float>(repeating: q1[o + 2 * sw])
                    a120 = a120.addingProduct(x, w0); a121 = a121.addingProduct(x, w1)
                    x = SIMD16<Float>(repeating: q1[o + 3 * sw])
                    a130 = a130.addingProduct(x, w0); a131 = a131.addingProduct(x, w1)
                    x = SIMD16<Float>(repeating: q2[o])
                    a200 = a200.addingProduct(x, w0); a201 = a201.addingProduct(x, w1)
                    x = SIMD16<Float>(repeating: q2[o + sw])
                    a210 = a210.addingProduct(x, w0); a211 = a211.addingProduct(x, w1)
                    x = SIMD16<Float>(repeating: q2[o + 2 * sw])
                    a220 = a220.addingProduct(x, w0); a221 = a221.addingProduct(x, w1)
                    x = SIMD16<Float>(repeating: q2[o + 3 * sw])
                    a230 = a230.addingProduct(x, w0); a231 = a231.addingProduct(x, w1)
                }
                s += p.srcChannelStride
            }
            t[0] = a000; t[1] = a001; t[2] = a010; t[3] = a011; t[4] = a020; t[5] = a021; t[6] = a030; t[7] = a031
            t[8] = a100; t[9] = a101; t[10] = a110; t[11] = a111; t[12] = a120; t[13] = a121; t[14] = a130; t[15] = a131
            t[16] = a200; t[17] = a201; t[18] = a210; t[19] = a211; t[20] = a220; t[21] = a221; t[22] = a230; t[23] = a231
            storeTile(t, p, r: r, c: c, cols: 4, halves: 2)
            c += 4
        }
        r += 3
    }
}

/// W-vectorised kernel (column step 1), for rows that fill its vectors and for layers of at most 16
/// outputs per group: a micro-tile
/// is 3 rows x 16 columns (one SIMD16 per row) x 8 output channels = 24 accumulators; per tap it loads
/// 3 source vectors and broadcasts 8 weights (packed `[ci][tap][8]`). Stores are whole vectors along W.
@inline(__always) func runW8(_ p: Direct512Tile) {
    let t = stagingTile()
    let streamer = p.streaming ? RowStreamer(count: 24) : nil
    defer { t.deallocate(); streamer?.deallocate() }
    var r = 0
    while r < p.rows {
        let ra = r, rb = min(r + 1, p.rows - 1), rc = min(r + 2, p.rows - 1)
        var c = 0
        while c < p.cols {
            let s0 = p.rowSrc[ra] &+ c, s1 = p.rowSrc[rb] &+ c, s2 = p.rowSrc[rc] &+ c
            if p.prefetchStores { prefetchNextOutputs(p, r: r, c: c) }
            let b0 = SIMD16<Float>(repeating: p.bias[0])
            let b1 = SIMD16<Float>(repeating: p.bias[1])
            let b2 = SIMD16<Float>(repeating: p.bias[2])
            let b3 = SIMD16<Float>(repeating: p.bias[3])
            let b4 = SIMD16<Float>(repeating: p.bias[4])
            let b5 = SIMD16<Float>(repeating: p.bias[5])
            let b6 = SIMD16<Float>(repeating: p.bias[6])
            let b7 = SIMD16<Float>(repeating: p.bias[7])
            var a00 = b0, a01 = b1, a02 = b2, a03 = b3, a04 = b4, a05 = b5, a06 = b6, a07 = b7
            var a10 = b0, a11 = b1, a12 = b2, a13 = b3, a14 = b4, a15 = b5, a16 = b6, a17 = b7
            var a20 = b0, a21 = b1, a22 = b2, a23 = b3, a24 = b4, a25 = b5, a26 = b6, a27 = b7
            var wp = p.weights
            var s = p.src
            for _ in 0..<p.channels {
                let q0 = s + s0, q1 = s + s1, q2 = s + s2
                for t in 0..<p.tapCount {
                    let o = p.taps[t]
                    let x0 = load16(q0 + o), x1 = load16(q1 + o), x2 = load16(q2 + o)
                    let w0 = SIMD16<Float>(repeating: wp[0])
                    a00 = a00.addingProduct(x0, w0); a10 = a10.addingProduct(x1, w0); a20 = a20.addingProduct(x2, w0)
                    let w1 = SIMD16<Float>(repeating: wp[1])
                    a01 = a01.addingProduct(x0, w1); a11 = a11.addingProduct(x1, w1); a21 = a21.addingProduct(x2, w1)
                    let w2 = SIMD16<Float>(repeating: wp[2])
                    a02 = a02.addingProduct(x0, w2); a12 = a12.addingProduct(x1, w2); a22 = a22.addingProduct(x2, w2)
                    let w3 = SIMD16<Float>(repeating: wp[3])
                    a03 = a03.addingProduct(x0, w3); a13 = a13.addingProduct(x1, w3); a23 = a23.addingProduct(x2, w3)
                    let w4 = SIMD16<Float>(repeating: wp[4])
                    a04 = a04.addingProduct(x0, w4); a14 = a14.addingProduct(x1, w4); a24 = a24.addingProduct(x2, w4)
                    let w5 = SIMD16<Float>(repeating: wp[5])
                    a05 = a05.addingProduct(x0, w5); a15 = a15.addingProduct(x1, w5); a25 = a25.addingProduct(x2, w5)
                    let w6 = SIMD16<Float>(repeating: wp[6])
                    a06 = a06.addingProduct(x0, w6); a16 = a16.addingProduct(x1, w6); a26 = a26.addingProduct(x2, w6)
                    let w7 = SIMD16<Float>(repeating: wp[7])
                    a07 = a07.addingProduct(x0, w7); a17 = a17.addingProduct(x1, w7); a27 = a27.addingProduct(x2, w7)
                    wp += 8
                }
                s += p.srcChannelStride
            }
            t[0] = a00; t[1] = a01; t[2] = a02; t[3] = a03; t[4] = a04; t[5] = a05; t[6] = a06; t[7] = a07
            t[8] = a10; t[9] = a11; t[10] = a12; t[11] = a13; t[12] = a14; t[13] = a15; t[14] = a16; t[15] = a17
            t[16] = a20; t[17] = a21; t[18] = a22; t[19] = a23; t[20] = a24; t[21] = a25; t[22] = a26; t[23] = a27
            storeRowsW(t, p, r: r, c: c, rowStreamer: streamer)
            c += 16
        }
        r += 3
    }
}

/// Prefetches for writing the lines the `runW8` micro-tile after (r, c) will store (the next 16 columns
/// of rows r...r+2, or the first of the next 3 rows), so that its stores, in an output larger than the
/// caches, do not wait for their lines while this one computes. A hint: it never changes a result.
@inline(__always) func prefetchNextOutputs(_ p: Direct512Tile, r: Int, c: Int) {
    let (nr, nc) = c + 16 < p.cols ? (r, c + 16) : (r + 3, 0)
    if nr >= p.rows || p.colDstStep != 1 { return }
    for rr in 0..<min(3, p.rows - nr) {
        let base = p.dst + (p.rowDst[nr + rr] &+ nc)
        for k in 0..<min(8, p.validChannels) {
            let d = base + k &* p.dstChannelStride
            vx_prefetch_write(d)
            vx_prefetch_write(d + min(15, p.cols - nc - 1))
        }
    }
}

/// Stores a `runW8` micro-tile `acc: [3 rows][8 channels] SIMD16 along W` (activated here).
/// With `rowStreamer` (streaming outputs), whole vectors go through it, one slot per (row, channel).
@inline(__always) func storeRowsW(_ acc: UnsafeMutableBufferPointer<SIMD16<Float>>, _ p: Direct512Tile, r: Int, c: Int,
                                  rowStreamer: RowStreamer?) {
    let nr = min(3, p.rows - r), n = min(16, p.cols - c), nk = min(8, p.validChannels)
    let cs = p.dstChannelStride, step = p.colDstStep
    let flat = UnsafeMutableRawPointer(acc.baseAddress!).assumingMemoryBound(to: Float.self)
    for rr in 0..<nr {
        let base = p.rowDst[r + rr] &+ c &* step
        for k in 0..<nk {
            let off = base + k &* cs
            let d = p.dst + off
            if step == 1 && n == 16 {
                var v = acc[rr * 8 + k]
                if let r = p.residual { v += load16(r + off) }
                if let rs = rowStreamer {
                    rs.store(d, activate(v, p), slot: rr * 8 + k, first: c == 0, last: c + 32 > p.cols)
                } else {
                    storeVector(d, activate(v, p), streaming: false)
                }
            } else {
                let src = flat + 16 * (rr * 8 + k)
                if let r = p.residual { for l in 0..<n { src[l] += r[off + l &* step] } }
                acc[rr * 8 + k] = activate(acc[rr * 8 + k], p)
                for l in 0..<n { d[l &* step] = src[l] }
            }
        }
    }
}

/// W-vectorised kernel for layers with at most 4 outputs per group (the input gradient of a stem,
/// whose output is the 1-channel image): a micro-tile is 6 rows x 64 columns (4 SIMD16 per row)
/// of one output channel = 24 accumulators; per tap 24 source vector loads and 1 weight broadcast.
/// Where the 6 rows are consecutive rows of one plane and the taps' kernel rows are neighbouring
/// source rows (`Direct512Tile.tapRowStep`), `w1ReuseTile` loads each source row once for all the
/// kernel rows that read it.
@inline(__always) func runW1(_ p: Direct512Tile) {
    let t = stagingTile()
    let streamer = p.streaming ? RowStreamer(count: 6) : nil
    defer { t.deallocate(); streamer?.deallocate() }
    let nh = p.tapRows
    let reuse = p.rowStride != 0 && nh >= 2 && nh <= 4 && p.tapCols > 0 && p.tapCount % (nh * p.tapCols) == 0
        && (p.tapRowStep == p.rowStride || p.tapRowStep == -p.rowStride)
    let down = p.tapRowStep < 0
    // Micro-tiles of 6 rows. With reuse, a tile whose rows would leave their plane after k rows
    // runs as the 6 rows ending there instead (rows before r computed again, to the same bits), and
    // the next one starts on the new plane: 64-row planes take 11 reuse tiles, none tap by tap.
    @inline(__always) func contiguous(_ a: Int) -> Bool { p.rowSrc[a + 5] == p.rowSrc[a] &+ 5 &* p.rowStride }
    let tiles = max(1, (p.rows + 5) / 6 * ((p.cols + 63) / 64))
    var tile = 0
    var r = 0
    while r < p.rows {
        var first = r, next = r + 6, whole = false
        if reuse && r + 5 < p.rows && contiguous(r) {
            whole = true
        } else if reuse {
            var k = 1
            while k < 6 && r + k < p.rows && p.rowSrc[r + k] == p.rowSrc[r] &+ k &* p.rowStride { k += 1 }
            if r + k - 6 >= 0 && contiguous(r + k - 6) { first = r + k - 6; next = r + k; whole = true }
        }
        var c = 0
        while c < p.cols {
            if whole {
                var q = p
                q.prefetch = p.prefetch.share(tile, of: tiles)
                tile += 1
                switch (nh, down) {
                case (2, false): w1Reuse2Up(q, t, r: first, c: c)
                case (3, false): w1Reuse3Up(q, t, r: first, c: c)
                case (4, false): w1Reuse4Up(q, t, r: first, c: c)
                case (2, true): w1Reuse2Down(q, t, r: first, c: c)
                case (3, true): w1Reuse3Down(q, t, r: first, c: c)
                default: w1Reuse4Down(q, t, r: first, c: c)
                }
            } else {
                w1Tile(p, t, r: first, c: c)
            }
            storeRowsW1(t, p, r: first, c: c, rowStreamer: streamer)
            c += 64
        }
        r = next
    }
}

/// One `runW1` micro-tile, tap by tap (any rows, any taps), into `t`.
@inline(__always) func w1Tile(_ p: Direct512Tile, _ t: UnsafeMutableBufferPointer<SIMD16<Float>>, r: Int, c: Int) {
    let s0 = p.rowSrc[min(r + 0, p.rows - 1)] &+ c
    let s1 = p.rowSrc[min(r + 1, p.rows - 1)] &+ c
    let s2 = p.rowSrc[min(r + 2, p.rows - 1)] &+ c
    let s3 = p.rowSrc[min(r + 3, p.rows - 1)] &+ c
    let s4 = p.rowSrc[min(r + 4, p.rows - 1)] &+ c
    let s5 = p.rowSrc[min(r + 5, p.rows - 1)] &+ c
    var acc = W1Accumulators(SIMD16<Float>(repeating: p.bias[0]))
    var wp = p.weights
    var s = p.src
    for _ in 0..<p.channels {
        let q0 = s + s0, q1 = s + s1, q2 = s + s2, q3 = s + s3, q4 = s + s4, q5 = s + s5
        for t in 0..<p.tapCount {
            let o = p.taps[t]
            let w = SIMD16<Float>(repeating: wp[0])
            acc.fma(0, load16(q0 + (o &+ 0)), load16(q0 + (o &+ 16)), load16(q0 + (o &+ 32)), load16(q0 + (o &+ 48)), w)
            acc.fma(1, load16(q1 + (o &+ 0)), load16(q1 + (o &+ 16)), load16(q1 + (o &+ 32)), load16(q1 + (o &+ 48)), w)
            acc.fma(2, load16(q2 + (o &+ 0)), load16(q2 + (o &+ 16)), load16(q2 + (o &+ 32)), load16(q2 + (o &+ 48)), w)
            acc.fma(3, load16(q3 + (o &+ 0)), load16(q3 + (o &+ 16)), load16(q3 + (o &+ 32)), load16(q3 + (o &+ 48)), w)
            acc.fma(4, load16(q4 + (o &+ 0)), load16(q4 + (o &+ 16)), load16(q4 + (o &+ 32)), load16(q4 + (o &+ 48)), w)
            acc.fma(5, load16(q5 + (o &+ 0)), load16(q5 + (o &+ 16)), load16(q5 + (o &+ 32)), load16(q5 + (o &+ 48)), w)
            wp += 1
        }
        s += p.srcChannelStride
    }
    acc.store(t)
}

// `w1ReuseTile` with its kernel rows and direction constant, so every accumulator index folds.
@inline(never) func w1Reuse2Up(_ p: Direct512Tile, _ t: UnsafeMutableBufferPointer<SIMD16<Float>>, r: Int, c: Int) { w1ReuseTile(p, t, r: r, c: c, nh: 2, down: false) }
@inline(never) func w1Reuse3Up(_ p: Direct512Tile, _ t: UnsafeMutableBufferPointer<SIMD16<Float>>, r: Int, c: Int) { w1ReuseTile(p, t, r: r, c: c, nh: 3, down: false) }
@inline(never) func w1Reuse4Up(_ p: Direct512Tile, _ t: UnsafeMutableBufferPointer<SIMD16<Float>>, r: Int, c: Int) { w1ReuseTile(p, t, r: r, c: c, nh: 4, down: false) }
@inline(never) func w1Reuse2Down(_ p: Direct512Tile, _ t: UnsafeMutableBufferPointer<SIMD16<Float>>, r: Int, c: Int) { w1ReuseTile(p, t, r: r, c: c, nh: 2, down: true) }
@inline(never) func w1Reuse3Down(_ p: Direct512Tile, _ t: UnsafeMutableBufferPointer<SIMD16<Float>>, r: Int, c: Int) { w1ReuseTile(p, t, r: r, c: c, nh: 3, down: true) }
@inline(never) func w1Reuse4Down(_ p: Direct512Tile, _ t: UnsafeMutableBufferPointer<SIMD16<Float>>, r: Int, c: Int) { w1ReuseTile(p, t, r: r, c: c, nh: 4, down: true) }

/// One `runW1` micro-tile whose 6 rows are consecutive rows of one plane, with the taps a grid of
/// (kd) x (kw) x `nh` (kh) listed kernel rows fastest, whose kh neighbours are neighbouring source
/// rows (`down`: the next kh reads the row above). Per (ci, kd, kw) the nh weights are broadcast
/// once, and each source row u of the window (one of 5 + nh) is loaded once and multiplied into
/// every output row that reads it: (5 + nh) / (6 nh) vector loads and 1 / 24 broadcasts per FMA,
/// where tap by tap takes 1 and 1 / 24. Walking u upwards makes each output row sum its taps in the
/// list's order (kd, kw, kh), as `w1Tile` and the AVX2 kernel do: the results are the same bits.
@inline(__always) func w1ReuseTile(_ p: Direct512Tile, _ t: UnsafeMutableBufferPointer<SIMD16<Float>>, r: Int, c: Int,
                                   nh: Int, down: Bool) {
    let columns = p.tapCount / nh
    let R = p.rowStride
    var acc = W1Accumulators(SIMD16<Float>(repeating: p.bias[0]))
    var wc = p.weights
    var s = p.src + (p.rowSrc[r] &+ c)
    // Lines to prefetch, spread over the input channels so the fetches overlap compute.
    var fetch = p.prefetch
    let fetches = fetch.perStep(p.channels)
    for _ in 0..<p.channels {
        fetch.issue(fetches)
        var k = 0
        for _ in 0..<columns {
            // Tap (kd, kw, kh = 0), and the weights of kh = 0 ..< nh.
            let row = s + p.taps[k]
            let w0 = SIMD16<Float>(repeating: wc[k]), w1 = SIMD16<Float>(repeating: wc[k &+ 1])
            let w2 = nh > 2 ? SIMD16<Float>(repeating: wc[k &+ 2]) : .zero
            let w3 = nh > 3 ? SIMD16<Float>(repeating: wc[k &+ 3]) : .zero
            // Window rows u = 0 ..< 5 + nh, written out so that every accumulator index is a constant.
            w1Window(&acc, row, R, nh, down, 0, w0, w1, w2, w3)
            w1Window(&acc, row, R, nh, down, 1, w0, w1, w2, w3)
            w1Window(&acc, row, R, nh, down, 2, w0, w1, w2, w3)
            w1Window(&acc, row, R, nh, down, 3, w0, w1, w2, w3)
            w1Window(&acc, row, R, nh, down, 4, w0, w1, w2, w3)
            w1Window(&acc, row, R, nh, down, 5, w0, w1, w2, w3)
            w1Window(&acc, row, R, nh, down, 6, w0, w1, w2, w3)
            if nh > 2 { w1Window(&acc, row, R, nh, down, 7, w0, w1, w2, w3) }
            if nh > 3 { w1Window(&acc, row, R, nh, down, 8, w0, w1, w2, w3) }
            k &+= nh
        }
        wc += p.tapCount
        s += p.srcChannelStride
    }
    acc.store(t)
}

/// Window row `u` of `w1ReuseTile`: source row q = u (output row i reads it with kernel row
/// kh = u - i), or going down q = 5 - u (kh = i + u - 5), relative to `row`, the first output row's
/// tap (kd, kw, kh = 0); u ascending makes kh ascend for every output row.
@inline(__always) func w1Window(_ acc: inout W1Accumulators, _ row: UnsafePointer<Float>, _ R: Int, _ nh: Int,
                                _ down: Bool, _ u: Int, _ w0: SIMD16<Float>, _ w1: SIMD16<Float>,
                                _ w2: SIMD16<Float>, _ w3: SIMD16<Float>) {
    let q = down ? 5 - u : u
    let x = row + q &* R
    // Output row of kernel row kh, or -1 when it is outside the tile (all constants once inlined).
    @inline(__always) func out(_ kh: Int) -> Int {
        let i = down ? kh + 5 - u : u - kh
        return kh < nh && i >= 0 && i < 6 ? i : -1
    }
    let i0 = out(0), i1 = out(1), i2 = out(2), i3 = out(3)
    @inline(__always) func vector(_ v: Int) {
        let xv = load16(x + 16 * v)
        if i0 >= 0 { acc.fma(i0, v, xv, w0) }
        if i1 >= 0 { acc.fma(i1, v, xv, w1) }
        if i2 >= 0 { acc.fma(i2, v, xv, w2) }
        if i3 >= 0 { acc.fma(i3, v, xv, w3) }
    }
    vector(0); vector(1); vector(2); vector(3)
}

/// The 24 accumulators of a `runW1` micro-tile: 6 rows x 4 vectors along W.
struct W1Accumulators {
    var a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23: SIMD16<Float>
    var a30, a31, a32, a33, a40, a41, a42, a43, a50, a51, a52, a53: SIMD16<Float>

    @inline(__always) init(_ b: SIMD16<Float>) {
        (a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23) = (b, b, b, b, b, b, b, b, b, b, b, b)
        (a30, a31, a32, a33, a40, a41, a42, a43, a50, a51, a52, a53) = (b, b, b, b, b, b, b, b, b, b, b, b)
    }

    /// Row `i` += `(x0, x1, x2, x3) * w`.
    @inline(__always) mutating func fma(_ i: Int, _ x0: SIMD16<Float>, _ x1: SIMD16<Float>, _ x2: SIMD16<Float>,
                                        _ x3: SIMD16<Float>, _ w: SIMD16<Float>) {
        fma(i, 0, x0, w); fma(i, 1, x1, w); fma(i, 2, x2, w); fma(i, 3, x3, w)
    }

    /// Row `i`, vector `v` += `x * w`.
    @inline(__always) mutating func fma(_ i: Int, _ v: Int, _ x: SIMD16<Float>, _ w: SIMD16<Float>) {
        switch i &* 4 &+ v {
        case 0: a00 = a00.addingProduct(x, w)
        case 1: a01 = a01.addingProduct(x, w)
        case 2: a02 = a02.addingProduct(x, w)
        case 3: a03 = a03.addingProduct(x, w)
        case 4: a10 = a10.addingProduct(x, w)
        case 5: a11 = a11.addingProduct(x, w)
        case 6: a12 = a12.addingProduct(x, w)
        case 7: a13 = a13.addingProduct(x, w)
        case 8: a20 = a20.addingProduct(x, w)
        case 9: a21 = a21.addingProduct(x, w)
        case 10: a22 = a22.addingProduct(x, w)
        case 11: a23 = a23.addingProduct(x, w)
        case 12: a30 = a30.addingProduct(x, w)
        case 13: a31 = a31.addingProduct(x, w)
        case 14: a32 = a32.addingProduct(x, w)
        case 15: a33 = a33.addingProduct(x, w)
        case 16: a40 = a40.addingProduct(x, w)
        case 17: a41 = a41.addingProduct(x, w)
        case 18: a42 = a42.addingProduct(x, w)
        case 19: a43 = a43.addingProduct(x, w)
        case 20: a50 = a50.addingProduct(x, w)
        case 21: a51 = a51.addingProduct(x, w)
        case 22: a52 = a52.addingProduct(x, w)
        default: a53 = a53.addingProduct(x, w)
        }
    }

    /// Into the staging tile, row-major.
    @inline(__always) func store(_ t: UnsafeMutableBufferPointer<SIMD16<Float>>) {
        t[0] = a00; t[1] = a01; t[2] = a02; t[3] = a03
        t[4] = a10; t[5] = a11; t[6] = a12; t[7] = a13
        t[8] = a20; t[9] = a21; t[10] = a22; t[11] = a23
        t[12] = a30; t[13] = a31; t[14] = a32; t[15] = a33
        t[16] = a40; t[17] = a41; t[18] = a42; t[19] = a43
        t[20] = a50; t[21] = a51; t[22] = a52; t[23] = a53
    }
}

/// Stores a `runW1` micro-tile `acc: [6 rows][4 vectors along W]` of channel 0 (activated here); with
/// `rowStreamer` (streaming outputs), whole vectors of step 1 go through it, one slot per row.
@inline(__always) func storeRowsW1(_ acc: UnsafeMutableBufferPointer<SIMD16<Float>>, _ p: Direct512Tile, r: Int, c: Int,
                                   rowStreamer: RowStreamer?) {
    let nr = min(6, p.rows - r)
    let step = p.colDstStep
    let flat = UnsafeMutableRawPointer(acc.baseAddress!).assumingMemoryBound(to: Float.self)
    for rr in 0..<nr {
        for v in 0..<4 {
            let c0 = c + 16 * v
            let n = min(16, p.cols - c0)
            if n <= 0 { break }
            let k = rr * 4 + v
            let off = p.rowDst[r + rr] &+ c0 &* step
            let d = p.dst + off
            if step == 1 && n == 16 {
                var x = acc[k]
                if let res = p.residual { x += load16(res + off) }
                if let rs = rowStreamer {
                    rs.store(d, activate(x, p), slot: rr, first: c0 == 0, last: c0 + 32 > p.cols)
                } else {
                    storeVector(d, activate(x, p), streaming: false)
                }
            } else if step == 2 && c0 + 16 < p.cols && p.residual == nil {
                // Every other column (a stride-2 input gradient's phase): blended into the 32 floats
                // there, whose other columns belong to the other W phase of the same row (never
                // written at the same time). Not for a row's last vector: its 32nd float can lie past
                // the row's end (the W phase 1 of an even width, the phase 0 of an odd one).
                let old = SIMD32<Float>(lowHalf: load16(d), highHalf: load16(d + 16))
                UnsafeMutableRawPointer(d).storeBytes(of: zipColumns(activate(acc[k], p), old.oddHalf),
                                                      as: (SIMD16<Float>, SIMD16<Float>).self)
            } else {
                let src = flat + 16 * k
                if let res = p.residual { for l in 0..<n { src[l] += res[off + l &* step] } }
                acc[k] = activate(acc[k], p)
                for l in 0..<n { d[l &* step] = src[l] }
            }
        }
    }
}


/// Arguments of one weight-gradient tile: 8 output channels x 1 input channel, all kernel taps.
public struct WeightGrad512Tile {
    /// Row-padded output gradient of the 8 channels: `[OD][OH][rowG]`, zero past OW.
    public var gy: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                    UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>)
    /// The input channel, zero-padded and W de-interleaved by the stride: `[PD][PH][sw][qw]`.
    public var x: UnsafePointer<Float>
    /// Kernel extents, dilation and stride of the convolution.
    public var kernel: (d: Int, h: Int, w: Int), dilation: (d: Int, h: Int, w: Int), stride: (d: Int, h: Int, w: Int)
    /// Output depth and height; row lengths and strides of `gy` and `x` (see the layouts above).
    public var outD: Int, outH: Int, rowG: Int, planeX: Int, rowX: Int, qw: Int
    /// Receives `[8][kD*kH*kW]` sums.
    public var out: UnsafeMutablePointer<Float>

    /// Memberwise.
    public init(gy: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                     UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>),
                x: UnsafePointer<Float>, kernel: (d: Int, h: Int, w: Int), dilation: (d: Int, h: Int, w: Int),
                stride: (d: Int, h: Int, w: Int), outD: Int, outH: Int, rowG: Int, planeX: Int, rowX: Int, qw: Int,
                out: UnsafeMutablePointer<Float>) {
        self.gy = gy; self.x = x; self.kernel = kernel; self.dilation = dilation; self.stride = stride
        self.outD = outD; self.outH = outH; self.rowG = rowG; self.planeX = planeX; self.rowX = rowX; self.qw = qw
        self.out = out
    }
}

/// Weight gradient of one tile with 16-lane FMAs: for each (kd, kh) and 3 kw taps at a time, 8
/// channels x 3 taps = 24 accumulators run along OW (`rowG` is a multiple of 16), then each is
/// reduced across its lanes.
public func weightGrad512(_ p: WeightGrad512Tile) {
    let K = p.kernel, dil = p.dilation, s = p.stride
    let kvol = K.d * K.h * K.w
    let (g0, g1, g2, g3, g4, g5, g6, g7) = p.gy
    // Output planes in chunks whose 8 gradient channels fit in half of L2, every tap over one chunk
    // before the next: each tap re-reads the chunk from L2 instead of the whole gradient from L3 or
    // memory (kD x kH passes over it). Each chunk's sums are added to `out` in chunk order.
    let chunk = max(1, (512 << 10) / (8 * 4 * p.outH * p.rowG))
    p.out.initialize(repeating: 0, count: 8 * kvol)
    for d0 in stride(from: 0, to: p.outD, by: chunk) {
        let d1 = min(p.outD, d0 + chunk)
        for kd in 0..<K.d { for kh in 0..<K.h {
            var kw0 = 0
            while kw0 < K.w {
                let nk = min(3, K.w - kw0)
                func xoff(_ j: Int) -> Int {
                    let t = min(kw0 + j, K.w - 1) * dil.w
                    return (t % s.w) * p.qw + t / s.w
                }
                let x0 = xoff(0), x1 = xoff(1), x2 = xoff(2)
                var a00 = SIMD16<Float>(repeating: 0), a01 = SIMD16<Float>(repeating: 0), a02 = SIMD16<Float>(repeating: 0)
                var a10 = SIMD16<Float>(repeating: 0), a11 = SIMD16<Float>(repeating: 0), a12 = SIMD16<Float>(repeating: 0)
                var a20 = SIMD16<Float>(repeating: 0), a21 = SIMD16<Float>(repeating: 0), a22 = SIMD16<Float>(repeating: 0)
                var a30 = SIMD16<Float>(repeating: 0), a31 = SIMD16<Float>(repeating: 0), a32 = SIMD16<Float>(repeating: 0)
                var a40 = SIMD16<Float>(repeating: 0), a41 = SIMD16<Float>(repeating: 0), a42 = SIMD16<Float>(repeating: 0)
                var a50 = SIMD16<Float>(repeating: 0), a51 = SIMD16<Float>(repeating: 0), a52 = SIMD16<Float>(repeating: 0)
                var a60 = SIMD16<Float>(repeating: 0), a61 = SIMD16<Float>(repeating: 0), a62 = SIMD16<Float>(repeating: 0)
                var a70 = SIMD16<Float>(repeating: 0), a71 = SIMD16<Float>(repeating: 0), a72 = SIMD16<Float>(repeating: 0)
                for od in d0..<d1 {
                    let xplane = p.x + (od * s.d + kd * dil.d) * p.planeX
                    for oh in 0..<p.outH {
                        let xr = xplane + (oh * s.h + kh * dil.h) * p.rowX
                        let go = (od * p.outH + oh) * p.rowG
                        var ow = 0
                        while ow < p.rowG {
                            let u0 = load16(xr + (x0 &+ ow)), u1 = load16(xr + (x1 &+ ow)), u2 = load16(xr + (x2 &+ ow))
                            let v0 = load16(g0 + (go &+ ow))
                            a00 = a00.addingProduct(v0, u0); a01 = a01.addingProduct(v0, u1); a02 = a02.addingProduct(v0, u2)
                            let v1 = load16(g1 + (go &+ ow))
                            a10 = a10.addingProduct(v1, u0); a11 = a11.addingProduct(v1, u1); a12 = a12.addingProduct(v1, u2)
                            let v2 = load16(g2 + (go &+ ow))
                            a20 = a20.addingProduct(v2, u0); a21 = a21.addingProduct(v2, u1); a22 = a22.addingProduct(v2, u2)
                            let v3 = load16(g3 + (go &+ ow))
                            a30 = a30.addingProduct(v3, u0); a31 = a31.addingProduct(v3, u1); a32 = a32.addingProduct(v3, u2)
                            let v4 = load16(g4 + (go &+ ow))
                            a40 = a40.addingProduct(v4, u0); a41 = a41.addingProduct(v4, u1); a42 = a42.addingProduct(v4, u2)
                            let v5 = load16(g5 + (go &+ ow))
                            a50 = a50.addingProduct(v5, u0); a51 = a51.addingProduct(v5, u1); a52 = a52.addingProduct(v5, u2)
                            let v6 = load16(g6 + (go &+ ow))
                            a60 = a60.addingProduct(v6, u0); a61 = a61.addingProduct(v6, u1); a62 = a62.addingProduct(v6, u2)
                            let v7 = load16(g7 + (go &+ ow))
                            a70 = a70.addingProduct(v7, u0); a71 = a71.addingProduct(v7, u1); a72 = a72.addingProduct(v7, u2)
                            ow += 16
                        }
                    }
                }
                @inline(__always) func put(_ j: Int, _ s0: SIMD16<Float>, _ s1: SIMD16<Float>, _ s2: SIMD16<Float>) {
                    let base = p.out + j * kvol + (kd * K.h + kh) * K.w + kw0
                    base[0] += s0.sum()
                    if nk > 1 { base[1] += s1.sum() }
                    if nk > 2 { base[2] += s2.sum() }
                }
                put(0, a00, a01, a02); put(1, a10, a11, a12); put(2, a20, a21, a22); put(3, a30, a31, a32)
                put(4, a40, a41, a42); put(5, a50, a51, a52); put(6, a60, a61, a62); put(7, a70, a71, a72)
                kw0 += nk
            }
        }}
    }
}

/// Peak-FMA probe for AVX-512: 12 independent SIMD16 FMA chains; returns a value to keep them alive.
@inline(never) public func fmaLoop512(_ n: Int) -> Float {
    let b = SIMD16<Float>(repeating: 1e-7), c = SIMD16<Float>(repeating: 0.5)
    var a0 = SIMD16<Float>(repeating: 0), a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5
    var a6 = a0 + 6, a7 = a0 + 7, a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10, a11 = a0 + 11
    for _ in 0..<n {
        a0 = a0.addingProduct(b, c); a1 = a1.addingProduct(b, c); a2 = a2.addingProduct(b, c)
        a3 = a3.addingProduct(b, c); a4 = a4.addingProduct(b, c); a5 = a5.addingProduct(b, c)
        a6 = a6.addingProduct(b, c); a7 = a7.addingProduct(b, c); a8 = a8.addingProduct(b, c)
        a9 = a9.addingProduct(b, c); a10 = a10.addingProduct(b, c); a11 = a11.addingProduct(b, c)
    }
    let s = (a0 + a1 + a2 + a3) + (a4 + a5 + a6 + a7) + (a8 + a9 + a10 + a11)
    return s.sum()
}

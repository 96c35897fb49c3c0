import CStream
import VoxelTensorAVX512

// The register-blocked direct convolution engine shared by the conv3d forward pass and the
// input-gradient (transposed) pass.
//
// Problem it solves, per batch item:
//   dst[g, co, pos] = act(bias[co] + sum_{ci < inPerGroup} sum_{t < taps} src[g*inPerGroup + ci, base(pos) + tap[t]] * W[g, co, ci, t])
// where `src` is a zero-padded copy of the source (so no bounds checks in the inner loop), `tap[t]`
// are fixed offsets inside one source channel, and positions `pos` run over a 3D grid whose source
// base offsets and destination offsets are affine in (pd, ph, pw). The forward pass uses one grid
// (source step = stride); the transposed pass uses one grid per stride phase.
//
// Register blocking (AVX2, 16 ymm registers): a micro-tile is 6 positions x 16 output channels held
// in 12 SIMD8<Float> accumulators; per tap it loads 2 weight vectors (contiguous: the weights are
// packed as [group][block of 16 outputs][ci][tap][16]) and broadcasts 6 source values, then issues
// 12 FMAs. Positions of a micro-tile are consecutive in the flattened grid, so the inner loop never
// branches on borders; a last partial micro-tile repeats its final position and stores only the
// valid ones.
//
// Parallelism and determinism: tiles are (group, output block, slab of grid rows) with slab sizes
// fixed by the shape alone. Every output element is computed by exactly one micro-tile, summing in
// the fixed order bias, then ci, then tap, so results are bit-identical for any thread count.

/// Output channels per register block (two SIMD8 vectors).
@usableFromInline let convBlock = 16
/// Output positions per micro-tile (12 accumulators with `convBlock` = 16).
@usableFromInline let convTileW = 6

/// Weights packed for the direct engine: `[groups][blocks][inPerGroup][taps][block]`, zero past the
/// last output channel of a group. `block` is 16 (AVX2: two SIMD8; AVX-512: one SIMD16), 32
/// (AVX-512: two SIMD16; the AVX2 kernel runs it as two 16-halves) or 8 (AVX-512 W-vectorised
/// kernel, column step 1 only).
@usableFromInline struct DirectWeights: Sendable {
    @usableFromInline let groups: Int, inPerGroup: Int, outPerGroup: Int, taps: Int, blocks: Int, block: Int
    @usableFromInline let data: [Float]

    /// Packs from a getter `value(g, coLocal, ciLocal, tap)`, in parallel over (group, block).
    @usableFromInline init(groups: Int, inPerGroup: Int, outPerGroup: Int, taps: Int, block: Int = convBlock,
                           value: @Sendable (Int, Int, Int, Int) -> Float) {
        self.groups = groups; self.inPerGroup = inPerGroup; self.outPerGroup = outPerGroup; self.taps = taps
        self.block = block
        let blocks = (outPerGroup + block - 1) / block
        self.blocks = blocks
        let perBlock = inPerGroup * taps * block
        self.data = [Float](unsafeUninitializedCapacity: groups * blocks * perBlock) { buf, count in
            let out = SharedPointer(buf.baseAddress!)
            Parallel.forEach(groups * blocks) { gb in
                let g = gb / blocks, b = gb % blocks
                var i = gb * perBlock
                for ci in 0..<inPerGroup { for t in 0..<taps { for l in 0..<block {
                    let co = b * block + l
                    out[i] = co < outPerGroup ? value(g, co, ci, t) : 0
                    i += 1
                }}}
            }
            count = groups * blocks * perBlock
        }
    }

    /// The blocks the engine may run a layer with, whatever its width. AVX2: 16. AVX-512: 1
    /// (W-vectorised, one channel) for at most 4 outputs per group; 8 (W-vectorised, whole-vector
    /// stores) for at most 16 outputs per group; else 8 or 32 (channel-vectorised), by width.
    @usableFromInline static func candidateBlocks(outPerGroup: Int, inPerGroup: Int, taps: Int, isa: ConvISA) -> [Int] {
        guard isa == .avx512 else { return [16] }
        if outPerGroup <= 4 { return [1] }
        if outPerGroup <= 16 { return [8] }
        return [8, 32]
    }

    /// The block to run output rows `width` wide with, by a cost per output fitted to measurements
    /// (Zen 5): `products / (16 * lanes filled) + store`. Block 8 computes 16 columns at a time (a
    /// 24-wide row fills 75% of its lanes) and stores whole vectors (cost 0.3); block 32 computes 4
    /// columns of 32 channels (a 6-wide row fills 75%), runs at 0.86 of block 8's rate when both are
    /// full, and scatters its stores (cost 5), which dominates when outputs sum few products. Measured
    /// (GFLOP/s, block 32 against 8): 128->32 3^3 at 24^3 422/364; 64->64 3^3 at 16^3 426/494;
    /// 128->128 3^3 at 8^3 446/244; 1x1 256->128 at 6^3 151/114, at 24^3 260/273; 1x1 64->128 at 24^3 128/262.
    @usableFromInline static func preferredBlock(outPerGroup: Int, inPerGroup: Int, taps: Int, width: Int,
                                                 isa: ConvISA) -> Int {
        let c = candidateBlocks(outPerGroup: outPerGroup, inPerGroup: inPerGroup, taps: taps, isa: isa)
        guard c.count > 1 else { return c[0] }
        func fill(_ n: Int, _ unit: Int) -> Double { Double(n) / Double(unit * ((n + unit - 1) / unit)) }
        let products = Double(inPerGroup * taps)
        let cost8 = products / (16 * fill(width, 16) * fill(outPerGroup, 8)) + 0.3
        let cost32 = products / (16 * 0.86 * fill(outPerGroup, 32) * fill(width, 4)) + 5
        return cost32 < cost8 ? 32 : 8
    }

    /// Offset of block (g, b) in `data`.
    @inlinable func blockOffset(_ g: Int, _ b: Int) -> Int { (g * blocks + b) * inPerGroup * taps * block }

    /// `bias` (`[groups * outPerGroup]`, or nil for zeros) laid out as the blocks are:
    /// `[groups][blocks * block]`, zero past each group's last output channel.
    func paddedBias(_ bias: [Float]?) -> [Float] {
        var padded = [Float](repeating: 0, count: groups * blocks * block)
        if let bias {
            for g in 0..<groups { for co in 0..<outPerGroup {
                padded[g * blocks * block + co] = bias[g * outPerGroup + co]
            }}
        }
        return padded
    }
}

/// A layer's weights packed for every block the engine may choose (`DirectWeights.candidateBlocks`).
@usableFromInline struct DirectWeightSet: Sendable {
    @usableFromInline let packs: [DirectWeights]
    let outPerGroup: Int, inPerGroup: Int, taps: Int, isa: ConvISA

    /// Packs from a getter `value(g, coLocal, ciLocal, tap)` once per candidate block.
    @usableFromInline init(groups: Int, inPerGroup: Int, outPerGroup: Int, taps: Int, isa: ConvISA,
                           value: @Sendable (Int, Int, Int, Int) -> Float) {
        self.outPerGroup = outPerGroup; self.inPerGroup = inPerGroup; self.taps = taps; self.isa = isa
        packs = DirectWeights.candidateBlocks(outPerGroup: outPerGroup, inPerGroup: inPerGroup, taps: taps, isa: isa).map {
            DirectWeights(groups: groups, inPerGroup: inPerGroup, outPerGroup: outPerGroup, taps: taps, block: $0, value: value)
        }
    }

    /// The packing to run output rows `width` wide with.
    @usableFromInline func forWidth(_ width: Int) -> DirectWeights {
        let b = DirectWeights.preferredBlock(outPerGroup: outPerGroup, inPerGroup: inPerGroup, taps: taps, width: width, isa: isa)
        return packs.first { $0.block == b } ?? packs[0]
    }
}

/// Floats of slack every source buffer of `runDirect` must have after its last element: the AVX-512
/// kernel reads (never stores) up to 8 columns of stride 2 past a row's last valid column.
@usableFromInline let directSourceSlack = 64

/// An affine 3D grid of positions: where each position reads in the source and writes in the output.
@usableFromInline struct DirectGrid: Sendable {
    @usableFromInline var count: Size3
    @usableFromInline var srcOrigin: Int, srcStep: Size3
    @usableFromInline var dstOrigin: Int, dstStep: Size3
    @usableFromInline init(count: Size3, srcOrigin: Int, srcStep: Size3, dstOrigin: Int, dstStep: Size3) {
        self.count = count; self.srcOrigin = srcOrigin; self.srcStep = srcStep
        self.dstOrigin = dstOrigin; self.dstStep = dstStep
    }
}

/// Strides (in floats) of a zero-padded source in the row-interleaved layout `[D][H][C][phase][W/phase]`.
@usableFromInline struct SourceStrides: Sendable {
    @usableFromInline var channel: Int, row: Int, plane: Int, count: Int
    /// W phases (the W stride of the convolution reading it) and the length of one phase.
    @usableFromInline var phases: Int, phaseLength: Int
    /// Offset inside a channel row of padded column `w`.
    @inlinable func column(_ w: Int) -> Int { (w % phases) * phaseLength + w / phases }
}

/// Copies `x: [C, D, H, W]` (channels `channelStride` floats apart; default `D*H*W`, but a run of
/// planes inside a deeper volume works too) into `dst` zero-padded (negative pads crop) in the layout
/// `[D'][H'][C][phases][ceil(W'/phases)]`, where column w' is stored in phase `w' % phases` at
/// `w' / phases`. Interleaving the channels per row keeps the rows one micro-tile reads (all
/// channels, a few planes) in a few contiguous runs, which caches and prefetchers follow far better
/// than one stream per channel; splitting W by the conv's W stride makes every kernel read
/// consecutive columns with step 1. Parallel over planes.
@usableFromInline func padVolumeInterleaved(_ x: UnsafePointer<Float>, channels: Int, size: Size3, begin: Size3,
                                            end: Size3, phases: Int = 1, channelStride: Int? = nil,
                                            into dst: UnsafeMutablePointer<Float>) {
    let cstride = channelStride ?? size.product
    let st = interleavedStrides(channels: channels, size: size, begin: begin, end: end, phases: phases)
    let P = Size3(size.d + begin.d + end.d, size.h + begin.h + end.h, size.w + begin.w + end.w)
    let xs = SharedConstPointer(x), ds = SharedPointer(dst)
    let rowLen = st.phases * st.phaseLength
    Parallel.forEach(P.d) { pd in
        let out = ds + pd * st.plane
        let id = pd - begin.d
        let w0 = max(0, begin.w), w1 = min(P.w, size.w + begin.w)
        guard id >= 0, id < size.d, w1 > w0 else {
            out.initialize(repeating: 0, count: st.plane)
            return
        }
        for ph in 0..<P.h where ph - begin.h < 0 || ph - begin.h >= size.h {
            (out + ph * st.row).initialize(repeating: 0, count: st.row)
        }
        // Channel by channel, so the reads walk each input plane in order (one stream the prefetcher
        // follows) rather than 64 channels' rows at once (25% of a 64->128 stride-2 layer's time went to
        // those reads' misses); the writes land in a scratch plane small enough for L2.
        if (phases == 4 || phases == 2) && Conv3DEngine.cpuHasAVX512 && begin.w >= 0 {
            // Two or four phases (the Winograd kernels' layouts, and the direct engine's for stride
            // 2), a channel's rows per call with AVX-512 shuffles (`splitRows`). The batch of 16 at
            // 16->16, 64^3: 93.9 -> 92.4 ms (5 of 5 rounds); 16->16 alone within noise.
            let h0 = max(0, begin.h), h1 = min(P.h, size.h + begin.h)
            for c in 0..<channels where h1 > h0 {
                splitRows(xs + c * cstride + (id * size.h + h0 - begin.h) * size.w, srcRowStride: size.w, rows: h1 - h0,
                          width: w1 - begin.w, begin: begin.w, phases: phases, into: out + h0 * st.row + c * st.channel,
                          dstRowStride: st.row, phaseLength: st.phaseLength,
                          prefetchOffset: c + 2 < channels ? 2 * cstride : 0)
            }
            return
        }
        for c in 0..<channels {
            for ph in max(0, begin.h)..<min(P.h, size.h + begin.h) {
                let ih = ph - begin.h
                let src = xs + c * cstride + (id * size.h + ih) * size.w - begin.w
                let row = out + ph * st.row + c * st.channel
                // The same row two channels ahead, prefetched: one channel's rows of a plane are a
                // few KB (4 KB at 32^2), and hardware prefetchers stop at each page, so every channel
                // began with misses from memory (a batch of 16 at 16->16, 64^3: 100-102 -> 93-95 ms).
                if c + 2 < channels {
                    var l = w0
                    while l < w1 { vx_prefetch(src + 2 * cstride + l); l += 16 }
                    vx_prefetch(src + 2 * cstride + w1 - 1)
                }
                if phases == 1 {
                    // Only the border columns need zeros; the copy writes the rest. Rows are short
                    // (24-130 floats), so inline vector copies beat a memmove call per row (17% of a
                    // 1x1 layer at 24^3 went to memmove's call and setup).
                    for i in 0..<w0 { row[i] = 0 }
                    copyFloats(row + w0, src + w0, count: w1 - w0)
                    for i in w1..<rowLen { row[i] = 0 }
                } else if phases == 2 {
                    // Each W phase straight from the input row: 16 of its values are the even or the odd
                    // lanes of 32 consecutive input columns, one load. (Built in a scratch row first,
                    // the split's loads waited on that row's misaligned stores: 68-77% of the copy's
                    // samples sat on one load, and the copy was 11-23% of a 64->128 stride-2 layer.)
                    let len = st.phaseLength
                    for r in 0..<2 {
                        let out = row + r * len
                        // Phase r, position q holds padded column 2q + r: input where w0 <= 2q + r < w1.
                        let qLo = min(len, max(0, (w0 - r + 1) >> 1)), qHi = max(qLo, min(len, (w1 - r + 1) >> 1))
                        for q in 0..<qLo { out[q] = 0 }
                        for q in qHi..<len { out[q] = 0 }
                        // The 16 values are the even lanes of a load from padded column 2q + r, or the
                        // odd lanes of one a column earlier: whichever starts on an even input column,
                        // so a phase ending on the row's last column still takes whole vectors.
                        let odd = (r - begin.w) & 1
                        var q = qLo
                        while q < qHi {
                            let first = 2 * q + r - odd  // padded column of the load's first lane
                            if q + 16 <= qHi && first - begin.w >= 0 && first - begin.w + 32 <= size.w {
                                let v = UnsafeRawPointer(src + first).loadUnaligned(as: SIMD32<Float>.self)
                                // Two stores, not one of a selected half: a select made LLVM build the
                                // half lane by lane through the stack.
                                if odd == 0 {
                                    UnsafeMutableRawPointer(out + q).storeBytes(of: v.evenHalf, as: SIMD16<Float>.self)
                                } else {
                                    UnsafeMutableRawPointer(out + q).storeBytes(of: v.oddHalf, as: SIMD16<Float>.self)
                                }
                                q += 16
                            } else {
                                out[q] = src[2 * q + r]
                                q += 1
                            }
                        }
                    }
                } else if phases == 4 {
                    // The stride-2 Winograd kernel's layout: zeros, then each 32 input columns split by
                    // column mod 4 with two shuffles (`vx_split4x8`); input column c lands in phase
                    // (c + begin.w) % 4 at (c + begin.w) / 4.
                    let len = st.phaseLength
                    row.initialize(repeating: 0, count: rowLen)
                    var c = w0 - begin.w
                    let cEnd = w1 - begin.w
                    @inline(__always) func at(_ c: Int) -> UnsafeMutablePointer<Float> {
                        row + ((c + begin.w) & 3) * len + (c + begin.w) >> 2
                    }
                    while c + 32 <= cEnd {
                        vx_split4x8(src + begin.w + c, at(c), at(c + 1), at(c + 2), at(c + 3))
                        c += 32
                    }
                    while c < cEnd { at(c).pointee = src[begin.w + c]; c += 1 }
                } else {
                    row.initialize(repeating: 0, count: rowLen)
                    // Phase r holds columns r, r + phases, ...: a strided gather per phase.
                    for r in 0..<phases {
                        let q0 = (w0 - r + phases - 1) / phases, q1 = (w1 - r + phases - 1) / phases
                        let dst = row + r * st.phaseLength
                        var q = q0
                        while q < q1 { dst[q] = src[q * phases + r]; q += 1 }
                    }
                }
            }
        }
    }
}

/// Pads only planes `[p0, p1)` of the padded volume `padVolumeInterleaved(x, size, begin, end)` would
/// make, into `dst` (which then holds `p1 - p0` planes): the input planes among them are copied, the
/// rest are zeros. For convolutions run in depth chunks.
@usableFromInline func padPlanes(_ x: UnsafePointer<Float>, channels: Int, size: Size3, begin: Size3, end: Size3,
                                 phases: Int = 1, planes: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
    let p0 = planes.lowerBound, p1 = planes.upperBound
    // Input planes [lo, hi) fall inside; `before` zero planes precede them and `after` follow.
    let lo = min(size.d, max(0, p0 - begin.d)), hi = max(lo, min(size.d, p1 - begin.d))
    let before = hi > lo ? lo + begin.d - p0 : p1 - p0
    let after = (p1 - p0) - before - (hi - lo)
    padVolumeInterleaved(x + lo * size.h * size.w, channels: channels, size: Size3(hi - lo, size.h, size.w),
                         begin: Size3(before, begin.h, begin.w), end: Size3(after, end.h, end.w),
                         phases: phases, channelStride: size.product, into: dst)
}

/// Copies `count` floats, 16 at a time, then one by one.
@inline(__always) func copyFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self),
                                                    as: SIMD16<Float>.self)
        i += 16
    }
    while i < count { dst[i] = src[i]; i += 1 }
}

/// A scratch buffer for `padVolumeInterleaved` with strides `st`: only the slack after the volume is
/// zeroed here (the copy writes every element of the volume).
@usableFromInline func makeSourceScratch(_ st: SourceStrides) -> [Float] {
    [Float](unsafeUninitializedCapacity: st.count + directSourceSlack) { buf, count in
        (buf.baseAddress! + st.count).initialize(repeating: 0, count: directSourceSlack)
        // The volume is written by padVolumeInterleaved before any read; until then its bytes are
        // whatever malloc returned, which Float can represent (no invalid bit patterns).
        count = st.count + directSourceSlack
    }
}

/// The strides `padVolumeInterleaved` writes with.
@usableFromInline func interleavedStrides(channels: Int, size: Size3, begin: Size3, end: Size3,
                                          phases: Int = 1) -> SourceStrides {
    let P = Size3(size.d + begin.d + end.d, size.h + begin.h + end.h, size.w + begin.w + end.w)
    let len = (P.w + phases - 1) / phases
    let channel = phases * len
    return SourceStrides(channel: channel, row: channels * channel, plane: P.h * channels * channel,
                         count: P.d * P.h * channels * channel, phases: phases, phaseLength: len)
}

@inline(__always) @usableFromInline
func loadVector(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

/// Stores `n` (<= 8) lanes of `v` at `p`, `p + stride`, ...
@inline(__always) @usableFromInline
func scatterLanes(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ stride: Int, _ n: Int) {
    if n == 8 {
        p[0] = v[0]; p[stride] = v[1]; p[2 * stride] = v[2]; p[3 * stride] = v[3]
        p[4 * stride] = v[4]; p[5 * stride] = v[5]; p[6 * stride] = v[6]; p[7 * stride] = v[7]
    } else {
        for l in 0..<n { p[l * stride] = v[l] }
    }
}

/// One micro-tile: 6 positions (source base offsets `b0...b5`) x 16 output channels.
/// `src` points at the group's first source channel; `w` at the block's packed weights.
@inline(__always) @usableFromInline
func directMicroTile(src: UnsafePointer<Float>, channelStride: Int, channels: Int,
                     taps: UnsafePointer<Int>, tapCount: Int, w: UnsafePointer<Float>, wStride: Int,
                     b0: Int, b1: Int, b2: Int, b3: Int, b4: Int, b5: Int,
                     bias0: SIMD8<Float>, bias1: SIMD8<Float>,
                     dst: UnsafeMutablePointer<Float>, d: (Int, Int, Int, Int, Int, Int), valid: Int,
                     dstChannelStride: Int, validChannels: Int, activation: Activation,
                     residual: UnsafePointer<Float>?) {
    var a00 = bias0, a01 = bias1, a10 = bias0, a11 = bias1, a20 = bias0, a21 = bias1
    var a30 = bias0, a31 = bias1, a40 = bias0, a41 = bias1, a50 = bias0, a51 = bias1
    var wp = w
    var s = src
    for _ in 0..<channels {
        let p0 = s + b0, p1 = s + b1, p2 = s + b2, p3 = s + b3, p4 = s + b4, p5 = s + b5
        for t in 0..<tapCount {
            let o = taps[t]
            let w0 = loadVector(wp), w1 = loadVector(wp + 8)
            wp += wStride
            let x0 = SIMD8<Float>(repeating: p0[o])
            a00 = a00.addingProduct(x0, w0); a01 = a01.addingProduct(x0, w1)
            let x1 = SIMD8<Float>(repeating: p1[o])
            a10 = a10.addingProduct(x1, w0); a11 = a11.addingProduct(x1, w1)
            let x2 = SIMD8<Float>(repeating: p2[o])
            a20 = a20.addingProduct(x2, w0); a21 = a21.addingProduct(x2, w1)
            let x3 = SIMD8<Float>(repeating: p3[o])
            a30 = a30.addingProduct(x3, w0); a31 = a31.addingProduct(x3, w1)
            let x4 = SIMD8<Float>(repeating: p4[o])
            a40 = a40.addingProduct(x4, w0); a41 = a41.addingProduct(x4, w1)
            let x5 = SIMD8<Float>(repeating: p5[o])
            a50 = a50.addingProduct(x5, w0); a51 = a51.addingProduct(x5, w1)
        }
        s += channelStride
    }
    let n0 = min(8, validChannels), n1 = max(0, validChannels - 8)
    let cs8 = 8 * dstChannelStride
    @inline(__always) func put(_ lo: SIMD8<Float>, _ hi: SIMD8<Float>, _ off: Int) {
        var lo = lo, hi = hi
        if let r = residual {
            for l in 0..<n0 { lo[l] += r[off + l * dstChannelStride] }
            for l in 0..<n1 { hi[l] += r[off + cs8 + l * dstChannelStride] }
        }
        scatterLanes(activation.apply(lo), dst + off, dstChannelStride, n0)
        if n1 > 0 { scatterLanes(activation.apply(hi), dst + off + cs8, dstChannelStride, n1) }
    }
    put(a00, a01, d.0)
    if valid > 1 { put(a10, a11, d.1) }
    if valid > 2 { put(a20, a21, d.2) }
    if valid > 3 { put(a30, a31, d.3) }
    if valid > 4 { put(a40, a41, d.4) }
    if valid > 5 { put(a50, a51, d.5) }
}

/// Runs the direct engine for one batch item over one grid.
///
/// - `src`: padded source `[groups * inPerGroup][srcChannelStride]` followed by `directSourceSlack`
///   readable floats.
/// - `dst`: output `[groups * outPerGroup][dstChannelStride]`; every grid position of every output
///   channel is written.
/// - `isa`: AVX-512 needs `weights.block` packed for it and a W source step of 1 or 2; otherwise the
///   AVX2 kernel runs (it reads 16-channel halves of 32-blocks).
/// - `residual`: laid out like `dst`; each output is `activation(bias + sum + residual)`.
/// - `tapShape`: the taps' (kd, kh, kw) extents when they are listed as that grid in
///   `directTapOrder` (lets the one-channel AVX-512 kernel reuse source rows across kernel rows), or nil.
@usableFromInline func runDirect(src: UnsafePointer<Float>, srcChannelStride: Int, taps: [Int],
                                 weights: DirectWeights, grid: DirectGrid,
                                 dst: UnsafeMutablePointer<Float>, dstChannelStride: Int,
                                 bias: [Float]?, activation: Activation, isa: ConvISA,
                                 residual: UnsafePointer<Float>? = nil, tapShape: Size3? = nil,
                                 stores: OutputStores = OutputStores()) {
    precondition(taps.count == weights.taps, "direct conv: tap table and packed weights disagree")
    let G = grid.count
    if G.product == 0 { return }
    let block = weights.block
    let biasPadded = weights.paddedBias(bias)
    if isa == .avx512 && direct512Supports(colSrcStep: grid.srcStep.w, block: block) {
        runDirect512(src: src, srcChannelStride: srcChannelStride, taps: taps, weights: weights, grid: grid,
                     dst: dst, dstChannelStride: dstChannelStride, bias: biasPadded, activation: activation,
                     residual: residual, tapShape: tapShape, stores: stores)
        return
    }
    precondition(block % convBlock == 0, "direct conv: AVX2 kernel needs 16- or 32-channel blocks")
    // AVX2: slabs of whole (pd, ph-chunk) rows, about 1-2k positions each, fixed by the shape.
    let rowsPerSlab = max(1, min(G.h, 1536 / max(1, G.w)))
    let slabsPerPlane = (G.h + rowsPerSlab - 1) / rowsPerSlab
    let slabs = G.d * slabsPerPlane
    let halves = block / convBlock
    let tiles = weights.groups * weights.blocks * halves * slabs
    let srcP = SharedConstPointer(src), dstP = SharedPointer(dst)
    let resP = residual.map { SharedConstPointer($0) }
    taps.withUnsafeBufferPointer { tapBuf in
        weights.data.withUnsafeBufferPointer { wBuf in
            biasPadded.withUnsafeBufferPointer { bBuf in
                let tapP = SharedConstPointer(tapBuf.baseAddress!), wP = SharedConstPointer(wBuf.baseAddress!)
                let bP = SharedConstPointer(bBuf.baseAddress!)
                Parallel.forEach(tiles) { tile in
                    let slab = tile % slabs
                    let gbh = tile / slabs
                    let half = gbh % halves, gb = gbh / halves
                    let g = gb / weights.blocks, b = gb % weights.blocks
                    let pd = slab / slabsPerPlane
                    let h0 = (slab % slabsPerPlane) * rowsPerSlab
                    let h1 = min(G.h, h0 + rowsPerSlab)
                    let count = (h1 - h0) * G.w
                    let co0 = b * block + half * convBlock
                    let validChannels = min(convBlock, weights.outPerGroup - co0)
                    if validChannels <= 0 { return }
                    let srcG = srcP + g * weights.inPerGroup * srcChannelStride
                    let dstG = dstP + (g * weights.outPerGroup + co0) * dstChannelStride
                    let wBlock = wP + weights.blockOffset(g, b) + half * convBlock
                    let bias0 = loadVector(bP + gb * block + half * convBlock)
                    let bias1 = loadVector(bP + gb * block + half * convBlock + 8)
                    let srcD = grid.srcOrigin + pd * grid.srcStep.d
                    let dstD = grid.dstOrigin + pd * grid.dstStep.d
                    @inline(__always) func offsets(_ q: Int) -> (Int, Int) {
                        let ph = h0 + q / G.w, pw = q % G.w
                        return (srcD + ph * grid.srcStep.h + pw * grid.srcStep.w,
                                dstD + ph * grid.dstStep.h + pw * grid.dstStep.w)
                    }
                    var q = 0
                    while q < count {
                        let last = count - 1
                        let (s0, d0) = offsets(q), (s1, d1) = offsets(min(q + 1, last))
                        let (s2, d2) = offsets(min(q + 2, last)), (s3, d3) = offsets(min(q + 3, last))
                        let (s4, d4) = offsets(min(q + 4, last)), (s5, d5) = offsets(min(q + 5, last))
                        directMicroTile(src: srcG, channelStride: srcChannelStride, channels: weights.inPerGroup,
                                        taps: tapP.base, tapCount: weights.taps, w: wBlock, wStride: block,
                                        b0: s0, b1: s1, b2: s2, b3: s3, b4: s4, b5: s5,
                                        bias0: bias0, bias1: bias1,
                                        dst: dstG, d: (d0, d1, d2, d3, d4, d5), valid: min(convTileW, count - q),
                                        dstChannelStride: dstChannelStride, validChannels: validChannels,
                                        activation: activation,
                                        residual: resP.map { $0 + (g * weights.outPerGroup + co0) * dstChannelStride })
                        q += convTileW
                    }
                }
            }
        }
    }
}

/// The AVX-512 path of `runDirect`: tiles are (group, block, chunk of flattened (pd, ph) rows).
func runDirect512(src: UnsafePointer<Float>, srcChannelStride: Int, taps: [Int], weights: DirectWeights,
                  grid: DirectGrid, dst: UnsafeMutablePointer<Float>, dstChannelStride: Int,
                  bias: [Float], activation: Activation, residual: UnsafePointer<Float>?, tapShape: Size3?,
                  stores: OutputStores) {
    let G = grid.count
    let reuse = weights.block == 1 ? rowReuse(taps: taps, shape: tapShape) : nil
    let rows = G.d * G.h
    var rowSrc = [Int](repeating: 0, count: rows), rowDst = [Int](repeating: 0, count: rows)
    for r in 0..<rows {
        let pd = r / G.h, ph = r % G.h
        rowSrc[r] = grid.srcOrigin + pd * grid.srcStep.d + ph * grid.srcStep.h
        rowDst[r] = grid.dstOrigin + pd * grid.dstStep.d + ph * grid.dstStep.h
    }
    // Chunks of rows (a multiple of the 3-row micro-tile), at most about 1.5k positions each, and at
    // least 4 tiles per core where the rows allow, in slabs of equal size: a 12^3 layer with one
    // channel block otherwise ran as one slab of 126 rows and one of 18, half a core idle.
    let blockCount = weights.groups * weights.blocks
    let triples = (rows + 2) / 3
    var maxTriples = max(1, 1536 / max(1, G.w) / 3)
    if taps.count == 1 {
        maxTriples = min(maxTriples, max(1, (256 << 10) / (4 * weights.inPerGroup * max(1, G.w)) / 3))
    } else if weights.block != 1 {
        // At most about 512 KB of source, so a slab stays in L2 while its channel blocks run (each
        // output row reads about one source row step of every kd plane): 64->128 stride 2 at 32^3
        // took slabs of 66 rows and 2.6 MB from L3, now 9 rows, 1.5-4% faster (docs/engine.md).
        let perRow = 4 * grid.srcStep.h * (tapShape?.d ?? 1)
        maxTriples = min(maxTriples, max(1, (512 << 10) / max(1, 3 * perRow)))
    }
    let wanted = (4 * Parallel.threadCount + blockCount - 1) / blockCount
    let slabCount = min(triples, max((triples + maxTriples - 1) / maxTriples, wanted))
    let rowsPerSlab = 3 * ((triples + slabCount - 1) / slabCount)
    let slabs = (rows + rowsPerSlab - 1) / rowsPerSlab
    let tiles = blockCount * slabs
    let (act, a, b) = activation.kernelCode
    let srcP = SharedConstPointer(src), dstP = SharedPointer(dst)
    let resP = residual.map { SharedConstPointer($0) }
    taps.withUnsafeBufferPointer { tapBuf in weights.data.withUnsafeBufferPointer { wBuf in
        bias.withUnsafeBufferPointer { bBuf in rowSrc.withUnsafeBufferPointer { rsBuf in
            rowDst.withUnsafeBufferPointer { rdBuf in
                let tapP = SharedConstPointer(tapBuf.baseAddress!), wP = SharedConstPointer(wBuf.baseAddress!)
                let bP = SharedConstPointer(bBuf.baseAddress!)
                let rsP = SharedConstPointer(rsBuf.baseAddress!), rdP = SharedConstPointer(rdBuf.baseAddress!)
                Parallel.forEach(tiles) { tile in
                    // Slab-major: the blocks of one slab run back to back and share its source in cache.
                    let gb = tile % (weights.groups * weights.blocks), slab = tile / (weights.groups * weights.blocks)
                    let g = gb / weights.blocks, blk = gb % weights.blocks
                    let r0 = slab * rowsPerSlab
                    let co0 = blk * weights.block
                    var tileArgs = Direct512Tile(
                        src: srcP + g * weights.inPerGroup * srcChannelStride, srcChannelStride: srcChannelStride,
                        channels: weights.inPerGroup, taps: tapP.base, tapCount: weights.taps,
                        weights: wP + weights.blockOffset(g, blk), bias: bP + gb * weights.block,
                        dst: dstP + (g * weights.outPerGroup + co0) * dstChannelStride,
                        dstChannelStride: dstChannelStride, validChannels: min(weights.block, weights.outPerGroup - co0),
                        rowSrc: rsP + r0, rowDst: rdP + r0, rows: min(rowsPerSlab, rows - r0),
                        cols: G.w, colSrcStep: grid.srcStep.w, colDstStep: grid.dstStep.w,
                        activation: act, actA: a, actB: b,
                        residual: resP.map { $0 + (g * weights.outPerGroup + co0) * dstChannelStride })
                    tileArgs.streaming = stores.streaming
                    tileArgs.prefetchStores = stores.prefetch
                    if let reuse {
                        tileArgs.rowStride = grid.srcStep.h
                        tileArgs.tapRowStep = reuse.step; tileArgs.tapRows = reuse.rows; tileArgs.tapCols = reuse.cols
                    }
                    direct512Run(tileArgs, block: weights.block)
                }
            }
        }}
    }}
}

/// The order the direct engine lists a kernel's (kd, kh, kw) taps in, and so sums them in: kw
/// fastest, except for layers with at most 4 outputs per group (those the AVX-512 one-channel kernel
/// runs), whose kernel rows go fastest (kd, kw, kh) so that kernel can hold one kernel column's
/// weights in registers while it walks the source rows (`w1ReuseTile`). The order depends on the
/// layer only, never on the instruction set, so both ISAs sum in the same order.
@usableFromInline func directTapOrder(_ k: Size3, outPerGroup: Int) -> [Size3] {
    var order: [Size3] = []
    order.reserveCapacity(k.product)
    if outPerGroup <= 4 {
        for d in 0..<k.d { for w in 0..<k.w { for h in 0..<k.h { order.append(Size3(d, h, w)) }}}
    } else {
        for d in 0..<k.d { for h in 0..<k.h { for w in 0..<k.w { order.append(Size3(d, h, w)) }}}
    }
    return order
}

/// For the one-channel kernel's row reuse (`Direct512Tile.tapRowStep`): when `taps` are the grid
/// `shape` (kd, kh, kw extents) listed kernel rows fastest (kd, kw, kh, as `directTapOrder` lists
/// them for that kernel) and each kernel row lies a fixed offset from the previous one, that offset
/// and the grid's kh and kw extents; else nil (the kernel then runs tap by tap).
func rowReuse(taps: [Int], shape: Size3?) -> (step: Int, rows: Int, cols: Int)? {
    guard let k = shape, k.product == taps.count, k.h >= 2 else { return nil }
    let step = taps[1] - taps[0]
    for c in 0..<(k.d * k.w) { for h in 0..<k.h where taps[c * k.h + h] != taps[c * k.h] + h * step {
        return nil
    }}
    return (step, k.h, k.w)
}

/// How a kernel writing `bytes` of output per batch item, in a call that reads and writes `callBytes`
/// in all (every batch item's input and output), stores it. At 8 MB and above, outputs leave the
/// caches before the next layer reads them, and are stored plainly with their lines prefetched for
/// writing ahead of the stores (`OutputStores.prefetch`), or streamed: streaming stores skip the
/// read of each line before it is overwritten, which matters only where memory bandwidth is what
/// the call waits for, and cost stalls where the core could have overlapped those reads with its
/// sums. So only calls that move at least 4 times the last-level cache stream, and only on CPUs where
/// streaming was measured to help (`Conv3DEngine.streamingStores`; `Conv3DEngine.streamingOverride`
/// decides instead where set). Measured on Zen 5 (2 cores, L3 32 MB), each A/B alternated in one
/// session: a batch of 16 at 16->16 at 64^3 (512 MB) streamed 109 against 129 ms plain (its input
/// gradient 97 against 117); one volume of it (32 MB) 8.4 against 7.7 ms, the 7x7x7 stem at 128^3
/// (72 MB) 28.6 against 26.2, the VGG-style model at 64^3 20.2 against 18.3 and ResNet-18 at 128^3
/// 899 against 876 (medians). (Until stop 17 every output of 8 MB or more streamed: at stop 12, on
/// the same kind of CPU, that was faster for one volume too, before plain stores prefetched their
/// lines.) Results are the same bits either way.
///
/// Since stop 19 a single volume's output as large as the last-level cache streams too: the next
/// layer cannot find it there anyway, and since the partial lines of misaligned rows stream as well
/// (`RowStreamer`, Winograd's `streamColumns`) streaming no longer pays for them. The 7x7x7 stem
/// (a 64 MB output) faster in 57 of 60 alternated rounds: 24.67 against 25.00 ms in the machine's
/// normal phase, 27.60 against 29.35 in a slow one; ResNet-18 at 128^3 762 against 783 ms (4 rounds),
/// the VGG-style model (outputs of 16 MB) unchanged.
func outputStores(bytes: Int, callBytes: Int) -> OutputStores {
    // An override treats every output as large: streamed, or stored plainly with its lines prefetched.
    let large = Conv3DEngine.streamingOverride != nil || bytes >= 8 << 20
    let l3 = System.lastLevelCacheBytes
    let streaming = Conv3DEngine.streamingOverride
        ?? (Conv3DEngine.streamingStores && large && (callBytes >= 4 * l3 || bytes >= l3))
    return OutputStores(streaming: streaming, prefetch: large && !streaming)
}

/// How a kernel stores its output (`outputStores(bytes:callBytes:)`): with streaming stores, or plainly with
/// the lines prefetched for writing (the W-vectorised direct kernel one micro-tile ahead, Winograd one
/// group of tile vectors ahead: 16->16 at 64^3 faster in 5 of 6 ABBA blocks, median 14.4 -> 13.1
/// ms, a batch of 16 of it 3 of 4, 232 -> 225 ms; not for outputs that stay in the caches, where
/// 32->32 at 32^3 was slower in 4 of 6). Neither changes a result.
@usableFromInline struct OutputStores: Sendable {
    var streaming = false, prefetch = false
    @usableFromInline init(streaming: Bool = false, prefetch: Bool = false) {
        self.streaming = streaming; self.prefetch = prefetch
    }
}

import CStream

// AVX-512 Winograd F(2x2x2, 3x3x3) kernels for 3x3x3 convolutions with stride 1, no dilation, one
// group (see VoxelTensor/Kernels/Conv3D+Winograd.swift for the driver and docs/engine.md for the
// measurements). Only called after VoxelTensor has checked that the CPU has AVX-512.
//
// Per axis, F(2,3) computes two outputs of a 3-tap correlation from a 4-sample patch d with 4
// products instead of 6 (Lavin & Gray 2016):
//   v = B^T d:  v0 = d0 - d2, v1 = d1 + d2, v2 = d2 - d1, v3 = d1 - d3
//   u = G g:    u0 = g0, u1 = (g0 + g1 + g2)/2, u2 = (g0 - g1 + g2)/2, u3 = g2
//   y = A^T m:  y0 = m0 + m1 + m2, y1 = m1 - m2 - m3,   with m = u * v
// In 3D a tile of 2x2x2 outputs reads a 4x4x4 patch, and each of its 64 transformed positions is a
// sum over input channels: M[pos][co] = sum_ci V[pos][ci] * U[pos][ci][co], a small matrix product
// per position. That is 64 products per tile per channel pair against 216 for the direct sum.
//
// Lanes: a "tile vector" is 16 tiles side by side along W (32 output columns). The source is the
// zero-padded input with each row split into even and odd columns (`[D'][H'][C][2][L]`), so the four
// patch columns of the 16 tiles are four contiguous loads: even[t], odd[t], even[t+1], odd[t+1].
// The output transform gives the even and odd output columns as two vectors, interleaved into 32
// consecutive columns by two permutes.
//
// Rows of at most 8 tiles run as split vectors (two rows of tiles, 8 lanes each), rows of at most 4
// as quad vectors (four rows of tiles, 4 lanes each).
//
// Work unit: 3 tile vectors at once (any three; the driver lists them), so the matrix product's
// micro-kernel holds 3 tile vectors x 8 output channels = 24 zmm accumulators and per input channel
// loads 3 vectors and broadcasts 8 weights. Without channel blocks the products of one plane's 16
// positions are reduced along W and H at once (`planeSums`), so M never holds all 64 positions.
//
// Garbage lanes: lanes past a row's last tile, and the 4th sample of a patch past the padded volume,
// read whatever lies in the buffer (the driver pads one extra zero plane/row/column for odd output
// sizes and keeps slack after the end). Per axis, output 0 of a tile depends only on samples 0-2
// (v3 feeds only y1), so garbage reaches only outputs that are never stored.

/// One Winograd job: a list of tile vectors (a multiple of 3) over one padded source chunk.
public struct Winograd512Job {
    /// Padded source `[planes][rows][channels][2][phaseLength]` (even then odd columns), with slack.
    public var src: UnsafePointer<Float>
    public var channelStride: Int, rowStride: Int, planeStride: Int, phaseLength: Int, channels: Int
    /// Transformed weights `[64][channels][coutPadded]`, `coutPadded` a multiple of 8.
    public var u: UnsafePointer<Float>
    public var coutPadded: Int, cout: Int
    /// `[coutPadded]`.
    public var bias: UnsafePointer<Float>
    /// Output `[cout][...]`: channel, plane and row strides.
    public var dst: UnsafeMutablePointer<Float>
    public var dstChannelStride: Int, dstPlaneStride: Int, dstRowStride: Int
    /// Per tile vector 6 ints: source offset (even column of tile 0, channel 0), destination offset
    /// (output channel 0), valid planes (0-2), valid rows (0-2), valid columns (0-32; split: 0-16 per
    /// half), valid rows of the second half (split only).
    public var vectors: UnsafePointer<Int>, vectorCount: Int
    /// Split vectors (rows of at most 8 tiles): lanes 0-7 are 8 tiles of one row of tiles and lanes
    /// 8-15 the same tiles `halfSource` floats further in the source and `halfDestination` further in
    /// the output (the next row of tiles), so rows 9-16 columns wide still fill the lanes.
    public var split: Bool, halfSource: Int, halfDestination: Int
    /// 0 identity, 1 relu, 2 leaky relu (alpha = actA), 3 clip (actA...actB).
    public var activation: Int, actA: Float, actB: Float
    /// Laid out like `dst`, added before the activation, or nil.
    public var residual: UnsafePointer<Float>?
    /// Split vectors of four rows of tiles (rows of at most 4 tiles, 7-8 columns): lanes 4r..4r+3 are
    /// tiles of row of tiles r, `r * halfSource` floats further in the source and `r *
    /// halfDestination` further in the output; a tile vector's entry then gives the valid output rows
    /// of all four (0-8) in place of the second half's.
    public var quad = false
    /// Store whole vectors with streaming stores (outputs larger than the caches).
    public var streaming = false
    /// Prefetch for writing each group's output lines before its products (outputs larger than the
    /// caches, stored plainly).
    public var prefetchStores = false
    /// Input channels per block of V, or 0 for `winogradBlocking`'s choice (tests force small blocks).
    public var channelBlock = 0

    /// `winogradBlocking` for this job.
    @inline(__always) var blocking: (kc: Int, cc: Int) {
        winogradBlocking(channels: channels, coutPadded: coutPadded, channelBlock: channelBlock)
    }

    public init(src: UnsafePointer<Float>, channelStride: Int, rowStride: Int, planeStride: Int, phaseLength: Int,
                channels: Int, u: UnsafePointer<Float>, coutPadded: Int, cout: Int, bias: UnsafePointer<Float>,
                dst: UnsafeMutablePointer<Float>, dstChannelStride: Int, dstPlaneStride: Int, dstRowStride: Int,
                vectors: UnsafePointer<Int>, vectorCount: Int, split: Bool = false, halfSource: Int = 0,
                halfDestination: Int = 0, activation: Int, actA: Float, actB: Float, residual: UnsafePointer<Float>?) {
        self.src = src; self.channelStride = channelStride; self.rowStride = rowStride
        self.planeStride = planeStride; self.phaseLength = phaseLength; self.channels = channels
        self.u = u; self.coutPadded = coutPadded; self.cout = cout; self.bias = bias
        self.dst = dst; self.dstChannelStride = dstChannelStride; self.dstPlaneStride = dstPlaneStride
        self.dstRowStride = dstRowStride; self.vectors = vectors; self.vectorCount = vectorCount
        self.split = split; self.halfSource = halfSource; self.halfDestination = halfDestination
        self.activation = activation; self.actA = actA; self.actB = actB; self.residual = residual
    }
}

/// Floats of scratch `winograd512Run` needs for `channels` input channels (`channelBlock` as the job's).
public func winograd512ScratchFloats(channels: Int, coutPadded: Int, channelBlock: Int = 0) -> Int {
    let (kc, cc) = winogradBlocking(channels: channels, coutPadded: coutPadded, channelBlock: channelBlock)
    return 16 * 64 * (vPositionStride(kc) + 3 * cc + 1)
}

/// Vectors between consecutive positions of V (`[pos][ci][3]`) and M (`[pos][co][3]`): odd, so the 64
/// positions of one tile fall in 64 different L1 sets. (With 48 vectors, a 16-channel V, the input
/// transform's 64 stores per channel hit 4 sets: a 16->16 layer at 64^3 took 7.7 ms, against 6.6.)
@inline(__always) func vPositionStride(_ channels: Int) -> Int { 3 * channels | 1 }
@inline(__always) func mPositionStride(_ job: Winograd512Job) -> Int {
    3 * job.blocking.cc | 1
}

/// How a group of three tile vectors splits its work: `kc` input channels per block of V (12 KB per
/// channel), `cc` output channels per pass over the 64 positions (M, 12 KB per channel).
///
/// While all of V fits L2 comfortably (at most 85 channels), V is one block and the output channels
/// go 16 at a time, each pass reading V again (32->32 at 32^3: 2.22 against 2.27-2.40 ms in one
/// pass, whose larger M no longer fit L2 with V). Past that, every output channel goes in one pass
/// (two 256->256 layers at 16^3: 43-45 ms in passes of 16, 33-35 in one), and V comes in blocks of
/// 64 channels, each transformed and then multiplied into M, so the whole V (1.5 MB at 128 channels)
/// never has to stay in L2 beside M and the weights. Blocks measured on the Xeon, alternating
/// builds: DenseNet-121's 128->32 at 24^3 10.6-12.3 -> 8.2-10.1 ms; blocks of 16-64 within noise.
/// Between blocks each accumulator goes to M and back, which changes no bit: every output sums the
/// channels in the same order with the same FMAs. `channelBlock` > 0 sets `kc` (tests).
@inline(__always) func winogradBlocking(channels: Int, coutPadded: Int, channelBlock: Int) -> (kc: Int, cc: Int) {
    if channelBlock > 0 { return (min(channelBlock, channels), coutPadded) }
    if channels * 12 << 10 <= 1 << 20 { return (channels, min(16, coutPadded)) }
    return (min(64, channels), coutPadded)
}

/// Runs a job with `scratch` (at least `winograd512ScratchFloats(channels:coutPadded:)` floats, 64-byte aligned).
public func winograd512Run(_ job: Winograd512Job, scratch: UnsafeMutablePointer<Float>) {
    precondition(job.vectorCount % 3 == 0 && job.coutPadded % 8 == 0, "winograd512Run: malformed job")
    let raw = UnsafeMutableRawPointer(scratch)
    // V[pos][ci][3] and M[pos][co][3], SIMD16 each (positions `vPositionStride`, `mPositionStride` apart).
    let v = raw.assumingMemoryBound(to: SIMD16<Float>.self)
    let m = v + 64 * vPositionStride(job.blocking.kc)
    if job.split { runGroups(job, v: v, m: m, split: true) } else { runGroups(job, v: v, m: m, split: false) }
    if job.streaming { vx_store_fence() }
}

/// The groups of three tile vectors of a job (`split` a constant after inlining).
@inline(__always) func runGroups(_ job: Winograd512Job, v: UnsafeMutablePointer<SIMD16<Float>>,
                                 m: UnsafeMutablePointer<SIMD16<Float>>, split: Bool) {
    let (kc, chunk) = job.blocking
    let C = job.channels, oneBlock = kc >= C, vs = vPositionStride(kc)
    var g = 0
    while g < job.vectorCount {
        let vec = job.vectors + 6 * g
        if oneBlock {
            for k in 0..<3 { inputTransform(job, srcOffset: vec[6 * k], channels: 0..<C, into: v + k, split: split) }
        }
        if job.prefetchStores && !split { prefetchOutputs(job, vec) }
        // Output channels `chunk` at a time; input channels `kc` at a time: for each position all the
        // chunk's 8-blocks while its V is in L1.
        var cb = 0
        while cb < job.coutPadded {
            let blocks = min(chunk, job.coutPadded - cb) / 8
            if oneBlock {
                // Plane by plane: the 16 positions of plane a into a buffer, then along W and H to the
                // 4 values each output channel and tile vector keeps of that plane (`planeSums`).
                let bs = 24 * blocks, sums = m + 16 * bs
                for a in 0..<4 {
                    for q in 0..<16 { for b in 0..<blocks {
                        product(job, v: UnsafePointer(v), vStride: vs, pos: 16 * a + q, cb: cb + 8 * b, channels: 0..<C,
                                into: m + q * bs + 24 * b, accumulate: false)
                    }}
                    planeSums(UnsafePointer(m), stride: bs, count: bs, into: sums + 4 * a * bs)
                }
                for j in 0..<min(8 * blocks, job.cout - cb) {
                    for k in 0..<3 {
                        let e = vec + 6 * k
                        if e[2] == 0 || e[4] == 0 || (e[3] == 0 && e[5] == 0) { continue }
                        outputTransformSums(job, s: UnsafePointer(sums + 3 * j + k), stride: bs, co: cb + j,
                                            dstOffset: e[1], nd: e[2], nh: e[3], nw: e[4], nhB: e[5], split: split)
                    }
                }
                cb += 8 * blocks
                continue
            }
            var c0 = 0
            while c0 < C {
                let ci = c0..<min(C, c0 + kc)
                if !oneBlock {
                    for k in 0..<3 { inputTransform(job, srcOffset: vec[6 * k], channels: ci, into: v + k, split: split) }
                }
                // `accumulate` a constant in each copy of the loop.
                @inline(__always) func multiply(accumulate: Bool) {
                    for pos in 0..<64 { for b in 0..<blocks {
                        product(job, v: UnsafePointer(v), vStride: vs, pos: pos, cb: cb + 8 * b, channels: ci,
                                into: m + pos * mPositionStride(job) + 24 * b, accumulate: accumulate)
                    }}
                }
                if c0 == 0 { multiply(accumulate: false) } else { multiply(accumulate: true) }
                c0 = ci.upperBound
            }
            for j in 0..<min(8 * blocks, job.cout - cb) {
                for k in 0..<3 {
                    let e = vec + 6 * k
                    if e[2] == 0 || e[4] == 0 || (e[3] == 0 && e[5] == 0) { continue }
                    outputTransform(job, m: UnsafePointer(m + 3 * j + k), co: cb + j,
                                    dstOffset: e[1], nd: e[2], nh: e[3], nw: e[4], nhB: e[5], split: split)
                }
            }
            cb += 8 * blocks
        }
        g += 3
    }
}

/// Prefetches for writing the output lines a group of three tile vectors (`vec`, 6 ints each) will
/// store, before its matrix products, so that the stores of its output transform, in an output larger
/// than the caches, do not wait for their lines. A hint: it never changes a result.
@inline(__always) func prefetchOutputs(_ job: Winograd512Job, _ vec: UnsafePointer<Int>) {
    for k in 0..<3 {
        let e = vec + 6 * k
        let nw = e[4]
        if nw == 0 { continue }
        for co in 0..<job.cout { for dd in 0..<e[2] { for hh in 0..<e[3] {
            let d = job.dst + (co * job.dstChannelStride + e[1] + dd * job.dstPlaneStride + hh * job.dstRowStride)
            vx_prefetch_write(d)
            if nw > 16 { vx_prefetch_write(d + 16) }
            vx_prefetch_write(d + nw - 1)
        }}}
    }
}

/// B^T along one axis.
@inline(__always) func bt(_ d0: SIMD16<Float>, _ d1: SIMD16<Float>, _ d2: SIMD16<Float>, _ d3: SIMD16<Float>)
    -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
    (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
}

/// Transforms the 4x4x4 patches of one tile vector for the input channels `channels` (a block of
/// at most `kc`) into `out[pos * vPositionStride(kc) + 3 * (ci - channels.lowerBound)]` (`out` points
/// at the vector's slot of the group).
@inline(__always) func inputTransform(_ job: Winograd512Job, srcOffset: Int, channels: Range<Int>,
                                      into out: UnsafeMutablePointer<SIMD16<Float>>, split: Bool) {
    let L = job.phaseLength, ps = job.planeStride, rs = job.rowStride, half = job.halfSource
    let posStride = vPositionStride(job.blocking.kc)
    // 16 tiles: one load, or two loads of 8 (split vectors), or four of 4 (quad).
    let quad = job.quad
    @inline(__always) func tiles(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        if !split { return UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
        if quad {
            @inline(__always) func four(_ r: Int) -> SIMD4<Float> { UnsafeRawPointer(p + r * half).loadUnaligned(as: SIMD4<Float>.self) }
            return SIMD16(lowHalf: SIMD8(lowHalf: four(0), highHalf: four(1)), highHalf: SIMD8(lowHalf: four(2), highHalf: four(3)))
        }
        return SIMD16(lowHalf: UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self),
                      highHalf: UnsafeRawPointer(p + half).loadUnaligned(as: SIMD8<Float>.self))
    }
    for ci in channels {
        let s = job.src + srcOffset + ci * job.channelStride
        let o = out + (ci - channels.lowerBound) * 3
        // Patch columns 0-3 are even[t], odd[t], even[t+1], odd[t+1]; column c' of B^T d along W
        // takes two of them (offsets first, second and whether they add).
        for c in 0..<4 {
            let (f, g): (Int, Int) = c == 0 ? (0, 1) : c == 1 ? (L, 1) : c == 2 ? (1, L) : (L, L + 1)
            let plus = c == 1
            var x = (SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>())
            var y0 = x, y1 = x, y2 = x, y3 = x
            for b in 0..<4 {
                // Along D for row b.
                var d = (SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>())
                let p = s + b * rs
                d.0 = plus ? tiles(p + f) + tiles(p + g) : tiles(p + f) - tiles(p + g)
                d.1 = plus ? tiles(p + ps + f) + tiles(p + ps + g) : tiles(p + ps + f) - tiles(p + ps + g)
                d.2 = plus ? tiles(p + 2 * ps + f) + tiles(p + 2 * ps + g) : tiles(p + 2 * ps + f) - tiles(p + 2 * ps + g)
                d.3 = plus ? tiles(p + 3 * ps + f) + tiles(p + 3 * ps + g) : tiles(p + 3 * ps + f) - tiles(p + 3 * ps + g)
                x = bt(d.0, d.1, d.2, d.3)
                switch b {
                case 0: y0 = x
                case 1: y1 = x
                case 2: y2 = x
                default: y3 = x
                }
            }
            // Along H for each transformed plane a'.
            let z0 = bt(y0.0, y1.0, y2.0, y3.0), z1 = bt(y0.1, y1.1, y2.1, y3.1)
            let z2 = bt(y0.2, y1.2, y2.2, y3.2), z3 = bt(y0.3, y1.3, y2.3, y3.3)
            let q = o + c * posStride
            q[0 * posStride] = z0.0; q[4 * posStride] = z0.1; q[8 * posStride] = z0.2; q[12 * posStride] = z0.3
            q[16 * posStride] = z1.0; q[20 * posStride] = z1.1; q[24 * posStride] = z1.2; q[28 * posStride] = z1.3
            q[32 * posStride] = z2.0; q[36 * posStride] = z2.1; q[40 * posStride] = z2.2; q[44 * posStride] = z2.3
            q[48 * posStride] = z3.0; q[52 * posStride] = z3.1; q[56 * posStride] = z3.2; q[60 * posStride] = z3.3
        }
    }
}

/// For output channels `cb..<cb+8` at one position, over the input channels `channels` (V's block,
/// positions `vStride` vectors apart): `o[3 * j + k] = sum_ci v[pos][ci][k] * u[pos][ci][cb + j]`,
/// added to what `o` holds when `accumulate` (the sum of the earlier blocks).
@inline(__always) func product(_ job: Winograd512Job, v: UnsafePointer<SIMD16<Float>>, vStride: Int, pos: Int, cb: Int,
                               channels: Range<Int>, into o: UnsafeMutablePointer<SIMD16<Float>>, accumulate: Bool) {
    let C = job.channels, cp = job.coutPadded
    do {
        var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a03 = a00, a04 = a00, a05 = a00, a06 = a00, a07 = a00
        var a10 = a00, a11 = a00, a12 = a00, a13 = a00, a14 = a00, a15 = a00, a16 = a00, a17 = a00
        var a20 = a00, a21 = a00, a22 = a00, a23 = a00, a24 = a00, a25 = a00, a26 = a00, a27 = a00
        if accumulate {
            a00 = o[0]; a10 = o[1]; a20 = o[2]; a01 = o[3]; a11 = o[4]; a21 = o[5]
            a02 = o[6]; a12 = o[7]; a22 = o[8]; a03 = o[9]; a13 = o[10]; a23 = o[11]
            a04 = o[12]; a14 = o[13]; a24 = o[14]; a05 = o[15]; a15 = o[16]; a25 = o[17]
            a06 = o[18]; a16 = o[19]; a26 = o[20]; a07 = o[21]; a17 = o[22]; a27 = o[23]
        }
        var vp = v + pos * vStride
        var up = job.u + (pos * C + channels.lowerBound) * cp + cb
        for _ in channels {
            let x0 = vp[0], x1 = vp[1], x2 = vp[2]
            let w0 = SIMD16<Float>(repeating: up[0])
            a00 = a00.addingProduct(x0, w0); a10 = a10.addingProduct(x1, w0); a20 = a20.addingProduct(x2, w0)
            let w1 = SIMD16<Float>(repeating: up[1])
            a01 = a01.addingProduct(x0, w1); a11 = a11.addingProduct(x1, w1); a21 = a21.addingProduct(x2, w1)
            let w2 = SIMD16<Float>(repeating: up[2])
            a02 = a02.addingProduct(x0, w2); a12 = a12.addingProduct(x1, w2); a22 = a22.addingProduct(x2, w2)
            let w3 = SIMD16<Float>(repeating: up[3])
            a03 = a03.addingProduct(x0, w3); a13 = a13.addingProduct(x1, w3); a23 = a23.addingProduct(x2, w3)
            let w4 = SIMD16<Float>(repeating: up[4])
            a04 = a04.addingProduct(x0, w4); a14 = a14.addingProduct(x1, w4); a24 = a24.addingProduct(x2, w4)
            let w5 = SIMD16<Float>(repeating: up[5])
            a05 = a05.addingProduct(x0, w5); a15 = a15.addingProduct(x1, w5); a25 = a25.addingProduct(x2, w5)
            let w6 = SIMD16<Float>(repeating: up[6])
            a06 = a06.addingProduct(x0, w6); a16 = a16.addingProduct(x1, w6); a26 = a26.addingProduct(x2, w6)
            let w7 = SIMD16<Float>(repeating: up[7])
            a07 = a07.addingProduct(x0, w7); a17 = a17.addingProduct(x1, w7); a27 = a27.addingProduct(x2, w7)
            vp += 3
            up += cp
        }
        o[0] = a00; o[1] = a10; o[2] = a20; o[3] = a01; o[4] = a11; o[5] = a21
        o[6] = a02; o[7] = a12; o[8] = a22; o[9] = a03; o[10] = a13; o[11] = a23
        o[12] = a04; o[13] = a14; o[14] = a24; o[15] = a05; o[16] = a15; o[17] = a25
        o[18] = a06; o[19] = a16; o[20] = a26; o[21] = a07; o[22] = a17; o[23] = a27
    }
}

/// The 16 positions of one plane (`m[q * stride + i]`, q = b * 4 + c, for `count` vectors i) along W
/// and then H, as `outputTransform` takes them: `out[r * stride + i]` for r = (h'0 w'0, h'0 w'1,
/// h'1 w'0, h'1 w'1). Kept per plane, so the products' sums stay in a buffer of 16 positions rather
/// than 64 (a 16->16 layer's 196 KB M was read back from L2 by the output transform).
@inline(__always) func planeSums(_ m: UnsafePointer<SIMD16<Float>>, stride: Int, count: Int,
                                 into out: UnsafeMutablePointer<SIMD16<Float>>) {
    for i in 0..<count {
        let s = alongWH(m + i, stride: stride), q = out + i
        q[0] = s.0; q[stride] = s.1; q[2 * stride] = s.2; q[3 * stride] = s.3
    }
}

/// A^T along W, then along H, of one plane's 16 positions (`p[(4 * b + c) * stride]`, row b, column
/// c): (h'0 w'0, h'0 w'1, h'1 w'0, h'1 w'1).
@inline(__always) func alongWH(_ p: UnsafePointer<SIMD16<Float>>, stride: Int)
    -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
    @inline(__always) func row(_ b: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let q = p + 4 * b * stride
        return at(q[0], q[stride], q[2 * stride], q[3 * stride])
    }
    let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3)
    let (e0, e1) = at(r0.0, r1.0, r2.0, r3.0)
    let (o0, o1) = at(r0.1, r1.1, r2.1, r3.1)
    return (e0, o0, e1, o1)
}

/// `outputTransform` from the planes' sums (`planeSums`; `s[(4 * a + r) * stride]`): along D, then
/// bias, residual, activation and stores. The same operations in the same order, so the same bits.
@inline(never) func outputTransformSums(_ job: Winograd512Job, s: UnsafePointer<SIMD16<Float>>, stride: Int, co: Int,
                                        dstOffset: Int, nd: Int, nh: Int, nw: Int, nhB: Int, split: Bool) {
    @inline(__always) func plane(_ a: Int) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
        let q = s + 4 * a * stride
        return (q[0], q[stride], q[2 * stride], q[3 * stride])
    }
    storeTile(job, plane(0), plane(1), plane(2), plane(3), co: co, dstOffset: dstOffset, nd: nd, nh: nh, nw: nw,
              nhB: nhB, split: split)
}

/// A^T along one axis.
@inline(__always) func at(_ m0: SIMD16<Float>, _ m1: SIMD16<Float>, _ m2: SIMD16<Float>, _ m3: SIMD16<Float>)
    -> (SIMD16<Float>, SIMD16<Float>) {
    (m0 + m1 + m2, m1 - m2 - m3)
}

/// The even and odd columns as 32 consecutive ones, in two vectors of 16 (two permutes, `vx_zip16`).
/// A tuple, not a SIMD32: `SIMD32.lowHalf` compiled to a call (2.4% of a 16->16 layer's samples).
@inline(__always) func zipColumns(_ even: SIMD16<Float>, _ odd: SIMD16<Float>) -> (SIMD16<Float>, SIMD16<Float>) {
    var z = (SIMD16<Float>(), SIMD16<Float>())
    withUnsafeMutableBytes(of: &z) { vx_zip16(even, odd, $0.baseAddress!.assumingMemoryBound(to: Float.self)) }
    return z
}

/// Inverse transform of one output channel of one tile vector (`m[pos * mPositionStride]`), then bias, residual,
/// activation and store of the valid outputs.
@inline(never) func outputTransform(_ job: Winograd512Job, m: UnsafePointer<SIMD16<Float>>, co: Int,
                                       dstOffset: Int, nd: Int, nh: Int, nw: Int, nhB: Int, split: Bool) {
    // Per plane a: along W then H, giving (h'0 w'0, h'0 w'1, h'1 w'0, h'1 w'1).
    let ms = mPositionStride(job)
    storeTile(job, alongWH(m, stride: ms), alongWH(m + 16 * ms, stride: ms), alongWH(m + 32 * ms, stride: ms),
              alongWH(m + 48 * ms, stride: ms), co: co, dstOffset: dstOffset, nd: nd, nh: nh, nw: nw, nhB: nhB,
              split: split)
}

/// The last step of the output transform, along D (`y0 = s0 + s1 + s2`, `y1 = s1 - s2 - s3` from the
/// planes' sums along W and H), then bias, residual, activation and the stores of the valid outputs.
@inline(__always) func storeTile(_ job: Winograd512Job, _ s0: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>),
                                 _ s1: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>),
                                 _ s2: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>),
                                 _ s3: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>),
                                 co: Int, dstOffset: Int, nd: Int, nh: Int, nw: Int, nhB: Int, split: Bool) {
    let bias = SIMD16<Float>(repeating: job.bias[co])
    let base = co * job.dstChannelStride + dstOffset
    storeRow(job, base, 0, 0, nd, nh, nw, nhB, split, s0.0 + s1.0 + s2.0 + bias, s0.1 + s1.1 + s2.1 + bias)
    storeRow(job, base, 0, 1, nd, nh, nw, nhB, split, s0.2 + s1.2 + s2.2 + bias, s0.3 + s1.3 + s2.3 + bias)
    storeRow(job, base, 1, 0, nd, nh, nw, nhB, split, s1.0 - s2.0 - s3.0 + bias, s1.1 - s2.1 - s3.1 + bias)
    storeRow(job, base, 1, 1, nd, nh, nw, nhB, split, s1.2 - s2.2 - s3.2 + bias, s1.3 - s2.3 - s3.3 + bias)
}

/// Stores one output row of a tile vector (even and odd columns given apart) at plane `dd`, row `hh`
/// of the tiles, with the residual added and the activation applied. Split vectors store the low 16
/// columns in their first row of tiles and the high 16 in the second.
@_transparent func storeRow(_ job: Winograd512Job, _ base: Int, _ dd: Int, _ hh: Int, _ nd: Int, _ nh: Int,
                                _ nw: Int, _ nhB: Int, _ split: Bool, _ even: SIMD16<Float>, _ odd: SIMD16<Float>) {
    if dd >= nd { return }
    let off = base + dd * job.dstPlaneStride + hh * job.dstRowStride
    let z = zipColumns(even, odd)
    if split && job.quad {
        // Columns 8r..8r+7 of z are row of tiles r's; `nhB` valid output rows over the four.
        var zz = z
        withUnsafeBytes(of: &zz) { raw in
            // (The two vectors lie back to back: columns 0-15, then 16-31.)
            let f = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            for r in 0..<4 where hh < nhB - 2 * r {
                let q = SIMD16<Float>(lowHalf: UnsafeRawPointer(f + 8 * r).loadUnaligned(as: SIMD8<Float>.self),
                                      highHalf: SIMD8<Float>())
                storeColumns(job, off + r * job.halfDestination, q, nw)
            }
        }
    } else if split {
        if hh < nh { storeColumns(job, off, z.0, nw) }
        if hh < nhB { storeColumns(job, off + job.halfDestination, z.1, nw) }
    } else if hh < nh {
        if job.streaming && nw == 32 {
            streamColumns(job, off, z)
        } else {
            storeColumns(job, off, z.0, min(16, nw))
            if nw > 16 { storeColumns(job, off + 16, z.1, nw - 16) }
        }
    }
}

/// Stores 32 consecutive outputs at output offset `off`, with the residual added and the activation
/// applied, all with streaming stores. Where the row is not 64-byte aligned (tensors are Swift
/// arrays, which malloc aligns to 16 bytes) but 16-byte aligned, the partial lines at either end go
/// as 16-byte streaming stores, which the write-combining buffers merge with the neighbouring tile
/// vectors' parts (only AMD streams, `Conv3DEngine.streamingStores`). Stored plainly, each partial
/// line was first read from memory: a batch of 16 at 16->16, 64^3 took 117-119 ms whenever its output
/// was not 64-byte aligned and 90-95 when it was, and which one a run got depended on what it had
/// allocated before (the length of the executable's path changed it). Now 91-94 ms at six output
/// alignments (92-120 before). Rows not even 16-byte aligned: `vx_stream32_at`.
@inline(__always) func streamColumns(_ job: Winograd512Job, _ off: Int, _ z: (SIMD16<Float>, SIMD16<Float>)) {
    let lo = finished(job, off, z.0), hi = finished(job, off + 16, z.1)
    let d = job.dst + off
    if Int(bitPattern: d) & 15 == 0 {
        vx_stream16(d, lo); vx_stream16(d + 16, hi)
    } else {
        vx_stream32_at(d, lo, hi, Int32((Int(bitPattern: d) >> 2) & 15))
    }
}

/// Stores the first `n` (<= 16) columns of `v` at output offset `off`, with the residual added and
/// the activation applied.
@_transparent func storeColumns(_ job: Winograd512Job, _ off: Int, _ v: SIMD16<Float>, _ n: Int) {
    var v = v
    let d = job.dst + off
    if n == 16 {
        storeVector(d, finished(job, off, v), streaming: job.streaming)
    } else {
        if let r = job.residual { v += partialLoad(r + off, n) }
        v = activate(v, job)
        for l in 0..<n { d[l] = v[l] }
    }
}

/// 16 whole output columns at output offset `off` as they are stored: the residual added, the
/// activation applied.
@_transparent func finished(_ job: Winograd512Job, _ off: Int, _ v: SIMD16<Float>) -> SIMD16<Float> {
    var v = v
    if let r = job.residual { v += UnsafeRawPointer(r + off).loadUnaligned(as: SIMD16<Float>.self) }
    return activate(v, job)
}

/// The first `n` (<= 16) floats at `p`, zeros after.
@inline(__always) func partialLoad(_ p: UnsafePointer<Float>, _ n: Int) -> SIMD16<Float> {
    var v = SIMD16<Float>()
    for l in 0..<n { v[l] = p[l] }
    return v
}

@_transparent func activate(_ x: SIMD16<Float>, _ job: Winograd512Job) -> SIMD16<Float> {
    activate(x, code: job.activation, a: job.actA, b: job.actB)
}

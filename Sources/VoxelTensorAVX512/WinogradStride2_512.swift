import CStream

// AVX-512 Winograd kernel for 3x3x3 convolutions with stride 2 (no dilation, one group): each 2x2x2
// tile of outputs costs 125 products per channel pair instead of 216 (see
// VoxelTensor/Kernels/Conv3D+WinogradStride2.swift for the driver, docs/engine.md for measurements).
// Only called after VoxelTensor has checked that the CPU has AVX-512.
//
// Per axis, two outputs of a stride-2 3-tap correlation read five samples d0..d4 (outputs 2t and
// 2t + 1 read padded samples 4t..4t+2 and 4t+2..4t+4). The even samples d1, d3 meet tap g1 alone;
// the odd ones d0, d2, d4 form a stride-1 2-tap correlation with (g0, g2), which F(2,2) computes with
// 3 products instead of 4:
//   v = (d0 - d2, d2, d4 - d2, d1, d3)
//   u = (g0, g0 + g2, g2, g1, g1)
//   y0 = m0 + m1 + m3,  y1 = m1 + m2 + m4,   with m = u * v
// so 5 products per axis instead of 6, and 5^3 = 125 per tile in 3D against 2^3 * 27 = 216.
// Every coefficient of the output transform is +1, and positions 0 and 3 feed only y0, 2 and 4
// only y1, position 1 both: per axis the positions fall in three classes by the outputs they feed,
// and the products of one class may share accumulators. In 3D, with D outermost: for each D position,
// the 25 (H, W) positions of V are transformed into a slab, then each of the 9 (H, W) classes runs
// its positions' products into one set of accumulators, which are added to the outputs the class
// feeds (`Y`, all output channels of the tile vectors, in the scratch). M is never stored.
//
// Lanes: 16 tiles side by side along W (32 output columns), or split vectors as in Winograd512.swift
// (lanes 8-15 hold the next row of tiles). The source is the zero-padded input with each row split
// into four phases by column mod 4 (`[D'][H'][C][4][L]`), so sample k of 16 consecutive tiles is one
// contiguous load: phase k % 4 at index t + k / 4. Garbage lanes and samples past the volume reach
// only outputs that are never stored (per axis y0 reads d0-d2 only).

/// One stride-2 Winograd job: a list of tile vectors (a multiple of 3) over one padded source chunk,
/// for the 8-channel output blocks `blocks`. Fields as `Winograd512Job`, except that the source rows
/// have four phases of `phaseLength` floats and `halfSource` is four source rows.
public struct WinogradStride2Job {
    public var base: Winograd512Job
    /// Output channel blocks of 8 this job computes.
    public var blocks: Range<Int>

    public init(base: Winograd512Job, blocks: Range<Int>) { self.base = base; self.blocks = blocks }
}

/// Floats of scratch `winogradStride2Run` needs: the (H, W) slab of V for one D position and the
/// output sums `Y` of `blocks` 8-channel blocks.
public func winogradStride2ScratchFloats(channels: Int, blocks: Int) -> Int {
    16 * (25 * s2SlabStride(channels) + blocks * 8 * 8 * 3)
}

/// Vectors between consecutive positions of the slab (`[pos][ci][3]`): odd, so a tile's positions
/// spread over the L1 sets.
@inline(__always) func s2SlabStride(_ channels: Int) -> Int { 3 * channels | 1 }

/// Runs a job with `scratch` (at least `winogradStride2ScratchFloats` floats, 64-byte aligned).
/// `u`: the transformed weights `[125][blockCount][channels][8]`.
public func winogradStride2Run(_ job: WinogradStride2Job, scratch: UnsafeMutablePointer<Float>) {
    let b = job.base
    precondition(b.vectorCount % 3 == 0 && b.coutPadded % 8 == 0, "winogradStride2Run: malformed job")
    let raw = UnsafeMutableRawPointer(scratch)
    let v = raw.assumingMemoryBound(to: SIMD16<Float>.self)
    let y = v + 25 * s2SlabStride(b.channels)
    if b.split { s2Groups(job, v: v, y: y, split: true) } else { s2Groups(job, v: v, y: y, split: false) }
    if b.streaming { vx_store_fence() }
}

/// For each D position and (H, W) class in the order the kernel runs them: the outputs it feeds (bit
/// `jd*4 + jh*2 + jw`) and those it feeds first. Per axis positions 0 and 3 feed y0, 1 both, 2 and 4
/// y1; the classes are those three sets, in that order.
let s2Steps: [(feeds: Int, first: Int)] = {
    let axis = [1, 3, 2, 1, 2], cls = [1, 3, 2]
    var steps: [(feeds: Int, first: Int)] = [], seen = 0
    for pa in 0..<5 { for ch in 0..<3 { for cw in 0..<3 {
        var feeds = 0
        for jd in 0..<2 where axis[pa] >> jd & 1 == 1 { for jh in 0..<2 where cls[ch] >> jh & 1 == 1 {
            for jw in 0..<2 where cls[cw] >> jw & 1 == 1 { feeds |= 1 << (jd * 4 + jh * 2 + jw) }
        }}
        steps.append((feeds, feeds & ~seen))
        seen |= feeds
    }}}
    return steps
}()

/// The positions of the per-axis class `c`: (0, 3), (1) or (2, 4).
@inline(__always) func s2ClassPositions(_ c: Int) -> (first: Int, second: Int?) {
    c == 0 ? (0, 3) : c == 1 ? (1, nil) : (2, 4)
}

@inline(__always) func s2Groups(_ job: WinogradStride2Job, v: UnsafeMutablePointer<SIMD16<Float>>,
                                y: UnsafeMutablePointer<SIMD16<Float>>, split: Bool) {
    let b = job.base
    let C = b.channels, vs = s2SlabStride(C), nb = b.coutPadded / 8
    let blocks = job.blocks
    var g = 0
    while g < b.vectorCount {
        let vec = b.vectors + 6 * g
        // Y[block][out][j][k]: out = jd * 4 + jh * 2 + jw. Each output's first sum is stored, the
        // later ones added (`s2Steps`), so Y needs no zeroing.
        for pa in 0..<5 {
            for k in 0..<3 { s2Slab(b, srcOffset: vec[6 * k], pa: pa, into: v + k, split: split) }
            for cls in 0..<9 {
                let step = s2Steps[pa * 9 + cls]
                for blk in blocks {
                    s2Product(b, v: UnsafePointer(v), vStride: vs, pa: pa, h: s2ClassPositions(cls / 3),
                              w: s2ClassPositions(cls % 3), block: blk, blockCount: nb,
                              y: y + (blk - blocks.lowerBound) * 8 * 24, outMask: step.feeds, firstMask: step.first)
                }
            }
        }
        // Bias, residual, activation and stores.
        for blk in blocks {
            for j in 0..<8 {
                let co = 8 * blk + j
                if co >= b.cout { break }
                let bias = SIMD16<Float>(repeating: b.bias[co])
                let yb = y + (blk - blocks.lowerBound) * 8 * 24 + 3 * j
                for k in 0..<3 {
                    let e = vec + 6 * k
                    if e[2] == 0 || e[4] == 0 || (e[3] == 0 && e[5] == 0) { continue }
                    let base = co * b.dstChannelStride + e[1]
                    for jd in 0..<2 { for jh in 0..<2 {
                        let o = jd * 4 + jh * 2
                        storeRow(b, base, jd, jh, e[2], e[3], e[4], e[5], split,
                                 yb[o * 24 + k] + bias, yb[(o + 1) * 24 + k] + bias)
                    }}
                }
            }
        }
        g += 3
    }
}

/// The (H, W) slab of V at D position `pa` for one tile vector, all input channels:
/// `out[(pb * 5 + pc) * vStride + 3 * ci]`.
@inline(__always) func s2Slab(_ job: Winograd512Job, srcOffset: Int, pa: Int,
                              into out: UnsafeMutablePointer<SIMD16<Float>>, split: Bool) {
    let L = job.phaseLength, ps = job.planeStride, rs = job.rowStride, half = job.halfSource
    let vs = s2SlabStride(job.channels)
    @inline(__always) func tiles(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        split ? SIMD16(lowHalf: UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self),
                       highHalf: UnsafeRawPointer(p + half).loadUnaligned(as: SIMD8<Float>.self))
              : UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }
    // Along D: position pa is plane f minus plane s (or plane f alone).
    let (pf, pm): (Int, Int) = pa == 0 ? (0, 2) : pa == 1 ? (2, -1) : pa == 2 ? (4, 2) : pa == 3 ? (1, -1) : (3, -1)
    // Column sample k of the tiles: phase k % 4, index k / 4.
    @inline(__always) func col(_ k: Int) -> Int { (k & 3) * L + (k >> 2) }
    for ci in 0..<job.channels {
        let s = job.src + srcOffset + ci * job.channelStride + pf * ps
        let sm = pm >= 0 ? job.src + srcOffset + ci * job.channelStride + pm * ps : s
        let o = out + 3 * ci
        // Sample (row r, column k) after the D transform.
        @inline(__always) func sample(_ r: Int, _ k: Int) -> SIMD16<Float> {
            pm >= 0 ? tiles(s + r * rs + col(k)) - tiles(sm + r * rs + col(k)) : tiles(s + r * rs + col(k))
        }
        // Row r along W: (d0 - d2, d2, d4 - d2, d1, d3) of its five samples, stored as H position
        // `h` (`hm`: minus row 2's values, kept in `c`), so at most two rows stay in registers:
        // along H the positions are (r0 - r2, r2, r4 - r2, r1, r3).
        @inline(__always) func row(_ r: Int) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
            let d0 = sample(r, 0), d1 = sample(r, 1), d2 = sample(r, 2), d3 = sample(r, 3), d4 = sample(r, 4)
            return (d0 - d2, d2, d4 - d2, d1, d3)
        }
        @inline(__always) func put(_ h: Int, _ w: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)) {
            let q = o + 5 * h * vs
            q[0] = w.0; q[vs] = w.1; q[2 * vs] = w.2; q[3 * vs] = w.3; q[4 * vs] = w.4
        }
        let a = row(0)
        put(3, row(1))
        let c = row(2)
        put(1, c)
        put(0, (a.0 - c.0, a.1 - c.1, a.2 - c.2, a.3 - c.3, a.4 - c.4))
        put(4, row(3))
        let e = row(4)
        put(2, (e.0 - c.0, e.1 - c.1, e.2 - c.2, e.3 - c.3, e.4 - c.4))
    }
}

/// For the 8 output channels of `block`: sums over the (H, W) positions `h` x `w` (one or two each)
/// at D position `pa` and all input channels, then adds them to the outputs in `outMask` (bit `o`:
/// `y + 24 * o`, `[j][k]`), storing instead into those in `firstMask`.
@inline(__always) func s2Product(_ job: Winograd512Job, v: UnsafePointer<SIMD16<Float>>, vStride: Int, pa: Int,
                                 h hp: (first: Int, second: Int?), w wp: (first: Int, second: Int?), block: Int,
                                 blockCount: Int, y: UnsafeMutablePointer<SIMD16<Float>>, outMask: Int, firstMask: Int) {
    let C = job.channels
    var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a03 = a00, a04 = a00, a05 = a00, a06 = a00, a07 = a00
    var a10 = a00, a11 = a00, a12 = a00, a13 = a00, a14 = a00, a15 = a00, a16 = a00, a17 = a00
    var a20 = a00, a21 = a00, a22 = a00, a23 = a00, a24 = a00, a25 = a00, a26 = a00, a27 = a00
    let hCount = hp.second == nil ? 1 : 2, wCount = wp.second == nil ? 1 : 2
    for ih in 0..<hCount { for iw in 0..<wCount {
        let pos2 = (ih == 0 ? hp.first : hp.second!) * 5 + (iw == 0 ? wp.first : wp.second!)
        var vp = v + pos2 * vStride
        var up = job.u + (((pa * 25 + pos2) * blockCount + block) * C) * 8
        for _ in 0..<C {
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
            up += 8
        }
    }}
    var mask = outMask
    while mask != 0 {
        let out = mask.trailingZeroBitCount
        mask &= mask - 1
        let o = y + out * 24
        if firstMask >> out & 1 == 1 {
            o[0] = a00; o[1] = a10; o[2] = a20; o[3] = a01; o[4] = a11; o[5] = a21
            o[6] = a02; o[7] = a12; o[8] = a22; o[9] = a03; o[10] = a13; o[11] = a23
            o[12] = a04; o[13] = a14; o[14] = a24; o[15] = a05; o[16] = a15; o[17] = a25
            o[18] = a06; o[19] = a16; o[20] = a26; o[21] = a07; o[22] = a17; o[23] = a27
            continue
        }
        o[0] += a00; o[1] += a10; o[2] += a20; o[3] += a01; o[4] += a11; o[5] += a21
        o[6] += a02; o[7] += a12; o[8] += a22; o[9] += a03; o[10] += a13; o[11] += a23
        o[12] += a04; o[13] += a14; o[14] += a24; o[15] += a05; o[16] += a15; o[17] += a25
        o[18] += a06; o[19] += a16; o[20] += a26; o[21] += a07; o[22] += a17; o[23] += a27
    }
}

// The input gradient of a 3x3x3 stride-2 layer, the same products transposed. With the padded input
// P (padding `p` before), dP[j] = sum over 2o + k = j of w[k] dy[o]. Per axis a tile is four
// consecutive input positions i = 4t..4t+3 (j = i + p) and reads three output-gradient samples e0-e2
// (dy[2t + floor((p - 1) / 2) + k]). When j starts even (p even):
//   dP[j] = w2 e0 + w0 e1 = w2 (e0 - e1) + (w0 + w2) e1,   dP[j+1] = w1 e1,
//   dP[j+2] = w2 e1 + w0 e2 = (w0 + w2) e1 + w0 (e2 - e1),  dP[j+3] = w1 e2,
// so v = (e0 - e1, e1, e2 - e1, e1, e2), u = (w2, w0 + w2, w0, w1, w1) (the forward's u of the
// flipped kernel) and the outputs are (m0 + m1, m3, m1 + m2, m4). When j starts odd (p odd, the
// usual padding 1) the roles shift by one: v = (e0 - e1, e1, e2 - e1, e0, e1) and the outputs are
// (m3, m0 + m1, m4, m1 + m2). 125 products per tile of 4x4x4 gradients and channel pair, against
// 8 x 27 = 216 for the direct sum. Tiles align with the input, so every tile stores whole rows of
// four. No position shares outputs with another, so each is its own class. Along D, positions run
// in the order 0, 1, 3, 2, 4, and the D output each completes is stored as soon as it is complete:
// `Y` holds two layers of 16 (H, W) outputs, not four.

/// A stride-2 Winograd input-gradient job. `base` as for the forward pass, with `src` the output
/// gradient padded with two W phases, `channels` the forward's output channels and the destination
/// the input gradient; per tile vector: source offset, destination offset, valid planes (0-4), rows
/// (0-4), columns (0-64; split 0-32), rows of the second half. `odd`: per axis (bits 0 D, 1 H, 2 W)
/// whether tiles start on odd padded positions; `columnPhase`: the W phase of sample 0.
public struct WinogradStride2GradientJob {
    public var base: Winograd512Job
    public var blocks: Range<Int>
    public var odd: Int, columnPhase: Int

    public init(base: Winograd512Job, blocks: Range<Int>, odd: Int, columnPhase: Int) {
        self.base = base; self.blocks = blocks; self.odd = odd; self.columnPhase = columnPhase
    }
}

/// Floats of scratch `winogradStride2GradientRun` needs.
public func winogradStride2GradientScratchFloats(channels: Int, blocks: Int) -> Int {
    16 * (25 * s2SlabStride(channels) + blocks * 32 * 8 * 3)
}

/// Per axis and parity: position p is sample `first` minus sample `minus` (or alone when -1), and
/// feeds the outputs in bits of `feeds`.
@inline(__always) func s2tAxis(_ odd: Bool, _ p: Int) -> (first: Int, minus: Int, feeds: Int) {
    switch p {
    case 0: return (0, 1, odd ? 2 : 1)
    case 1: return (1, -1, odd ? 10 : 5)
    case 2: return (2, 1, odd ? 8 : 4)
    case 3: return (odd ? 0 : 1, -1, odd ? 1 : 2)
    default: return (odd ? 1 : 2, -1, odd ? 4 : 8)
    }
}

/// Runs a job with `scratch` (at least `winogradStride2GradientScratchFloats` floats, 64-byte aligned).
public func winogradStride2GradientRun(_ job: WinogradStride2GradientJob, scratch: UnsafeMutablePointer<Float>) {
    let b = job.base
    precondition(b.vectorCount % 3 == 0 && b.coutPadded % 8 == 0, "winogradStride2GradientRun: malformed job")
    let v = UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: SIMD16<Float>.self)
    let y = v + 25 * s2SlabStride(b.channels)
    if b.split { s2tGroups(job, v: v, y: y, split: true) } else { s2tGroups(job, v: v, y: y, split: false) }
}

@inline(__always) func s2tGroups(_ job: WinogradStride2GradientJob, v: UnsafeMutablePointer<SIMD16<Float>>,
                                 y: UnsafeMutablePointer<SIMD16<Float>>, split: Bool) {
    let b = job.base
    let vs = s2SlabStride(b.channels), nb = b.coutPadded / 8, blocks = job.blocks
    let oddD = job.odd & 1 != 0, oddH = job.odd & 2 != 0, oddW = job.odd & 4 != 0
    // The single D output of positions 0, 2, 3 and 4 (position 1 feeds those of 0 and 2).
    @inline(__always) func jd(_ pa: Int) -> Int { s2tAxis(oddD, pa).feeds.trailingZeroBitCount }
    // Layers of Y: D outputs of positions 0, 3 and 4 use layer 0 in turn, that of position 2 layer 1.
    let order = [0, 1, 3, 2, 4]
    var g = 0
    while g < b.vectorCount {
        let vec = b.vectors + 6 * g
        var seen = 0
        for pa in order {
            for k in 0..<3 { s2tSlab(job, srcOffset: vec[6 * k], pa: pa, into: v + k, split: split) }
            let layers = pa == 1 ? 3 : pa == 2 ? 2 : 1
            for pb in 0..<5 { for pc in 0..<5 {
                let hf = s2tAxis(oddH, pb).feeds, wf = s2tAxis(oddW, pc).feeds
                var hw = 0
                for jh in 0..<4 where hf >> jh & 1 == 1 { for jw in 0..<4 where wf >> jw & 1 == 1 { hw |= 1 << (jh * 4 + jw) } }
                let mask = (layers & 1 != 0 ? hw : 0) | (layers & 2 != 0 ? hw << 16 : 0)
                let first = mask & ~seen
                seen |= mask
                for blk in blocks {
                    s2Product(b, v: UnsafePointer(v), vStride: vs, pa: pa, h: (pb, nil), w: (pc, nil), block: blk,
                              blockCount: nb, y: y + (blk - blocks.lowerBound) * 32 * 24, outMask: mask, firstMask: first)
                }
            }}
            // Complete after this position: position 0's output after 1, then 3's, 2's and 4's.
            if pa != 0 {
                let layer = pa == 2 ? 1 : 0
                s2tStore(job, vec: vec, y: y, layer: layer, jd: jd(pa == 1 ? 0 : pa), split: split)
                seen &= layer == 0 ? ~0xFFFF : ~(0xFFFF << 16)
            }
        }
        g += 3
    }
}

/// The (H, W) slab of V at D position `pa` for one tile vector, all channels (as `s2Slab`).
@inline(__always) func s2tSlab(_ job: WinogradStride2GradientJob, srcOffset: Int, pa: Int,
                               into out: UnsafeMutablePointer<SIMD16<Float>>, split: Bool) {
    let b = job.base
    let L = b.phaseLength, ps = b.planeStride, rs = b.rowStride, half = b.halfSource, vs = s2SlabStride(b.channels)
    let oddH = job.odd & 2 != 0, oddW = job.odd & 4 != 0, cp = job.columnPhase
    @inline(__always) func tiles(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        split ? SIMD16(lowHalf: UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self),
                       highHalf: UnsafeRawPointer(p + half).loadUnaligned(as: SIMD8<Float>.self))
              : UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }
    let d = s2tAxis(job.odd & 1 != 0, pa)
    // Column sample k: phase (cp + k) % 2 at index (cp + k) / 2.
    @inline(__always) func col(_ k: Int) -> Int { ((cp + k) & 1) * L + (cp + k) >> 1 }
    let c0 = col(0), c1 = col(1), c2 = col(2)
    for ci in 0..<b.channels {
        let s = b.src + srcOffset + ci * b.channelStride + d.first * ps
        let sm = b.src + srcOffset + ci * b.channelStride + max(0, d.minus) * ps
        @inline(__always) func sample(_ r: Int, _ c: Int) -> SIMD16<Float> {
            d.minus >= 0 ? tiles(s + r * rs + c) - tiles(sm + r * rs + c) : tiles(s + r * rs + c)
        }
        // Along W for rows 0-2, as (e0 - e1, e1, e2 - e1, e0 or e1, e1 or e2).
        @inline(__always) func row(_ r: Int) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
            let e0 = sample(r, c0), e1 = sample(r, c1), e2 = sample(r, c2)
            return (e0 - e1, e1, e2 - e1, oddW ? e0 : e1, oddW ? e1 : e2)
        }
        let r0 = row(0), r1 = row(1), r2 = row(2)
        let o = out + 3 * ci
        @inline(__always) func put(_ h: Int, _ w: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)) {
            let q = o + 5 * h * vs
            q[0] = w.0; q[vs] = w.1; q[2 * vs] = w.2; q[3 * vs] = w.3; q[4 * vs] = w.4
        }
        put(0, (r0.0 - r1.0, r0.1 - r1.1, r0.2 - r1.2, r0.3 - r1.3, r0.4 - r1.4))
        put(1, r1)
        put(2, (r2.0 - r1.0, r2.1 - r1.1, r2.2 - r1.2, r2.3 - r1.3, r2.4 - r1.4))
        put(3, oddH ? r0 : r1)
        put(4, oddH ? r1 : r2)
    }
}

/// Stores layer `layer` of Y as the gradients of D output `jd` of each tile vector of the group.
@inline(__always) func s2tStore(_ job: WinogradStride2GradientJob, vec: UnsafePointer<Int>,
                                y: UnsafeMutablePointer<SIMD16<Float>>, layer: Int, jd: Int, split: Bool) {
    let b = job.base
    for blk in job.blocks {
        for j in 0..<8 {
            let co = 8 * blk + j
            if co >= b.cout { break }
            let yb = y + (blk - job.blocks.lowerBound) * 32 * 24 + 3 * j + layer * 16 * 24
            for k in 0..<3 {
                let e = vec + 6 * k
                if jd >= e[2] || e[4] == 0 { continue }
                let base = b.dst + co * b.dstChannelStride + e[1] + jd * b.dstPlaneStride
                for jh in 0..<4 {
                    let inA = jh < e[3], inB = split && jh < e[5]
                    if !inA && !inB { continue }
                    let q = yb + jh * 4 * 24
                    var z = (SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>())
                    withUnsafeMutableBytes(of: &z) {
                        vx_zip4x16(q[k], q[24 + k], q[48 + k], q[72 + k], $0.baseAddress!.assumingMemoryBound(to: Float.self))
                    }
                    let row = base + jh * b.dstRowStride
                    if split {
                        if inA { s2tStoreColumns(row, z.0, z.1, e[4]) }
                        if inB { s2tStoreColumns(row + b.halfDestination, z.2, z.3, e[4]) }
                    } else {
                        s2tStoreColumns(row, z.0, z.1, min(32, e[4]))
                        if e[4] > 32 { s2tStoreColumns(row + 32, z.2, z.3, e[4] - 32) }
                    }
                }
            }
        }
    }
}

/// Stores the first `n` (<= 32) of the 32 columns `lo`, `hi` at `d`.
@inline(__always) func s2tStoreColumns(_ d: UnsafeMutablePointer<Float>, _ lo: SIMD16<Float>, _ hi: SIMD16<Float>, _ n: Int) {
    if n >= 16 {
        UnsafeMutableRawPointer(d).storeBytes(of: lo, as: SIMD16<Float>.self)
        if n == 32 { UnsafeMutableRawPointer(d + 16).storeBytes(of: hi, as: SIMD16<Float>.self); return }
        for l in 16..<n { d[l] = hi[l - 16] }
    } else {
        for l in 0..<n { d[l] = lo[l] }
    }
}

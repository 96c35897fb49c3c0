import CStream

// AVX-512 kernels of layers run as a matrix product over packed panels:
//   dst[co][p] = act(bias[co] + sum_k W[co][k] * X[k][p] + residual[co][p]),
// the products k being (ci, tap) pairs of the input (patches, im2col) or, for pointwise layers
// (1x1x1, stride 1, one group), the input channels (one tap). Read in place, the input channels lie
// a whole volume apart, beyond the hardware prefetchers, and each output-channel block would read
// them again. So a task first packs, for each micro-tile of 48 output positions (runs of
// consecutive columns, a run ending at each row end), every product's 48 source values,
// `pack[micro][k][48]`, and then runs its output-channel blocks over the pack: sequential reads.
// The pack reads the input tensor itself, with the layer's stride and padding: a padding lane is
// a zero, so no padded copy is made (that copy was 8-11% of a 64->128 stride-2 layer's time). Stride
// 2 columns come as the even lanes of one 32-float load.
//
// Micro-tile: 48 positions (3 SIMD16) x 8 output channels = 24 accumulators; per product 3 vector
// loads and 8 weight broadcasts, the weights packed `[block][ci][tap][8]` (the direct engine's
// block-8 packing). Each value is summed in the order bias, ci, tap with one FMA per product, as
// the direct kernels sum it: the same bits as they give.

@inline(__always) func store16(_ d: UnsafeMutablePointer<Float>, _ v: SIMD16<Float>) {
    UnsafeMutableRawPointer(d).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// 48 packed positions x 8 output channels into `acc[3 * k + v]` (channel k, vector v), summing
/// `products` rows of the pack (`[products][48]`) and of the weights (`[products][8]`).
@inline(never) func micro(products: Int, pack: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                          bias: UnsafePointer<Float>, into acc: UnsafeMutableBufferPointer<SIMD16<Float>>) {
    let b0 = SIMD16<Float>(repeating: bias[0]), b1 = SIMD16<Float>(repeating: bias[1])
    let b2 = SIMD16<Float>(repeating: bias[2]), b3 = SIMD16<Float>(repeating: bias[3])
    let b4 = SIMD16<Float>(repeating: bias[4]), b5 = SIMD16<Float>(repeating: bias[5])
    let b6 = SIMD16<Float>(repeating: bias[6]), b7 = SIMD16<Float>(repeating: bias[7])
    var a00 = b0, a01 = b1, a02 = b2, a03 = b3, a04 = b4, a05 = b5, a06 = b6, a07 = b7
    var a10 = b0, a11 = b1, a12 = b2, a13 = b3, a14 = b4, a15 = b5, a16 = b6, a17 = b7
    var a20 = b0, a21 = b1, a22 = b2, a23 = b3, a24 = b4, a25 = b5, a26 = b6, a27 = b7
    var xp = pack, wp = weights
    for _ in 0..<products {
        let x0 = load16(xp), x1 = load16(xp + 16), x2 = load16(xp + 32)
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
        xp += 48
        wp += 8
    }
    acc[0] = a00; acc[1] = a10; acc[2] = a20; acc[3] = a01; acc[4] = a11; acc[5] = a21
    acc[6] = a02; acc[7] = a12; acc[8] = a22; acc[9] = a03; acc[10] = a13; acc[11] = a23
    acc[12] = a04; acc[13] = a14; acc[14] = a24; acc[15] = a05; acc[16] = a15; acc[17] = a25
    acc[18] = a06; acc[19] = a16; acc[20] = a26; acc[21] = a07; acc[22] = a17; acc[23] = a27
}

/// One task: output-channel blocks `blocks` over the positions
/// `first ..< first + count` of a grid of `planes x rowsPerPlane x cols` outputs (enumerated plane,
/// row, column), packed at once (a panel).
public struct Patch512Task {
    /// The source, read in place (no padded copy): `channels` volumes of `inD x inH x inW` floats,
    /// `channelStride` apart. Positions outside a volume (the padding) read as zeros.
    public var src: UnsafePointer<Float>
    public var channelStride: Int, channels: Int
    public var inD: Int, inH: Int, inW: Int
    /// The kernel taps as input offsets `(d, h, w)` (3 per tap, dilation applied), in summing order.
    public var taps: UnsafePointer<Int>, tapCount: Int
    /// Output position `(d, h, w)` with tap `(td, th, tw)` reads input
    /// `(d * strideD - padD + td, h * strideH - padH + th, w * strideW - padW + tw)`.
    public var strideD: Int, strideH: Int, strideW: Int, padD: Int, padH: Int, padW: Int
    public var rowsPerPlane: Int, cols: Int
    /// Destination offset of output (plane, row, column) = origin + plane * plane step + row * row
    /// step + column.
    public var dstOrigin: Int, dstPlane: Int, dstRow: Int
    public var first: Int, count: Int
    /// `[blocks][channels][taps][8]`; `bias` `[blocks * 8]`.
    public var weights: UnsafePointer<Float>, bias: UnsafePointer<Float>
    public var blocks: Range<Int>, outChannels: Int
    public var dst: UnsafeMutablePointer<Float>, dstChannelStride: Int
    public var residual: UnsafePointer<Float>?
    public var activation: Int, actA: Float, actB: Float

    public init(src: UnsafePointer<Float>, channelStride: Int, channels: Int, inD: Int, inH: Int, inW: Int,
                taps: UnsafePointer<Int>, tapCount: Int, strideD: Int, strideH: Int, strideW: Int,
                padD: Int, padH: Int, padW: Int, rowsPerPlane: Int, cols: Int,
                dstOrigin: Int, dstPlane: Int, dstRow: Int, first: Int, count: Int,
                weights: UnsafePointer<Float>, bias: UnsafePointer<Float>, blocks: Range<Int>, outChannels: Int,
                dst: UnsafeMutablePointer<Float>, dstChannelStride: Int, residual: UnsafePointer<Float>?,
                activation: Int, actA: Float, actB: Float) {
        self.src = src; self.channelStride = channelStride; self.channels = channels
        self.inD = inD; self.inH = inH; self.inW = inW
        self.taps = taps; self.tapCount = tapCount
        self.strideD = strideD; self.strideH = strideH; self.strideW = strideW
        self.padD = padD; self.padH = padH; self.padW = padW
        self.rowsPerPlane = rowsPerPlane; self.cols = cols
        self.dstOrigin = dstOrigin; self.dstPlane = dstPlane; self.dstRow = dstRow
        self.first = first; self.count = count; self.weights = weights; self.bias = bias
        self.blocks = blocks; self.outChannels = outChannels; self.dst = dst; self.dstChannelStride = dstChannelStride
        self.residual = residual; self.activation = activation; self.actA = actA; self.actB = actB
    }
}

/// How many channels ahead the pack prefetches its source lines (1-6 within noise of each other on
/// 64->128 stride 2 at 32^3).
let patchPrefetchChannels = 2

/// Floats of packing scratch a panel of `count` positions needs.
public func patch512PackFloats(channels: Int, taps: Int, count: Int) -> Int {
    (count + 47) / 48 * 48 * channels * taps
}

/// What a panel packs and stores, the same for every channel and output-channel block.
struct PatchPanel {
    let micros: Int
    /// Runs of consecutive output columns, one or more per micro-tile (one per output row it meets):
    /// `(lane, destination offset, length, d, h, w of the first position)`; micro-tile m's are
    /// `runStart[m] ..< runStart[m + 1]`.
    var runs: [Int] = [], runStart: [Int] = [0]
    /// What the panel packs from each channel, in pieces of at most 16 lanes of one run: `fast`,
    /// whole vectors `(pack offset, source offset, first valid lane, end of the valid lanes)` that
    /// are one vector load (and a mask for padding lanes) from every channel; `other`, the rest
    /// `(pack offset, source offset of the first lane, length, first valid, end of valid, 1 where
    /// one vector load from every channel may fill it)`. Offsets are for channel 0; lanes outside
    /// the valid ones are padding, zeros, and the source offset may then lie outside the volume.
    var fast: [Int] = [], other: [Int] = []
    /// The cache lines of one channel the pieces read, as offsets into the channel in units of 16
    /// floats, sorted, each once: what the pack prefetches channels ahead. Empty for one tap (a
    /// pointwise layer's run of a row), where prefetching measured no faster (docs/engine.md).
    var lines: [Int] = []

    init(_ t: Patch512Task, first: Int, count: Int) {
        micros = (count + 47) / 48
        let T = t.tapCount, sw = t.strideW
        let prefetches = T > 1
        runs.reserveCapacity(6 * 48 * micros)
        fast.reserveCapacity(4 * 4 * micros * T)
        if prefetches { lines.reserveCapacity(4 * 4 * micros * T) }
        for m in 0..<micros {
            let q0 = first + 48 * m, n = min(48, count - 48 * m)
            var l = 0
            while l < n {
                let q = q0 + l, w = q % t.cols, row = q / t.cols
                let d = row / t.rowsPerPlane, h = row % t.rowsPerPlane
                let len = min(n - l, t.cols - w)
                runs.append(l); runs.append(t.dstOrigin + d * t.dstPlane + h * t.dstRow + w)
                runs.append(len); runs.append(d); runs.append(h); runs.append(w)
                l += len
            }
            runStart.append(runs.count / 6)
        }
        // Vector loads may read any value of the source (`readable` floats from `src`); padding lanes
        // are then cleared.
        let readable = (t.channels - 1) * t.channelStride + t.inD * t.inH * t.inW
        let span = 15 * sw + 1
        let K = t.channels * T
        for m in 0..<micros {
            for tap in 0..<T {
                let td = t.taps[3 * tap], th = t.taps[3 * tap + 1], tw = t.taps[3 * tap + 2]
                for r in runStart[m]..<runStart[m + 1] {
                    let lane = runs[6 * r], len = runs[6 * r + 2], w = runs[6 * r + 5]
                    let id = runs[6 * r + 3] * t.strideD - t.padD + td, ih = runs[6 * r + 4] * t.strideH - t.padH + th
                    let rowInside = id >= 0 && id < t.inD && ih >= 0 && ih < t.inH
                    let rowOffset = (id * t.inH + ih) * t.inW
                    if prefetches && rowInside {
                        let c0 = max(0, w * sw - t.padW + tw), c1 = min(t.inW - 1, (w + len - 1) * sw - t.padW + tw)
                        if c0 <= c1 { for l in (rowOffset + c0) >> 4 ... (rowOffset + c1) >> 4 { lines.append(l) } }
                    }
                    var j = 0
                    while j < len {
                        let n = min(16, len - j)
                        let iw0 = (w + j) * sw - t.padW + tw  // input column of the piece's first lane
                        // Lanes k with 0 <= iw0 + k * sw < inW.
                        var lo = 0, hi = 0
                        if rowInside {
                            lo = min(n, iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw)
                            hi = max(lo, min(n, iw0 >= t.inW ? 0 : (t.inW - 1 - iw0) / sw + 1))
                        }
                        let to = (m * K + tap) * 48 + lane + j, from = rowOffset + iw0
                        // One vector load from every channel, storing 16 lanes inside the row of 48.
                        let vector = lane + j + 16 <= 48 && (sw == 1 || sw == 2) && from >= 0
                            && from + (t.channels - 1) * t.channelStride + span <= readable
                        if n == 16 && hi > lo && vector {
                            fast.append(to); fast.append(from); fast.append(lo); fast.append(hi)
                        } else {
                            other.append(to); other.append(from); other.append(n); other.append(lo); other.append(hi)
                            other.append(vector ? 1 : 0)
                        }
                        j += n
                    }
                }
            }
        }
        lines.sort()
        var unique = 0
        for l in lines where unique == 0 || lines[unique - 1] != l { lines[unique] = l; unique += 1 }
        lines.removeLast(lines.count - unique)
    }

    /// Packs the panel: `pack[micro][channel][tap][48]`, channel by channel, so each source row is
    /// read in order. Within a channel, `other` pieces go first, in pack order: a piece shorter than
    /// 16 lanes stores 16 where it stays inside its row of 48, and the extra lanes belong to pieces
    /// stored after it (later in `other`, in `fast`, or in the next channel); lanes past the last
    /// run of a short micro-tile are never stored by the output stores.
    func pack(_ t: Patch512Task, into pack: UnsafeMutablePointer<Float>) {
        let T = t.tapCount, sw = t.strideW
        fast.withUnsafeBufferPointer { fb in other.withUnsafeBufferPointer { ob in
            let fp = fb.baseAddress!, op = ob.baseAddress!, nf = fb.count / 4, no = ob.count / 6
            for ci in 0..<t.channels {
                let sc = t.src + ci * t.channelStride
                let dc = pack + ci * T * 48
                // The lines of the channel `patchPrefetchChannels` ahead: a panel's reads jump
                // between the 9 or more input rows each output row meets and channels a volume apart,
                // which the hardware prefetchers do not follow.
                if ci + patchPrefetchChannels < t.channels {
                    let ahead = sc + patchPrefetchChannels * t.channelStride
                    for l in lines { vx_prefetch(ahead + 16 * l) }
                }
                for k in 0..<no {
                    let f = op + 6 * k
                    let to = dc + f[0], off = f[1], len = f[2], lo = f[3], hi = f[4]
                    if f[5] != 0 {
                        var v = SIMD16<Float>(repeating: 0)
                        if hi > lo {
                            v = vx_keep16(sw == 1 ? load16(sc + off) : vx_even16(sc + off), Int32(lo), Int32(hi))
                        }
                        store16(to, v)
                    } else {
                        for x in 0..<len { to[x] = x >= lo && x < hi ? sc[off + x * sw] : 0 }
                    }
                }
                for k in 0..<nf {
                    let f = fp + 4 * k
                    var v = sw == 1 ? load16(sc + f[1]) : vx_even16(sc + f[1])
                    if f[2] > 0 || f[3] < 16 { v = vx_keep16(v, Int32(f[2]), Int32(f[3])) }
                    store16(dc + f[0], v)
                }
            }
        }}
    }
}

/// Runs a patch task with `pack` (at least `patch512PackFloats` floats).
public func patch512Run(_ t: Patch512Task, pack: UnsafeMutablePointer<Float>) {
    let K = t.channels * t.tapCount
    let plan = PatchPanel(t, first: t.first, count: t.count)
    plan.pack(t, into: pack)
    // Staging for the stores (one vector more than the 24 accumulators: the stores read 16 lanes from any lane).
    let staging = UnsafeMutableBufferPointer<SIMD16<Float>>.allocate(capacity: 25)
    defer { staging.deallocate() }
    let flat = UnsafeMutableRawPointer(staging.baseAddress!).assumingMemoryBound(to: Float.self)
    plan.runs.withUnsafeBufferPointer { rb in plan.runStart.withUnsafeBufferPointer { sb in
        let runs = rb.baseAddress!, runStart = sb.baseAddress!
        for blk in t.blocks {
            for m in 0..<plan.micros {
                micro(products: K, pack: pack + m * K * 48, weights: t.weights + blk * K * 8, bias: t.bias + 8 * blk,
                      into: staging)
                // Lanes in channel-major order: channel k's 48 positions at flat[48 k ...].
                for k in 0..<min(8, t.outChannels - 8 * blk) {
                    let co = 8 * blk + k
                    for r in runStart[m]..<runStart[m + 1] {
                        let lane = runs[6 * r], len = runs[6 * r + 2]
                        let off = co * t.dstChannelStride + runs[6 * r + 1]
                        var j = 0
                        while j < len {
                            let c = min(16, len - j)
                            // Lanes lane + j ... of channel k: vectors 3k, 3k+1, 3k+2 hold its 48 positions.
                            var v = UnsafeRawPointer(flat + (48 * k + lane + j)).loadUnaligned(as: SIMD16<Float>.self)
                            if c == 16 {
                                if let res = t.residual { v += load16(res + (off + j)) }
                                store16(t.dst + (off + j), activate(v, code: t.activation, a: t.actA, b: t.actB))
                            } else {
                                if let res = t.residual { for x in 0..<c { v[x] += res[off + j + x] } }
                                v = activate(v, code: t.activation, a: t.actA, b: t.actB)
                                for x in 0..<c { t.dst[off + j + x] = v[x] }
                            }
                            j += 16
                        }
                    }
                }
            }
        }
    }}
}

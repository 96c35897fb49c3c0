import CStream

// AVX-512 kernels of layers run as a matrix product over packed panels:
//   dst[co][p] = act(bias[co] + sum_k W[co][k] * X[k][p] + residual[co][p]),
// the products k being (ci, tap) pairs of a padded source (patches, im2col) or, for pointwise layers
// (1x1x1, stride 1, one group), the input channels of the tensor itself (one tap at offset 0).
// Read in place, a pointwise layer's input channels lie a whole volume apart, beyond the hardware
// prefetchers, and each output-channel block reads them again; a strided layer's phase-split source
// comes in scattered runs. So a task first packs, for each micro-tile of 48 output positions (runs of
// consecutive columns, a run ending at each row end), every product's 48 source values,
// `pack[micro][k][48]`, and then runs its output-channel blocks over the pack: sequential reads.
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
/// row, column).
public struct Patch512Task {
    /// The source (a padded, phase-split copy, so a column step of 1; or a pointwise layer's input
    /// itself), channels `channelStride` apart. Only the values of the runs are read.
    public var src: UnsafePointer<Float>
    public var channelStride: Int, channels: Int
    /// Offsets of the kernel taps inside one source channel.
    public var taps: UnsafePointer<Int>, tapCount: Int
    public var rowsPerPlane: Int, cols: Int
    /// Source and destination offsets of output (plane, row, column) = origin + plane * plane step +
    /// row * row step + column.
    public var srcOrigin: Int, srcPlane: Int, srcRow: Int
    public var dstOrigin: Int, dstPlane: Int, dstRow: Int
    public var first: Int, count: Int
    /// `[blocks][channels][taps][8]`; `bias` `[blocks * 8]`.
    public var weights: UnsafePointer<Float>, bias: UnsafePointer<Float>
    public var blocks: Range<Int>, outChannels: Int
    public var dst: UnsafeMutablePointer<Float>, dstChannelStride: Int
    public var residual: UnsafePointer<Float>?
    public var activation: Int, actA: Float, actB: Float

    public init(src: UnsafePointer<Float>, channelStride: Int, channels: Int, taps: UnsafePointer<Int>, tapCount: Int,
                rowsPerPlane: Int, cols: Int, srcOrigin: Int, srcPlane: Int, srcRow: Int,
                dstOrigin: Int, dstPlane: Int, dstRow: Int, first: Int, count: Int,
                weights: UnsafePointer<Float>, bias: UnsafePointer<Float>, blocks: Range<Int>, outChannels: Int,
                dst: UnsafeMutablePointer<Float>, dstChannelStride: Int, residual: UnsafePointer<Float>?,
                activation: Int, actA: Float, actB: Float) {
        self.src = src; self.channelStride = channelStride; self.channels = channels
        self.taps = taps; self.tapCount = tapCount; self.rowsPerPlane = rowsPerPlane; self.cols = cols
        self.srcOrigin = srcOrigin; self.srcPlane = srcPlane; self.srcRow = srcRow
        self.dstOrigin = dstOrigin; self.dstPlane = dstPlane; self.dstRow = dstRow
        self.first = first; self.count = count; self.weights = weights; self.bias = bias
        self.blocks = blocks; self.outChannels = outChannels; self.dst = dst; self.dstChannelStride = dstChannelStride
        self.residual = residual; self.activation = activation; self.actA = actA; self.actB = actB
    }
}

/// Floats of packing scratch a task of `count` positions needs.
public func patch512PackFloats(channels: Int, taps: Int, count: Int) -> Int {
    (count + 47) / 48 * 48 * channels * taps
}

/// Runs a patch task with `pack` (at least `patch512PackFloats` floats).
public func patch512Run(_ t: Patch512Task, pack: UnsafeMutablePointer<Float>) {
    let K = t.channels * t.tapCount, micros = (t.count + 47) / 48
    // Runs of each micro-tile: (lane, source offset, destination offset, length), at most 48.
    let runs = UnsafeMutablePointer<Int>.allocate(capacity: 4 * 48 * micros)
    let runCounts = UnsafeMutablePointer<Int>.allocate(capacity: micros)
    // Each micro-tile's runs cut into whole vectors (lane, source offset; at most 3) and the rest
    // (lane, source offset, length < 16; at most 48), and their counts.
    let vecs = UnsafeMutablePointer<Int>.allocate(capacity: 6 * micros)
    let rest = UnsafeMutablePointer<Int>.allocate(capacity: 3 * 48 * micros)
    let pieceCounts = UnsafeMutablePointer<Int>.allocate(capacity: 2 * micros)
    // One vector more than the 24 accumulators: the stores read 16 lanes from any lane.
    let staging = UnsafeMutableBufferPointer<SIMD16<Float>>.allocate(capacity: 25)
    defer {
        runs.deallocate(); runCounts.deallocate(); vecs.deallocate(); rest.deallocate(); pieceCounts.deallocate()
        staging.deallocate()
    }
    for m in 0..<micros {
        let q0 = t.first + 48 * m, n = min(48, t.count - 48 * m)
        var l = 0, r = 0, nv = 0, nr = 0
        while l < n {
            let q = q0 + l, w = q % t.cols, row = q / t.cols
            let d = row / t.rowsPerPlane, h = row % t.rowsPerPlane
            let len = min(n - l, t.cols - w)
            let e = runs + 4 * (48 * m + r)
            e[0] = l; e[1] = t.srcOrigin + d * t.srcPlane + h * t.srcRow + w
            e[2] = t.dstOrigin + d * t.dstPlane + h * t.dstRow + w; e[3] = len
            var j = 0
            while j + 16 <= len { vecs[6 * m + 2 * nv] = l + j; vecs[6 * m + 2 * nv + 1] = e[1] + j; nv += 1; j += 16 }
            if j < len {
                let f = rest + 3 * (48 * m + nr)
                f[0] = l + j; f[1] = e[1] + j; f[2] = len - j; nr += 1
            }
            l += len; r += 1
        }
        runCounts[m] = r; pieceCounts[2 * m] = nv; pieceCounts[2 * m + 1] = nr
    }
    // Pack exactly the runs' values (a pointwise layer's source has no slack after its end), channel
    // by channel so each source row is read in order; lanes past the last run of a short micro-tile
    // are never stored.
    for ci in 0..<t.channels {
        let sc = t.src + ci * t.channelStride
        for tap in 0..<t.tapCount {
            let s = sc + t.taps[tap]
            for m in 0..<micros {
                let d = pack + (m * K + ci * t.tapCount + tap) * 48
                let a = vecs + 6 * m
                for v in 0..<pieceCounts[2 * m] { store16(d + a[2 * v], load16(s + a[2 * v + 1])) }
                for v in 0..<pieceCounts[2 * m + 1] {
                    let f = rest + 3 * (48 * m + v)
                    let to = d + f[0], from = s + f[1], len = f[2]
                    var j = 0
                    if len >= 8 {
                        UnsafeMutableRawPointer(to).storeBytes(
                            of: UnsafeRawPointer(from).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
                        j = 8
                    }
                    while j < len { to[j] = from[j]; j += 1 }
                }
            }
        }
    }
    let flat = UnsafeMutableRawPointer(staging.baseAddress!).assumingMemoryBound(to: Float.self)
    for blk in t.blocks {
        for m in 0..<micros {
            micro(products: K, pack: pack + m * K * 48, weights: t.weights + blk * K * 8, bias: t.bias + 8 * blk,
                  into: staging)
            // Lanes in channel-major order: channel k's 48 positions at flat[48 k ...].
            for k in 0..<min(8, t.outChannels - 8 * blk) {
                let co = 8 * blk + k
                for i in 0..<runCounts[m] {
                    let e = runs + 4 * (48 * m + i)
                    let off = co * t.dstChannelStride + e[2]
                    var j = 0
                    while j < e[3] {
                        let c = min(16, e[3] - j)
                        // Lanes e[0] + j ... of channel k: vectors 3k, 3k+1, 3k+2 hold its 48 positions.
                        var v = UnsafeRawPointer(flat + (48 * k + e[0] + j)).loadUnaligned(as: SIMD16<Float>.self)
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
}

import VoxelTensorAVX512

extension PackedConv3D {
    /// A pointwise layer on AVX-512 as the matrix product over packed panels (`patch512Run` with one
    /// tap, over one row of all the positions): read in place, each task packing its panel. Same bits
    /// as the direct kernel.
    func packedPointwiseForward(_ x: UnsafePointer<Float>, geo: Conv3DGeometry, weights: DirectWeights,
                                into y: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?) {
        let P = geo.input.product, C = geo.inChannels, Cout = geo.outChannels
        for n in 0..<geo.batch {
            patchForward(x + n * C * P, input: Size3(1, 1, P), taps: [Size3(0)], stride: Size3(1), padBegin: Size3(0),
                         output: Size3(1, 1, P), weights: weights, into: y + n * Cout * P,
                         residual: residual.map { $0 + n * Cout * P })
        }
    }

    /// A layer the W-vectorised direct kernel would run (AVX-512, one group, block 8), as a matrix
    /// product over packed patches (`patch512Run`), for one batch item: `x` holds its `[Cin][input]`
    /// channels, read in place (padding reads as zeros, so no padded copy); `taps` are the kernel
    /// taps as input offsets (dilation applied) in summing order; `y` receives `[Cout][output]`.
    /// Same bits as the direct kernel.
    func patchForward(_ x: UnsafePointer<Float>, input: Size3, taps: [Size3], stride: Size3, padBegin: Size3,
                      output: Size3, weights: DirectWeights, into y: UnsafeMutablePointer<Float>,
                      residual: UnsafePointer<Float>?) {
        let C = weights.inPerGroup, K = C * taps.count, Cout = weights.outPerGroup
        let positions = output.product
        // Tasks of at most about 256 KB of patches (up to 4 micro-tiles of 48 output positions, fewer
        // for many products) and groups of their output-channel blocks, at least 4 tasks per core,
        // the block groups of one panel back to back. (Tasks of several panels, each prefetching
        // the next panel's source into L2 while it computes, were slower: 64->128 stride 2 at 32^3
        // median 8.73 against 8.02 ms.)
        let panel = 48 * max(1, min(4, (256 << 10) / (4 * 48 * K)))
        let panels = (positions + panel - 1) / panel
        let blocks = weights.blocks
        let (perGroup, blockGroups) = evenParts(blocks, wanted: min(blocks, (4 * Parallel.threadCount + panels - 1) / panels))
        let biasPadded = weights.paddedBias(bias)
        let (act, a, b) = activation.kernelCode
        let tapTable = taps.flatMap { [$0.d, $0.h, $0.w] }
        let pool = ScratchPool(bytes: 4 * patch512PackFloats(channels: C, taps: taps.count, count: panel),
                               count: Parallel.threadCount)
        defer { pool.release() }
        let srcP = SharedConstPointer(x), dstP = SharedPointer(y), resP = residual.map { SharedConstPointer($0) }
        tapTable.withUnsafeBufferPointer { tBuf in weights.data.withUnsafeBufferPointer { wBuf in
            biasPadded.withUnsafeBufferPointer { bBuf in
                let tP = SharedConstPointer(tBuf.baseAddress!), wP = SharedConstPointer(wBuf.baseAddress!)
                let bP = SharedConstPointer(bBuf.baseAddress!)
                Parallel.forEach(panels * blockGroups) { task in
                    let pi = task / blockGroups, bg = task % blockGroups
                    let b0 = bg * perGroup, b1 = min(blocks, b0 + perGroup)
                    let pack = pool.take()
                    defer { pool.give(pack) }
                    patch512Run(Patch512Task(
                        src: srcP.base, channelStride: input.product, channels: C, inD: input.d, inH: input.h,
                        inW: input.w, taps: tP.base, tapCount: taps.count, strideD: stride.d, strideH: stride.h,
                        strideW: stride.w, padD: padBegin.d, padH: padBegin.h, padW: padBegin.w,
                        rowsPerPlane: output.h, cols: output.w, dstOrigin: 0, dstPlane: output.h * output.w,
                        dstRow: output.w, first: pi * panel, count: min(panel, positions - pi * panel),
                        weights: wP.base, bias: bP.base, blocks: b0..<b1, outChannels: Cout, dst: dstP.base,
                        dstChannelStride: positions, residual: resP?.base, activation: act, actA: a, actB: b),
                                pack: pack)
                }
            }
        }}
    }
}

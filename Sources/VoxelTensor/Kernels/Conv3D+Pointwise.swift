import VoxelTensorAVX512

extension PackedConv3D {
    /// A pointwise layer on AVX-512 as the matrix product over packed panels (`patch512Run` with one
    /// tap, over one row of all the positions): read in place, each task packing its panel. Same bits
    /// as the direct kernel.
    func packedPointwiseForward(_ x: UnsafePointer<Float>, geo: Conv3DGeometry, weights: DirectWeights,
                                into y: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?) {
        let P = geo.input.product, C = geo.inChannels, Cout = geo.outChannels
        let grid = DirectGrid(count: Size3(1, 1, P), srcOrigin: 0, srcStep: Size3(0, 0, 1), dstOrigin: 0,
                              dstStep: Size3(0, 0, 1))
        for n in 0..<geo.batch {
            patchForward(src: x + n * C * P, srcChannelStride: P, taps: [0], weights: weights, grid: grid,
                         dst: y + n * Cout * P, dstChannelStride: P, residual: residual.map { $0 + n * Cout * P })
        }
    }

    /// A layer the W-vectorised direct kernel would run (AVX-512, one group, block 8), as a matrix
    /// product over packed patches (`patch512Run`): tasks of at most about 256 KB of patches (up to
    /// 4 micro-tiles of 48 output positions, fewer for many products) and groups of their
    /// output-channel blocks, at least 4 tasks per core, the block groups of one panel back to back.
    /// Same bits as the direct kernel.
    func patchForward(src: UnsafePointer<Float>, srcChannelStride: Int, taps: [Int], weights: DirectWeights,
                      grid: DirectGrid, dst: UnsafeMutablePointer<Float>, dstChannelStride: Int,
                      residual: UnsafePointer<Float>?) {
        let C = weights.inPerGroup, K = C * taps.count, Cout = weights.outPerGroup
        let positions = grid.count.product
        let panel = 48 * max(1, min(4, (256 << 10) / (4 * 48 * K)))
        let panels = (positions + panel - 1) / panel
        let blocks = weights.blocks
        let blockGroups = min(blocks, max(1, (4 * Parallel.threadCount + panels - 1) / panels))
        let perGroup = (blocks + blockGroups - 1) / blockGroups
        let biasPadded = weights.paddedBias(bias)
        let (act, a, b) = activation.kernelCode
        let pool = ScratchPool(bytes: 4 * patch512PackFloats(channels: C, taps: taps.count, count: panel),
                               count: Parallel.threadCount)
        defer { pool.release() }
        let srcP = SharedConstPointer(src), dstP = SharedPointer(dst), resP = residual.map { SharedConstPointer($0) }
        taps.withUnsafeBufferPointer { tBuf in weights.data.withUnsafeBufferPointer { wBuf in
            biasPadded.withUnsafeBufferPointer { bBuf in
                let tP = SharedConstPointer(tBuf.baseAddress!), wP = SharedConstPointer(wBuf.baseAddress!)
                let bP = SharedConstPointer(bBuf.baseAddress!)
                Parallel.forEach(panels * blockGroups) { task in
                    let pi = task / blockGroups, bg = task % blockGroups
                    let b0 = bg * perGroup, b1 = min(blocks, b0 + perGroup)
                    if b0 >= b1 { return }
                    let pack = pool.take()
                    defer { pool.give(pack) }
                    patch512Run(Patch512Task(
                        src: srcP.base, channelStride: srcChannelStride, channels: C, taps: tP.base, tapCount: taps.count,
                        rowsPerPlane: grid.count.h, cols: grid.count.w, srcOrigin: grid.srcOrigin,
                        srcPlane: grid.srcStep.d, srcRow: grid.srcStep.h, dstOrigin: grid.dstOrigin,
                        dstPlane: grid.dstStep.d, dstRow: grid.dstStep.h, first: pi * panel,
                        count: min(panel, positions - pi * panel), weights: wP.base, bias: bP.base, blocks: b0..<b1,
                        outChannels: Cout, dst: dstP.base, dstChannelStride: dstChannelStride, residual: resP?.base,
                        activation: act, actA: a, actB: b), pack: pack)
                }
            }
        }}
    }
}

import VoxelTensorAVX512

extension PackedConv3D {
    /// A pointwise layer on AVX-512 as a matrix product over packed panels of positions
    /// (`pointwise512Run`): each task packs every input channel of its panel, at most about 256 KB (4
    /// micro-tiles of 48 positions, fewer for wide layers), and runs its output-channel blocks over it.
    /// Panels and blocks are split into at least 4 tasks per core. Same bits as the direct kernel.
    func packedPointwiseForward(_ x: UnsafePointer<Float>, geo: Conv3DGeometry, weights: DirectWeights,
                                into y: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?) {
        let P = geo.input.product, C = geo.inChannels, Cout = geo.outChannels
        let panel = 48 * max(1, min(4, (256 << 10) / (4 * 48 * C)))
        let panels = (P + panel - 1) / panel
        let blocks = weights.blocks
        let blockGroups = min(blocks, max(1, (4 * Parallel.threadCount + panels - 1) / panels))
        let perGroup = (blocks + blockGroups - 1) / blockGroups
        var biasPadded = [Float](repeating: 0, count: blocks * 8)
        if let bias { for co in 0..<Cout { biasPadded[co] = bias[co] } }
        let (act, a, b) = activation.kernelCode
        let pool = ScratchPool(bytes: 4 * pointwise512PackFloats(channels: C, count: panel), count: Parallel.threadCount)
        defer { pool.release() }
        weights.data.withUnsafeBufferPointer { wBuf in biasPadded.withUnsafeBufferPointer { bBuf in
            let wP = SharedConstPointer(wBuf.baseAddress!), bP = SharedConstPointer(bBuf.baseAddress!)
            for n in 0..<geo.batch {
                let xn = SharedConstPointer(x + n * C * P), yn = SharedPointer(y + n * Cout * P)
                let rn = residual.map { SharedConstPointer($0 + n * Cout * P) }
                // Panel-major: the block groups of one panel run back to back.
                Parallel.forEach(panels * blockGroups) { task in
                    let pi = task / blockGroups, bg = task % blockGroups
                    let b0 = bg * perGroup, b1 = min(blocks, b0 + perGroup)
                    if b0 >= b1 { return }
                    let pack = pool.take()
                    defer { pool.give(pack) }
                    pointwise512Run(Pointwise512Task(
                        src: xn.base, positions: P, channels: C, first: pi * panel, count: min(panel, P - pi * panel),
                        weights: wP.base, bias: bP.base, blocks: b0..<b1, outChannels: Cout, dst: yn.base,
                        residual: rn?.base, activation: act, actA: a, actB: b), pack: pack)
                }
            }
        }}
    }

    /// A layer the W-vectorised direct kernel would run (AVX-512, one group, block 8), as a matrix
    /// product over packed patches (`patch512Run`): tasks of at most about 256 KB of patches (up to
    /// 4 micro-tiles of 48 output positions) and their output-channel blocks, at least 4 per core.
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
        var biasPadded = [Float](repeating: 0, count: blocks * 8)
        if let bias { for co in 0..<Cout { biasPadded[co] = bias[co] } }
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

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
}

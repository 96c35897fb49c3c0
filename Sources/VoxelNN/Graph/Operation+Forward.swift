import VoxelTensor

// Inside `extension Operation`, names such as `binary` or `concat` refer to the enum's cases, so the
// kernels are called through their module: `VoxelTensor.binary(...)`.
extension Operation {
    /// Computes the operation on its inputs.
    /// - Throws: `TensorError` when the inputs do not fit.
    public func forward(_ x: [Tensor]) throws -> Tensor {
        switch self {
        case .conv(let c):
            return c.addsResidual ? try c.packed.forward(x[0], residual: x[1]) : try c.packed.forward(x[0])
        case .batchNorm(let b):
            return try VoxelTensor.batchNorm(x[0], mean: b.mean, variance: b.variance, scale: b.scale, shift: b.shift,
                                             epsilon: b.epsilon, activation: b.activation)
        case .activation(let a):
            return VoxelTensor.activate(x[0], a)
        case .prelu(let slope):
            return try VoxelTensor.prelu(x[0], slope: slope)
        case .sigmoid:
            return VoxelTensor.sigmoid(x[0])
        case .tanh:
            return VoxelTensor.tanh(x[0])
        case .softmax(let axis):
            return try VoxelTensor.softmax(x[0], axis: axis)
        case .maxPool(let p):
            return try VoxelTensor.maxPool3d(x[0], kernel: p.kernel, stride: p.stride, padding: p.padding,
                                             dilation: p.dilation, ceilMode: p.ceilMode)
        case .avgPool(let p):
            return try VoxelTensor.avgPool3d(x[0], kernel: p.kernel, stride: p.stride, padding: p.padding,
                                             ceilMode: p.ceilMode, countIncludePad: p.countIncludePad)
        case .globalAveragePool:
            return try VoxelTensor.globalAveragePool(x[0])
        case .globalMaxPool:
            return try VoxelTensor.globalMaxPool(x[0])
        case .reduceMean(let axes, let keep):
            return try VoxelTensor.reduceMean(x[0], axes: axes.isEmpty ? nil : axes, keepDims: keep)
        case .reduceMax(let axes, let keep):
            return try VoxelTensor.reduceMax(x[0], axes: axes.isEmpty ? nil : axes, keepDims: keep)
        case .flatten, .reshape:
            return try x[0].reshaped(try outputShape([x[0].shape]))
        case .transpose(let perm):
            return try VoxelTensor.transpose(x[0], permutation: perm)
        case .gemm(let g):
            return try VoxelTensor.gemm(x[0], x[1], c: x.count > 2 ? x[2] : nil, alpha: g.alpha, beta: g.beta,
                                        transA: g.transA, transB: g.transB)
        case .matMul:
            return try VoxelTensor.matmul(x[0], x[1])
        case .binary(let op):
            return try VoxelTensor.binary(x[0], x[1], op)
        case .concat(let axis):
            return try VoxelTensor.concat(x, axis: axis)
        case .pad(let pads, let mode):
            return try VoxelTensor.pad(x[0], pads: pads, mode: mode)
        case .resize(let r):
            let size = try r.outputSize(Size3(x[0].shape[2], x[0].shape[3], x[0].shape[4]))
            return try VoxelTensor.resize3d(x[0], size: size, mode: r.mode, coordinates: r.coordinates,
                                            nearestRounding: r.rounding, scales: r.scales)
        case .identity:
            return x[0]
        }
    }
}

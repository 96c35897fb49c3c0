import VoxelTensor

/// What an operation's backward pass reads besides the gradient of its output and the input shapes.
public enum BackwardNeeds: Sendable {
    case nothing, output, inputs, inputsAndOutput
    var keepsInputs: Bool { self == .inputs || self == .inputsAndOutput }
    var keepsOutput: Bool { self == .output || self == .inputsAndOutput }
}

extension Operation {
    /// What the backward pass of this operation must keep from the forward pass. Kept as small as the
    /// formulas allow, so the tape holds only what explanations need.
    public var backwardNeeds: BackwardNeeds {
        switch self {
        case .conv(let c): return c.activation == .identity ? .nothing : .output
        case .batchNorm(let b) where b.activation != .identity: return .output
        case .batchNorm, .avgPool, .globalAveragePool, .reduceMean, .flatten, .reshape, .transpose, .concat,
             .pad, .resize, .identity:
            return .nothing
        // ReLU, LeakyReLU and Clip: the output has the input's sign and lies strictly inside the clip
        // range exactly where the input does, so the output alone decides the gradient.
        case .activation, .sigmoid, .tanh, .softmax: return .output
        case .prelu, .maxPool, .globalMaxPool, .reduceMax, .gemm, .matMul: return .inputs
        case .binary(let op): return (op == .add || op == .sub) ? .nothing : .inputs
        }
    }

    /// Gradients with respect to the inputs, given the gradient of the output.
    ///
    /// - Parameters:
    ///   - g: the gradient of the output, shaped like the output.
    ///   - inputs: the inputs, when `backwardNeeds` keeps them (nil otherwise).
    ///   - inputShapes: the shapes of the inputs.
    ///   - output: the output, when `backwardNeeds` keeps it.
    ///   - wanted: which inputs need a gradient; others get nil.
    /// - Returns: one gradient per input, shaped like that input, or nil where not wanted.
    public func backward(_ g: Tensor, inputs: [Tensor?], inputShapes: [[Int]], output: Tensor?,
                         wanted: [Bool]) throws -> [Tensor?] {
        func saved(_ t: Tensor?, _ what: String) throws -> Tensor {
            guard let t else { throw GraphError("\(name) backward: the forward pass did not keep its \(what)") }
            return t
        }
        switch self {
        case .conv(let c):
            let gz = c.activation == .identity ? g
                : try VoxelTensor.activateBackward(gradOutput: g, input: try saved(output, "output"), c.activation)
            let gx = wanted[0] ? try conv3dBackwardInput(gradOutput: gz, weight: c.weight, inputShape: inputShapes[0],
                                                         stride: c.stride, padding: c.padding, dilation: c.dilation,
                                                         groups: c.groups) : nil
            // A fused residual r enters as act(conv(x) + r): its gradient is the pre-activation gradient.
            return c.addsResidual ? [gx, wanted[1] ? gz : nil] : [gx]
        case .batchNorm(let b):
            // y = act((x - mean) * k + shift) with k = scale / sqrt(var + eps): dx = act'(y) * dy * k per channel.
            let g = b.activation == .identity ? g
                : try VoxelTensor.activateBackward(gradOutput: g, input: try saved(output, "output"), b.activation)
            var k = [Float](repeating: 0, count: b.channels)
            for i in 0..<b.channels { k[i] = b.scale.scalars[i] / (b.variance.scalars[i] + b.epsilon).squareRoot() }
            var shape = [Int](repeating: 1, count: inputShapes[0].count)
            shape[1] = b.channels
            return [try VoxelTensor.mul(g, try Tensor(shape: shape, scalars: k))]
        case .activation(let a):
            return [try VoxelTensor.activateBackward(gradOutput: g, input: try saved(output, "output"), a)]
        case .prelu(let slope):
            return [try VoxelTensor.preluBackward(gradOutput: g, input: try saved(inputs[0], "input"), slope: slope).input]
        case .sigmoid:
            return [try VoxelTensor.sigmoidBackward(gradOutput: g, output: try saved(output, "output"))]
        case .tanh:
            return [try VoxelTensor.tanhBackward(gradOutput: g, output: try saved(output, "output"))]
        case .softmax(let axis):
            return [try VoxelTensor.softmaxBackward(gradOutput: g, output: try saved(output, "output"), axis: axis)]
        case .maxPool(let p):
            return [try VoxelTensor.maxPool3dBackward(gradOutput: g, input: try saved(inputs[0], "input"), kernel: p.kernel,
                                                      stride: p.stride, padding: p.padding, dilation: p.dilation,
                                                      ceilMode: p.ceilMode)]
        case .avgPool(let p):
            return [try VoxelTensor.avgPool3dBackward(gradOutput: g, inputShape: inputShapes[0], kernel: p.kernel,
                                                      stride: p.stride, padding: p.padding, ceilMode: p.ceilMode,
                                                      countIncludePad: p.countIncludePad)]
        case .globalAveragePool:
            return [try VoxelTensor.globalAveragePoolBackward(gradOutput: g, inputShape: inputShapes[0])]
        case .globalMaxPool:
            return [try VoxelTensor.globalMaxPoolBackward(gradOutput: g, input: try saved(inputs[0], "input"))]
        case .reduceMean(let axes, let keep):
            return [try VoxelTensor.reduceBackward(gradOutput: g, inputShape: inputShapes[0], .mean,
                                                   axes: axes.isEmpty ? nil : axes, keepDims: keep)]
        case .reduceMax(let axes, let keep):
            return [try VoxelTensor.reduceMaxBackward(gradOutput: g, input: try saved(inputs[0], "input"),
                                                      axes: axes.isEmpty ? nil : axes, keepDims: keep)]
        case .flatten, .reshape:
            return [try g.reshaped(inputShapes[0])]
        case .transpose(let perm):
            return [try VoxelTensor.transposeBackward(gradOutput: g, permutation: perm)]
        case .gemm(let spec):
            let grads = try VoxelTensor.gemmBackward(
                gradOutput: g, a: try saved(inputs[0], "input A"), b: try saved(inputs[1], "input B"),
                cShape: inputShapes.count > 2 ? inputShapes[2] : nil, alpha: spec.alpha, beta: spec.beta,
                transA: spec.transA, transB: spec.transB)
            var out: [Tensor?] = [wanted[0] ? grads.a : nil, wanted[1] ? grads.b : nil]
            if inputShapes.count > 2 { out.append(wanted[2] ? grads.c : nil) }
            return out
        case .matMul:
            let grads = try VoxelTensor.matmulBackward(gradOutput: g, a: try saved(inputs[0], "input A"),
                                                       b: try saved(inputs[1], "input B"))
            return [wanted[0] ? grads.a : nil, wanted[1] ? grads.b : nil]
        case .binary(let op):
            let grads: (a: Tensor, b: Tensor)
            switch op {
            case .add: grads = try VoxelTensor.addBackward(gradOutput: g, aShape: inputShapes[0], bShape: inputShapes[1])
            case .sub: grads = try VoxelTensor.subBackward(gradOutput: g, aShape: inputShapes[0], bShape: inputShapes[1])
            case .mul: grads = try VoxelTensor.mulBackward(gradOutput: g, a: try saved(inputs[0], "a"), b: try saved(inputs[1], "b"))
            case .div: grads = try VoxelTensor.divBackward(gradOutput: g, a: try saved(inputs[0], "a"), b: try saved(inputs[1], "b"))
            default: throw GraphError("\(name) backward: binary operation \(op) has no graph backward")
            }
            return [wanted[0] ? grads.a : nil, wanted[1] ? grads.b : nil]
        case .concat(let axis):
            return try VoxelTensor.concatBackward(gradOutput: g, shapes: inputShapes, axis: axis).map { Optional($0) }
        case .pad(let pads, let mode):
            return [try VoxelTensor.padBackward(gradOutput: g, inputShape: inputShapes[0], pads: pads, mode: mode)]
        case .resize(let r):
            return [try VoxelTensor.resize3dBackward(gradOutput: g, inputShape: inputShapes[0], mode: r.mode,
                                                     coordinates: r.coordinates, nearestRounding: r.rounding,
                                                     scales: r.scales)]
        case .identity:
            return [g]
        }
    }
}

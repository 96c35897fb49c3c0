// Element-wise activations and their backward passes: ReLU, LeakyReLU, PReLU, Sigmoid, Tanh, Clip.
// Derivatives at kinks follow PyTorch: ReLU passes no gradient at 0, LeakyReLU/PReLU use the slope at
// 0, Clip passes the gradient only strictly inside (min, max) (PyTorch 2.x clamp gives 0 at a bound).
import Foundation

/// ReLU: `max(x, 0)` element-wise.
///
/// - Parameter x: any shape. - Returns: shape `x.shape`.
public func relu(_ x: Tensor) -> Tensor {
    mapElements(x) { s, d, n in for i in 0..<n { d[i] = s[i] > 0 ? s[i] : 0 } }
}

/// Backward of ReLU: `g` where `input > 0`, else 0.
///
/// - Parameters: gradOutput, input: the same shape. - Returns: gradient w.r.t. the input.
/// - Throws: `TensorError` naming both shapes when they differ.
public func reluBackward(gradOutput: Tensor, input: Tensor) throws -> Tensor {
    try requireSameShape("reluBackward", gradOutput, input)
    return zipElements(gradOutput, input) { g, x, d, n in for i in 0..<n { d[i] = x[i] > 0 ? g[i] : 0 } }
}

/// LeakyReLU: `x > 0 ? x : alpha * x` element-wise.
///
/// - Parameter x: any shape. - Returns: shape `x.shape`.
public func leakyRelu(_ x: Tensor, alpha: Float = 0.01) -> Tensor {
    mapElements(x) { s, d, n in for i in 0..<n { d[i] = s[i] > 0 ? s[i] : s[i] * alpha } }
}

/// Backward of LeakyReLU: `input > 0 ? g : alpha * g`.
///
/// - Parameters: gradOutput, input: the same shape. - Returns: gradient w.r.t. the input.
/// - Throws: `TensorError` naming both shapes when they differ.
public func leakyReluBackward(gradOutput: Tensor, input: Tensor, alpha: Float = 0.01) throws -> Tensor {
    try requireSameShape("leakyReluBackward", gradOutput, input)
    return zipElements(gradOutput, input) { g, x, d, n in for i in 0..<n { d[i] = x[i] > 0 ? g[i] : g[i] * alpha } }
}

/// PReLU (ONNX PRelu): `x >= 0 ? x : slope * x`, with `slope` broadcast to `x` (numpy rules, one way).
///
/// A PyTorch `nn.PReLU(C)` weight `[C]` on `[N, C, D, H, W]` must be given as `[C, 1, 1, 1]` (ONNX
/// export does this); a single slope is `[1]`.
/// - Parameters: x: any shape; slope: a shape that broadcasts to `x.shape`.
/// - Returns: shape `x.shape`.
/// - Throws: `TensorError` naming both shapes when `slope` does not broadcast to `x`.
public func prelu(_ x: Tensor, slope: Tensor) throws -> Tensor {
    guard (try? broadcastShapes(x.shape, slope.shape)) == x.shape else {
        throw TensorError.shapeMismatch("prelu", x.shape, slope.shape, "the slope must broadcast to the input")
    }
    return broadcastBinary(x, slope, .prelu, outShape: x.shape)
}

/// Backward of PReLU, for the input and for the slope.
///
/// - Parameters: gradOutput, input: the same shape; slope: the forward slope.
/// - Returns: `input`: `x > 0 ? g : slope * g` (shape `input.shape`); `slope`: `sum(g * min(x, 0))`
///   over the broadcast axes (shape `slope.shape`).
/// - Throws: `TensorError` naming the shapes when they do not match.
public func preluBackward(gradOutput: Tensor, input: Tensor, slope: Tensor) throws -> (input: Tensor, slope: Tensor) {
    try requireSameShape("preluBackward", gradOutput, input)
    let s = try broadcast(slope, to: input.shape)
    let gx = Tensor(shape: input.shape) { out in
        let o = shared(out)
        gradOutput.withShared { g in input.withShared { x in s.withShared { sp in
            Parallel.forRanges(input.count, grain: elementwiseGrain) { r in
                for i in r { o[i] = x[i] > 0 ? g[i] : g[i] * sp[i] }
            }
        } } }
    }
    let gs = zipElements(gradOutput, input) { g, x, d, n in for i in 0..<n { d[i] = x[i] > 0 ? 0 : g[i] * x[i] } }
    return (gx, try sumToShape(gs, slope.shape))
}

/// A per-channel slope `[C]` (PyTorch `nn.PReLU(C).weight`) as `[C, 1, ..., 1]` for input rank `rank`.
private func channelSlopeShape(_ x: Tensor, _ slope: Tensor, _ op: String) throws -> Tensor {
    guard x.rank >= 2, slope.rank == 1, slope.count == x.shape[1] || slope.count == 1 else {
        throw TensorError.shapeMismatch(op, x.shape, slope.shape, "expected x [N, C, ...] and a slope of C or 1 values")
    }
    return try slope.reshaped([slope.count] + [Int](repeating: 1, count: x.rank - 2))
}

/// PReLU with PyTorch's per-channel weight: `x >= 0 ? x : slope[c] * x` along axis 1.
///
/// - Parameters: x: `[N, C, ...]`; channelSlope: `[C]` or `[1]` (`nn.PReLU` weight).
/// - Returns: shape `x.shape`.
/// - Throws: `TensorError` naming both shapes when the slope does not hold C or 1 values.
public func prelu(_ x: Tensor, channelSlope: Tensor) throws -> Tensor {
    try prelu(x, slope: try channelSlopeShape(x, channelSlope, "prelu"))
}

/// Backward of per-channel PReLU.
///
/// - Parameters: gradOutput, input: `[N, C, ...]`; channelSlope: `[C]` or `[1]`.
/// - Returns: gradients w.r.t. the input (shape `input.shape`) and the slope (shape `channelSlope.shape`).
/// - Throws: `TensorError` naming the shapes when they do not match.
public func preluBackward(gradOutput: Tensor, input: Tensor, channelSlope: Tensor) throws -> (input: Tensor, slope: Tensor) {
    let b = try preluBackward(gradOutput: gradOutput, input: input,
                              slope: try channelSlopeShape(input, channelSlope, "preluBackward"))
    return (b.input, try b.slope.reshaped(channelSlope.shape))
}

/// Sigmoid: `1 / (1 + exp(-x))` element-wise.
///
/// - Parameter x: any shape. - Returns: shape `x.shape`.
public func sigmoid(_ x: Tensor) -> Tensor {
    mapElements(x) { s, d, n in
        for i in 0..<n {
            // Both branches avoid overflow of exp for large |x|.
            let v = s[i]
            if v >= 0 { d[i] = 1 / (1 + Foundation.exp(-v)) } else { let e = Foundation.exp(v); d[i] = e / (1 + e) }
        }
    }
}

/// Backward of Sigmoid from its output `y`: `g * y * (1 - y)`.
///
/// - Parameters: gradOutput, output: the same shape. - Returns: gradient w.r.t. the input.
/// - Throws: `TensorError` naming both shapes when they differ.
public func sigmoidBackward(gradOutput: Tensor, output: Tensor) throws -> Tensor {
    try requireSameShape("sigmoidBackward", gradOutput, output)
    return zipElements(gradOutput, output) { g, y, d, n in for i in 0..<n { d[i] = g[i] * y[i] * (1 - y[i]) } }
}

/// Tanh element-wise.
///
/// - Parameter x: any shape. - Returns: shape `x.shape`.
public func tanh(_ x: Tensor) -> Tensor {
    mapElements(x) { s, d, n in for i in 0..<n { d[i] = Foundation.tanh(s[i]) } }
}

/// Backward of Tanh from its output `y`: `g * (1 - y²)`.
///
/// - Parameters: gradOutput, output: the same shape. - Returns: gradient w.r.t. the input.
/// - Throws: `TensorError` naming both shapes when they differ.
public func tanhBackward(gradOutput: Tensor, output: Tensor) throws -> Tensor {
    try requireSameShape("tanhBackward", gradOutput, output)
    return zipElements(gradOutput, output) { g, y, d, n in for i in 0..<n { d[i] = g[i] * (1 - y[i] * y[i]) } }
}

/// Clip: `min(max(x, lo), hi)` element-wise (ONNX Clip, PyTorch clamp; ReLU6 is clip(0, 6)).
///
/// - Parameter x: any shape. - Returns: shape `x.shape`. NaN stays NaN.
/// - Throws: `TensorError` when `lo > hi`.
public func clip(_ x: Tensor, min lo: Float = -.infinity, max hi: Float = .infinity) throws -> Tensor {
    guard !(lo > hi) else { throw TensorError("clip: min \(lo) is greater than max \(hi)") }
    return mapElements(x) { s, d, n in
        for i in 0..<n { let v = s[i]; d[i] = v < lo ? lo : (v > hi ? hi : v) }
    }
}

/// Backward of Clip: `g` where `lo < input < hi`, else 0 (PyTorch clamp: no gradient at a bound).
///
/// - Parameters: gradOutput, input: the same shape. - Returns: gradient w.r.t. the input.
/// - Throws: `TensorError` naming both shapes when they differ.
public func clipBackward(gradOutput: Tensor, input: Tensor, min lo: Float = -.infinity, max hi: Float = .infinity) throws -> Tensor {
    try requireSameShape("clipBackward", gradOutput, input)
    return zipElements(gradOutput, input) { g, x, d, n in for i in 0..<n { d[i] = x[i] > lo && x[i] < hi ? g[i] : 0 } }
}

/// An `Activation` (the fused-store enum) applied as a separate op.
///
/// - Parameter x: any shape. - Returns: shape `x.shape`.
public func activate(_ x: Tensor, _ activation: Activation) -> Tensor {
    if activation == .identity { return x }
    return mapElements(x) { s, d, n in activation.apply(s, into: d, count: n) }
}

/// Backward of `activate` given the op's input.
///
/// - Parameters: gradOutput, input: the same shape. - Returns: gradient w.r.t. the input.
/// - Throws: `TensorError` naming both shapes when they differ.
public func activateBackward(gradOutput: Tensor, input: Tensor, _ activation: Activation) throws -> Tensor {
    switch activation {
    case .identity: try requireSameShape("activateBackward", gradOutput, input); return gradOutput
    case .relu: return try reluBackward(gradOutput: gradOutput, input: input)
    case .leakyRelu(let a): return try leakyReluBackward(gradOutput: gradOutput, input: input, alpha: a)
    case .clip(let lo, let hi): return try clipBackward(gradOutput: gradOutput, input: input, min: lo, max: hi)
    }
}

// Global average and global max pooling over all spatial axes (ONNX GlobalAveragePool /
// GlobalMaxPool, PyTorch adaptive pooling to 1), with backward passes. They are reductions over
// axes 2..<rank with kept dims, so they share the Reduce kernel.

private func spatialAxes(_ x: [Int], _ op: String) throws -> [Int] {
    guard x.count >= 3 else { throw TensorError("\(op): expected [N, C, spatial...], got shape \(x)") }
    return Array(2..<x.count)
}

/// Global average pooling: the mean over every spatial position.
///
/// - Parameter x: `[N, C, D, H, W]` (any rank >= 3). - Returns: `[N, C, 1, 1, 1]` (ones for every
///   spatial axis).
/// - Throws: `TensorError` when x has rank < 3.
public func globalAveragePool(_ x: Tensor) throws -> Tensor {
    try reduceMean(x, axes: try spatialAxes(x.shape, "globalAveragePool"), keepDims: true)
}

/// Backward of global average pooling: `g / (D*H*W)` at every position.
///
/// - Parameters: gradOutput: `[N, C, 1, 1, 1]`; inputShape: `[N, C, D, H, W]`.
/// - Returns: gradient w.r.t. the input, shape `inputShape`.
/// - Throws: `TensorError` on mismatched shapes.
public func globalAveragePoolBackward(gradOutput: Tensor, inputShape: [Int]) throws -> Tensor {
    try reduceBackward(gradOutput: gradOutput, inputShape: inputShape, .mean,
                       axes: try spatialAxes(inputShape, "globalAveragePoolBackward"), keepDims: true)
}

/// Global max pooling: the maximum over every spatial position.
///
/// - Parameter x: `[N, C, D, H, W]` (any rank >= 3). - Returns: `[N, C, 1, 1, 1]`.
/// - Throws: `TensorError` when x has rank < 3 or no spatial elements.
public func globalMaxPool(_ x: Tensor) throws -> Tensor {
    try reduceMax(x, axes: try spatialAxes(x.shape, "globalMaxPool"), keepDims: true)
}

/// Backward of global max pooling: the gradient goes to the first maximum (row-major scan order).
///
/// - Parameters: gradOutput: `[N, C, 1, 1, 1]`; input: the forward input `[N, C, D, H, W]`.
/// - Returns: gradient w.r.t. the input, shape `input.shape`.
/// - Throws: `TensorError` on mismatched shapes.
public func globalMaxPoolBackward(gradOutput: Tensor, input: Tensor) throws -> Tensor {
    try reduceMaxBackward(gradOutput: gradOutput, input: input,
                          axes: try spatialAxes(input.shape, "globalMaxPoolBackward"), keepDims: true)
}

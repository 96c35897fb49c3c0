// Slice (ONNX semantics: starts, ends, axes, steps with negative indices, clamping and negative
// steps) and its backward pass. Both run on the per-axis index maps of Pad.swift's gather/scatter.

/// The per-axis source indices of an ONNX Slice of `shape`.
private func sliceMaps(shape: [Int], starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?, op: String) throws -> [[Int]] {
    let rank = shape.count
    let axisList = axes ?? Array(0..<starts.count)
    let stepList = steps ?? [Int](repeating: 1, count: starts.count)
    guard starts.count == ends.count, axisList.count == starts.count, stepList.count == starts.count else {
        throw TensorError("\(op): starts \(starts), ends \(ends), axes \(axisList) and steps \(stepList) must have equal lengths")
    }
    let normalized = try axisList.map { try normalizedAxis($0, rank: rank, op: op) }
    guard Set(normalized).count == normalized.count else { throw TensorError("\(op): axes \(axisList) repeat an axis") }
    var maps = shape.map { Array(0..<$0) }
    for (i, a) in normalized.enumerated() {
        let dim = shape[a], step = stepList[i]
        guard step != 0 else { throw TensorError("\(op): step 0 on axis \(a) of shape \(shape)") }
        // Negative indices count from the end; then clamp (ONNX), without overflowing on INT64 extremes.
        func clamp(_ v: Int, _ lo: Int, _ hi: Int) -> Int {
            let w = v < 0 ? (v < -dim ? lo : v + dim) : v
            return min(max(w, lo), hi)
        }
        let start = step > 0 ? clamp(starts[i], 0, dim) : clamp(starts[i], 0, dim - 1)
        let end = step > 0 ? clamp(ends[i], 0, dim) : clamp(ends[i], -1, dim - 1)
        maps[a] = Array(stride(from: start, to: end, by: step))
    }
    return maps
}

/// Slice (ONNX): takes `start, start + step, ...` up to (not including) `end` on the given axes.
///
/// - Parameters: x: any shape; starts, ends: one per sliced axis (negative counts from the end; out of
///   range values are clamped, so `Int.max` means "to the end"); axes: the sliced axes (nil: the first
///   `starts.count`); steps: nonzero, negative to walk backwards (nil: all 1).
/// - Returns: x restricted to the selected indices on each sliced axis.
/// - Throws: `TensorError` on mismatched list lengths, bad or repeated axes, or a zero step.
public func slice(_ x: Tensor, starts: [Int], ends: [Int], axes: [Int]? = nil, steps: [Int]? = nil) throws -> Tensor {
    let maps = try sliceMaps(shape: x.shape, starts: starts, ends: ends, axes: axes, steps: steps, op: "slice")
    return gatherAxes(x, outShape: maps.map(\.count), maps: maps, fill: 0)
}

/// Backward of Slice: the gradient written back at the selected indices, zeros elsewhere.
///
/// - Parameters: gradOutput: the slice's shape; inputShape: the forward input's shape; the forward's
///   starts, ends, axes and steps.
/// - Returns: gradient w.r.t. the input, shape `inputShape`.
/// - Throws: `TensorError` when the shapes do not match the forward's.
public func sliceBackward(gradOutput: Tensor, inputShape: [Int], starts: [Int], ends: [Int], axes: [Int]? = nil,
                          steps: [Int]? = nil) throws -> Tensor {
    let maps = try sliceMaps(shape: inputShape, starts: starts, ends: ends, axes: axes, steps: steps, op: "sliceBackward")
    guard gradOutput.shape == maps.map(\.count) else {
        throw TensorError.shapeMismatch("sliceBackward", gradOutput.shape, maps.map(\.count), "gradient vs forward output")
    }
    return scatterAxes(gradOutput, inputShape: inputShape, maps: maps)
}

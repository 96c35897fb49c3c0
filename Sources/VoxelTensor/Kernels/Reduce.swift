// ReduceSum / ReduceMean / ReduceMax over a set of axes (ONNX semantics), with backward passes, and
// `sumToShape`, the reduction that undoes broadcasting in backward passes.
//
// Kernel: adjacent axes of the same kind (reduced or kept) are merged and size-1 axes dropped. When
// the innermost merged axis is reduced, each output element sums contiguous runs (SIMD8 partial sums
// in Float, runs added in Double); when it is kept, each tile adds whole rows of the innermost axis.
// Tiles are fixed-size chunks of the output, and every output element is summed in one fixed order.

/// What a reduction computes.
public enum ReduceKind: Sendable, Hashable {
    /// The sum, the mean (sum / reduced count) or the maximum (NaN if any element is NaN).
    case sum, mean, max
}

/// The reduced axes as flags, sorted unique axes, and the output shape with and without kept dims.
private struct ReducePlan {
    var reduced: [Bool]
    var keptShape: [Int]      // input shape with reduced axes set to 1
    var outShape: [Int]       // keepDims ? keptShape : shape without reduced axes
    var reducedCount: Int

    init(shape: [Int], axes: [Int]?, keepDims: Bool, op: String) throws {
        let rank = shape.count
        let list = (axes?.isEmpty ?? true) ? Array(0..<rank) : try normalizedAxes(axes ?? [], rank: rank, op: op)
        var flags = [Bool](repeating: false, count: rank)
        for a in list { flags[a] = true }
        let kept = shape.enumerated().map { flags[$0.offset] ? 1 : $0.element }
        reduced = flags
        keptShape = kept
        outShape = keepDims ? kept : shape.enumerated().filter { !flags[$0.offset] }.map(\.element)
        reducedCount = shape.enumerated().filter { flags[$0.offset] }.map(\.element).product
    }
}

/// Merged layout: kept and reduced axes with their input strides, in input order.
private struct MergedAxes {
    var kept: [(extent: Int, stride: Int)] = []
    var reducedAxes: [(extent: Int, stride: Int)] = []
    var innermostReduced = false

    init(shape: [Int], reduced: [Bool]) {
        var groups: [(extent: Int, reduced: Bool)] = []
        for (e, r) in zip(shape, reduced) where e != 1 {
            if let last = groups.last, last.reduced == r {
                groups[groups.count - 1].extent *= e
            } else {
                groups.append((e, r))
            }
        }
        var stride = 1
        var withStrides: [(extent: Int, stride: Int, reduced: Bool)] = []
        for g in groups.reversed() {
            withStrides.append((g.extent, stride, g.reduced))
            stride *= g.extent
        }
        withStrides.reverse()
        for g in withStrides {
            if g.reduced { reducedAxes.append((g.extent, g.stride)) } else { kept.append((g.extent, g.stride)) }
        }
        innermostReduced = withStrides.last?.reduced ?? false
    }
}

/// Reduces `x` over `axes` (nil or empty: all axes) by `kind`.
///
/// - Parameters: x: any shape; axes: ONNX-style axes (negative counts from the end);
///   keepDims: keep reduced axes as size 1 (ONNX default).
/// - Returns: the reduction; shape `x.shape` with reduced axes 1 (keepDims) or removed.
/// - Throws: `TensorError` on a bad axis, or a max over zero elements.
public func reduce(_ x: Tensor, _ kind: ReduceKind, axes: [Int]?, keepDims: Bool = true) throws -> Tensor {
    let op = "reduce\(kind)"
    let plan = try ReducePlan(shape: x.shape, axes: axes, keepDims: keepDims, op: op)
    let outCount = plan.outShape.product
    if outCount == 0 { return Tensor.zeros(plan.outShape) }
    if plan.reducedCount == 0 {
        switch kind {
        case .sum: return Tensor.zeros(plan.outShape)
        case .mean: return Tensor(shape: plan.outShape, repeating: .nan)
        case .max: throw TensorError("\(op): cannot take the max over zero elements of shape \(x.shape)")
        }
    }
    let m = MergedAxes(shape: x.shape, reduced: plan.reduced)
    let scale = kind == .mean ? 1 / Double(plan.reducedCount) : 1
    let keptOffsets = offsets(extents: m.kept.map(\.extent), strides: m.kept.map(\.stride))
    return Tensor(shape: plan.outShape) { out in
        let o = shared(out)
        x.withShared { src in
            if m.innermostReduced || m.reducedAxes.isEmpty {
                // Each output element reduces contiguous runs of `run` elements.
                let run = m.reducedAxes.last?.extent ?? 1
                let outer = m.reducedAxes.dropLast()
                let runOffsets = offsets(extents: outer.map(\.extent), strides: outer.map(\.stride))
                let grain = max(1, elementwiseGrain / max(1, plan.reducedCount))
                Parallel.forRanges(outCount, grain: grain) { range in
                    for i in range {
                        let base = keptOffsets[i]
                        switch kind {
                        case .sum, .mean:
                            var total = 0.0
                            for r in runOffsets { total += Double(contiguousSum(src + (base + r), run)) }
                            o[i] = Float(total * scale)
                        case .max:
                            var best = -Float.infinity
                            var sawNaN = false
                            for r in runOffsets {
                                let v = contiguousMax(src + (base + r), run)
                                if v.isNaN { sawNaN = true } else if v > best { best = v }
                            }
                            o[i] = sawNaN ? .nan : best
                        }
                    }
                }
            } else {
                // The innermost axis is kept: each tile adds rows of `width` elements.
                let width = m.kept.last?.extent ?? 1
                let rows = outCount / width
                let outerKept = offsets(extents: m.kept.dropLast().map(\.extent), strides: m.kept.dropLast().map(\.stride))
                let redOffsets = offsets(extents: m.reducedAxes.map(\.extent), strides: m.reducedAxes.map(\.stride))
                let chunk = 1024
                let chunksPerRow = (width + chunk - 1) / chunk
                Parallel.forEach(rows * chunksPerRow) { t in
                    let row = t / chunksPerRow
                    let c0 = (t % chunksPerRow) * chunk
                    let n = min(chunk, width - c0)
                    let dst = o + (row * width + c0)
                    let base = outerKept[row] + c0
                    let first = src + (base + redOffsets[0])
                    for j in 0..<n { dst[j] = first[j] }
                    for r in redOffsets.dropFirst() {
                        let p = src + (base + r)
                        switch kind {
                        case .sum, .mean: for j in 0..<n { dst[j] += p[j] }
                        case .max: for j in 0..<n where p[j] > dst[j] || p[j].isNaN { dst[j] = p[j] }
                        }
                    }
                    if kind == .mean {
                        let s = Float(scale)
                        for j in 0..<n { dst[j] *= s }
                    }
                }
            }
        }
    }
}

/// Sum of `n` contiguous floats with eight SIMD lanes (fixed order).
@inline(__always) func contiguousSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= n {
        acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += p[i]; i += 1 }
    return s
}

/// Maximum of `n > 0` contiguous floats; NaN when any is NaN.
@inline(__always) func contiguousMax(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var best = p[0]
    for i in 0..<n {
        let v = p[i]
        if v.isNaN { return .nan }
        if v > best { best = v }
    }
    return best
}

/// ReduceSum over `axes` (nil or empty: all). See `reduce(_:_:axes:keepDims:)`.
public func reduceSum(_ x: Tensor, axes: [Int]? = nil, keepDims: Bool = true) throws -> Tensor {
    try reduce(x, .sum, axes: axes, keepDims: keepDims)
}

/// ReduceMean over `axes` (nil or empty: all). See `reduce(_:_:axes:keepDims:)`.
public func reduceMean(_ x: Tensor, axes: [Int]? = nil, keepDims: Bool = true) throws -> Tensor {
    try reduce(x, .mean, axes: axes, keepDims: keepDims)
}

/// ReduceMax over `axes` (nil or empty: all). See `reduce(_:_:axes:keepDims:)`.
public func reduceMax(_ x: Tensor, axes: [Int]? = nil, keepDims: Bool = true) throws -> Tensor {
    try reduce(x, .max, axes: axes, keepDims: keepDims)
}

/// Backward of ReduceSum (`kind == .sum`) or ReduceMean (`.mean`): the gradient broadcast back.
///
/// - Parameters: gradOutput: shape of the forward output; inputShape: the forward input's shape.
/// - Returns: gradient w.r.t. the input, shape `inputShape` (mean divides by the reduced count).
/// - Throws: `TensorError` when `gradOutput` does not have the forward output's shape.
public func reduceBackward(gradOutput: Tensor, inputShape: [Int], _ kind: ReduceKind, axes: [Int]?,
                           keepDims: Bool = true) throws -> Tensor {
    let op = "reduce\(kind)Backward"
    guard kind != .max else { throw TensorError("\(op): use reduceMaxBackward, which needs the input") }
    let plan = try ReducePlan(shape: inputShape, axes: axes, keepDims: keepDims, op: op)
    guard gradOutput.shape == plan.outShape else {
        throw TensorError.shapeMismatch(op, gradOutput.shape, plan.outShape, "gradient vs forward output")
    }
    var g = try gradOutput.reshaped(plan.keptShape)
    if kind == .mean && plan.reducedCount > 0 {
        let s = 1 / Float(plan.reducedCount)
        g = mapElements(g) { src, dst, n in for i in 0..<n { dst[i] = src[i] * s } }
    }
    return try broadcast(g, to: inputShape)
}

/// Backward of ReduceMax: each output's gradient goes to the first maximum in scan (row-major) order.
///
/// - Parameters: gradOutput: shape of the forward output; input: the forward input.
/// - Returns: gradient w.r.t. the input, shape `input.shape`.
/// - Throws: `TensorError` on a shape mismatch or a bad axis.
public func reduceMaxBackward(gradOutput: Tensor, input: Tensor, axes: [Int]?, keepDims: Bool = true) throws -> Tensor {
    let op = "reduceMaxBackward"
    let plan = try ReducePlan(shape: input.shape, axes: axes, keepDims: keepDims, op: op)
    guard gradOutput.shape == plan.outShape else {
        throw TensorError.shapeMismatch(op, gradOutput.shape, plan.outShape, "gradient vs forward output")
    }
    var result = Tensor.zeros(input.shape)
    if input.count == 0 { return result }
    let m = MergedAxes(shape: input.shape, reduced: plan.reduced)
    let keptOffsets = offsets(extents: m.kept.map(\.extent), strides: m.kept.map(\.stride))
    let redOffsets = offsets(extents: m.reducedAxes.map(\.extent), strides: m.reducedAxes.map(\.stride))
    result.scalars.withUnsafeMutableBufferPointer { rb in
        let r = shared(rb)
        input.withShared { x in
            gradOutput.withShared { g in
                // Each output owns the disjoint set of inputs it reduced.
                Parallel.forRanges(keptOffsets.count, grain: max(1, elementwiseGrain / max(1, redOffsets.count))) { range in
                    for i in range {
                        let base = keptOffsets[i]
                        var bestOffset = base + redOffsets[0]
                        var best = x[bestOffset]
                        for off in redOffsets where !best.isNaN {
                            let v = x[base + off]
                            if v > best || v.isNaN { best = v; bestOffset = base + off }
                        }
                        r[bestOffset] = g[i]
                    }
                }
            }
        }
    }
    return result
}

/// Sums `x` over broadcast axes so it takes `shape`: the backward of broadcasting `shape` to `x.shape`.
///
/// - Parameters: x: a gradient of the broadcast shape; shape: a shape that broadcasts to `x.shape`.
/// - Returns: shape `shape`.
/// - Throws: `TensorError` naming both shapes when `shape` does not broadcast to `x.shape`.
public func sumToShape(_ x: Tensor, _ shape: [Int]) throws -> Tensor {
    if x.shape == shape { return x }
    guard shape.count <= x.rank, (try? broadcastShapes(shape, x.shape)) == x.shape else {
        throw TensorError.shapeMismatch("sumToShape", x.shape, shape, "the second does not broadcast to the first")
    }
    let lead = x.rank - shape.count
    var axes = Array(0..<lead)
    for (i, e) in shape.enumerated() where e == 1 && x.shape[lead + i] != 1 { axes.append(lead + i) }
    if axes.isEmpty { return try x.reshaped(shape) }
    return try reduceSum(x, axes: axes, keepDims: true).reshaped(shape)
}

/// Slow reference reduction (one pass over every input element, Double sums): the oracle for tests.
///
/// Same contract as `reduce(_:_:axes:keepDims:)`.
public func reduceReference(_ x: Tensor, _ kind: ReduceKind, axes: [Int]?, keepDims: Bool = true) throws -> Tensor {
    let plan = try ReducePlan(shape: x.shape, axes: axes, keepDims: keepDims, op: "reduceReference")
    let keptStrides = Tensor.strides(for: plan.keptShape)
    var acc = [Double](repeating: kind == .max ? -.infinity : 0, count: plan.keptShape.product)
    let inStrides = x.strides
    for flat in 0..<x.count {
        var o = 0
        for a in 0..<x.rank where !plan.reduced[a] { o += (flat / inStrides[a]) % x.shape[a] * keptStrides[a] }
        let v = Double(x.scalars[flat])
        acc[o] = kind == .max ? (v > acc[o] || v.isNaN ? v : acc[o]) : acc[o] + v
    }
    if kind == .mean { acc = acc.map { $0 / Double(plan.reducedCount) } }
    return try Tensor(shape: plan.outShape, scalars: acc.map { Float($0) })
}

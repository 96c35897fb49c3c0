// Pad (ONNX semantics; any axis, any mode) and its backward pass.
//
// Each output axis maps output index o to a source index (or none for constant padding): o - begin,
// then constant (outside -> none), edge (clamped) or reflect (mirrored without repeating the edge,
// as numpy 'reflect', ONNX and PyTorch). Negative pads crop. Tiles are chunks of output rows.

/// How Pad fills the border.
public enum PadMode: Sendable, Hashable {
    /// A constant value (ONNX `constant`, PyTorch `F.pad(mode="constant")`).
    case constant(Float)
    /// The nearest edge value (ONNX `edge`, PyTorch `replicate`).
    case edge
    /// A mirror without repeating the edge (ONNX `reflect`, PyTorch `reflect`).
    case reflect
}

/// Source index for output `o` of an axis of extent `n` with `begin` padding, or -1 for the constant.
private func padSource(_ o: Int, begin: Int, n: Int, mode: PadMode) -> Int {
    let i = o - begin
    if i >= 0 && i < n { return i }
    switch mode {
    case .constant: return -1
    case .edge: return i < 0 ? 0 : n - 1
    case .reflect:
        if n == 1 { return 0 }
        let period = 2 * (n - 1)
        var r = abs(i) % period
        if r >= n { r = period - r }
        return r
    }
}

/// Validated per-axis source maps.
private struct PadPlan {
    var outShape: [Int]
    var maps: [[Int]]

    init(shape: [Int], pads: [Int], mode: PadMode, op: String) throws {
        let rank = shape.count
        guard pads.count == 2 * rank else {
            throw TensorError("\(op): pads \(pads) must hold \(2 * rank) values (begins then ends) for shape \(shape)")
        }
        outShape = []
        maps = []
        let isConstant: Bool
        if case .constant = mode { isConstant = true } else { isConstant = false }
        for a in 0..<rank {
            let n = shape[a], b = pads[a], e = pads[rank + a]
            let out = n + b + e
            guard out >= 0 else { throw TensorError("\(op): pads \(pads) crop axis \(a) of shape \(shape) below zero") }
            if !isConstant && (b > 0 || e > 0) && n == 0 {
                throw TensorError("\(op): cannot \(mode) pad empty axis \(a) of shape \(shape)")
            }
            if case .reflect = mode, b >= n || e >= n, b > 0 || e > 0, n > 1 {
                throw TensorError("\(op): reflect pads \(pads) must be smaller than axis \(a) extent \(n) in shape \(shape)")
            }
            outShape.append(out)
            maps.append((0..<out).map { padSource($0, begin: b, n: n, mode: mode) })
        }
    }
}

/// Pad (ONNX Pad, PyTorch `F.pad`): adds (or with negative values, removes) borders on any axes.
///
/// - Parameters: x: any shape; pads: `2 * rank` values, all begins then all ends (ONNX order; PyTorch's
///   `F.pad` lists the last axis first in (begin, end) pairs); mode: constant, edge or reflect.
/// - Returns: shape `x.shape[a] + pads[a] + pads[rank + a]` per axis.
/// - Throws: `TensorError` on a wrong pads count, a negative output extent, edge/reflect of an empty
///   axis, or reflect pads not smaller than the axis.
public func pad(_ x: Tensor, pads: [Int], mode: PadMode = .constant(0)) throws -> Tensor {
    let p = try PadPlan(shape: x.shape, pads: pads, mode: mode, op: "pad")
    if case .constant(let v) = mode { return gatherAxes(x, outShape: p.outShape, maps: p.maps, fill: v) }
    return gatherAxes(x, outShape: p.outShape, maps: p.maps, fill: 0)
}

/// `out[o] = x[maps[0][o0], maps[1][o1], ...]`, or `fill` where any map entry is -1. Tiles are
/// chunks of output rows (all axes but the last).
func gatherAxes(_ x: Tensor, outShape: [Int], maps: [[Int]], fill: Float) -> Tensor {
    let count = outShape.product
    if count == 0 { return Tensor.zeros(outShape) }
    if x.rank == 0 { return x }
    let inner = outShape[x.rank - 1], rows = count / inner
    let inStrides = x.strides
    let outer = Array(outShape.dropLast())
    let lastMap = maps[x.rank - 1]
    return Tensor(shape: outShape) { out in
        let o = shared(out)
        x.withShared { src in
            Parallel.forRanges(rows, grain: max(1, elementwiseGrain / inner)) { range in
                for r in range {
                    var rem = r, off = 0, inside = true
                    for k in stride(from: outer.count - 1, through: 0, by: -1) {
                        let s = maps[k][rem % outer[k]]
                        rem /= outer[k]
                        if s < 0 { inside = false } else { off += s * inStrides[k] }
                    }
                    let d = o + r * inner
                    if !inside { for j in 0..<inner { d[j] = fill }; continue }
                    let s = src + off
                    for j in 0..<inner { let i = lastMap[j]; d[j] = i < 0 ? fill : s[i] }
                }
            }
        }
    }
}

/// Backward of Pad: each output gradient added to its source element (border copies of edge/reflect
/// accumulate); constant padding and cropped elements get nothing or zero.
///
/// - Parameters: gradOutput: the padded shape; inputShape: the forward input's shape; pads, mode: as forward.
/// - Returns: gradient w.r.t. the input, shape `inputShape`.
/// - Throws: `TensorError` when the shapes do not match the forward's.
public func padBackward(gradOutput: Tensor, inputShape: [Int], pads: [Int], mode: PadMode = .constant(0)) throws -> Tensor {
    let p = try PadPlan(shape: inputShape, pads: pads, mode: mode, op: "padBackward")
    guard gradOutput.shape == p.outShape else {
        throw TensorError.shapeMismatch("padBackward", gradOutput.shape, p.outShape, "gradient vs forward output")
    }
    return scatterAxes(gradOutput, inputShape: inputShape, maps: p.maps)
}

/// The adjoint of `gatherAxes`: `result[maps[.][o]] += g[o]` (entries -1 dropped), zeros elsewhere.
/// Leading axes whose maps are the identity split the work into disjoint input blocks.
func scatterAxes(_ gradOutput: Tensor, inputShape: [Int], maps: [[Int]]) -> Tensor {
    var result = Tensor.zeros(inputShape)
    if result.count == 0 || gradOutput.count == 0 { return result }
    let rank = inputShape.count
    let outShape = maps.map(\.count)
    let lead = (0..<rank).first { a in maps[a].count != inputShape[a] || maps[a].enumerated().contains { $0.offset != $0.element } } ?? rank
    let tiles = inputShape[..<lead].reduce(1, *)
    let inBlock = inputShape[lead...].reduce(1, *), outBlock = outShape[lead...].reduce(1, *)
    let outSub = Array(outShape[lead...]), subMaps = Array(maps[lead...])
    let inStrides = Array(Tensor.strides(for: inputShape)[lead...])
    result.scalars.withUnsafeMutableBufferPointer { rb in
        let r = shared(rb)
        gradOutput.withShared { g in
            Parallel.forEach(tiles) { t in
                let gi = r + t * inBlock
                for j in 0..<outBlock {
                    var rem = j, off = 0, inside = true
                    for k in stride(from: outSub.count - 1, through: 0, by: -1) {
                        let s = subMaps[k][rem % outSub[k]]
                        rem /= outSub[k]
                        if s < 0 { inside = false; break }
                        off += s * inStrides[k]
                    }
                    if inside { gi[off] += g[t * outBlock + j] }
                }
            }
        }
    }
    return result
}

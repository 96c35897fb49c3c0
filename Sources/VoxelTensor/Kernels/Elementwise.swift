// Add, Sub, Mul, Div with numpy/ONNX multidirectional broadcasting, their backward passes, and
// Expand-style broadcasting.
//
// Kernel: the output shape's size-1 axes are dropped and adjacent axes merged while both operands
// stay contiguous across them, so a bias add [N, C, D, H, W] + [1, C, 1, 1, 1] becomes rows of D*H*W
// with the bias constant along each row. Rows are tiled in fixed-size chunks; the inner loop is a
// contiguous (or constant) loop the compiler vectorises.

/// An element-wise binary op on broadcast operands.
public enum BinaryOp: Sendable, Hashable, CustomStringConvertible {
    /// `a + b`, `a - b`, `a * b`, `a / b`.
    case add, sub, mul, div
    /// `a >= 0 ? a : a * b` (PReLU with slope `b`).
    case prelu
    /// `a` (the second operand only shapes the output; used for Expand).
    case first

    /// The op's name, used in error messages.
    public var description: String {
        switch self {
        case .add: return "add"
        case .sub: return "sub"
        case .mul: return "mul"
        case .div: return "div"
        case .prelu: return "prelu"
        case .first: return "first"
        }
    }
}

/// The numpy broadcast of two shapes (align trailing axes; extents equal or one of them 1).
///
/// - Throws: `TensorError` naming both shapes and the offending axis when they do not broadcast.
public func broadcastShapes(_ a: [Int], _ b: [Int], op: String = "broadcast") throws -> [Int] {
    let r = max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let da = i < r - a.count ? 1 : a[i - (r - a.count)]
        let db = i < r - b.count ? 1 : b[i - (r - b.count)]
        if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else {
            throw TensorError.shapeMismatch(op, a, b, "axis \(i - r) has extents \(da) and \(db), which do not broadcast")
        }
    }
    return out
}

/// Strides of `shape` viewed in the broadcast shape `out` (0 on broadcast and missing axes).
private func broadcastStrides(_ shape: [Int], _ out: [Int]) -> [Int] {
    let own = Tensor.strides(for: shape)
    let lead = out.count - shape.count
    return (0..<out.count).map { i in i < lead || shape[i - lead] == 1 ? 0 : own[i - lead] }
}

/// Drops size-1 axes and merges adjacent axes along which every operand is contiguous.
private func mergeAxes(_ shape: [Int], _ strides: [[Int]]) -> (extents: [Int], strides: [[Int]]) {
    var ext: [Int] = []
    var st: [[Int]] = strides.map { _ in [] }
    for i in shape.indices where shape[i] != 1 {
        if let last = ext.last, strides.indices.allSatisfy({ (st[$0].last ?? -1) == strides[$0][i] * shape[i] }) {
            ext[ext.count - 1] = last * shape[i]
            for k in strides.indices { st[k][st[k].count - 1] = strides[k][i] }
        } else {
            ext.append(shape[i])
            for k in strides.indices { st[k].append(strides[k][i]) }
        }
    }
    if ext.isEmpty { return ([1], strides.map { _ in [0] }) }
    return (ext, st)
}

@inline(__always)
private func row(_ x: UnsafePointer<Float>, _ sx: Int, _ y: UnsafePointer<Float>, _ sy: Int,
                 _ o: UnsafeMutablePointer<Float>, _ n: Int, _ f: (Float, Float) -> Float) {
    switch (sx, sy) {
    case (1, 1): for i in 0..<n { o[i] = f(x[i], y[i]) }
    case (1, 0): let v = y[0]; for i in 0..<n { o[i] = f(x[i], v) }
    case (0, 1): let u = x[0]; for i in 0..<n { o[i] = f(u, y[i]) }
    case (0, 0): let r = f(x[0], y[0]); for i in 0..<n { o[i] = r }
    default: for i in 0..<n { o[i] = f(x[i * sx], y[i * sy]) }
    }
}

@inline(__always)
private func row(_ op: BinaryOp, _ x: UnsafePointer<Float>, _ sx: Int, _ y: UnsafePointer<Float>, _ sy: Int,
                 _ o: UnsafeMutablePointer<Float>, _ n: Int) {
    switch op {
    case .add: row(x, sx, y, sy, o, n) { $0 + $1 }
    case .sub: row(x, sx, y, sy, o, n) { $0 - $1 }
    case .mul: row(x, sx, y, sy, o, n) { $0 * $1 }
    case .div: row(x, sx, y, sy, o, n) { $0 / $1 }
    case .prelu: row(x, sx, y, sy, o, n) { $0 >= 0 ? $0 : $0 * $1 }
    case .first: row(x, sx, y, sy, o, n) { a, _ in a }
    }
}

/// `op` of `a` and `b` broadcast to `outShape` (which both must broadcast to; checked by callers).
func broadcastBinary(_ a: Tensor, _ b: Tensor, _ op: BinaryOp, outShape: [Int]) -> Tensor {
    let count = outShape.product
    if count == 0 { return Tensor.zeros(outShape) }
    let merged = mergeAxes(outShape, [broadcastStrides(a.shape, outShape), broadcastStrides(b.shape, outShape)])
    let inner = merged.extents.last ?? 1
    let sa = merged.strides[0].last ?? 0, sb = merged.strides[1].last ?? 0
    let outerExt = Array(merged.extents.dropLast())
    let outerA = Array(merged.strides[0].dropLast()), outerB = Array(merged.strides[1].dropLast())
    let rows = count / inner
    return Tensor(shape: outShape) { out in
        let o = shared(out)
        a.withShared { pa in
            b.withShared { pb in
                Parallel.forRanges(rows, grain: max(1, elementwiseGrain / inner)) { range in
                    // Odometer over the outer axes, started at the range's first row.
                    var idx = [Int](repeating: 0, count: outerExt.count)
                    var rem = range.lowerBound
                    var offA = 0, offB = 0
                    for k in stride(from: outerExt.count - 1, through: 0, by: -1) {
                        idx[k] = rem % outerExt[k]
                        rem /= outerExt[k]
                        offA += idx[k] * outerA[k]
                        offB += idx[k] * outerB[k]
                    }
                    for r in range {
                        row(op, pa + offA, sa, pb + offB, sb, o + r * inner, inner)
                        var k = outerExt.count - 1
                        while k >= 0 {
                            idx[k] += 1
                            offA += outerA[k]
                            offB += outerB[k]
                            if idx[k] < outerExt[k] { break }
                            offA -= outerA[k] * outerExt[k]
                            offB -= outerB[k] * outerExt[k]
                            idx[k] = 0
                            k -= 1
                        }
                    }
                }
            }
        }
    }
}

/// `op` applied element-wise to `a` and `b` with numpy broadcasting.
///
/// - Parameters: a, b: any shapes that broadcast (e.g. `[N, C, D, H, W]` and `[1, C, 1, 1, 1]`).
/// - Returns: shape `broadcastShapes(a.shape, b.shape)`.
/// - Throws: `TensorError` naming both shapes when they do not broadcast.
public func binary(_ a: Tensor, _ b: Tensor, _ op: BinaryOp) throws -> Tensor {
    let out = try broadcastShapes(a.shape, b.shape, op: op.description)
    return broadcastBinary(a, b, op, outShape: out)
}

/// `a + b` with numpy broadcasting. See `binary(_:_:_:)` for shapes and throws.
public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(a, b, .add) }
/// `a - b` with numpy broadcasting. See `binary(_:_:_:)` for shapes and throws.
public func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(a, b, .sub) }
/// `a * b` with numpy broadcasting. See `binary(_:_:_:)` for shapes and throws.
public func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(a, b, .mul) }
/// `a / b` with numpy broadcasting (IEEE division: x/0 is ±inf or NaN). See `binary(_:_:_:)`.
public func div(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(a, b, .div) }

/// Backward of `add`: the upstream gradient summed over each input's broadcast axes.
///
/// - Parameters: gradOutput: shape `broadcastShapes(aShape, bShape)`; aShape, bShape: input shapes.
/// - Returns: gradients w.r.t. `a` (shape `aShape`) and `b` (shape `bShape`).
/// - Throws: `TensorError` when the shapes do not match the forward's.
public func addBackward(gradOutput: Tensor, aShape: [Int], bShape: [Int]) throws -> (a: Tensor, b: Tensor) {
    try checkBinaryGradient("addBackward", gradOutput, aShape, bShape)
    return (try sumToShape(gradOutput, aShape), try sumToShape(gradOutput, bShape))
}

/// Backward of `sub`: `(sum(g), -sum(g))` over each input's broadcast axes. Shapes as `addBackward`.
public func subBackward(gradOutput: Tensor, aShape: [Int], bShape: [Int]) throws -> (a: Tensor, b: Tensor) {
    try checkBinaryGradient("subBackward", gradOutput, aShape, bShape)
    let gb = try sumToShape(gradOutput, bShape)
    return (try sumToShape(gradOutput, aShape), negate(gb))
}

/// Backward of `mul`: `(sum(g * b), sum(g * a))` over each input's broadcast axes.
///
/// - Parameters: gradOutput: the forward output's shape; a, b: the forward inputs.
/// - Returns: gradients of shapes `a.shape` and `b.shape`.
/// - Throws: `TensorError` when the shapes do not match the forward's.
public func mulBackward(gradOutput: Tensor, a: Tensor, b: Tensor) throws -> (a: Tensor, b: Tensor) {
    try checkBinaryGradient("mulBackward", gradOutput, a.shape, b.shape)
    return (try sumToShape(try mul(gradOutput, b), a.shape), try sumToShape(try mul(gradOutput, a), b.shape))
}

/// Backward of `div`: `(sum(g / b), -sum(g * a / b²))` over each input's broadcast axes.
///
/// - Parameters: gradOutput: the forward output's shape; a, b: the forward inputs.
/// - Returns: gradients of shapes `a.shape` and `b.shape`.
/// - Throws: `TensorError` when the shapes do not match the forward's.
public func divBackward(gradOutput: Tensor, a: Tensor, b: Tensor) throws -> (a: Tensor, b: Tensor) {
    try checkBinaryGradient("divBackward", gradOutput, a.shape, b.shape)
    let ga = try div(gradOutput, b)                       // g / b, the output shape
    let gb = try div(try mul(ga, a), b)                   // g * a / b², the output shape
    return (try sumToShape(ga, a.shape), negate(try sumToShape(gb, b.shape)))
}

private func checkBinaryGradient(_ op: String, _ g: Tensor, _ a: [Int], _ b: [Int]) throws {
    let out = try broadcastShapes(a, b, op: op)
    guard g.shape == out else { throw TensorError.shapeMismatch(op, g.shape, out, "gradient vs forward output") }
}

/// `-x`, element-wise.
public func negate(_ x: Tensor) -> Tensor {
    mapElements(x) { s, d, n in for i in 0..<n { d[i] = -s[i] } }
}

/// `x` broadcast (numpy rules, one direction) to `shape`, materialised.
///
/// - Parameters: x: a shape that broadcasts to `shape`; shape: the target shape.
/// - Returns: shape `shape`.
/// - Throws: `TensorError` naming both shapes when `x` does not broadcast to `shape`.
public func broadcast(_ x: Tensor, to shape: [Int]) throws -> Tensor {
    if x.shape == shape { return x }
    guard x.rank <= shape.count, (try? broadcastShapes(x.shape, shape)) == shape else {
        throw TensorError.shapeMismatch("broadcast", x.shape, shape, "the first does not broadcast to the second")
    }
    return broadcastBinary(x, Tensor(scalar: 0), .first, outShape: shape)
}

/// ONNX Expand: `x` broadcast with `shape` in both directions (output `broadcastShapes(x.shape, shape)`).
///
/// - Throws: `TensorError` naming both shapes when they do not broadcast.
public func expand(_ x: Tensor, _ shape: [Int]) throws -> Tensor {
    try broadcast(x, to: try broadcastShapes(x.shape, shape, op: "expand"))
}

/// Backward of `broadcast`/`expand`: the gradient summed back to the input's shape.
///
/// - Parameters: gradOutput: the expanded shape; inputShape: the forward input's shape.
/// - Returns: shape `inputShape`.
public func expandBackward(gradOutput: Tensor, inputShape: [Int]) throws -> Tensor {
    try sumToShape(gradOutput, inputShape)
}

/// Slow reference for `binary` (multi-index arithmetic per element): the oracle for tests.
public func binaryReference(_ a: Tensor, _ b: Tensor, _ op: BinaryOp) throws -> Tensor {
    let out = try broadcastShapes(a.shape, b.shape, op: op.description)
    let sa = broadcastStrides(a.shape, out), sb = broadcastStrides(b.shape, out), so = Tensor.strides(for: out)
    var values = [Float](repeating: 0, count: out.product)
    for flat in values.indices {
        var ia = 0, ib = 0
        for k in out.indices {
            let i = (flat / so[k]) % out[k]
            ia += i * sa[k]
            ib += i * sb[k]
        }
        let x = a.scalars[ia], y = b.scalars[ib]
        switch op {
        case .add: values[flat] = x + y
        case .sub: values[flat] = x - y
        case .mul: values[flat] = x * y
        case .div: values[flat] = x / y
        case .prelu: values[flat] = x >= 0 ? x : x * y
        case .first: values[flat] = x
        }
    }
    return try Tensor(shape: out, scalars: values)
}

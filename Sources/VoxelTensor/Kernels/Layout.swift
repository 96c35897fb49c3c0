// Layout ops (ONNX semantics) and their backward passes: Concat/Split, Flatten, Reshape, Squeeze,
// Unsqueeze, Transpose, Identity, Dropout at inference. Pad is in Pad.swift.
//
// Transpose kernel: output axes whose input strides stay contiguous are merged; each tile copies
// fixed-size chunks of output rows with an odometer over the outer axes.

/// Concat (ONNX, `torch.cat`): joins tensors along `axis`.
///
/// - Parameters: tensors: one or more tensors of equal rank whose extents agree except on `axis`;
///   axis: negative counts from the end.
/// - Returns: the joined tensor; its `axis` extent is the sum of theirs.
/// - Throws: `TensorError` naming the first tensor's shape and the mismatching one.
public func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
    guard let first = tensors.first else { throw TensorError("concat: needs at least one tensor") }
    let a = try normalizedAxis(axis, rank: first.rank, op: "concat")
    for t in tensors.dropFirst() {
        guard t.rank == first.rank, (0..<t.rank).allSatisfy({ $0 == a || t.shape[$0] == first.shape[$0] }) else {
            throw TensorError.shapeMismatch("concat", first.shape, t.shape, "extents must agree except on axis \(a)")
        }
    }
    var outShape = first.shape
    outShape[a] = tensors.map { $0.shape[a] }.reduce(0, +)
    let outer = first.shape[..<a].reduce(1, *)
    let inner = first.shape[(a + 1)...].reduce(1, *)
    let outRow = outShape[a] * inner
    if outShape.product == 0 { return Tensor.zeros(outShape) }
    return Tensor(shape: outShape) { out in
        let o = shared(out)
        var column = 0
        for t in tensors {
            let block = t.shape[a] * inner
            t.withShared { src in
                copyBlocks(count: outer, length: block, from: src, stride: block,
                           to: o + column, stride: outRow)
            }
            column += block
        }
    }
}

/// Copies `count` blocks of `length` floats, block i from `src + i * srcStride` to `dst + i * dstStride`,
/// in parallel pieces of about `elementwiseGrain` floats, so that one large block (a concatenation
/// along channels of one volume) is copied on every core too.
func copyBlocks(count: Int, length: Int, from src: SharedConstPointer<Float>, stride srcStride: Int,
                to dst: UnsafeMutablePointer<Float>, stride dstStride: Int) {
    let d = SharedPointer(dst)
    let pieces = max(1, length / elementwiseGrain)
    let piece = (length + pieces - 1) / pieces
    Parallel.forRanges(count * pieces, grain: max(1, pieces == 1 ? elementwiseGrain / max(1, length) : 1)) { r in
        for k in r {
            let i = k / pieces, lo = (k % pieces) * piece, n = min(length, lo + piece) - lo
            if n > 0 { (d.base + (i * dstStride + lo)).update(from: src.base + (i * srcStride + lo), count: n) }
        }
    }
}

/// Split (ONNX): cuts `x` along `axis` into pieces of the given extents.
///
/// - Parameters: x: any shape; sizes: extents summing to `x.shape[axis]`; axis: negative counts from the end.
/// - Returns: one tensor per size.
/// - Throws: `TensorError` when the sizes do not sum to the axis extent.
public func split(_ x: Tensor, sizes: [Int], axis: Int) throws -> [Tensor] {
    let a = try normalizedAxis(axis, rank: x.rank, op: "split")
    guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == x.shape[a] else {
        throw TensorError("split: sizes \(sizes) do not sum to extent \(x.shape[a]) of axis \(a) in shape \(x.shape)")
    }
    let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *)
    let inRow = x.shape[a] * inner
    var pieces: [Tensor] = []
    var column = 0
    for size in sizes {
        var shape = x.shape
        shape[a] = size
        let block = size * inner, col = column
        if shape.product == 0 { pieces.append(Tensor.zeros(shape)); continue }
        pieces.append(Tensor(shape: shape) { out in
            let o = shared(out)
            x.withShared { src in
                copyBlocks(count: outer, length: block, from: SharedConstPointer(src + col), stride: inRow,
                           to: o.base, stride: block)
            }
        })
        column += block
    }
    return pieces
}

/// Backward of Concat: the gradient split back into the inputs' shapes.
///
/// - Parameters: gradOutput: the concatenated shape; shapes: the forward inputs' shapes; axis: as forward.
/// - Returns: one gradient per input, shaped like it.
/// - Throws: `TensorError` when the shapes do not match the forward's.
public func concatBackward(gradOutput: Tensor, shapes: [[Int]], axis: Int) throws -> [Tensor] {
    let a = try normalizedAxis(axis, rank: gradOutput.rank, op: "concatBackward")
    for s in shapes where s.count != gradOutput.rank || (0..<s.count).contains(where: { $0 != a && s[$0] != gradOutput.shape[$0] }) {
        throw TensorError.shapeMismatch("concatBackward", gradOutput.shape, s, "input shape does not fit the gradient")
    }
    return try split(gradOutput, sizes: shapes.map { $0[a] }, axis: a)
}

/// Flatten (ONNX): `[d0, ..., dn]` to `[d0 * ... * d(axis-1), d(axis) * ... * dn]`.
///
/// - Parameters: x: any shape; axis: in `-rank...rank` (negative counts from the end; 0 gives `[1, count]`).
/// - Returns: a 2D tensor with the same elements.
/// - Throws: `TensorError` when the axis is out of range.
public func flatten(_ x: Tensor, axis: Int = 1) throws -> Tensor {
    let a = axis < 0 ? axis + x.rank : axis
    guard a >= 0 && a <= x.rank else { throw TensorError("flatten: axis \(axis) is out of range for shape \(x.shape)") }
    return try x.reshaped([x.shape[..<a].reduce(1, *), x.shape[a...].reduce(1, *)])
}

/// Backward of Flatten, Reshape, Squeeze and Unsqueeze: the gradient viewed in the input's shape.
///
/// - Parameters: gradOutput: the forward output's shape; inputShape: the forward input's shape.
/// - Returns: shape `inputShape`.
/// - Throws: `TensorError` naming both shapes when the element counts differ.
public func reshapeBackward(gradOutput: Tensor, inputShape: [Int]) throws -> Tensor {
    try gradOutput.reshaped(inputShape)
}

/// The output shape of ONNX Reshape: 0 copies the input extent (unless `allowZero`), -1 is inferred.
///
/// - Throws: `TensorError` naming both shapes when the target cannot hold the input's elements.
public func reshapeTarget(_ shape: [Int], _ target: [Int], allowZero: Bool = false) throws -> [Int] {
    var out = target
    var infer: Int? = nil
    for (i, t) in target.enumerated() {
        switch t {
        case -1:
            guard infer == nil else { throw TensorError.shapeMismatch("reshape", shape, target, "more than one -1") }
            infer = i
        case 0 where !allowZero:
            guard i < shape.count else { throw TensorError.shapeMismatch("reshape", shape, target, "0 at axis \(i) has no input extent to copy") }
            out[i] = shape[i]
        case ..<(-1):
            throw TensorError.shapeMismatch("reshape", shape, target, "negative extent \(t)")
        default: break
        }
    }
    let count = shape.product
    if let i = infer {
        let known = out.enumerated().filter { $0.offset != i }.map(\.element).product
        guard known > 0, count % known == 0 else {
            throw TensorError.shapeMismatch("reshape", shape, target, "cannot infer -1 for \(count) elements")
        }
        out[i] = count / known
    }
    guard out.product == count else { throw TensorError.shapeMismatch("reshape", shape, target, "element counts differ") }
    return out
}

/// Reshape (ONNX): the same elements under `target`, where 0 copies the input extent (unless
/// `allowZero`) and one -1 is inferred.
///
/// - Parameters: x: any shape; target: the new shape with optional 0 and -1 entries.
/// - Returns: shape `reshapeTarget(x.shape, target)`. Backward: `reshapeBackward`.
/// - Throws: `TensorError` naming both shapes when the counts differ.
public func reshape(_ x: Tensor, _ target: [Int], allowZero: Bool = false) throws -> Tensor {
    try x.reshaped(try reshapeTarget(x.shape, target, allowZero: allowZero))
}

/// Squeeze (ONNX): removes size-1 axes (`axes`, or every size-1 axis when nil).
///
/// - Parameters: x: any shape; axes: negative counts from the end. - Returns: x without those axes.
///   Backward: `reshapeBackward`.
/// - Throws: `TensorError` when a given axis does not have extent 1.
public func squeeze(_ x: Tensor, axes: [Int]? = nil) throws -> Tensor {
    let drop: [Int]
    if let axes {
        drop = try normalizedAxes(axes, rank: x.rank, op: "squeeze")
        for a in drop where x.shape[a] != 1 {
            throw TensorError("squeeze: axis \(a) of shape \(x.shape) has extent \(x.shape[a]), not 1")
        }
    } else {
        drop = x.shape.indices.filter { x.shape[$0] == 1 }
    }
    return try x.reshaped(x.shape.indices.filter { !drop.contains($0) }.map { x.shape[$0] })
}

/// Unsqueeze (ONNX): inserts size-1 axes at `axes`, given in the output's rank.
///
/// - Parameters: x: any shape; axes: positions in the output (negative counts from its end).
/// - Returns: x with extent-1 axes inserted. Backward: `reshapeBackward`.
/// - Throws: `TensorError` on out-of-range or repeated axes.
public func unsqueeze(_ x: Tensor, axes: [Int]) throws -> Tensor {
    let rank = x.rank + axes.count
    let add = try normalizedAxes(axes, rank: rank, op: "unsqueeze")
    var shape: [Int] = []
    var next = 0
    for i in 0..<rank {
        if add.contains(i) { shape.append(1) } else { shape.append(x.shape[next]); next += 1 }
    }
    return try x.reshaped(shape)
}

/// Transpose (ONNX, `permute`): output axis i is input axis `permutation[i]`.
///
/// - Parameters: x: any shape; permutation: a permutation of `0..<rank` (nil reverses the axes, as ONNX).
/// - Returns: shape `permutation.map { x.shape[$0] }`.
/// - Throws: `TensorError` when `permutation` is not a permutation of the axes.
public func transpose(_ x: Tensor, permutation: [Int]? = nil) throws -> Tensor {
    let perm = permutation ?? Array((0..<x.rank).reversed())
    guard perm.sorted() == Array(0..<x.rank) else {
        throw TensorError("transpose: \(perm) is not a permutation of the axes of shape \(x.shape)")
    }
    let outShape = perm.map { x.shape[$0] }
    if perm == Array(0..<x.rank) || x.count == 0 { return try x.reshaped(outShape) }
    let inStrides = x.strides
    // Merge output axes that stay contiguous in the input; drop size-1 axes.
    var ext: [Int] = [], str: [Int] = []
    for (i, p) in perm.enumerated() where outShape[i] != 1 {
        if let last = str.last, last == inStrides[p] * outShape[i] {
            ext[ext.count - 1] *= outShape[i]
            str[str.count - 1] = inStrides[p]
        } else {
            ext.append(outShape[i]); str.append(inStrides[p])
        }
    }
    let inner = ext.last ?? 1, innerStride = str.last ?? 1
    let outerExt = Array(ext.dropLast()), outerStr = Array(str.dropLast())
    let rows = x.count / inner
    return Tensor(shape: outShape) { out in
        let o = shared(out)
        x.withShared { src in
            Parallel.forRanges(rows, grain: max(1, elementwiseGrain / inner)) { range in
                var idx = [Int](repeating: 0, count: outerExt.count)
                var rem = range.lowerBound, off = 0
                for k in stride(from: outerExt.count - 1, through: 0, by: -1) {
                    idx[k] = rem % outerExt[k]; rem /= outerExt[k]; off += idx[k] * outerStr[k]
                }
                for r in range {
                    let d = o + r * inner, s = src + off
                    if innerStride == 1 { for j in 0..<inner { d[j] = s[j] } } else {
                        for j in 0..<inner { d[j] = s[j * innerStride] }
                    }
                    var k = outerExt.count - 1
                    while k >= 0 {
                        idx[k] += 1; off += outerStr[k]
                        if idx[k] < outerExt[k] { break }
                        off -= outerStr[k] * outerExt[k]; idx[k] = 0; k -= 1
                    }
                }
            }
        }
    }
}

/// Backward of Transpose: the gradient transposed by the inverse permutation.
///
/// - Parameters: gradOutput: the forward output's shape; permutation: the forward's (nil: reversed).
/// - Returns: the gradient in the forward input's shape.
/// - Throws: `TensorError` when `permutation` is not a permutation of the axes.
public func transposeBackward(gradOutput: Tensor, permutation: [Int]? = nil) throws -> Tensor {
    let perm = permutation ?? Array((0..<gradOutput.rank).reversed())
    guard perm.sorted() == Array(0..<gradOutput.rank) else {
        throw TensorError("transposeBackward: \(perm) is not a permutation of the axes of shape \(gradOutput.shape)")
    }
    var inverse = perm
    for (i, p) in perm.enumerated() { inverse[p] = i }
    return try transpose(gradOutput, permutation: inverse)
}

/// Identity (ONNX Identity; also Dropout at inference, which ONNX and PyTorch `eval()` define as the
/// identity): returns `x`. Its backward is the identity on the gradient.
///
/// - Parameter x: any shape. - Returns: `x`.
public func identity(_ x: Tensor) -> Tensor { x }

/// Dropout at inference (ONNX Dropout with `training_mode` false, PyTorch `eval()`): the identity.
/// Explanations never run in training mode, so no mask is drawn. Backward: the gradient unchanged.
///
/// - Parameter x: any shape. - Returns: `x`.
public func dropoutInference(_ x: Tensor) -> Tensor { x }

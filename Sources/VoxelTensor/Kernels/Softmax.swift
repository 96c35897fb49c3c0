// Softmax and LogSoftmax along one axis (PyTorch `dim`, ONNX opset >= 13 `axis`), with backward passes.
// The tensor is viewed as [outer, L, inner]; a tile is one outer index times a chunk of the inner axis,
// so reductions along L run over contiguous inner chunks.
import Foundation

private let innerChunk = 256

/// Runs `body(base, stride, n)` over every softmax line of `shape` along `axis`, tiled in parallel.
/// `body(line start, chunk of inner indices)` gets the line offset of inner index 0 of its chunk.
private func forEachLineChunk(shape: [Int], axis: Int,
                              _ body: @escaping @Sendable (_ base: Int, _ length: Int, _ inner: Int, _ width: Int) -> Void) {
    let outer = shape[..<axis].reduce(1, *)
    let length = shape[axis]
    let inner = shape[(axis + 1)...].reduce(1, *)
    let chunks = (inner + innerChunk - 1) / innerChunk
    Parallel.forEach(outer * chunks) { t in
        let o = t / chunks, c0 = (t % chunks) * innerChunk
        body(o * length * inner + c0, length, inner, min(innerChunk, inner - c0))
    }
}

/// Softmax along `axis`: `exp(x - max) / sum(exp(x - max))`.
///
/// - Parameters: x: any shape of rank >= 1; axis: the axis to normalise (negative counts from the end).
/// - Returns: shape `x.shape`; each line along `axis` sums to 1.
/// - Throws: `TensorError` on a bad axis.
public func softmax(_ x: Tensor, axis: Int = -1) throws -> Tensor {
    try softmaxForward(x, axis: axis, log: false)
}

/// LogSoftmax along `axis`: `x - max - log(sum(exp(x - max)))`.
///
/// - Parameters: x: any shape of rank >= 1; axis: the axis (negative counts from the end).
/// - Returns: shape `x.shape`.
/// - Throws: `TensorError` on a bad axis.
public func logSoftmax(_ x: Tensor, axis: Int = -1) throws -> Tensor {
    try softmaxForward(x, axis: axis, log: true)
}

private func softmaxForward(_ x: Tensor, axis: Int, log: Bool) throws -> Tensor {
    let a = try normalizedAxis(axis, rank: x.rank, op: log ? "logSoftmax" : "softmax")
    if x.count == 0 { return x }
    return Tensor(shape: x.shape) { out in
        let o = shared(out)
        x.withShared { src in
            forEachLineChunk(shape: x.shape, axis: a) { base, length, inner, width in
                var m = [Float](repeating: -.infinity, count: width)
                var s = [Float](repeating: 0, count: width)
                for l in 0..<length {
                    let p = src + (base + l * inner)
                    for j in 0..<width where p[j] > m[j] || p[j].isNaN { m[j] = p[j] }
                }
                for l in 0..<length {
                    let p = src + (base + l * inner), q = o + (base + l * inner)
                    for j in 0..<width { let e = Foundation.exp(p[j] - m[j]); q[j] = e; s[j] += e }
                }
                for l in 0..<length {
                    let p = src + (base + l * inner), q = o + (base + l * inner)
                    if log {
                        for j in 0..<width { q[j] = p[j] - m[j] - Foundation.log(s[j]) }
                    } else {
                        for j in 0..<width { q[j] /= s[j] }
                    }
                }
            }
        }
    }
}

/// Backward of Softmax from its output `y`: `y * (g - sum(g * y, axis))`.
///
/// - Parameters: gradOutput, output: the same shape; axis: the forward axis.
/// - Returns: gradient w.r.t. the input, shape `output.shape`.
/// - Throws: `TensorError` naming both shapes when they differ, or on a bad axis.
public func softmaxBackward(gradOutput: Tensor, output: Tensor, axis: Int = -1) throws -> Tensor {
    try softmaxBackwardImpl(gradOutput: gradOutput, output: output, axis: axis, log: false)
}

/// Backward of LogSoftmax from its output `y`: `g - exp(y) * sum(g, axis)`.
///
/// - Parameters: gradOutput, output: the same shape; axis: the forward axis.
/// - Returns: gradient w.r.t. the input, shape `output.shape`.
/// - Throws: `TensorError` naming both shapes when they differ, or on a bad axis.
public func logSoftmaxBackward(gradOutput: Tensor, output: Tensor, axis: Int = -1) throws -> Tensor {
    try softmaxBackwardImpl(gradOutput: gradOutput, output: output, axis: axis, log: true)
}

private func softmaxBackwardImpl(gradOutput: Tensor, output: Tensor, axis: Int, log: Bool) throws -> Tensor {
    let op = log ? "logSoftmaxBackward" : "softmaxBackward"
    try requireSameShape(op, gradOutput, output)
    let a = try normalizedAxis(axis, rank: output.rank, op: op)
    if output.count == 0 { return output }
    return Tensor(shape: output.shape) { out in
        let o = shared(out)
        output.withShared { y in gradOutput.withShared { g in
            forEachLineChunk(shape: output.shape, axis: a) { base, length, inner, width in
                var dot = [Float](repeating: 0, count: width)
                for l in 0..<length {
                    let off = base + l * inner
                    for j in 0..<width { dot[j] += log ? g[off + j] : g[off + j] * y[off + j] }
                }
                for l in 0..<length {
                    let off = base + l * inner
                    for j in 0..<width {
                        o[off + j] = log ? g[off + j] - Foundation.exp(y[off + j]) * dot[j]
                                         : y[off + j] * (g[off + j] - dot[j])
                    }
                }
            }
        } }
    }
}

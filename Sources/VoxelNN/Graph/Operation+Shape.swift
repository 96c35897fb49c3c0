import VoxelTensor

extension Operation {
    /// The output shape of the operation for inputs of the given shapes.
    /// - Throws: `TensorError` naming the shapes when they do not fit the operation.
    public func outputShape(_ s: [[Int]]) throws -> [Int] {
        func requireInputs(_ n: Int) throws {
            guard s.count == n else { throw TensorError("\(name) takes \(n) input(s), got \(s.count)") }
        }
        func require5D(_ shape: [Int]) throws {
            guard shape.count == 5 else { throw TensorError("\(name) expects [N, C, D, H, W], got \(shape)") }
        }
        switch self {
        case .conv(let c):
            try requireInputs(c.addsResidual ? 2 : 1)
            let g = try Conv3DGeometry(op: "Conv", inputShape: s[0], weightShape: c.weight.shape, stride: c.stride,
                                       padding: c.padding, dilation: c.dilation, groups: c.groups)
            if c.addsResidual, s[1] != g.outputShape {
                throw TensorError.shapeMismatch("Conv", s[1], g.outputShape, "the residual must have the output's shape")
            }
            return g.outputShape
        case .batchNorm(let bn):
            try requireInputs(1)
            guard s[0].count >= 2, s[0][1] == bn.channels else {
                throw TensorError.shapeMismatch("BatchNormalization", s[0], bn.scale.shape, "channels")
            }
            return s[0]
        case .activation, .sigmoid, .tanh, .identity:
            try requireInputs(1)
            return s[0]
        case .prelu(let slope):
            try requireInputs(1)
            let b = try VoxelTensor.broadcastShapes(s[0], slope.shape, op: "PRelu")
            guard b == s[0] else { throw TensorError.shapeMismatch("PRelu", s[0], slope.shape, "slope must broadcast to the input") }
            return s[0]
        case .softmax(let axis):
            try requireInputs(1)
            guard axis >= -s[0].count && axis < s[0].count else {
                throw TensorError("Softmax axis \(axis) out of range for shape \(s[0])")
            }
            return s[0]
        case .maxPool(let p), .avgPool(let p):
            try requireInputs(1)
            try require5D(s[0])
            return try VoxelTensor.pool3dOutputShape(inputShape: s[0], kernel: p.kernel, stride: p.stride,
                                                     padding: p.padding, dilation: p.dilation, ceilMode: p.ceilMode)
        case .globalAveragePool, .globalMaxPool:
            try requireInputs(1)
            guard s[0].count >= 3 else { throw TensorError("\(name) expects [N, C, ...], got \(s[0])") }
            return Array(s[0].prefix(2)) + [Int](repeating: 1, count: s[0].count - 2)
        case .reduceMean(let axes, let keep), .reduceMax(let axes, let keep):
            try requireInputs(1)
            let r = s[0].count
            let norm = try axes.map { a -> Int in
                guard a >= -r && a < r else { throw TensorError("\(name) axis \(a) out of range for shape \(s[0])") }
                return a < 0 ? a + r : a
            }
            let all = axes.isEmpty ? Set(0..<r) : Set(norm)
            return keep ? s[0].enumerated().map { all.contains($0.offset) ? 1 : $0.element }
                        : s[0].enumerated().filter { !all.contains($0.offset) }.map(\.element)
        case .flatten(let axis):
            try requireInputs(1)
            let r = s[0].count
            let a = axis < 0 ? axis + r : axis
            guard a >= 0 && a <= r else { throw TensorError("Flatten axis \(axis) out of range for shape \(s[0])") }
            return [s[0][..<a].reduce(1, *), s[0][a...].reduce(1, *)]
        case .reshape(let rest):
            try requireInputs(1)
            guard let n = s[0].first else { throw TensorError("Reshape of a scalar") }
            let known = rest.filter { $0 != -1 }.reduce(1, *)
            let inner = s[0].dropFirst().reduce(1, *)
            var out = rest
            if let i = rest.firstIndex(of: -1) {
                guard known > 0, inner % known == 0 else { throw TensorError.shapeMismatch("Reshape", s[0], [n] + rest) }
                out[i] = inner / known
            }
            guard out.reduce(1, *) == inner, out.allSatisfy({ $0 >= 0 }) else {
                throw TensorError.shapeMismatch("Reshape", s[0], [n] + rest, "element counts differ")
            }
            return [n] + out
        case .transpose(let perm):
            try requireInputs(1)
            guard perm.sorted() == Array(0..<s[0].count) else {
                throw TensorError("Transpose permutation \(perm) does not fit shape \(s[0])")
            }
            return perm.map { s[0][$0] }
        case .gemm(let g):
            guard s.count == 2 || s.count == 3 else { throw TensorError("Gemm takes 2 or 3 inputs, got \(s.count)") }
            guard s[0].count == 2, s[1].count == 2 else { throw TensorError.shapeMismatch("Gemm", s[0], s[1], "Gemm takes 2D inputs") }
            let (m, k) = g.transA ? (s[0][1], s[0][0]) : (s[0][0], s[0][1])
            let (k2, n) = g.transB ? (s[1][1], s[1][0]) : (s[1][0], s[1][1])
            guard k == k2 else { throw TensorError.shapeMismatch("Gemm", s[0], s[1], "inner dimensions") }
            if s.count == 3 { _ = try VoxelTensor.broadcastShapes([m, n], s[2], op: "Gemm") }
            return [m, n]
        case .matMul:
            try requireInputs(2)
            let a = s[0], b = s[1]
            guard !a.isEmpty, !b.isEmpty else { throw TensorError.shapeMismatch("MatMul", a, b, "scalars") }
            let a2 = a.count == 1 ? [1] + a : a, b2 = b.count == 1 ? b + [1] : b
            guard a2[a2.count - 1] == b2[b2.count - 2] else { throw TensorError.shapeMismatch("MatMul", a, b, "inner dimensions") }
            let batch = try VoxelTensor.broadcastShapes(Array(a2.dropLast(2)), Array(b2.dropLast(2)), op: "MatMul")
            var out = batch + [a2[a2.count - 2], b2[b2.count - 1]]
            if a.count == 1 { out.remove(at: out.count - 2) }
            if b.count == 1 { out.removeLast() }
            return out
        case .binary(let op):
            try requireInputs(2)
            return try VoxelTensor.broadcastShapes(s[0], s[1], op: op.description)
        case .concat(let axis):
            guard let first = s.first else { throw TensorError("Concat of no inputs") }
            let r = first.count
            let a = axis < 0 ? axis + r : axis
            guard a >= 0 && a < r else { throw TensorError("Concat axis \(axis) out of range for shape \(first)") }
            var out = first
            for shape in s.dropFirst() {
                guard shape.count == r, (0..<r).allSatisfy({ $0 == a || shape[$0] == first[$0] }) else {
                    throw TensorError.shapeMismatch("Concat", first, shape, "all axes but \(a) must agree")
                }
                out[a] += shape[a]
            }
            return out
        case .pad(let pads, _):
            try requireInputs(1)
            let r = s[0].count
            guard pads.count == 2 * r else { throw TensorError("Pad: \(pads.count) pads do not fit shape \(s[0])") }
            let out = (0..<r).map { s[0][$0] + pads[$0] + pads[r + $0] }
            guard out.allSatisfy({ $0 > 0 }) else { throw TensorError("Pad: pads \(pads) leave nothing of shape \(s[0])") }
            return out
        case .resize(let spec):
            try requireInputs(1)
            try require5D(s[0])
            return Array(s[0].prefix(2)) + (try spec.outputSize(Size3(s[0][2], s[0][3], s[0][4]))).array
        }
    }
}

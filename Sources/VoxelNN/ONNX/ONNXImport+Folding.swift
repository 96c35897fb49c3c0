import VoxelTensor

extension ONNXImporter {
    /// Evaluates at load time a node whose inputs are all constants, or a `Shape` of an activation
    /// (whose shape is known once the input size is).
    /// A folded result that keeps exact integers when the source had them (the values moved, not
    /// computed, so the Float32 copies of shape-sized integers are exact).
    func exactly(_ source: ONNXConstant, _ result: Tensor) -> ONNXConstant {
        ONNXConstant(result, integers: source.integers == nil ? nil : result.scalars.map { Int64($0) })
    }

    func fold(_ node: ONNXNode) throws -> ONNXConstant {
        func c(_ i: Int) throws -> ONNXConstant {
            guard let k = try constant(node, i, "input \(i)") else { throw error(node, "input \(i) is missing") }
            return k
        }
        switch node.opType {
        case "Constant":
            guard let attr = node.attributes.first else { throw error(node, "has no value") }
            switch attr.value {
            case .tensor(let t): return ONNXConstant(t)
            case .float(let f): return ONNXConstant(Tensor(scalar: f))
            case .floats(let fs): return ONNXConstant(try Tensor(shape: [fs.count], scalars: fs))
            case .int(let i): return ONNXConstant(ints: [i], shape: [])
            case .ints(let v): return ONNXConstant(ints: v)
            default: throw error(node, "constant attribute '\(attr.name)' of kind \(attr.value.kindName) is not supported")
            }
        case "Shape":
            let s: [Int]
            switch try binding(node, 0) {
            case .value(let v)?: s = shape(v)
            case .constant(let k)?: s = k.tensor.shape
            case nil: throw error(node, "has no input")
            }
            let r = s.count
            var start = int(node, "start", 0), end = int(node, "end", r)
            start = max(0, min(r, start < 0 ? start + r : start)); end = max(0, min(r, end < 0 ? end + r : end))
            return ONNXConstant(ints: s[start..<max(start, end)].map { Int64($0) })
        case "Identity", "Dropout":
            return try c(0)
        case "Cast":
            let x = try c(0)
            let to = ONNXDataType(rawValue: Int32(int(node, "to", 1)))
            if to.isInteger {
                let ints = x.integers ?? x.tensor.scalars.map { Int64($0.rounded(.towardZero)) }
                return ONNXConstant(ints: ints, shape: x.tensor.shape)
            }
            return ONNXConstant(x.tensor)
        case "Gather":
            let data = try c(0), idx = try c(1)
            let r = data.tensor.rank
            var axis = int(node, "axis", 0)
            if axis < 0 { axis += r }
            guard axis >= 0 && axis < r else { throw error(node, "axis out of range for \(data.tensor.shape)") }
            let s = data.tensor.shape
            let outer = s[..<axis].reduce(1, *), inner = s[(axis + 1)...].reduce(1, *), n = s[axis]
            let indices = try idx.ints.map { i -> Int in
                let j = i < 0 ? i + n : i
                guard j >= 0 && j < n else { throw error(node, "index \(i) out of range for axis of size \(n)") }
                return j
            }
            var vals: [Float] = [], ints: [Int64] = []
            let srcInts = data.integers
            for o in 0..<outer { for j in indices { for k in 0..<inner {
                let off = (o * n + j) * inner + k
                vals.append(data.tensor.scalars[off])
                if let srcInts { ints.append(srcInts[off]) }
            } } }
            let shape = Array(s[..<axis]) + idx.tensor.shape + Array(s[(axis + 1)...])
            return ONNXConstant(try Tensor(shape: shape, scalars: vals), integers: srcInts == nil ? nil : ints)
        case "Slice":
            let data = try c(0)
            let starts = opset < 10 ? ints(node, "starts") ?? [] : try c(1).ints
            let ends = opset < 10 ? ints(node, "ends") ?? [] : try c(2).ints
            let axes = opset < 10 ? ints(node, "axes") : try constant(node, 3, "axes")?.ints
            let steps = try constant(node, 4, "steps")?.ints
            return try exactly(data, VoxelTensor.slice(data.tensor, starts: starts, ends: ends, axes: axes, steps: steps))
        case "Transpose":
            let data = try c(0)
            return try exactly(data, VoxelTensor.transpose(data.tensor, permutation: ints(node, "perm")))
        case "Concat":
            let parts = try node.inputs.indices.map { try c($0) }
            guard parts.allSatisfy({ $0.tensor.rank <= 1 }) else {
                return ONNXConstant(try VoxelTensor.concat(parts.map(\.tensor), axis: int(node, "axis", 0)))
            }
            let allInts = parts.allSatisfy { $0.integers != nil }
            let vals = parts.flatMap(\.tensor.scalars)
            return ONNXConstant(try Tensor(shape: [vals.count], scalars: vals), integers: allInts ? parts.flatMap { $0.integers! } : nil)
        case "Unsqueeze", "Squeeze":
            let x = try c(0)
            let axes = try axes(node, inputIndex: 1) ?? []
            let s = x.tensor.shape
            var out: [Int]
            if node.opType == "Squeeze" {
                let norm = Set(axes.map { $0 < 0 ? $0 + s.count : $0 })
                out = axes.isEmpty ? s.filter { $0 != 1 } : s.enumerated().filter { !norm.contains($0.offset) }.map(\.element)
            } else {
                let r = s.count + axes.count
                let norm = Set(axes.map { $0 < 0 ? $0 + r : $0 })
                var it = s.makeIterator()
                out = (0..<r).map { norm.contains($0) ? 1 : it.next() ?? 1 }
            }
            return ONNXConstant(try x.tensor.reshaped(out), integers: x.integers)
        case "Reshape":
            let x = try c(0)
            var t = try c(1).ints
            for i in t.indices where t[i] == 0 && i < x.tensor.rank { t[i] = x.tensor.shape[i] }
            if let m = t.firstIndex(of: -1) {
                let known = t.filter { $0 != -1 }.reduce(1, *)
                guard known > 0 else { throw error(node, "cannot reshape \(x.tensor.shape) to \(t)") }
                t[m] = x.tensor.count / known
            }
            return ONNXConstant(try x.tensor.reshaped(t), integers: x.integers)
        case "ConstantOfShape":
            let s = try c(0).ints
            guard s.allSatisfy({ $0 >= 0 }), s.reduce(1, *) <= 1 << 26 else { throw error(node, "shape \(s) is not a valid constant size") }
            var fill: Float = 0, fillInt: Int64? = nil
            if case .tensor(let t)? = node.attribute("value")?.value {
                fill = t.value.scalars.first ?? 0
                fillInt = t.integers?.first
            }
            let count = s.reduce(1, *)
            return ONNXConstant(Tensor(shape: s, repeating: fill), integers: fillInt.map { [Int64](repeating: $0, count: count) })
        case "Range":
            let start = try c(0), limit = try c(1), delta = try c(2)
            let isInt = start.integers != nil
            let a = start.tensor.scalars[0], b = limit.tensor.scalars[0], d = delta.tensor.scalars[0]
            guard d != 0 else { throw error(node, "delta is zero") }
            let n = max(0, Int(((b - a) / d).rounded(.up)))
            guard n <= 1 << 24 else { throw error(node, "range of \(n) values is too long to fold") }
            let vals = (0..<n).map { a + Float($0) * d }
            return ONNXConstant(try Tensor(shape: [n], scalars: vals), integers: isInt ? vals.map { Int64($0) } : nil)
        case "Add", "Sub", "Mul", "Div":
            let a = try c(0), b = try c(1)
            let op: BinaryOp = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div][node.opType]!
            if let ai = a.integers, let bi = b.integers, a.tensor.shape == b.tensor.shape || bi.count == 1 || ai.count == 1 {
                let n = max(ai.count, bi.count)
                let vals: [Int64] = try (0..<n).map { i in
                    let x = ai[ai.count == 1 ? 0 : i], y = bi[bi.count == 1 ? 0 : i]
                    switch op {
                    case .add: return x &+ y
                    case .sub: return x &- y
                    case .mul: return x &* y
                    default:
                        guard y != 0 else { throw error(node, "integer division by zero") }
                        return x / y
                    }
                }
                return ONNXConstant(ints: vals, shape: ai.count >= bi.count ? a.tensor.shape : b.tensor.shape)
            }
            return ONNXConstant(try binary(a.tensor, b.tensor, op))
        default:
            throw error(node, "operator \(node.opType) on constants cannot be folded at load time")
        }
    }
}

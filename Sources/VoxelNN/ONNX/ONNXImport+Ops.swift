import VoxelTensor

extension ONNXImporter {
    /// The window of a Conv or pooling node: kernel, stride, dilation and padding (auto_pad resolved
    /// against the input's spatial size).
    func window(_ node: ONNXNode, kernel: [Int], input: [Int]) throws -> (kernel: Size3, stride: Size3, dilation: Size3, padding: Padding3) {
        guard kernel.count == 3, let k = Size3(kernel) else {
            throw error(node, "kernel_shape \(kernel) is not 3D; Voxplain runs 3D models")
        }
        let s = Size3(ints(node, "strides") ?? [1, 1, 1]), d = Size3(ints(node, "dilations") ?? [1, 1, 1])
        guard let stride = s, let dilation = d, stride.array.allSatisfy({ $0 > 0 }), dilation.array.allSatisfy({ $0 > 0 }) else {
            throw error(node, "strides and dilations must be three positive integers")
        }
        let autoPad = string(node, "auto_pad", "NOTSET")
        switch autoPad {
        case "NOTSET":
            let p = ints(node, "pads") ?? [0, 0, 0, 0, 0, 0]
            guard p.count == 6, p.allSatisfy({ $0 >= 0 }) else { throw error(node, "pads \(p) must be six non-negative integers") }
            return (k, stride, dilation, Padding3(begin: Size3(p[0], p[1], p[2]), end: Size3(p[3], p[4], p[5])))
        case "VALID":
            return (k, stride, dilation, 0)
        case "SAME_UPPER", "SAME_LOWER":
            var begin = [0, 0, 0], end = [0, 0, 0]
            for a in 0..<3 {
                let n = input[2 + a], st = stride.array[a]
                let total = max(((n + st - 1) / st - 1) * st + (k.array[a] - 1) * dilation.array[a] + 1 - n, 0)
                begin[a] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                end[a] = total - begin[a]
            }
            return (k, stride, dilation, Padding3(begin: Size3(begin)!, end: Size3(end)!))
        default:
            throw error(node, "auto_pad '\(autoPad)' is not an ONNX value")
        }
    }

    /// Axes from the attribute (older opsets) or the second input (newer opsets).
    func axes(_ node: ONNXNode, inputIndex: Int) throws -> [Int]? {
        if let a = ints(node, "axes") { return a }
        return try constant(node, inputIndex, "axes")?.ints
    }

    mutating func importNode(_ node: ONNXNode) throws {
        // Fold any node whose inputs are all load-time constants (shape arithmetic and the like).
        let present = node.inputs.enumerated().filter { !$0.element.isEmpty }
        let allConstant = try present.allSatisfy { i, _ in if case .constant? = try binding(node, i) { return true }; return false }
        if node.opType == "Constant" || node.opType == "Shape" || (allConstant && !present.isEmpty) {
            try bindConstant(node, try fold(node))
            return
        }
        switch node.opType {
        case "Conv":
            let x = try value(node, 0)
            guard let w = try constant(node, 1, "the weight") else { throw error(node, "has no weight") }
            let b = try constant(node, 2, "the bias")
            let win = try window(node, kernel: ints(node, "kernel_shape") ?? Array(w.tensor.shape.dropFirst(2)), input: shape(x))
            let spec = try ConvSpec(weight: w.tensor, bias: b?.tensor, stride: win.stride, padding: win.padding,
                                    dilation: win.dilation, groups: int(node, "group", 1))
            try emit(node, .conv(spec), [x])
        case "BatchNormalization":
            guard int(node, "training_mode", 0) == 0 else { throw error(node, "is in training mode; export the model with model.eval()") }
            let x = try value(node, 0)
            guard let scale = try constant(node, 1, "scale"), let bias = try constant(node, 2, "bias"),
                  let mean = try constant(node, 3, "mean"), let variance = try constant(node, 4, "variance") else {
                throw error(node, "needs scale, bias, mean and variance")
            }
            try emit(node, .batchNorm(try BatchNormSpec(mean: mean.tensor, variance: variance.tensor, scale: scale.tensor,
                                                        shift: bias.tensor, epsilon: float(node, "epsilon", 1e-5))), [x])
        case "Relu":
            try emit(node, .activation(.relu), [try value(node, 0)])
        case "LeakyRelu":
            try emit(node, .activation(.leakyRelu(alpha: float(node, "alpha", 0.01))), [try value(node, 0)])
        case "Clip":
            let lo = opset < 11 ? float(node, "min", -.infinity) : try constant(node, 1, "min")?.tensor.scalars.first ?? -.infinity
            let hi = opset < 11 ? float(node, "max", .infinity) : try constant(node, 2, "max")?.tensor.scalars.first ?? .infinity
            try emit(node, .activation(.clip(min: lo, max: hi)), [try value(node, 0)])
        case "PRelu":
            guard let slope = try constant(node, 1, "the slope") else { throw error(node, "has no slope") }
            try emit(node, .prelu(slope: slope.tensor), [try value(node, 0)])
        case "Sigmoid":
            try emit(node, .sigmoid, [try value(node, 0)])
        case "Tanh":
            try emit(node, .tanh, [try value(node, 0)])
        case "Softmax":
            let x = try value(node, 0)
            let rank = shape(x).count
            let axis = int(node, "axis", opset < 13 ? 1 : -1)
            if opset < 13 && (axis < 0 ? axis + rank : axis) != rank - 1 {
                throw error(node, "Softmax before opset 13 flattens from axis \(axis); only the last axis is supported")
            }
            try emit(node, .softmax(axis: axis), [x])
        case "MaxPool", "AveragePool":
            let x = try value(node, 0)
            guard let k = ints(node, "kernel_shape") else { throw error(node, "has no kernel_shape") }
            let win = try window(node, kernel: k, input: shape(x))
            let spec = PoolSpec(kernel: win.kernel, stride: win.stride, padding: win.padding, dilation: win.dilation,
                                ceilMode: int(node, "ceil_mode", 0) != 0,
                                countIncludePad: int(node, "count_include_pad", 0) != 0)
            if node.opType == "AveragePool" && spec.dilation != Size3(1) { throw error(node, "dilated average pooling is not supported") }
            try emit(node, node.opType == "MaxPool" ? .maxPool(spec) : .avgPool(spec), [x])
        case "GlobalAveragePool":
            try emit(node, .globalAveragePool, [try value(node, 0)])
        case "GlobalMaxPool":
            try emit(node, .globalMaxPool, [try value(node, 0)])
        case "ReduceMean", "ReduceMax":
            let x = try value(node, 0)
            let axes = try axes(node, inputIndex: 1) ?? []
            if axes.isEmpty && int(node, "noop_with_empty_axes", 0) != 0 { try emit(node, .identity, [x]); return }
            let keep = int(node, "keepdims", 1) != 0
            try emit(node, node.opType == "ReduceMean" ? .reduceMean(axes: axes, keepDims: keep) : .reduceMax(axes: axes, keepDims: keep), [x])
        case "Flatten":
            try emit(node, .flatten(axis: int(node, "axis", 1)), [try value(node, 0)])
        case "Reshape":
            let x = try value(node, 0)
            guard let target = try constant(node, 1, "the target shape")?.ints else { throw error(node, "has no target shape") }
            try emit(node, .reshape(rest: try batchKeepingRest(node, from: shape(x), to: target, allowZero: int(node, "allowzero", 0) != 0)), [x])
        case "Squeeze", "Unsqueeze":
            let x = try value(node, 0)
            let s = shape(x)
            guard let axes = try axes(node, inputIndex: 1) else { throw error(node, "has no axes") }
            var out: [Int]
            if node.opType == "Squeeze" {
                let r = s.count
                let norm = Set(axes.map { $0 < 0 ? $0 + r : $0 })
                out = axes.isEmpty ? s.filter { $0 != 1 } : s.enumerated().filter { !norm.contains($0.offset) }.map(\.element)
                if norm.contains(0) || (axes.isEmpty && s.first == 1) { throw error(node, "squeezes the batch axis, which Voxplain keeps") }
            } else {
                let r = s.count + axes.count
                let norm = Set(axes.map { $0 < 0 ? $0 + r : $0 })
                if norm.contains(0) { throw error(node, "inserts an axis before the batch axis, which Voxplain keeps first") }
                var it = s.makeIterator()
                out = (0..<r).map { norm.contains($0) ? 1 : it.next() ?? 1 }
            }
            try emit(node, .reshape(rest: Array(out.dropFirst())), [x])
        case "Transpose":
            let x = try value(node, 0)
            let perm = ints(node, "perm") ?? Array((0..<shape(x).count).reversed())
            guard perm.first == 0 else { throw error(node, "moves the batch axis (perm \(perm)), which Voxplain keeps first") }
            try emit(node, .transpose(permutation: perm), [x])
        case "Gemm":
            var inputs = [try valueOrConstant(node, 0), try valueOrConstant(node, 1)]
            if try binding(node, 2) != nil { inputs.append(try valueOrConstant(node, 2)) }
            try emit(node, .gemm(GemmSpec(alpha: float(node, "alpha", 1), beta: float(node, "beta", 1),
                                          transA: int(node, "transA", 0) != 0, transB: int(node, "transB", 0) != 0)), inputs)
        case "MatMul":
            try emit(node, .matMul, [try valueOrConstant(node, 0), try valueOrConstant(node, 1)])
        case "Add", "Sub", "Mul", "Div":
            let op: BinaryOp = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div][node.opType]!
            try emit(node, .binary(op), [try valueOrConstant(node, 0), try valueOrConstant(node, 1)])
        case "Concat":
            guard case .int? = node.attribute("axis")?.value else { throw error(node, "has no axis") }
            let inputs = try node.inputs.indices.map { try valueOrConstant(node, $0) }
            try emit(node, .concat(axis: int(node, "axis", 1)), inputs)
        case "Pad":
            let x = try value(node, 0)
            let mode = string(node, "mode", "constant")
            guard ["constant", "edge", "reflect"].contains(mode) else { throw error(node, "pad mode '\(mode)' is not supported (constant, edge or reflect)") }
            let rank = shape(x).count
            guard let p = opset < 11 ? ints(node, "pads") : try constant(node, 1, "pads")?.ints else { throw error(node, "has no pads") }
            let value = opset < 11 ? float(node, "value", 0) : try constant(node, 2, "the pad value")?.tensor.scalars.first ?? 0
            var full = [Int](repeating: 0, count: 2 * rank)
            if let axes = try constant(node, 3, "axes")?.ints {
                guard p.count == 2 * axes.count else { throw error(node, "pads \(p) do not fit axes \(axes)") }
                for (i, a) in axes.enumerated() { let a = a < 0 ? a + rank : a; full[a] = p[i]; full[rank + a] = p[axes.count + i] }
            } else {
                guard p.count == 2 * rank else { throw error(node, "pads \(p) do not fit rank \(rank)") }
                full = p
            }
            guard full[0] == 0, full[rank] == 0 else {
                throw error(node, "pads \(full) pad the batch axis, which Voxplain keeps as it is")
            }
            let padMode: PadMode = mode == "edge" ? .edge : mode == "reflect" ? .reflect : .constant(value)
            try emit(node, .pad(pads: full, mode: padMode), [x])
        case "Resize":
            try importResize(node)
        case "Dropout", "Identity":
            try emit(node, .identity, [try value(node, 0)])
        default:
            throw error(node, "operator \(node.opType) depends on the input's values and cannot be folded at load time")
        }
    }

    /// The target of a Reshape as the sizes after the batch axis; the batch axis must be kept.
    func batchKeepingRest(_ node: ONNXNode, from s: [Int], to target: [Int], allowZero: Bool) throws -> [Int] {
        guard let first = target.first else { throw error(node, "reshapes to a scalar") }
        var t = target
        if !allowZero { for i in t.indices where t[i] == 0 { guard i < s.count else { throw error(node, "copies axis \(i) that \(s) lacks") }; t[i] = s[i] } }
        let rest = Array(t.dropFirst())
        let batchKept = first == s[0] || (first == -1 && !rest.contains(-1) && rest.reduce(1, *) == s.dropFirst().reduce(1, *))
        guard batchKept else { throw error(node, "reshapes \(s) to \(target), mixing the batch axis; Voxplain keeps the batch axis first") }
        return rest
    }

    mutating func importResize(_ node: ONNXNode) throws {
        let x = try value(node, 0)
        let s = shape(x)
        let modeName = string(node, "mode", "nearest")
        let coordName = string(node, "coordinate_transformation_mode", "half_pixel")
        let roundName = string(node, "nearest_mode", "round_prefer_floor")
        let mode: ResampleMode
        switch modeName {
        case "linear": mode = .trilinear
        case "nearest": mode = .nearest
        default: throw error(node, "resize mode '\(modeName)' is not supported (linear or nearest)")
        }
        guard let coordinates = ResizeCoordinateTransform(rawValue: coordName) else {
            throw error(node, "coordinate_transformation_mode '\(coordName)' is not supported (\(ResizeCoordinateTransform.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let rounding = NearestRounding(rawValue: roundName) else { throw error(node, "nearest_mode '\(roundName)' is not supported") }
        if let axes = ints(node, "axes"), axes != [2, 3, 4] && axes != [-3, -2, -1] {
            throw error(node, "resizes axes \(axes); only the three spatial axes may change")
        }
        let sizes = try constant(node, 3, "sizes")?.ints
        let scales = try constant(node, 2, "scales")?.tensor.scalars
        var spec = ResizeSpec(mode: mode, coordinates: coordinates, rounding: rounding)
        if let sizes, !sizes.isEmpty {
            let spatial = sizes.count == 3 ? sizes : Array(sizes.suffix(3))
            guard sizes.count == 3 || (sizes.count == 5 && sizes[1] == s[1]) else {
                throw error(node, "resizes \(s) to \(sizes); only the spatial axes may change")
            }
            spec.size = Size3(spatial)
        } else if let scales, !scales.isEmpty {
            let spatial = scales.count == 3 ? scales : Array(scales.suffix(3))
            guard scales.count == 3 || (scales.count == 5 && scales[0] == 1 && scales[1] == 1) else {
                throw error(node, "scales \(scales) change the batch or channel axis")
            }
            spec.scales = spatial.map(Double.init)
        } else {
            throw error(node, "needs constant scales or sizes")
        }
        try emit(node, .resize(spec), [x])
    }
}

import VoxelTensor

/// Activations and their gradients at target layers, from one forward and one backward pass.
public struct GradientResult: Sendable {
    /// The model's outputs, in the order of `Graph.outputs`.
    public var outputs: [Tensor]
    /// The activation of each target layer.
    public var activations: [ValueID: Tensor]
    /// The gradient of the objective with respect to each target layer's activation.
    public var gradients: [ValueID: Tensor]
}

extension Graph {
    /// For each value, whether it is reachable forward from `targets` (the targets included).
    public func descendants(of targets: Set<ValueID>) -> [Bool] {
        var reach = [Bool](repeating: false, count: values.count)
        for t in targets { reach[t] = true }
        for n in nodes where n.inputs.contains(where: { reach[$0] }) { reach[n.output] = true }
        return reach
    }

    /// For each value, whether `target` can be reached from it (the target included).
    public func ancestors(of target: ValueID) -> [Bool] {
        var reach = [Bool](repeating: false, count: values.count)
        reach[target] = true
        for n in nodes.reversed() where reach[n.output] { for v in n.inputs { reach[v] = true } }
        return reach
    }

    /// One forward pass and one backward pass from an objective on an output to the target layers.
    ///
    /// The backward computes input gradients only (explanations never need weight gradients) and
    /// visits only the nodes between the earliest target and the output. The forward keeps, for those
    /// nodes, only what their backward reads (`Operation.backwardNeeds`); everything else is freed as
    /// soon as it is consumed.
    ///
    /// - Parameters:
    ///   - x: the input `[N, C, D, H, W]`.
    ///   - targets: the layers whose activations and gradients are wanted.
    ///   - output: which of `outputs` the objective reads (0: the logits).
    ///   - seed: given that output, the gradient of the objective with respect to it (for a class
    ///     score: one-hot at the class in each row).
    public func gradients(_ x: Tensor, at targets: [ValueID], output: Int = 0,
                          seed: (Tensor) throws -> Tensor) throws -> GradientResult {
        guard output >= 0 && output < outputs.count else { throw GraphError("the model has no output \(output)") }
        let out = outputs[output]
        let targetSet = Set(targets)
        let below = descendants(of: targetSet), above = ancestors(of: out)
        for t in targets where !above[t] {
            throw GraphError("layer '\(values[t].name)' does not influence output '\(values[out].name)'")
        }
        // Nodes on a path from a target to the output, and what each must keep.
        let onPath = nodes.map { below[$0.output] && above[$0.output] && $0.inputs.contains { below[$0] } }

        try checkInput(x)
        let last = lastUses()
        let keep = targetSet.union(outputs)
        var env = [Tensor?](repeating: nil, count: values.count)
        var savedInputs = [[Tensor?]?](repeating: nil, count: nodes.count)
        var savedOutput = [Tensor?](repeating: nil, count: nodes.count)
        env[input] = x
        for (v, t) in constants { env[v] = t }
        for (i, node) in nodes.enumerated() {
            let args = try arguments(of: node, in: env)
            let y = try forward(node, args)
            env[node.output] = y
            if onPath[i] {
                let needs = node.op.backwardNeeds
                if needs.keepsInputs { savedInputs[i] = args }
                if needs.keepsOutput { savedOutput[i] = y }
            }
            for v in Set(node.inputs) where last[v] == i && !keep.contains(v) && constants[v] == nil {
                env[v] = nil
            }
        }
        let outputs = self.outputs.map { env[$0]! }
        var activations: [ValueID: Tensor] = [:]
        for t in targets { activations[t] = env[t] }
        env = []

        var grads = [Tensor?](repeating: nil, count: values.count)
        let seedGrad = try seed(outputs[output])
        guard seedGrad.shape == outputs[output].shape else {
            throw TensorError.shapeMismatch("gradient seed", seedGrad.shape, outputs[output].shape)
        }
        grads[out] = seedGrad
        let earliest = targets.compactMap { t in nodes.firstIndex { $0.inputs.contains(t) } }.min() ?? nodes.count
        for i in stride(from: nodes.count - 1, through: earliest, by: -1) where onPath[i] {
            let node = nodes[i]
            guard let g = grads[node.output] else { continue }
            if !targetSet.contains(node.output) { grads[node.output] = nil }
            let wanted = node.inputs.map { below[$0] }
            let inputGrads: [Tensor?]
            do {
                inputGrads = try node.op.backward(
                    g, inputs: savedInputs[i] ?? node.inputs.map { _ in nil },
                    inputShapes: node.inputs.map { constants[$0] != nil ? values[$0].shape : values[$0].shape.withBatch(x.shape[0]) },
                    output: savedOutput[i], wanted: wanted)
            } catch let e as TensorError {
                throw GraphError("backward of node '\(node.name)' (\(node.op.name)): \(e.message)")
            }
            savedInputs[i] = nil
            savedOutput[i] = nil
            for (v, gi) in zip(node.inputs, inputGrads) where below[v] {
                guard let gi else { continue }
                grads[v] = try grads[v].map { try VoxelTensor.add($0, gi) } ?? gi
            }
        }
        var gradients: [ValueID: Tensor] = [:]
        for t in targets { gradients[t] = grads[t] ?? Tensor.zeros(activations[t]!.shape) }
        return GradientResult(outputs: outputs, activations: activations, gradients: gradients)
    }
}

extension Array where Element == Int {
    /// The shape with axis 0 (the batch) set to `n`.
    func withBatch(_ n: Int) -> [Int] {
        guard !isEmpty else { return self }
        var s = self
        s[0] = n
        return s
    }
}

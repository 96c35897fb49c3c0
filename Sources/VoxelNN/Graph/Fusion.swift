import VoxelTensor

extension Graph {
    /// The graph with batch norms folded into the convolutions before them and ReLU, LeakyReLU and
    /// Clip fused into the convolutions' stores.
    ///
    /// A pair is fused only when the convolution's output feeds nothing else and is not in `keeping`
    /// (a CAM target layer must stay observable). Value ids are unchanged: the fused node writes the
    /// value the last node of the pattern wrote, so captures and outputs still refer to the same values.
    public func fused(keeping: Set<ValueID> = []) throws -> Graph {
        let consumers = self.consumers
        let protected = keeping.union(outputs)
        var result = nodes
        var removed = [Bool](repeating: false, count: nodes.count)
        for i in nodes.indices {
            guard !removed[i], case .conv(var spec) = result[i].op else { continue }
            var node = result[i]
            // Follow the chain conv -> [batch norm] -> [activation] while each link is private.
            while !protected.contains(node.output), consumers[node.output].count == 1 {
                let j = consumers[node.output][0]
                let next = nodes[j]
                guard next.inputs == [node.output] else { break }
                if case .batchNorm(let bn) = next.op, spec.activation == .identity {
                    let folded = try foldBatchNorm(weight: spec.weight, bias: spec.bias, mean: bn.mean,
                                                   variance: bn.variance, scale: bn.scale, shift: bn.shift,
                                                   epsilon: bn.epsilon)
                    spec = try spec.with(weight: folded.weight, bias: .some(folded.bias))
                } else if case .activation(let a) = next.op, spec.activation == .identity, a != .identity {
                    spec = try spec.with(activation: a)
                } else {
                    break
                }
                removed[j] = true
                node.output = next.output
                if node.modulePath.isEmpty { node.modulePath = next.modulePath }
            }
            node.op = .conv(spec)
            result[i] = node
        }
        var g = self
        g.replaceNodes(zip(result, removed).filter { !$0.1 }.map(\.0))
        return g
    }
}

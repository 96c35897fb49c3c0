import VoxelTensor

extension Graph {
    /// The graph with batch norms folded into the convolutions before them (and other batch norms
    /// taking the activation after them), residual additions
    /// (`conv + x`, as ResNet blocks end) and ReLU, LeakyReLU and Clip fused into the convolutions'
    /// stores.
    ///
    /// A link is fused only when the value it consumes feeds nothing else and is not in `keeping`
    /// (a CAM target layer must stay observable). Value ids are unchanged: the fused node writes the
    /// value the last node of the pattern wrote, so captures and outputs still refer to the same values.
    /// A convolution that takes in a residual moves to the addition's place in the node order, where
    /// the residual's producer is sure to have run.
    public func fused(keeping: Set<ValueID> = []) throws -> Graph {
        let consumers = self.consumers
        let protected = keeping.union(outputs)
        var result: [Node?] = nodes
        // Nodes already folded into a chain (an addition has two convolutions before it: only the first
        // chain to reach it may take it).
        var taken = [Bool](repeating: false, count: nodes.count)
        func isPrivate(_ v: ValueID) -> Bool { !protected.contains(v) && consumers[v].count == 1 }
        for i in nodes.indices {
            guard !taken[i], case .conv(var spec) = nodes[i].op else { continue }
            var node = nodes[i]
            var position = i
            // Follow the chain conv -> [batch norm] -> [add] -> [activation] while each link is private.
            while isPrivate(node.output) {
                let j = consumers[node.output][0]
                let next = nodes[j]
                if taken[j] { break }
                if next.inputs == [node.output], case .batchNorm(let bn) = next.op, spec.activation == .identity,
                   !spec.addsResidual {
                    let folded = try foldBatchNorm(weight: spec.weight, bias: spec.bias, mean: bn.mean,
                                                   variance: bn.variance, scale: bn.scale, shift: bn.shift,
                                                   epsilon: bn.epsilon)
                    spec = try spec.with(weight: folded.weight, bias: .some(folded.bias))
                } else if next.inputs == [node.output], case .activation(let a) = next.op, spec.activation == .identity,
                          a != .identity {
                    spec = try spec.with(activation: a)
                } else if case .binary(.add) = next.op, spec.activation == .identity, !spec.addsResidual,
                          next.inputs.count == 2, next.inputs.filter({ $0 == node.output }).count == 1,
                          let other = next.inputs.first(where: { $0 != node.output }),
                          values[other].shape == values[node.output].shape, constants[other] == nil {
                    spec = try spec.with(addsResidual: true)
                    node.inputs = [node.inputs[0], other]
                    position = j
                } else {
                    break
                }
                result[j] = nil
                taken[j] = true
                node.output = next.output
                if node.modulePath.isEmpty { node.modulePath = next.modulePath }
            }
            node.op = .conv(spec)
            result[i] = nil
            result[position] = node
        }
        // A batch norm that no convolution took (one after a concatenation, as DenseNet's layers start)
        // takes the activation after it.
        for i in nodes.indices {
            guard !taken[i], var node = result[i], case .batchNorm(var bn) = node.op, bn.activation == .identity,
                  isPrivate(node.output) else { continue }
            let j = consumers[node.output][0]
            guard !taken[j], nodes[j].inputs == [node.output], case .activation(let a) = nodes[j].op, a != .identity else { continue }
            bn.activation = a
            node.op = .batchNorm(bn)
            node.output = nodes[j].output
            result[i] = node
            result[j] = nil
            taken[j] = true
        }
        var g = self
        g.replaceNodes(result.compactMap { $0 })
        return g
    }
}

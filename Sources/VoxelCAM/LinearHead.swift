import VoxelNN
import VoxelTensor

/// A linear head over pooled layers: each target layer is globally average-pooled, and from the pooled
/// features on the logits are an affine function (flatten, reshape, concat, a linear layer, adding or
/// scaling by constants): `y_c = Σ_l Σ_k w_c,lk · mean(A_lk) + b_c`. Then CAM and exact HR-CAM apply,
/// and the weights are exactly the gradient of `y_c` with respect to the pooled features (not to the
/// layers themselves: an earlier level's gradient also flows through the later stages).
struct LinearHead {
    /// For each target layer, the value its global average pooling writes.
    let pooled: [ValueID]

    /// Finds the pooling of each target and checks that the rest of the way to `output` is linear.
    /// - Throws: `CAMError` naming the node that breaks the structure.
    init(_ graph: Graph, targets: [ValueID], output: ValueID, method: String) throws {
        let above = graph.ancestors(of: output)
        var pooled: [ValueID] = []
        for t in targets {
            let name = graph.values[t].name
            guard let pool = graph.nodes.first(where: { $0.inputs == [t] && above[$0.output] && LinearHead.isGlobalMean($0.op) }) else {
                throw CAMError("\(method) needs global average pooling right after the target layer '\(name)' on the way to the logits; use gradcam, or target the layer that is pooled")
            }
            pooled.append(pool.output)
        }
        let below = graph.descendants(of: Set(pooled))
        for node in graph.nodes where above[node.output] && node.inputs.contains(where: { below[$0] }) {
            let linear: Bool
            switch node.op {
            case .flatten, .reshape, .concat, .identity, .transpose:
                linear = true
            case .gemm, .matMul:
                linear = below[node.inputs[0]] && node.inputs.dropFirst().allSatisfy { !below[$0] }
            case .binary(let op):
                let onPath = node.inputs.filter { below[$0] }.count
                switch op {
                case .add, .sub: linear = true
                case .mul: linear = onPath == 1
                case .div: linear = onPath == 1 && !below[node.inputs[1]]
                default: linear = false
                }
            default:
                linear = false
            }
            guard linear else {
                let n = node.modulePath.isEmpty ? node.name : node.modulePath
                throw CAMError("\(method) needs a linear head after global average pooling, but '\(n)' (\(node.op.name)) lies between the pooled features and the logits; use gradcam, which works on any model")
            }
        }
        self.pooled = pooled
    }

    static func isGlobalMean(_ op: Operation) -> Bool {
        switch op {
        case .globalAveragePool: return true
        case .reduceMean(let axes, _): return Set(axes.map { $0 < 0 ? $0 + 5 : $0 }) == [2, 3, 4]
        default: return false
        }
    }

    /// The layers pooled into a linear head on the way to `output`, in graph order: the levels of an
    /// HR-CAM head (pooled features of several layers concatenated before one linear layer); empty
    /// when the model has no such head.
    static func pooledLayers(_ graph: Graph, output: ValueID) -> [ValueID] {
        let above = graph.ancestors(of: output)
        let found = graph.nodes.filter { above[$0.output] && isGlobalMean($0.op) && graph.values[$0.inputs[0]].shape.count == 5 }
            .map { $0.inputs[0] }
        guard !found.isEmpty, (try? LinearHead(graph, targets: found, output: output, method: "HR-CAM")) != nil else { return [] }
        return found
    }
}

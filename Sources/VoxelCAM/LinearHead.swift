import VoxelNN
import VoxelTensor

/// The part of a graph between target layers and the logits, when it is global average pooling
/// followed only by linear operations (flatten, reshape, concat, a linear layer, adding or scaling
/// by constants): then each logit is `Σ_k w_k mean(A_k) + b`, and CAM and exact HR-CAM apply.
struct LinearHead {
    /// Checks the structure; throws an error naming the node that breaks it.
    static func check(_ graph: Graph, targets: [ValueID], output: ValueID, method: String) throws {
        let below = graph.descendants(of: Set(targets)), above = graph.ancestors(of: output)
        let targetSet = Set(targets)
        for node in graph.nodes where above[node.output] && node.inputs.contains(where: { below[$0] }) {
            let fromTarget = node.inputs.filter { targetSet.contains($0) }
            let name = node.modulePath.isEmpty ? node.name : node.modulePath
            if !fromTarget.isEmpty {
                switch node.op {
                case .globalAveragePool:
                    continue
                case .reduceMean(let axes, _) where Set(axes.map { $0 < 0 ? $0 + 5 : $0 }) == [2, 3, 4]:
                    continue
                default:
                    throw CAMError("\(method) needs global average pooling right after the target layer, but '\(name)' (\(node.op.name)) reads it; use gradcam, or target the layer that is pooled")
                }
            }
            let linear: Bool
            switch node.op {
            case .flatten, .reshape, .concat, .identity, .globalAveragePool, .reduceMean:
                linear = true
            case .gemm, .matMul:
                linear = node.inputs.dropFirst().allSatisfy { !below[$0] } && below[node.inputs[0]]
            case .binary(let op):
                let pathInputs = node.inputs.filter { below[$0] }.count
                linear = op == .add || op == .sub ? true : (pathInputs == 1 && (op == .mul || (op == .div && !below[node.inputs[1]])))
            default:
                linear = false
            }
            guard linear else {
                throw CAMError("\(method) needs a global-average-pooling and linear head after the target layer, but '\(name)' (\(node.op.name)) lies between them; use gradcam, which works on any model")
            }
        }
    }

    /// The values of a graph that are global-average-pooled into a linear head: the levels of an
    /// HR-CAM head (pooled features of several layers concatenated before the linear layer).
    static func pooledLayers(_ graph: Graph, output: ValueID) -> [ValueID] {
        let above = graph.ancestors(of: output)
        var found: [ValueID] = []
        for node in graph.nodes where above[node.output] {
            let pooled: Bool
            switch node.op {
            case .globalAveragePool: pooled = true
            case .reduceMean(let axes, _): pooled = Set(axes.map { $0 < 0 ? $0 + 5 : $0 }) == [2, 3, 4]
            default: pooled = false
            }
            if pooled, graph.values[node.inputs[0]].shape.count == 5 { found.append(node.inputs[0]) }
        }
        guard (try? check(graph, targets: found, output: output, method: "HR-CAM")) != nil else { return [] }
        return found
    }
}


import Foundation
import VoxelTensor

// Model-parameter randomisation for the sanity checks of explanations (Adebayo et al. 2018, "Sanity
// Checks for Saliency Maps", NeurIPS): a layer's learned weights are replaced by random values of the
// same scale. Here each weight tensor (and bias) is replaced by Gaussian values with mean 0 and the
// standard deviation of the tensor it replaces (He-normal scale sqrt(2 / fan_in) when that is 0), drawn
// from SplitMix64 seeded by `seed` and the node's index, so a node's new weights do not depend on which
// other nodes are randomised or in which order.

extension Graph {
    /// Indices of the nodes that hold learned weights: convolutions, and Gemm or MatMul whose weight
    /// operand is a constant, in graph order (input side first).
    public var weightedNodes: [Int] {
        nodes.indices.filter { i in
            switch nodes[i].op {
            case .conv: return true
            case .gemm, .matMul: return nodes[i].inputs.dropFirst().contains { constants[$0] != nil }
            default: return false
            }
        }
    }

    /// The graph with the weights (and biases) of the given nodes replaced by seeded Gaussian values of
    /// the same standard deviation (Adebayo et al. 2018 parameter randomisation).
    ///
    /// - Parameters:
    ///   - ofNodes: node indices (as in `nodes`); each must be in `weightedNodes`.
    ///   - seed: the random seed; a node's new weights depend only on the seed and its index.
    /// - Returns: a graph with the same values, nodes and shapes; other nodes are untouched.
    /// - Throws: `GraphError` naming a node that is out of range or holds no weights.
    public func randomizingWeights(ofNodes indices: [Int], seed: UInt64) throws -> Graph {
        var g = self
        var newNodes = nodes
        for i in indices {
            guard i >= 0 && i < nodes.count else {
                throw GraphError("randomizingWeights: node index \(i) is out of range (the graph has \(nodes.count) nodes)")
            }
            let node = nodes[i]
            let nodeSeed = SplitMix64.mix(seed ^ SplitMix64.mix(UInt64(i) &+ 0x5EED))
            switch node.op {
            case .conv(let spec):
                let fanIn = spec.weight.shape.dropFirst().product
                let w = Self.gaussianLike(spec.weight, seed: nodeSeed, fanIn: fanIn)
                let b = spec.bias.map { Self.gaussianLike($0, seed: nodeSeed &+ 1, fanIn: nil) }
                newNodes[i].op = .conv(try spec.with(weight: w, bias: .some(b)))
            case .gemm, .matMul:
                let weighted = node.inputs.enumerated().dropFirst().filter { g.constants[$0.element] != nil }
                guard !weighted.isEmpty else {
                    throw GraphError("randomizingWeights: node '\(node.name)' (\(node.op.name)) has no constant weights")
                }
                for (k, v) in weighted {
                    let t = g.constants[v]!
                    let fanIn = k == 1 ? (t.rank == 2 ? min(t.shape[0], t.shape[1]) : t.count) : nil
                    g.replaceConstant(v, with: Self.gaussianLike(t, seed: nodeSeed &+ UInt64(k), fanIn: fanIn))
                }
            default:
                throw GraphError("randomizingWeights: node '\(node.name)' (\(node.op.name)) holds no weights to randomise")
            }
        }
        g.replaceNodes(newNodes)
        return g
    }

    /// Gaussian values (mean 0) with the standard deviation of `t`; when `t` is constant, He-normal
    /// scale `sqrt(2 / fanIn)` for weights, and zeros for biases (`fanIn` nil).
    static func gaussianLike(_ t: Tensor, seed: UInt64, fanIn: Int?) -> Tensor {
        var sum = 0.0, sq = 0.0
        for v in t.scalars { sum += Double(v); sq += Double(v) * Double(v) }
        let n = Double(max(t.count, 1)), mean = sum / n
        var sd = max(sq / n - mean * mean, 0).squareRoot()
        if !(sd > 0) {
            guard let fanIn, fanIn > 0 else { return Tensor.zeros(t.shape) }
            sd = (2 / Double(fanIn)).squareRoot()
        }
        var rng = SplitMix64(seed: seed)
        var out = [Float](repeating: 0, count: t.count)
        var i = 0
        while i < out.count {
            // Box–Muller: two independent standard normals from two uniforms.
            let u1 = max(rng.unit(), 1e-300), u2 = rng.unit()
            let r = (-2 * Foundation.log(u1)).squareRoot()
            out[i] = Float(sd * r * Foundation.cos(2 * Double.pi * u2))
            if i + 1 < out.count { out[i + 1] = Float(sd * r * Foundation.sin(2 * Double.pi * u2)) }
            i += 2
        }
        return Tensor(shape: t.shape) { buffer in
            for j in buffer.indices { buffer[j] = out[j] }
        }
    }
}

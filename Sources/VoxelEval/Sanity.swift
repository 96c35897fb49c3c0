import Foundation
import VoxelCAM
import VoxelNN
import VoxelTensor

// Cascading model-parameter randomisation (Adebayo et al. 2018, "Sanity Checks for Saliency Maps",
// NeurIPS). The weighted layers (convolutions, Gemm/MatMul with constant weights) are randomised
// cumulatively from the output side down: step 1 randomises the last layer, step 2 the last two, and so
// on until every layer is random. After each step the same class is explained again and each map is
// compared with the original map by Spearman's ρ (ties averaged) and 3D SSIM (see Similarity.swift;
// only when every edge has at least 11 voxels). A method passes when its map no longer resembles the
// original once the model is fully randomised: ρ at the last step below `passThreshold` (default 0.5).
// A method whose map stays similar after the weights that produced it are gone does not explain the
// model. When the original map is constant (all zero after a ReLU, say) the check is degenerate: it is
// flagged and not counted as a pass.

/// Options of the cascading randomisation check.
public struct SanityOptions: Sendable {
    /// The seed of the random weights.
    public var seed: UInt64 = 0
    /// A method passes when Spearman ρ at the last step is below this.
    public var passThreshold: Double = 0.5
    /// Evaluate at most this many cumulative steps, evenly spaced over the layers and always ending with
    /// every layer randomised; nil: one step per layer.
    public var checkpoints: Int?
    /// The explained class (nil: the class predicted by the original model).
    public var classIndex: Int?
    /// Target layers of the CAM methods (default: the explainer's).
    public var layers: [ValueID] = []
    /// Options of the CAM methods.
    public var cam = CAMOptions()

    /// The defaults: seed 0, threshold 0.5, every layer a step, the predicted class.
    public init() {}
}

/// One cumulative randomisation step.
public struct SanityStep: Sendable, Codable, Equatable {
    /// How many weighted layers are random, counted from the output.
    public var randomizedLayers: Int
    /// The name (module path or node name) of the deepest layer randomised so far.
    public var lastLayer: String
    /// Spearman ρ between this step's map and the original.
    public var spearman: Double
    /// nil when the map is smaller than the SSIM window.
    public var ssim: Double?
}

/// The randomisation check of one method.
public struct SanityResult: Sendable, Codable, Equatable {
    /// The method and the class explained at every step.
    public var method: CAMMethod
    /// See `method`.
    public var classIndex: Int
    /// One entry per cumulative step, fewest random layers first.
    public var steps: [SanityStep]
    /// Whether ρ at the last step is below `threshold` (false when `degenerate`).
    public var passed: Bool
    /// True when the original map is constant (e.g. all zero after the ReLU): no similarity can fall,
    /// so the check says nothing about the method and is not counted as passed.
    public var degenerate: Bool
    /// See `passed`.
    public var threshold: Double
}

/// The cumulative step sizes: every layer (`1...count`), or `checkpoints` evenly spaced ending at `count`.
func sanitySchedule(count: Int, checkpoints: Int?) -> [Int] {
    guard let k = checkpoints, k > 0, k < count else { return Array(1...max(count, 1)) }
    var out: [Int] = []
    for i in 1...k {
        let n = Int((Double(count) * Double(i) / Double(k)).rounded())
        if n > 0, out.last != n { out.append(n) }
    }
    return out
}

/// Cascading randomisation of `graph` from the output down, re-explaining `input` with each method
/// after each step (Adebayo et al. 2018).
/// - Parameters:
///   - graph: the model as imported (unfused); `input`: `[1, C, D, H, W]`.
/// - Returns: one result per method, in order.
/// - Throws: `EvalError` when the model has no weighted layers; `CAMError`/`GraphError` from explaining.
public func cascadingRandomization(graph: Graph, input: Tensor, methods: [CAMMethod],
                                   options: SanityOptions = SanityOptions()) throws -> [SanityResult] {
    let weighted = graph.weightedNodes
    guard !weighted.isEmpty else { throw EvalError("sanity check: the model has no weighted layers to randomise") }
    guard !methods.isEmpty else { throw EvalError("sanity check: no methods given") }
    let original = try CAMExplainer(graph: graph).explain(input, methods: methods, layers: options.layers,
                                                          classIndex: options.classIndex, options: options.cam)
    let classIndex = original[0].classIndex
    let fromTop = Array(weighted.reversed())
    var steps = [[SanityStep]](repeating: [], count: methods.count)
    for n in sanitySchedule(count: fromTop.count, checkpoints: options.checkpoints) {
        let randomized = try graph.randomizingWeights(ofNodes: Array(fromTop.prefix(n)), seed: options.seed)
        let maps = try CAMExplainer(graph: randomized).explain(input, methods: methods, layers: options.layers,
                                                               classIndex: classIndex, options: options.cam)
        let node = graph.nodes[fromTop[n - 1]]
        for (m, e) in maps.enumerated() {
            let a = original[m].map, b = e.map
            let ssim = a.shape.allSatisfy { $0 >= 11 } ? try ssim3D(a, b) : nil
            steps[m].append(SanityStep(randomizedLayers: n, lastLayer: node.modulePath.isEmpty ? node.name : node.modulePath,
                                       spearman: try spearman(a, b), ssim: ssim))
        }
    }
    return methods.indices.map { m in
        let map = original[m].map.scalars
        let degenerate = map.allSatisfy { $0 == map[0] }
        return SanityResult(method: methods[m], classIndex: classIndex, steps: steps[m],
                            passed: !degenerate && (steps[m].last?.spearman ?? 1) < options.passThreshold,
                            degenerate: degenerate, threshold: options.passThreshold)
    }
}

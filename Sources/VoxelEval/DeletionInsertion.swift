import Foundation
import VoxelNN
import VoxelTensor

// Deletion and insertion (Petsiuk et al. 2018, "RISE: Randomized Input Sampling for Explanation of
// Black-box Models", BMVC), in torch-cam's form (`torchcam.metrics.DeletionInsertionMetric`), which
// takes 3D inputs: voxels are ranked by heat, highest first (stable: ties in index order); with P
// voxels and S steps, the step is ⌈P/S⌉ voxels and the curve points are the counts 0, step, 2·step,
// ..., P (the last possibly closer). Deletion sets the top `count` voxels to the baseline; insertion
// starts from the baseline and restores them from the input. Each AUC is the trapezoid rule over the
// fraction `count / P`. f is the class probability (softmax). A faithful map has a low deletion AUC and
// a high insertion AUC.

/// What deleted voxels become (and what insertion starts from).
public enum Baseline: Sendable, Equatable, Codable {
    /// A constant value (torch-cam's default: 0).
    case constant(Float)
    /// The input's mean (per channel).
    case mean
    /// A Gaussian blur of the input (σ in voxels), as RISE's insertion uses.
    case blur(sigma: Double)
}

/// Options of deletion and insertion.
public struct DeletionInsertionOptions: Sendable {
    /// Number of perturbation intervals S (curve points: about S + 1).
    public var steps: Int = 100
    /// What deleted voxels become.
    public var baseline: Baseline = .constant(0)
    /// The class probability (default) or logit.
    public var target: ScoreTarget = .probability
    /// The class to follow; nil: the predicted class on the input.
    public var classIndex: Int?

    /// The defaults: 100 steps, a zero baseline, the class probability, the predicted class.
    public init() {}
}

/// Deletion and insertion curves of one map and their areas.
public struct DeletionInsertionCurves: Sendable, Codable, Equatable {
    /// The class followed.
    public var classIndex: Int
    /// The perturbed fractions `count / P`, from 0 to 1.
    public var fractions: [Double]
    /// Scores with the top fraction deleted.
    public var deletion: [Float]
    /// Scores with the top fraction inserted into the baseline.
    public var insertion: [Float]
    /// Trapezoid areas under the deletion and insertion curves over the fraction axis.
    public var deletionAUC: Double
    /// See `deletionAUC`.
    public var insertionAUC: Double
    /// Forward passes spent.
    public var forwardPasses: Int
}

/// The trapezoid rule: `Σ (y_i + y_{i+1})/2 · (x_{i+1} − x_i)`.
public func trapezoid(_ y: [Float], x: [Double]) -> Double {
    precondition(x.count == y.count, "trapezoid: \(y.count) values for \(x.count) abscissae")
    guard y.count > 1 else { return 0 }
    var s = 0.0
    for i in 0..<(y.count - 1) { s += (Double(y[i]) + Double(y[i + 1])) / 2 * (x[i + 1] - x[i]) }
    return s
}

/// Voxel indices by heat, highest first; ties keep index order (a stable descending sort).
public func rankByHeat(_ map: [Float]) -> [Int] {
    map.indices.sorted { a, b in map[a] != map[b] ? map[a] > map[b] : a < b }
}

extension ModelScorer {
    /// Deletion and insertion curves of `map` on `x`, and their AUC (Petsiuk et al. 2018).
    ///
    /// Runs `2 + 2(points − 2)` forward passes in batches: the input, the all-baseline input (the end of
    /// deletion and the start of insertion), then the interior points of each curve.
    /// - Parameters:
    ///   - x: the model input `[1, C, D, H, W]`; `map`: the heatmap `[D, H, W]` on its grid.
    /// - Throws: `EvalError` when the map does not fit the input or an option is invalid.
    public func deletionInsertion(_ x: Tensor, map: Tensor, options: DeletionInsertionOptions = DeletionInsertionOptions()) throws -> DeletionInsertionCurves {
        try requireMap(map, on: x, "deletion/insertion")
        guard options.steps > 0 else { throw EvalError("deletion/insertion: steps must be positive, got \(options.steps)") }
        let classIndex = try options.classIndex ?? predictedClass(x)
        let p = map.count, c = x.shape[1]
        let step = (p + options.steps - 1) / options.steps
        let counts = Array(stride(from: 0, to: p, by: step)) + [p]
        let fractions = counts.map { Double($0) / Double(p) }
        let order = rankByHeat(map.scalars)
        let base = try baselineValues(x, options.baseline)
        let interior = counts.count - 2
        var state = x.scalars
        // Inputs: 0 the input, 1 the baseline, then deletion's interior points, then insertion's.
        let s = try scores(count: 2 + 2 * interior, classIndex: classIndex, target: options.target, what: "deletion/insertion") { i, buf in
            if i == 0 { state = x.scalars }
            else if i == 1 { state = base }
            else {
                let curve = (i - 2) / interior, k = (i - 2) % interior + 1
                if k == 1 { state = curve == 0 ? x.scalars : base }
                let source = curve == 0 ? base : x.scalars
                for r in counts[k - 1]..<counts[k] {
                    let v = order[r]
                    for ch in 0..<c { state[ch * p + v] = source[ch * p + v] }
                }
            }
            for j in buf.indices { buf[j] = state[j] }
        }
        var deletion = [Float](repeating: 0, count: counts.count), insertion = deletion
        deletion[0] = s[0]; insertion[counts.count - 1] = s[0]
        deletion[counts.count - 1] = s[1]; insertion[0] = s[1]
        for k in 0..<interior {
            deletion[k + 1] = s[2 + k]
            insertion[k + 1] = s[2 + interior + k]
        }
        return DeletionInsertionCurves(classIndex: classIndex, fractions: fractions, deletion: deletion, insertion: insertion,
                                       deletionAUC: trapezoid(deletion, x: fractions), insertionAUC: trapezoid(insertion, x: fractions),
                                       forwardPasses: 2 + 2 * interior)
    }

    func baselineValues(_ x: Tensor, _ b: Baseline) throws -> [Float] {
        var p = Perturbation()
        switch b {
        case .constant(let v): p.kind = .constant; p.constant = v
        case .mean: p.kind = .mean
        case .blur(let sigma): p.kind = .blur; p.blurSigma = sigma
        }
        return try RegionPerturber.replacement(x, p, channels: x.shape[1], spatial: Array(x.shape[2...]))
    }
}

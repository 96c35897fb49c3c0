import Foundation
import VoxelNN
import VoxelTensor

// Region perturbation (Samek et al. 2017, "Evaluating the Visualization of What a Deep Neural Network
// Has Learned", IEEE TNNLS). The heatmap is split into cubes; cubes are ordered by mean heat, most
// relevant first (MoRF) or least relevant first (LeRF), and perturbed cumulatively, one more per step:
//   x⁽⁰⁾ = x,  x⁽ᵏ⁾ = g(x⁽ᵏ⁻¹⁾, r_k),  k = 1...L
//   AOPC = 1/(L+1) · Σ_{k=1..L} ( f(x⁽⁰⁾) − f(x⁽ᵏ⁾) )
// f is the class probability (softmax) by default, or the logit. A faithful map has a high MoRF AOPC
// (the score falls fast) and a low LeRF AOPC; MoRF − LeRF summarises both.

/// How a perturbed region's voxels change.
public enum PerturbationKind: String, CaseIterable, Sendable, Codable {
    /// Add seeded Gaussian noise (mean 0, `noiseSigma`), as Samek et al.'s study.
    case noise
    /// Set to `constant`.
    case constant
    /// Set to the input's mean (per channel).
    case mean
    /// Set to a Gaussian blur (σ `blurSigma` voxels) of the original input: the region's neighbourhood
    /// smeared over it.
    case blur
    /// ROAD-style neighbour imputation (see `roadImpute`): the weighted mean of the non-perturbed
    /// 26 neighbours, solved over all perturbed voxels at once.
    case road
}

/// A perturbation function with its parameters (model-input units).
public struct Perturbation: Sendable, Equatable, Codable {
    /// Which perturbation.
    public var kind: PerturbationKind
    /// Standard deviation of `.noise`, in model-input units.
    public var noiseSigma: Float = 0.1
    /// The value of `.constant`.
    public var constant: Float = 0
    /// Standard deviation of `.blur`, in voxels.
    public var blurSigma: Double = 2
    /// The seed of `.noise`.
    public var seed: UInt64 = 0
    /// Gauss–Seidel sweeps per step and stopping change for `.road`.
    public var roadSweeps: Int = 64
    /// See `roadSweeps`.
    public var roadTolerance: Double = 1e-4

    /// A perturbation of `kind` with the default parameters.
    public init(_ kind: PerturbationKind = .noise) { self.kind = kind }
}

/// A regular grid of cubic regions over a `[D, H, W]` volume; regions at the far edges may be smaller.
public struct RegionGrid: Sendable, Equatable {
    /// The volume's extent `[D, H, W]`.
    public let shape: [Int]
    /// A region's edge in voxels along (D, H, W).
    public let edge: Size3
    /// Regions along each axis.
    public let counts: [Int]

    /// A grid of `edge`-sized regions over `shape`.
    /// - Throws: `EvalError` when an edge is not positive or the shape is not 3D.
    public init(shape: [Int], edge: Size3) throws {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else { throw EvalError("region grid: shape \(shape) must be [D, H, W]") }
        guard edge.d > 0, edge.h > 0, edge.w > 0 else { throw EvalError("region edge \(edge) must be positive") }
        self.shape = shape
        self.edge = edge
        counts = zip(shape, edge.array).map { ($0 + $1 - 1) / $1 }
    }

    /// The region edge in voxels for an edge in mm on a grid of `spacing` mm (at least 1 voxel per axis).
    public static func edge(mm: Double, spacing: SIMD3<Double>) -> Size3 {
        let v = (0..<3).map { max(1, Int((mm / spacing[$0]).rounded())) }
        return Size3(v[0], v[1], v[2])
    }

    /// The number of regions.
    public var count: Int { counts.product }

    /// The flat voxel indices (W fastest) of region `r`, in index order.
    public func voxels(_ r: Int) -> [Int] {
        let rz = r / (counts[1] * counts[2]), ry = (r / counts[2]) % counts[1], rx = r % counts[2]
        var out: [Int] = []
        for z in (rz * edge.d)..<min(shape[0], (rz + 1) * edge.d) {
            for y in (ry * edge.h)..<min(shape[1], (ry + 1) * edge.h) {
                for x in (rx * edge.w)..<min(shape[2], (rx + 1) * edge.w) { out.append((z * shape[1] + y) * shape[2] + x) }
            }
        }
        return out
    }

    /// The mean heat of every region, in Double.
    /// - Parameter map: `[D, H, W]` on this grid.
    public func meanHeat(_ map: Tensor) -> [Double] {
        (0..<count).map { r in
            let v = voxels(r)
            return v.reduce(0.0) { $0 + Double(map.scalars[$1]) } / Double(max(v.count, 1))
        }
    }

    /// Regions by mean heat, most relevant first (MoRF) or least relevant first (LeRF); ties keep
    /// region index order in both.
    public func order(_ map: Tensor, mostRelevantFirst: Bool) -> [Int] {
        let heat = meanHeat(map)
        return heat.indices.sorted { a, b in
            if heat[a] != heat[b] { return mostRelevantFirst ? heat[a] > heat[b] : heat[a] < heat[b] }
            return a < b
        }
    }
}

/// Options of region perturbation.
public struct RegionPerturbationOptions: Sendable {
    /// A region's edge in voxels (`RegionGrid.edge(mm:spacing:)` converts from mm).
    public var regionEdge: Size3 = 4
    /// Steps L (regions perturbed); clamped to the number of regions.
    public var steps: Int = 100
    /// The perturbation (default: noise, σ 0.1).
    public var perturbation = Perturbation(.noise)
    /// The class probability (default) or logit.
    public var target: ScoreTarget = .probability
    /// The class to follow; nil: the predicted class on the unperturbed input.
    public var classIndex: Int?

    /// The defaults: 4-voxel regions, 100 steps, noise, the class probability, the predicted class.
    public init() {}
}

/// MoRF and LeRF curves of one map and their AOPC.
public struct PerturbationCurves: Sendable, Codable, Equatable {
    /// The class followed, the score, and the perturbation.
    public var classIndex: Int
    /// See `classIndex`.
    public var target: ScoreTarget
    /// See `classIndex`.
    public var perturbation: PerturbationKind
    /// The region edge in voxels (D, H, W) and the number of regions.
    public var regionEdge: [Int]
    /// See `regionEdge`.
    public var regionCount: Int
    /// L, the number of perturbation steps.
    public var steps: Int
    /// `f(x⁽ᵏ⁾)` for k = 0...L, most relevant regions first.
    public var morf: [Float]
    /// `f(x⁽ᵏ⁾)` for k = 0...L, least relevant regions first.
    public var lerf: [Float]
    /// AOPC of the MoRF curve.
    public var aopcMoRF: Double
    /// AOPC of the LeRF curve.
    public var aopcLeRF: Double
    /// AOPC(MoRF) − AOPC(LeRF).
    public var aopcDifference: Double
    /// Forward passes spent (1 + 2L).
    public var forwardPasses: Int
}

/// The area over the perturbation curve: `1/(L+1) · Σ_{k=1..L} (f₀ − f_k)` for a curve `[f₀, ..., f_L]`.
public func aopc(_ curve: [Float]) -> Double {
    guard let f0 = curve.first else { return 0 }
    let drops = curve.dropFirst().reduce(0.0) { $0 + Double(f0) - Double($1) }
    return drops / Double(curve.count)
}

extension ModelScorer {
    /// MoRF and LeRF curves of `map` on input `x`, and their AOPC (Samek et al. 2017).
    ///
    /// Runs `1 + 2L` forward passes in batches (the unperturbed input once, then each curve's steps).
    /// - Parameters:
    ///   - x: the model input `[1, C, D, H, W]`; `map`: the heatmap `[D, H, W]` on its grid.
    /// - Throws: `EvalError` when the map does not fit the input or an option is invalid.
    public func regionPerturbation(_ x: Tensor, map: Tensor, options: RegionPerturbationOptions = RegionPerturbationOptions()) throws -> PerturbationCurves {
        try requireMap(map, on: x, "region perturbation")
        guard options.steps > 0 else { throw EvalError("region perturbation: steps must be positive, got \(options.steps)") }
        let grid = try RegionGrid(shape: map.shape, edge: options.regionEdge)
        let steps = min(options.steps, grid.count)
        let classIndex = try options.classIndex ?? predictedClass(x)
        let perturber = try RegionPerturber(x, perturbation: options.perturbation)
        let orders = [grid.order(map, mostRelevantFirst: true), grid.order(map, mostRelevantFirst: false)]
        var state = perturber.original
        let s = try scores(count: 1 + 2 * steps, classIndex: classIndex, target: options.target, what: "region perturbation") { i, buf in
            if i == 0 {
                for j in buf.indices { buf[j] = state[j] }
                return
            }
            let curve = (i - 1) / steps, k = (i - 1) % steps
            if k == 0 { state = perturber.original; perturber.reset() }
            perturber.perturb(&state, voxels: grid.voxels(orders[curve][k]))
            for j in buf.indices { buf[j] = state[j] }
        }
        let morf = [s[0]] + Array(s[1...steps]), lerf = [s[0]] + Array(s[(steps + 1)...])
        let a = aopc(morf), b = aopc(lerf)
        return PerturbationCurves(classIndex: classIndex, target: options.target, perturbation: options.perturbation.kind,
                                  regionEdge: grid.edge.array, regionCount: grid.count, steps: steps, morf: morf, lerf: lerf,
                                  aopcMoRF: a, aopcLeRF: b, aopcDifference: a - b, forwardPasses: 1 + 2 * steps)
    }

    /// The predicted class (largest logit) of one input `[1, C, D, H, W]`.
    public func predictedClass(_ x: Tensor) throws -> Int {
        let l = try logits(x)
        return l.indices.max { l[$0] < l[$1] } ?? 0
    }
}

/// Applies one perturbation to regions of an input, cumulatively. A class (not a struct) because ROAD
/// keeps which voxels are perturbed between steps.
final class RegionPerturber {
    let original: [Float]
    let perturbation: Perturbation
    let channels: Int, spatial: [Int], voxelCount: Int
    /// The fully perturbed input for the kinds that do not depend on what else is perturbed.
    let replacement: [Float]
    var perturbed: [Bool]

    init(_ x: Tensor, perturbation: Perturbation) throws {
        try x.requireSpatial("perturbation")
        original = x.scalars
        self.perturbation = perturbation
        channels = x.shape[1]
        spatial = Array(x.shape[2...])
        voxelCount = spatial.product
        perturbed = [Bool](repeating: false, count: voxelCount)
        replacement = try Self.replacement(x, perturbation, channels: x.shape[1], spatial: Array(x.shape[2...]))
    }

    func reset() { perturbed = [Bool](repeating: false, count: voxelCount) }

    static func replacement(_ x: Tensor, _ p: Perturbation, channels: Int, spatial: [Int]) throws -> [Float] {
        let n = spatial.product
        switch p.kind {
        case .noise:
            guard p.noiseSigma >= 0, p.noiseSigma.isFinite else { throw EvalError("noise sigma must be non-negative, got \(p.noiseSigma)") }
            let z = gaussianNoise(count: x.count, seed: p.seed)
            return (0..<x.count).map { x.scalars[$0] + p.noiseSigma * z[$0] }
        case .constant:
            return [Float](repeating: p.constant, count: x.count)
        case .mean:
            var out = [Float](repeating: 0, count: x.count)
            for c in 0..<channels {
                let m = x.scalars[(c * n)..<((c + 1) * n)].reduce(0.0) { $0 + Double($1) } / Double(n)
                for i in 0..<n { out[c * n + i] = Float(m) }
            }
            return out
        case .blur:
            guard p.blurSigma > 0, p.blurSigma.isFinite else { throw EvalError("blur sigma must be positive, got \(p.blurSigma)") }
            var out = [Float](repeating: 0, count: x.count)
            for c in 0..<channels {
                let ch = x.scalars[(c * n)..<((c + 1) * n)].map(Double.init)
                let b = gaussianFilter3D(ch, shape: spatial, sigma: p.blurSigma)
                for i in 0..<n { out[c * n + i] = Float(b[i]) }
            }
            return out
        case .road:
            guard p.roadSweeps > 0 else { throw EvalError("ROAD sweeps must be positive, got \(p.roadSweeps)") }
            return []
        }
    }

    /// Perturbs `voxels` (flat spatial indices) of `state` (`C*D*H*W`) in every channel.
    func perturb(_ state: inout [Float], voxels: [Int]) {
        if perturbation.kind != .road {
            for c in 0..<channels { for v in voxels { state[c * voxelCount + v] = replacement[c * voxelCount + v] } }
            return
        }
        let fresh = voxels.filter { !perturbed[$0] }
        for v in fresh { perturbed[v] = true }
        for c in 0..<channels {
            var ch = Array(state[(c * voxelCount)..<((c + 1) * voxelCount)])
            let orig = Array(original[(c * voxelCount)..<((c + 1) * voxelCount)])
            roadImpute(&ch, original: orig, shape: spatial, perturbed: perturbed, fresh: fresh,
                       maxSweeps: perturbation.roadSweeps, tolerance: perturbation.roadTolerance)
            state.replaceSubrange((c * voxelCount)..<((c + 1) * voxelCount), with: ch)
        }
    }
}

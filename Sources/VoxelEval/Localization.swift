import Foundation
import VoxelTensor

// Localisation of a heatmap against a lesion mask, and its anatomical plausibility. Maps and masks are
// `[D, H, W]` tensors on the same grid (the model input's); a mask holds 0 for background and a label
// (1, 2, ...) per lesion. Distances are between voxel centres, in mm, with the grid's spacing.
//
// - Pointing game (Zhang et al. 2018): a hit when the map's maximum (the first in index order when
//   several voxels tie) lies in the mask, or within `tolerance` mm of its nearest mask voxel.
// - Energy-based pointing game (Wang et al. 2020, Score-CAM) with the mask instead of a box, which is
//   relevance mass accuracy (Arras et al. 2022): Σ_{mask} h⁺ / Σ h⁺, with h⁺ = max(h, 0); 0 when the map
//   has no positive heat.
// - Relevance rank accuracy (Arras et al. 2022): with K mask voxels, the share of the K hottest voxels
//   (ties in index order) that lie in the mask.
// - IoU and Dice at a threshold t: the map min-max normalised to [0, 1] (`normalizeMap`), A = {h ≥ t};
//   IoU = |A∩M| / |A∪M|, Dice = 2|A∩M| / (|A| + |M|); both are 1 when A and M are both empty.
// - Lesion hits: detections are the peak voxels (first maximum in index order) of the 26-connected
//   components of A at the lesion threshold; lesion l is hit when some detection lies in it or within
//   `tolerance` mm of its nearest voxel. Detections that hit no lesion are false positives.
// - Plausibility: the share of positive heat outside a body or lung mask, flagged above a threshold.

/// Localisation scores of one map against one lesion mask.
public struct LocalizationScores: Sendable, Codable, Equatable {
    /// The map's peak voxel `(d, h, w)` and its distance in mm to the nearest mask voxel (0 inside).
    public var peakVoxel: [Int]
    /// See `peakVoxel`.
    public var peakDistanceMM: Double
    /// Pointing game at the tolerance.
    public var pointingHit: Bool
    /// Energy-based pointing game = relevance mass accuracy.
    public var energyInside: Double
    /// Relevance rank accuracy.
    public var rankAccuracy: Double
    /// IoU and Dice at each threshold, in the order given.
    public var thresholds: [Double]
    /// IoU at each threshold.
    public var iou: [Double]
    /// Dice at each threshold.
    public var dice: [Double]
    /// Lesion-level detection.
    public var lesions: LesionHits
}

/// Which lesions of a labelled mask the map finds.
public struct LesionHits: Sendable, Codable, Equatable {
    /// Lesion labels found in the mask, ascending.
    public var labels: [Int]
    /// Labels hit.
    public var hit: [Int]
    /// Labels missed.
    public var missed: [Int]
    /// `hit.count / labels.count` (0 when there are no lesions).
    public var hitRate: Double
    /// Detection peaks `(d, h, w)` and how many of them hit no lesion.
    public var detections: [[Int]]
    /// See `detections`.
    public var falsePositives: Int
}

/// Options of localisation.
public struct LocalizationOptions: Sendable, Equatable {
    /// The grid's voxel size in mm along (D, H, W).
    public var spacing: SIMD3<Double> = SIMD3(1, 1, 1)
    /// Distance in mm within which a peak counts as pointing at the mask (0: inside only).
    public var toleranceMM: Double = 0
    /// Thresholds on the normalised map for IoU and Dice.
    public var thresholds: [Double] = [0.25, 0.5, 0.75]
    /// Threshold on the normalised map whose components are the lesion detections.
    public var lesionThreshold: Double = 0.5

    /// The defaults: 1 mm voxels, no tolerance, thresholds 0.25, 0.5, 0.75, lesion threshold 0.5.
    public init() {}
}

/// Checks a map and a mask share a 3D grid.
func requireSameGrid(_ map: Tensor, _ mask: Tensor, _ op: String) throws {
    guard map.rank == 3 else { throw EvalError("\(op): the map must be [D, H, W], got \(map.shape)") }
    guard map.shape == mask.shape else { throw EvalError("\(op): map shape \(map.shape) and mask shape \(mask.shape) do not match") }
    guard map.scalars.allSatisfy(\.isFinite) else { throw EvalError("\(op): the map has NaN or infinite values") }
}

/// Distance in mm from voxel `v` to the nearest voxel where `inside` holds (∞ when none does).
func distanceMM(from v: Int, to inside: [Int], shape: [Int], spacing: SIMD3<Double>) -> Double {
    let (h, w) = (shape[1], shape[2])
    let p = SIMD3<Double>(Double(v / (h * w)), Double((v / w) % h), Double(v % w))
    var best = Double.infinity
    for u in inside {
        let q = SIMD3<Double>(Double(u / (h * w)), Double((u / w) % h), Double(u % w))
        let d = (p - q) * spacing
        best = min(best, (d * d).sum())
        if best == 0 { break }
    }
    return best.squareRoot()
}

/// The index of the first maximum.
func argmax(_ x: [Float]) -> Int {
    var best = 0
    for i in x.indices where x[i] > x[best] { best = i }
    return best
}

/// Localisation of `map` against the labelled `mask` (Zhang et al. 2018; Wang et al. 2020; Arras et al. 2022).
/// - Parameters:
///   - map: the raw heatmap `[D, H, W]`; `mask`: labels `[D, H, W]` (0 background), same grid.
/// - Throws: `EvalError` when the grids differ, the mask is empty, or the map has NaN.
public func localize(_ map: Tensor, mask: Tensor, options: LocalizationOptions = LocalizationOptions()) throws -> LocalizationScores {
    try requireSameGrid(map, mask, "localisation")
    let inside = mask.scalars.indices.filter { mask.scalars[$0] > 0 }
    guard !inside.isEmpty else { throw EvalError("localisation: the lesion mask is empty") }
    let peak = argmax(map.scalars)
    let dist = distanceMM(from: peak, to: inside, shape: map.shape, spacing: options.spacing)
    let (h, w) = (map.shape[1], map.shape[2])
    let normalized = normalizedMap(map.scalars)
    var ious: [Double] = [], dices: [Double] = []
    let inMask = mask.scalars.map { $0 > 0 }
    for t in options.thresholds {
        var a = 0, both = 0
        for i in normalized.indices where Double(normalized[i]) >= t {
            a += 1
            if inMask[i] { both += 1 }
        }
        let m = inside.count, union = a + m - both
        ious.append(union == 0 ? 1 : Double(both) / Double(union))
        dices.append(a + m == 0 ? 1 : 2 * Double(both) / Double(a + m))
    }
    return LocalizationScores(
        peakVoxel: [peak / (h * w), (peak / w) % h, peak % w], peakDistanceMM: dist,
        pointingHit: dist <= options.toleranceMM, energyInside: relevanceMass(map.scalars, inside: inMask),
        rankAccuracy: relevanceRankAccuracy(map.scalars, inside: inMask, count: inside.count),
        thresholds: options.thresholds, iou: ious, dice: dices,
        lesions: try lesionHits(map, mask: mask, options: options))
}

/// Σ_{inside} h⁺ / Σ h⁺ (0 when the map has no positive heat).
public func relevanceMass(_ map: [Float], inside: [Bool]) -> Double {
    var total = 0.0, within = 0.0
    for i in map.indices where map[i] > 0 {
        total += Double(map[i])
        if inside[i] { within += Double(map[i]) }
    }
    return total > 0 ? within / total : 0
}

/// The share of the `count` hottest voxels (ties in index order) that lie inside.
public func relevanceRankAccuracy(_ map: [Float], inside: [Bool], count: Int) -> Double {
    guard count > 0 else { return 0 }
    let top = rankByHeat(map).prefix(count)
    return Double(top.reduce(0) { $0 + (inside[$1] ? 1 : 0) }) / Double(count)
}

/// `normalizeMap` (min to 0, max to 1, constant to 0) without importing VoxelCAM.
func normalizedMap(_ x: [Float]) -> [Float] {
    guard let lo = x.min(), let hi = x.max(), hi > lo else { return [Float](repeating: 0, count: x.count) }
    let k = 1 / (hi - lo)
    return x.map { ($0 - lo) * k }
}

/// 26-connected components of `on`; returns a component id per voxel (-1 off) and the count.
func components26(_ on: [Bool], shape: [Int]) -> (labels: [Int], count: Int) {
    let (d, h, w) = (shape[0], shape[1], shape[2])
    var label = [Int](repeating: -1, count: on.count)
    var count = 0
    var stack: [Int] = []
    for s in on.indices where on[s] && label[s] < 0 {
        label[s] = count
        stack.append(s)
        while let v = stack.popLast() {
            let z = v / (h * w), y = (v / w) % h, x = v % w
            for dz in -1...1 { for dy in -1...1 { for dx in -1...1 {
                let zz = z + dz, yy = y + dy, xx = x + dx
                if zz < 0 || zz >= d || yy < 0 || yy >= h || xx < 0 || xx >= w { continue }
                let u = (zz * h + yy) * w + xx
                if on[u] && label[u] < 0 { label[u] = count; stack.append(u) }
            } } }
        }
        count += 1
    }
    return (label, count)
}

/// Lesion-level hits of `map` on the labelled `mask` (see the file comment for the definition).
/// - Throws: `EvalError` when the grids differ.
public func lesionHits(_ map: Tensor, mask: Tensor, options: LocalizationOptions = LocalizationOptions()) throws -> LesionHits {
    try requireSameGrid(map, mask, "lesion hits")
    let normalized = normalizedMap(map.scalars)
    let on = normalized.map { Double($0) >= options.lesionThreshold && $0 > 0 }
    let (comp, n) = components26(on, shape: map.shape)
    var peaks = [Int](repeating: -1, count: n)
    for v in comp.indices where comp[v] >= 0 {
        let c = comp[v]
        if peaks[c] < 0 || map.scalars[v] > map.scalars[peaks[c]] { peaks[c] = v }
    }
    var byLabel: [Int: [Int]] = [:]
    for v in mask.scalars.indices where mask.scalars[v] > 0 { byLabel[Int(mask.scalars[v].rounded()), default: []].append(v) }
    let labels = byLabel.keys.sorted()
    var hit: [Int] = [], missed: [Int] = []
    var detectionHits = [Bool](repeating: false, count: n)
    for l in labels {
        var found = false
        for (c, p) in peaks.enumerated() where distanceMM(from: p, to: byLabel[l]!, shape: map.shape, spacing: options.spacing) <= options.toleranceMM {
            found = true
            detectionHits[c] = true
        }
        if found { hit.append(l) } else { missed.append(l) }
    }
    let (h, w) = (map.shape[1], map.shape[2])
    return LesionHits(labels: labels, hit: hit, missed: missed,
                      hitRate: labels.isEmpty ? 0 : Double(hit.count) / Double(labels.count),
                      detections: peaks.map { [$0 / (h * w), ($0 / w) % h, $0 % w] },
                      falsePositives: detectionHits.filter { !$0 }.count)
}

/// How much of a map's heat lies outside the anatomy it should be in.
public struct Plausibility: Sendable, Codable, Equatable {
    /// Share of positive heat outside the body (or lung) mask.
    public var outsideShare: Double
    /// Whether the share exceeds the threshold.
    public var flagged: Bool
    /// The flag threshold.
    public var threshold: Double
}

/// The share of positive heat outside `region` (a body or lung mask, nonzero inside), flagged above
/// `threshold` (default 0.2).
/// - Parameters: map and region `[D, H, W]`, same grid.
/// - Throws: `EvalError` when the grids differ.
public func plausibility(_ map: Tensor, region: Tensor, threshold: Double = 0.2) throws -> Plausibility {
    try requireSameGrid(map, region, "plausibility")
    let inside = region.scalars.map { $0 != 0 }
    let positive = map.scalars.contains { $0 > 0 }
    let outside = positive ? 1 - relevanceMass(map.scalars, inside: inside) : 0
    return Plausibility(outsideShare: outside, flagged: outside > threshold, threshold: threshold)
}

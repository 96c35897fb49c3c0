import Foundation
import VoxelTensor

// Similarity of two maps, for sanity checks and agreement between methods.
// - Spearman's ρ: Pearson correlation of the ranks, ties given their average rank (as
//   scipy.stats.spearmanr). A constant map has no ranks order: ρ is then 0 (scipy gives NaN).
// - SSIM in 3D (Wang et al. 2004) as skimage.metrics.structural_similarity(a, b, data_range=1,
//   gaussian_weights=True, sigma=1.5, use_sample_covariance=False) on volumes: local means, variances
//   and covariance by a 3D Gaussian filter (σ 1.5, truncate 3.5: an 11-voxel window, scipy "reflect"
//   borders), C1 = (0.01)², C2 = (0.03)², the SSIM map averaged over the voxels at least 5 from every
//   border. Maps are min-max normalised first, so data_range is 1.

/// Ranks 1...n of `x` with ties given their average rank.
public func averageRanks(_ x: [Float]) -> [Double] {
    let order = x.indices.sorted { x[$0] != x[$1] ? x[$0] < x[$1] : $0 < $1 }
    var ranks = [Double](repeating: 0, count: x.count)
    var i = 0
    while i < order.count {
        var j = i
        while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
        let r = Double(i + j) / 2 + 1
        for k in i...j { ranks[order[k]] = r }
        i = j + 1
    }
    return ranks
}

/// Pearson correlation in Double; 0 when either side is constant.
public func pearson(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "pearson: \(a.count) and \(b.count) values")
    let n = Double(a.count)
    guard n > 1 else { return 0 }
    let ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for i in a.indices {
        let x = a[i] - ma, y = b[i] - mb
        sab += x * y; saa += x * x; sbb += y * y
    }
    return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
}

/// Spearman's rank correlation of two maps with average ranks for ties; 0 when either is constant.
/// - Throws: `EvalError` when the shapes differ.
public func spearman(_ a: Tensor, _ b: Tensor) throws -> Double {
    guard a.shape == b.shape else { throw EvalError("spearman: map shapes \(a.shape) and \(b.shape) do not match") }
    return pearson(averageRanks(a.scalars), averageRanks(b.scalars))
}

/// 3D SSIM of two maps `[D, H, W]` after min-max normalisation (see the file comment).
/// - Throws: `EvalError` when the shapes differ or an edge is under 11 voxels (the window).
public func ssim3D(_ a: Tensor, _ b: Tensor) throws -> Double {
    guard a.shape == b.shape, a.rank == 3 else { throw EvalError("ssim: map shapes \(a.shape) and \(b.shape) must be the same [D, H, W]") }
    let sigma = 1.5, truncate = 3.5
    let win = 2 * Int(truncate * sigma + 0.5) + 1, pad = (win - 1) / 2
    guard a.shape.allSatisfy({ $0 >= win }) else {
        throw EvalError("ssim: every edge must be at least \(win) voxels (the Gaussian window), got \(a.shape)")
    }
    let x = normalizedMap(a.scalars).map(Double.init), y = normalizedMap(b.scalars).map(Double.init)
    let f = { (v: [Double]) in gaussianFilter3D(v, shape: a.shape, sigma: sigma, truncate: truncate) }
    let ux = f(x), uy = f(y)
    let uxx = f(x.map { $0 * $0 }), uyy = f(y.map { $0 * $0 }), uxy = f(zip(x, y).map { $0 * $1 })
    let c1 = 0.01 * 0.01, c2 = 0.03 * 0.03
    let (d, h, w) = (a.shape[0], a.shape[1], a.shape[2])
    var sum = 0.0, n = 0
    for z in pad..<(d - pad) { for yy in pad..<(h - pad) { for xx in pad..<(w - pad) {
        let i = (z * h + yy) * w + xx
        let vx = uxx[i] - ux[i] * ux[i], vy = uyy[i] - uy[i] * uy[i], vxy = uxy[i] - ux[i] * uy[i]
        sum += ((2 * ux[i] * uy[i] + c1) * (2 * vxy + c2)) / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2))
        n += 1
    } } }
    return sum / Double(n)
}

/// Agreement between the maps of several methods on one input.
public struct Agreement: Sendable, Codable, Equatable {
    /// Pairwise Spearman ρ, `[i][j]` between maps i and j (1 on the diagonal).
    public var spearman: [[Double]]
    /// The mean of the min-max normalised maps, `[D, H, W]` scalars.
    public var consensus: [Float]
}

/// Pairwise Spearman correlation and the consensus map (mean of normalised maps).
/// - Parameter maps: one or more maps `[D, H, W]` of the same shape.
/// - Throws: `EvalError` when there are no maps or the shapes differ.
public func agreement(_ maps: [Tensor]) throws -> Agreement {
    guard let first = maps.first else { throw EvalError("agreement: no maps") }
    for m in maps where m.shape != first.shape {
        throw EvalError("agreement: map shapes \(first.shape) and \(m.shape) do not match")
    }
    let ranks = maps.map { averageRanks($0.scalars) }
    var rho = [[Double]](repeating: [Double](repeating: 1, count: maps.count), count: maps.count)
    for i in maps.indices { for j in maps.indices where j > i {
        rho[i][j] = pearson(ranks[i], ranks[j]); rho[j][i] = rho[i][j]
    } }
    var consensus = [Float](repeating: 0, count: first.count)
    for m in maps {
        let n = normalizedMap(m.scalars)
        for i in n.indices { consensus[i] += n[i] / Float(maps.count) }
    }
    return Agreement(spearman: rho, consensus: consensus)
}

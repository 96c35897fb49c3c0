import Foundation
import VoxelTensor

// Small 3D filters shared by the metrics: a separable Gaussian filter with scipy.ndimage's
// conventions (used by SSIM and by the blur perturbation), and ROAD-style neighbour imputation.

/// A separable 3D Gaussian filter of a `[D, H, W]` grid (W fastest), as
/// `scipy.ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=truncate)`: kernel radius
/// `int(truncate * sigma + 0.5)`, weights `exp(-x²/(2σ²))` normalised to sum 1, and half-sample
/// symmetric borders (`d c b a | a b c d | d c b a`). Computed in Double.
/// - Parameters:
///   - values: `D*H*W` values; `shape`: `[D, H, W]`.
/// - Returns: the filtered values, same layout.
public func gaussianFilter3D(_ values: [Double], shape: [Int], sigma: Double, truncate: Double = 4) -> [Double] {
    precondition(shape.count == 3 && values.count == shape.product, "gaussianFilter3D: values do not fill \(shape)")
    guard sigma > 0 else { return values }
    let radius = Int(truncate * sigma + 0.5)
    var kernel = (-radius...radius).map { Foundation.exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
    let total = kernel.reduce(0, +)
    kernel = kernel.map { $0 / total }
    var a = values
    let (d, h, w) = (shape[0], shape[1], shape[2])
    let strides = [h * w, w, 1]
    for axis in 0..<3 {
        let n = shape[axis], s = strides[axis]
        var out = [Double](repeating: 0, count: a.count)
        let reflected = (0..<n).map { i in (-radius...radius).map { reflectIndex(i + $0, n) } }
        for z in 0..<d { for y in 0..<h { for x in 0..<w {
            let idx = (z * h + y) * w + x
            let i = axis == 0 ? z : (axis == 1 ? y : x)
            let base = idx - i * s
            var acc = 0.0
            let taps = reflected[i]
            for t in 0..<kernel.count { acc += kernel[t] * a[base + taps[t] * s] }
            out[idx] = acc
        } } }
        a = out
    }
    return a
}

/// scipy's "reflect" (half-sample symmetric) index into `0..<n`, repeating for far indices.
@inline(__always) func reflectIndex(_ i: Int, _ n: Int) -> Int {
    if n == 1 { return 0 }
    var m = i % (2 * n)
    if m < 0 { m += 2 * n }
    return m < n ? m : 2 * n - 1 - m
}

/// Offsets and weights of the 26-neighbourhood: weight `1/|offset|²` (faces 1, edges 1/2, corners 1/3),
/// the 3D form of ROAD's 2D weights (1/6 direct, 1/12 diagonal: also inverse squared distance).
let neighbourhood26: [(dz: Int, dy: Int, dx: Int, weight: Double)] = {
    var n: [(Int, Int, Int, Double)] = []
    for dz in -1...1 { for dy in -1...1 { for dx in -1...1 where (dz, dy, dx) != (0, 0, 0) {
        n.append((dz, dy, dx, 1 / Double(dz * dz + dy * dy + dx * dx)))
    } } }
    return n
}()

/// ROAD-style imputation in 3D (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for
/// Attribution Methods", "noisy linear imputation" without the noise): each perturbed voxel takes the
/// weighted mean of its in-volume 26 neighbours, where perturbed neighbours are themselves unknowns.
///
/// ROAD solves this sparse linear system exactly; here it is solved by Gauss–Seidel sweeps over the
/// perturbed voxels in index order (deterministic), re-solving only the connected components of
/// perturbed voxels that the fresh voxels belong to (the others are independent and unchanged), starting from the values in `values` for voxels
/// imputed before (warm start across cumulative steps) and, for newly perturbed voxels, the mean of
/// their known neighbours (the channel mean when they have none). Sweeps stop when no voxel changes by
/// more than `tolerance` or after `maxSweeps`. Voxels whose whole neighbourhood is perturbed and
/// unreached keep their start value.
/// - Parameters:
///   - values: one channel, `D*H*W`, imputed in place; `original` the unperturbed channel.
///   - perturbed: the voxels to impute; `fresh`: those perturbed for the first time in this call.
func roadImpute(_ values: inout [Float], original: [Float], shape: [Int], perturbed: [Bool], fresh: [Int],
                maxSweeps: Int, tolerance: Double) {
    let (d, h, w) = (shape[0], shape[1], shape[2])
    let mean = original.reduce(0.0) { $0 + Double($1) } / Double(max(original.count, 1))
    func neighbours(_ v: Int, _ body: (Int, Double) -> Void) {
        let z = v / (h * w), y = (v / w) % h, x = v % w
        for n in neighbourhood26 {
            let zz = z + n.dz, yy = y + n.dy, xx = x + n.dx
            if zz < 0 || zz >= d || yy < 0 || yy >= h || xx < 0 || xx >= w { continue }
            body((zz * h + yy) * w + xx, n.weight)
        }
    }
    for v in fresh {
        var s = 0.0, ws = 0.0
        neighbours(v) { u, wt in if !perturbed[u] { s += wt * Double(original[u]); ws += wt } }
        values[v] = Float(ws > 0 ? s / ws : mean)
    }
    // Perturbed voxels fall into 26-connected components separated by known voxels; each component is
    // an independent linear system, so only the components that hold fresh voxels need solving again.
    var unknowns: [Int] = []
    var seen = [Bool](repeating: false, count: perturbed.count)
    var stack = fresh
    for v in fresh { seen[v] = true }
    while let v = stack.popLast() {
        unknowns.append(v)
        neighbours(v) { u, _ in
            if perturbed[u] && !seen[u] { seen[u] = true; stack.append(u) }
        }
    }
    unknowns.sort()
    for _ in 0..<maxSweeps {
        var change = 0.0
        for v in unknowns {
            var s = 0.0, ws = 0.0
            neighbours(v) { u, wt in s += wt * Double(values[u]); ws += wt }
            guard ws > 0 else { continue }
            let nv = s / ws
            change = max(change, abs(nv - Double(values[v])))
            values[v] = Float(nv)
        }
        if change <= tolerance { break }
    }
}

/// Standard normal values from SplitMix64 (Box–Muller), reproducible from `seed`.
func gaussianNoise(count: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    var out = [Float](repeating: 0, count: count)
    var i = 0
    while i < count {
        let u1 = max(rng.unit(), 1e-300), u2 = rng.unit()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        out[i] = Float(r * Foundation.cos(2 * Double.pi * u2))
        if i + 1 < count { out[i + 1] = Float(r * Foundation.sin(2 * Double.pi * u2)) }
        i += 2
    }
    return out
}

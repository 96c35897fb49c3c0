/// Orientation of voxel axes in world space, as nibabel's `io_orientation` and `aff2axcodes`.
public enum Orientation {
    /// For each voxel axis (i, j, k): the world axis it runs closest to (0 = x, 1 = y, 2 = z) and the
    /// direction (+1 or -1), or nil when the axis is degenerate. nibabel's algorithm: normalise the
    /// columns, take the polar factor `U V^T` of the SVD (dropping singular values below
    /// `max(S) * 3 * eps`), then pick axes strongest-first, removing each chosen world axis.
    public static func axes(of affine: Affine) -> [(axis: Int, sign: Int)?] {
        // RS: the 3x3 block with unit columns (zero columns stay zero).
        var a = [[Double]](repeating: [0, 0, 0], count: 3)
        let norms = affine.columnNorms
        for c in 0..<3 {
            let n = norms[c] == 0 ? 1 : norms[c]
            for r in 0..<3 { a[r][c] = affine[r, c] / n }
        }
        let (u, s, v) = svd3(a)
        let tol = (s.max() ?? 0) * 3 * Double.ulpOfOne
        var rot = [[Double]](repeating: [0, 0, 0], count: 3)
        for j in 0..<3 where s[j] > tol {
            for r in 0..<3 { for c in 0..<3 { rot[r][c] += u[r][j] * v[c][j] } }
        }
        // Strongest input axes first (stable on ties), as nibabel >= 5.3.
        let keys = (0..<3).map { c in -(0..<3).map { r in rot[r][c] * rot[r][c] }.max()! }
        let order = (0..<3).sorted { keys[$0] < keys[$1] || (keys[$0] == keys[$1] && $0 < $1) }
        var result: [(axis: Int, sign: Int)?] = [nil, nil, nil]
        for inAxis in order {
            let col = (0..<3).map { rot[$0][inAxis] }
            // np.allclose(col, 0): |x| <= 1e-8 for every element.
            if col.allSatisfy({ abs($0) <= 1e-8 }) { continue }
            var out = 0
            for r in 1..<3 where abs(col[r]) > abs(col[out]) { out = r }
            result[inAxis] = (out, col[out] < 0 ? -1 : 1)
            for c in 0..<3 { rot[out][c] = 0 }
        }
        return result
    }

    /// Axis codes such as "RAS" or "LPS" (nibabel's `aff2axcodes` with labels L/R, P/A, I/S);
    /// "?" for a degenerate axis.
    public static func code(of affine: Affine) -> String {
        let labels: [(Character, Character)] = [("L", "R"), ("P", "A"), ("I", "S")]
        return String(axes(of: affine).map { o -> Character in
            guard let o else { return "?" }
            return o.sign > 0 ? labels[o.axis].1 : labels[o.axis].0
        })
    }

    /// SVD of a 3x3 matrix by one-sided Jacobi rotations: `a = u * diag(s) * v^T` (columns of `u` for
    /// zero singular values are zero). Slow and exact enough (converges to ~1e-15) for 3x3.
    static func svd3(_ m: [[Double]]) -> (u: [[Double]], s: [Double], v: [[Double]]) {
        var a = m
        var v: [[Double]] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        for _ in 0..<60 {
            var rotated = false
            for p in 0..<2 {
                for q in (p + 1)..<3 {
                    var alpha = 0.0, beta = 0.0, gamma = 0.0
                    for r in 0..<3 {
                        alpha += a[r][p] * a[r][p]
                        beta += a[r][q] * a[r][q]
                        gamma += a[r][p] * a[r][q]
                    }
                    if gamma == 0 || abs(gamma) <= 1e-15 * (alpha * beta).squareRoot() { continue }
                    rotated = true
                    let zeta = (beta - alpha) / (2 * gamma)
                    let t = (zeta >= 0 ? 1.0 : -1.0) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                    let c = 1 / (1 + t * t).squareRoot()
                    let s = c * t
                    for r in 0..<3 {
                        let ap = a[r][p], aq = a[r][q]
                        a[r][p] = c * ap - s * aq
                        a[r][q] = s * ap + c * aq
                        let vp = v[r][p], vq = v[r][q]
                        v[r][p] = c * vp - s * vq
                        v[r][q] = s * vp + c * vq
                    }
                }
            }
            if !rotated { break }
        }
        var s = [0.0, 0.0, 0.0]
        var u = [[Double]](repeating: [0, 0, 0], count: 3)
        for j in 0..<3 {
            s[j] = (0..<3).map { a[$0][j] * a[$0][j] }.reduce(0, +).squareRoot()
            if s[j] > 0 { for r in 0..<3 { u[r][j] = a[r][j] / s[j] } }
        }
        return (u, s, v)
    }
}

extension Affine {
    /// Axis codes such as "RAS" or "LPS", as nibabel's `aff2axcodes`.
    public var orientationCode: String { Orientation.code(of: self) }
}

/// A 4x4 voxel-to-world matrix (NIfTI RAS+ millimetres), stored row-major in Double.
///
/// `world = affine * [i, j, k, 1]`; the last row is `[0, 0, 0, 1]` for every affine NIfTI can store.
public struct Affine: Equatable, Sendable, CustomStringConvertible {
    /// The 16 elements, row-major: `m[4 * row + column]`.
    public private(set) var m: [Double]

    /// The identity matrix.
    public static let identity = Affine(uncheckedRows: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

    /// An affine from 4 rows of 4 numbers (or 3 rows; the row `[0, 0, 0, 1]` is then appended).
    /// - Throws: `NIfTIError` (path "affine") when the rows are not 3 or 4 rows of 4 finite numbers.
    public init(rows: [[Double]]) throws {
        var rows = rows
        if rows.count == 3 { rows.append([0, 0, 0, 1]) }
        guard rows.count == 4, rows.allSatisfy({ $0.count == 4 }) else {
            throw NIfTIError("affine", "expected 4 rows of 4 numbers, got \(rows.map(\.count))")
        }
        guard rows.joined().allSatisfy(\.isFinite) else { throw NIfTIError("affine", "has a non-finite element") }
        m = Array(rows.joined())
    }

    init(uncheckedRows rows: [[Double]]) { m = Array(rows.joined()) }

    /// A diagonal scaling with a translation: `diag(scale) + offset` in the last column.
    public init(scale: SIMD3<Double>, offset: SIMD3<Double> = .zero) {
        m = [scale.x, 0, 0, offset.x, 0, scale.y, 0, offset.y, 0, 0, scale.z, offset.z, 0, 0, 0, 1]
    }

    /// Element at `row`, `column` (both 0..<4).
    public subscript(row: Int, column: Int) -> Double {
        get { m[4 * row + column] }
        set { m[4 * row + column] = newValue }
    }

    /// The 4 rows, for printing and JSON.
    public var rows: [[Double]] { (0..<4).map { r in Array(m[(4 * r)..<(4 * r + 4)]) } }

    /// World coordinates (mm) of a (possibly fractional) voxel index `(i, j, k)`.
    public func apply(_ voxel: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3(m[0] * voxel.x + m[1] * voxel.y + m[2] * voxel.z + m[3],
              m[4] * voxel.x + m[5] * voxel.y + m[6] * voxel.z + m[7],
              m[8] * voxel.x + m[9] * voxel.y + m[10] * voxel.z + m[11])
    }

    /// The length of each voxel axis in world units: the norms of the first three columns.
    public var columnNorms: SIMD3<Double> {
        func norm(_ c: Int) -> Double { (self[0, c] * self[0, c] + self[1, c] * self[1, c] + self[2, c] * self[2, c]).squareRoot() }
        return SIMD3(norm(0), norm(1), norm(2))
    }

    /// The determinant of the upper-left 3x3 block (negative for a left-handed voxel grid).
    public var determinant3: Double {
        let a = self
        return a[0, 0] * (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1])
            - a[0, 1] * (a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0])
            + a[0, 2] * (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0])
    }

    /// The inverse (world to voxel), or nil when the 3x3 block is singular.
    public func inverse() -> Affine? {
        let d = determinant3
        guard d != 0, d.isFinite else { return nil }
        let a = self
        var inv = [[Double]](repeating: [0, 0, 0, 0], count: 4)
        inv[0][0] = (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1]) / d
        inv[0][1] = (a[0, 2] * a[2, 1] - a[0, 1] * a[2, 2]) / d
        inv[0][2] = (a[0, 1] * a[1, 2] - a[0, 2] * a[1, 1]) / d
        inv[1][0] = (a[1, 2] * a[2, 0] - a[1, 0] * a[2, 2]) / d
        inv[1][1] = (a[0, 0] * a[2, 2] - a[0, 2] * a[2, 0]) / d
        inv[1][2] = (a[0, 2] * a[1, 0] - a[0, 0] * a[1, 2]) / d
        inv[2][0] = (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]) / d
        inv[2][1] = (a[0, 1] * a[2, 0] - a[0, 0] * a[2, 1]) / d
        inv[2][2] = (a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]) / d
        for r in 0..<3 {
            inv[r][3] = -(inv[r][0] * a[0, 3] + inv[r][1] * a[1, 3] + inv[r][2] * a[2, 3])
        }
        inv[3] = [0, 0, 0, 1]
        return Affine(uncheckedRows: inv)
    }

    /// Largest absolute element-wise difference to `other`.
    public func maxAbsDifference(_ other: Affine) -> Double {
        zip(m, other.m).map { abs($0 - $1) }.max() ?? 0
    }

    /// The rows, one per line.
    public var description: String {
        rows.map { "[" + $0.map { String($0) }.joined(separator: ", ") + "]" }.joined(separator: "\n")
    }
}

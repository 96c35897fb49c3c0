/// A viewing plane named by the patient's anatomy.
public enum ViewAxis: String, CaseIterable, Sendable {
    /// Slices across world z (feet to head); shown with anterior up.
    case axial
    /// Slices across world y (back to front); shown with superior up.
    case coronal
    /// Slices across world x (right to left); shown with superior up, anterior on the left.
    case sagittal
}

/// A voxel grid: its extent and its 4x4 voxel-to-world affine (RAS+ mm), with no voxels.
///
/// Voxel `(i, j, k)` is element `i + ni * (j + nj * k)` of a value array (i fastest, as NIfTI).
public struct VoxelGrid: Equatable, Sendable {
    /// Extent along i, j, k.
    public let dims: [Int]
    /// The affine, row-major (16 values; the last row `0, 0, 0, 1`).
    public let affine: [Double]

    /// A grid of `dims` (3 positive counts) with `affine` (16 row-major values).
    /// - Throws: `RenderError` when counts are wrong or the affine is singular or not finite.
    public init(dims: [Int], affine: [Double]) throws {
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }), dims[0].multipliedReportingOverflow(by: dims[1]).overflow == false else {
            throw RenderError("grid \(dims) must be three positive counts")
        }
        guard affine.count == 16, affine.allSatisfy(\.isFinite) else {
            throw RenderError("affine must be 16 finite numbers (4x4 row-major), got \(affine.count)")
        }
        self.dims = dims
        self.affine = affine
        guard (0..<3).allSatisfy({ spacing[$0] > 0 }) else { throw RenderError("affine has a zero column: voxel size \(spacing)") }
    }

    /// Number of voxels.
    public var count: Int { dims[0] * dims[1] * dims[2] }
    /// Flat index of voxel `(i, j, k)`.
    @inlinable public func index(_ i: Int, _ j: Int, _ k: Int) -> Int { i + dims[0] * (j + dims[1] * k) }
    /// The world direction (not normalised) of voxel axis `c` (0 i, 1 j, 2 k): column `c` of the affine.
    public func column(_ c: Int) -> SIMD3<Double> { SIMD3(affine[c], affine[4 + c], affine[8 + c]) }
    /// Voxel size along i, j, k in mm: the norms of the affine's first three columns.
    public var spacing: SIMD3<Double> {
        SIMD3((0..<3).map { c -> Double in let v = column(c); return (v * v).sum().squareRoot() })
    }
    /// World coordinates (mm) of a fractional voxel index.
    public func world(_ v: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3(affine[0] * v.x + affine[1] * v.y + affine[2] * v.z + affine[3],
              affine[4] * v.x + affine[5] * v.y + affine[6] * v.z + affine[7],
              affine[8] * v.x + affine[9] * v.y + affine[10] * v.z + affine[11])
    }

    /// For each voxel axis, the world axis (0 x, 1 y, 2 z) it runs closest to and the direction
    /// (+1/-1): the largest |element| of the unit columns is matched first, then the next among
    /// the remaining rows and columns (for near-orthogonal affines as nibabel's `io_orientation`).
    public var axisCodes: [(world: Int, sign: Int)] {
        var unit = [[Double]](repeating: [0, 0, 0], count: 3)   // unit[c][w]
        for c in 0..<3 {
            let v = column(c), n = spacing[c]
            for w in 0..<3 { unit[c][w] = v[w] / n }
        }
        var result = [(world: Int, sign: Int)](repeating: (0, 1), count: 3)
        var freeC: Set<Int> = [0, 1, 2], freeW: Set<Int> = [0, 1, 2]
        while let _ = freeC.first {
            var best = (c: -1, w: -1, m: -1.0)
            for c in freeC.sorted() { for w in freeW.sorted() where abs(unit[c][w]) > best.m { best = (c, w, abs(unit[c][w])) } }
            result[best.c] = (best.w, unit[best.c][best.w] < 0 ? -1 : 1)
            freeC.remove(best.c)
            freeW.remove(best.w)
        }
        return result
    }
}

/// The anatomical letters on the four sides of a displayed plane.
public struct OrientationLetters: Equatable, Sendable, CustomStringConvertible {
    /// The letter on each side: "R", "L", "A", "P", "S" or "I".
    public var left: String, right: String, top: String, bottom: String
    /// Letters for the four sides.
    public init(left: String, right: String, top: String, bottom: String) {
        self.left = left; self.right = right; self.top = top; self.bottom = bottom
    }
    /// The letter for a world direction: its largest component, R/L for x, A/P for y, S/I for z.
    public static func letter(_ d: SIMD3<Double>) -> String {
        var w = 0
        for a in 1..<3 where abs(d[a]) > abs(d[w]) { w = a }
        let names = [("R", "L"), ("A", "P"), ("S", "I")]
        return d[w] >= 0 ? names[w].0 : names[w].1
    }
    /// "left R, right L, top A, bottom P".
    public var description: String { "left \(left), right \(right), top \(top), bottom \(bottom)" }
}

/// How slices of a grid along a view axis are laid on the screen.
///
/// Convention (radiological, the usual one for CT): axial and coronal slices show the patient's
/// right on the left of the picture; axial shows anterior up; coronal and sagittal show superior up;
/// sagittal shows anterior on the left. The voxel axes and their directions are found from the
/// affine, so the convention holds for RAS, LPS or any axis order; the letters on the four sides
/// are read back from the affine for the chosen directions.
public struct PlaneLayout: Equatable, Sendable {
    /// The view.
    public let axis: ViewAxis
    /// The voxel axis across the slices (0 i, 1 j, 2 k).
    public let normal: Int
    /// The voxel axis along screen x, and +1 when its index grows to the right (-1: to the left).
    public let across: Int, acrossSign: Int
    /// The voxel axis along screen y, and +1 when its index grows downwards (-1: upwards).
    public let down: Int, downSign: Int
    /// Voxels along screen x and y, and slices.
    public let width: Int, height: Int, sliceCount: Int
    /// Voxel size in mm along screen x and y.
    public let acrossMM: Double, downMM: Double
    /// The letters on the four sides.
    public let letters: OrientationLetters
    /// The world axis (0 x, 1 y, 2 z) across the slices.
    public let worldNormal: Int

    /// The layout of `axis` slices of `grid`.
    public init(grid: VoxelGrid, axis: ViewAxis) {
        self.axis = axis
        let codes = grid.axisCodes
        // World axis across slices, along screen x and down, and the world sign wanted along each.
        let (wn, wx, sx, wy, sy): (Int, Int, Int, Int, Int)
        switch axis {
        case .axial: (wn, wx, sx, wy, sy) = (2, 0, -1, 1, -1)      // x to the patient's left, y down to posterior
        case .coronal: (wn, wx, sx, wy, sy) = (1, 0, -1, 2, -1)    // x to the left, z down to inferior
        case .sagittal: (wn, wx, sx, wy, sy) = (0, 1, -1, 2, -1)   // x to posterior, z down to inferior
        }
        func voxelAxis(_ w: Int) -> Int { (0..<3).first { codes[$0].world == w } ?? w }
        worldNormal = wn
        normal = voxelAxis(wn)
        across = voxelAxis(wx)
        acrossSign = codes[across].sign * sx
        down = voxelAxis(wy)
        downSign = codes[down].sign * sy
        width = grid.dims[across]
        height = grid.dims[down]
        sliceCount = grid.dims[normal]
        acrossMM = grid.spacing[across]
        downMM = grid.spacing[down]
        let toRight = grid.column(across) * Double(acrossSign), toBottom = grid.column(down) * Double(downSign)
        letters = OrientationLetters(left: OrientationLetters.letter(-toRight), right: OrientationLetters.letter(toRight),
                                     top: OrientationLetters.letter(-toBottom), bottom: OrientationLetters.letter(toBottom))
    }

    /// Width and height in mm of the plane (voxel count times voxel size).
    public var extentMM: (width: Double, height: Double) { (Double(width) * acrossMM, Double(height) * downMM) }

    /// The voxel `(i, j, k)` shown at fractional plane position (`u` voxels along screen x from the
    /// left edge's voxel, `v` voxels down from the top edge's voxel) in slice `slice`.
    public func voxel(u: Double, v: Double, slice: Double) -> SIMD3<Double> {
        var p = SIMD3<Double>(repeating: 0)
        p[normal] = slice
        p[across] = acrossSign > 0 ? u : Double(width - 1) - u
        p[down] = downSign > 0 ? v : Double(height - 1) - v
        return p
    }

    /// The fractional plane position (u, v) of a voxel (inverse of `voxel(u:v:slice:)`).
    public func planePosition(_ voxel: SIMD3<Double>) -> (u: Double, v: Double) {
        (acrossSign > 0 ? voxel[across] : Double(width - 1) - voxel[across],
         downSign > 0 ? voxel[down] : Double(height - 1) - voxel[down])
    }

    /// The letter of the voxel axis across the slices: "i", "j" or "k".
    public var normalName: String { ["i", "j", "k"][normal] }
}

/// The extent of a 3D voxel grid along NIfTI's i, j and k axes.
public struct VoxelDims: Hashable, Sendable, CustomStringConvertible {
    /// Voxels along i (the fastest axis on disk; the model's D).
    public var i: Int
    /// Voxels along j (the model's H).
    public var j: Int
    /// Voxels along k (the model's W).
    public var k: Int
    /// A grid of `i x j x k` voxels (each at least 1 for a readable volume).
    public init(_ i: Int, _ j: Int, _ k: Int) { self.i = i; self.j = j; self.k = k }
    /// Number of voxels, `i * j * k`.
    public var count: Int { i * j * k }
    /// `i * j * k`, or nil when an extent is negative or the product overflows.
    public var checkedCount: Int? {
        guard i >= 0, j >= 0, k >= 0 else { return nil }
        let (ij, o1) = i.multipliedReportingOverflow(by: j)
        let (ijk, o2) = ij.multipliedReportingOverflow(by: k)
        return o1 || o2 ? nil : ijk
    }
    /// `[i, j, k]`.
    public var array: [Int] { [i, j, k] }
    /// "128x128x96".
    public var description: String { "\(i)x\(j)x\(k)" }
}

/// A NIfTI voxel datatype (the `datatype` header field). Voxplain reads the real-valued ones.
public enum NIfTIDataType: Int, CaseIterable, Sendable, CustomStringConvertible {
    case uint8 = 2, int16 = 4, int32 = 8, float32 = 16, float64 = 64
    case int8 = 256, uint16 = 512, uint32 = 768, int64 = 1024, uint64 = 1280

    /// Bytes per voxel.
    public var byteCount: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .float64, .int64, .uint64: return 8
        }
    }
    /// True for the integer types (values are rounded when written).
    public var isInteger: Bool { self != .float32 && self != .float64 }
    /// The smallest and largest value the type holds (as Double; approximate for 64-bit integers).
    public var range: ClosedRange<Double> {
        switch self {
        case .uint8: return 0...255
        case .int8: return -128...127
        case .int16: return -32768...32767
        case .uint16: return 0...65535
        case .int32: return -2_147_483_648...2_147_483_647
        case .uint32: return 0...4_294_967_295
        case .int64: return -9.223372036854775808e18...9.223372036854774784e18
        case .uint64: return 0...1.8446744073709549568e19
        case .float32: return -Double(Float.greatestFiniteMagnitude)...Double(Float.greatestFiniteMagnitude)
        case .float64: return -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude
        }
    }
    /// The nibabel/numpy name: `int16`, `float32`...
    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .int16: return "int16"
        case .uint16: return "uint16"
        case .int32: return "int32"
        case .uint32: return "uint32"
        case .int64: return "int64"
        case .uint64: return "uint64"
        case .float32: return "float32"
        case .float64: return "float64"
        }
    }
    /// The type named `name` (`"int16"`), or nil.
    public init?(name: String) {
        guard let t = NIfTIDataType.allCases.first(where: { $0.description == name }) else { return nil }
        self = t
    }
}

/// The NIfTI header version of a file.
public enum NIfTIFormat: Int, Sendable, CustomStringConvertible {
    case nifti1 = 1, nifti2 = 2
    /// "NIfTI-1" or "NIfTI-2".
    public var description: String { "NIfTI-\(rawValue)" }
}

/// Linear scaling of stored values: `value = slope * stored + intercept` (`scl_slope`, `scl_inter`).
public struct Scaling: Equatable, Sendable {
    /// `scl_slope`.
    public var slope: Double
    /// `scl_inter`.
    public var intercept: Double
    /// A scaling; `slope` must be finite and non-zero for the scaling to be used.
    public init(slope: Double, intercept: Double) { self.slope = slope; self.intercept = intercept }
}

/// A 3D scan: Float32 voxels (after `scl_slope`/`scl_inter`), the grid, the affine and header facts.
///
/// Voxel order is NIfTI's: `voxels[i + dims.i * (j + dims.j * k)]` (i fastest), as on disk.
///
/// Axes: NIfTI's (i, j, k) is the model's (D, H, W), as MONAI loads it (nibabel array of shape
/// (i, j, k), which PyTorch stores with k fastest). A `[1, 1, D, H, W]` tensor of this volume is
/// therefore `dhwScalars()` (k fastest), a transpose of `voxels`; `init(dhw:like:)` goes back.
/// Tensor index `(d, h, w)` holds voxel `(i, j, k) = (d, h, w)`.
public struct Volume: Equatable, Sendable {
    /// Grid extent (i, j, k).
    public var dims: VoxelDims
    /// Voxel values, i fastest; `voxels.count == dims.count`. NaN and Inf are kept as read.
    public var voxels: [Float]
    /// Voxel size along i, j, k (`pixdim[1...3]`), in `spatialUnits`; each > 0.
    public var spacing: SIMD3<Double>
    /// The sform (`srow_*`), meaningful when `sformCode > 0` (else `diag(spacing)` when read).
    public var sform: Affine
    /// The sform code (`NIFTI_XFORM_*`: 0 unknown, 1 scanner, 2 aligned, 3 Talairach, 4 MNI, 5 template).
    public var sformCode: Int
    /// The qform (quaternion, offsets, pixdim and qfac), meaningful when `qformCode > 0` (else
    /// `diag(spacing)` when read).
    public var qform: Affine
    /// The qform code (`NIFTI_XFORM_*`).
    public var qformCode: Int
    /// Spatial units code (`NIFTI_UNITS_*`: 0 unknown, 1 m, 2 mm, 3 micron).
    public var spatialUnits: Int
    /// Temporal units code (`NIFTI_UNITS_*`: 0 unknown, 8 s, 16 ms, 24 us, ...).
    public var temporalUnits: Int
    /// The `descrip` field (at most 79 bytes are written).
    public var description: String
    /// The datatype on disk when read; the datatype to store when written.
    public var datatype: NIfTIDataType
    /// The scaling read from the file (already applied to `voxels`), and applied in reverse on write.
    /// nil when `scl_slope` is 0 or not finite (no scaling).
    public var scaling: Scaling?
    /// Display range hint `cal_min`.
    public var calMin: Double
    /// Display range hint `cal_max`.
    public var calMax: Double
    /// Intent code (`NIFTI_INTENT_*`; 1001 "estimate" for Voxplain's maps).
    public var intentCode: Int
    /// Intent name (at most 15 bytes are written).
    public var intentName: String
    /// The header version read, and written.
    public var format: NIfTIFormat

    /// A volume with the given voxels and grid; affine from `affine` (stored as the sform with code 1
    /// "scanner", and as the qform with code 1 too when it is a rotation times `spacing`) or, when nil,
    /// none (codes 0, so the affine is nibabel's pixdim default).
    /// - Parameters:
    ///   - voxels: `dims.count` values, i fastest.
    ///   - datatype: the type to write (`.float32` unless given).
    /// - Throws: `NIfTIError` (path "volume") when counts or spacing are wrong.
    public init(dims: VoxelDims, voxels: [Float], spacing: SIMD3<Double>, affine: Affine? = nil,
                datatype: NIfTIDataType = .float32, description: String = "") throws {
        guard dims.i > 0, dims.j > 0, dims.k > 0, dims.checkedCount != nil else {
            throw NIfTIError("volume", "dimensions \(dims) must be positive and not overflow")
        }
        guard voxels.count == dims.count else {
            throw NIfTIError("volume", "\(voxels.count) voxels do not fill a \(dims) grid (\(dims.count) voxels)")
        }
        guard (0..<3).allSatisfy({ spacing[$0] > 0 && spacing[$0].isFinite }) else {
            throw NIfTIError("volume", "voxel size \(spacing.x)x\(spacing.y)x\(spacing.z) must be positive")
        }
        self.dims = dims
        self.voxels = voxels
        self.spacing = spacing
        let a = affine ?? Affine(scale: spacing)
        sform = a
        sformCode = affine == nil ? 0 : 1
        // The qform can only hold a rotation times the voxel size: keep it only for such affines.
        let rigid = affine.map { Volume.isRotationTimesSpacing($0, spacing) } ?? false
        qform = rigid ? a : Affine(scale: spacing)
        qformCode = rigid ? 1 : 0
        spatialUnits = 2
        temporalUnits = 0
        self.description = description
        self.datatype = datatype
        scaling = nil
        calMin = 0
        calMax = 0
        intentCode = 0
        intentName = ""
        format = .nifti1
    }

    /// A Float32 map on `reference`'s grid (a heatmap): copies its spacing, sform, qform, codes, units
    /// and format; sets `cal_min`/`cal_max` to the range of the finite values, the intent and description.
    /// - Parameters:
    ///   - voxels: `reference.dims.count` values, i fastest.
    ///   - intentCode: `NIFTI_INTENT_*`; 1001 (estimate) by default.
    /// - Throws: `NIfTIError` when the voxel count differs from the reference's grid.
    public init(mapLike reference: Volume, voxels: [Float], description: String,
                intentCode: Int = 1001, intentName: String = "") throws {
        guard voxels.count == reference.dims.count else {
            throw NIfTIError("volume", "\(voxels.count) voxels do not fill the reference grid \(reference.dims)")
        }
        self = reference
        self.voxels = voxels
        self.datatype = .float32
        self.scaling = nil
        self.description = description
        self.intentCode = intentCode
        self.intentName = intentName
        let range = finiteRange(voxels)
        calMin = Double(range?.low ?? 0)
        calMax = Double(range?.high ?? 0)
    }

    /// The voxel-to-world affine by nibabel's precedence: the sform when `sformCode > 0`, else the
    /// qform when `qformCode > 0`, else nibabel's default for pixdim only (`shape_zoom_affine`:
    /// diagonal `(-dx, dy, dz)` centred on the grid). Note the default differs from NIfTI's "method 1"
    /// (plain `diag(dx, dy, dz)`); Voxplain follows nibabel because MONAI models are trained on it.
    public var affine: Affine {
        if sformCode > 0 { return sform }
        if qformCode > 0 { return qform }
        return Volume.defaultAffine(dims: dims, spacing: spacing)
    }

    /// Which header field `affine` comes from: "sform", "qform" or "pixdim".
    public var affineSource: String { sformCode > 0 ? "sform" : qformCode > 0 ? "qform" : "pixdim" }

    /// nibabel's affine for a header without sform or qform (`shape_zoom_affine` with the x flip).
    public static func defaultAffine(dims: VoxelDims, spacing: SIMD3<Double>) -> Affine {
        let zooms = SIMD3(-spacing.x, spacing.y, spacing.z)
        let origin = SIMD3(Double(dims.i - 1), Double(dims.j - 1), Double(dims.k - 1)) / 2
        return Affine(scale: zooms, offset: -origin * zooms)
    }

    /// True when the 3x3 block of `a` has orthogonal columns whose lengths are `spacing` (relative
    /// tolerance 1e-6), so that a NIfTI qform (quaternion, pixdim, qfac) can store it.
    public static func isRotationTimesSpacing(_ a: Affine, _ spacing: SIMD3<Double>) -> Bool {
        let n = a.columnNorms
        for c in 0..<3 where abs(n[c] - spacing[c]) > 1e-6 * spacing[c] { return false }
        for c1 in 0..<3 {
            for c2 in (c1 + 1)..<3 {
                let dot = (0..<3).map { a[$0, c1] * a[$0, c2] }.reduce(0, +)
                if abs(dot) > 1e-6 * spacing[c1] * spacing[c2] { return false }
            }
        }
        return true
    }

    /// Flat index of voxel `(i, j, k)` in `voxels`.
    @inlinable public func index(_ i: Int, _ j: Int, _ k: Int) -> Int { i + dims.i * (j + dims.j * k) }

    /// Voxel `(i, j, k)`.
    public subscript(i: Int, j: Int, k: Int) -> Float {
        get { voxels[index(i, j, k)] }
        set { voxels[index(i, j, k)] = newValue }
    }

    /// The voxels as a `[D, H, W] = [dims.i, dims.j, dims.k]` array with W (k) fastest: the scalars of
    /// a `[1, 1, D, H, W]` tensor as MONAI builds it from this file. Element `(d, h, w)` is at
    /// `(d * H + h) * W + w` and equals voxel `(i, j, k) = (d, h, w)`.
    public func dhwScalars() -> [Float] {
        let (ni, nj, nk) = (dims.i, dims.j, dims.k)
        var out = [Float](repeating: 0, count: dims.count)
        voxels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for k in 0..<nk {
                    for j in 0..<nj {
                        let row = ni * (j + nj * k)
                        for i in 0..<ni { dst[(i * nj + j) * nk + k] = src[row + i] }
                    }
                }
            }
        }
        return out
    }

    /// A volume on `reference`'s grid and header from `[D, H, W]` scalars (W fastest), the inverse of
    /// `dhwScalars()`; datatype Float32, no scaling.
    /// - Throws: `NIfTIError` when the count differs from the grid.
    public init(dhw scalars: [Float], like reference: Volume) throws {
        guard scalars.count == reference.dims.count else {
            throw NIfTIError("volume", "\(scalars.count) values do not fill [D, H, W] = \(reference.dims.array)")
        }
        self = reference
        datatype = .float32
        scaling = nil
        let (ni, nj, nk) = (dims.i, dims.j, dims.k)
        var out = [Float](repeating: 0, count: dims.count)
        scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for d in 0..<ni {
                    for h in 0..<nj {
                        let row = (d * nj + h) * nk
                        for w in 0..<nk { dst[d + ni * (h + nj * w)] = src[row + w] }
                    }
                }
            }
        }
        voxels = out
    }

    /// Name of the spatial units code: "mm", "m", "micron" or "unknown".
    public var spatialUnitsName: String {
        switch spatialUnits {
        case 1: return "m"
        case 2: return "mm"
        case 3: return "micron"
        default: return "unknown"
        }
    }
}

/// The smallest and largest finite values (NaN and infinities skipped), nil when none is finite: one
/// pass over raw memory, each value compared with `<` as `min()` and `max()` compare. (A lazy filter
/// then `min()` and `max()` took 0.2 s for a 63 M-voxel map.)
public func finiteRange(_ values: [Float]) -> (low: Float, high: Float)? {
    var lo: Float = 0, hi: Float = 0, found = false
    values.withUnsafeBufferPointer { p in
        for v in p where v.isFinite {
            if !found { lo = v; hi = v; found = true; continue }
            if v < lo { lo = v }
            if hi < v { hi = v }
        }
    }
    return found ? (lo, hi) : nil
}

internal import CNIfTI

/// Header facts of a NIfTI file that are not part of a `Volume`: format details and the full shape.
public struct NIfTIHeader: Equatable, Sendable {
    /// NIfTI-1 or NIfTI-2.
    public var format: NIfTIFormat
    /// True when the file is gzip-compressed.
    public var compressed: Bool
    /// True when the file is big-endian (bytes are swapped on this machine).
    public var bigEndian: Bool
    /// `dim[0]`: the number of dimensions (1...7).
    public var ndim: Int
    /// `dim[1...ndim]`.
    public var shape: [Int]
    /// `pixdim[1...ndim]` as stored.
    public var pixdim: [Double]
    /// Datatype code as stored (`NIFTI_TYPE_*`).
    public var datatypeCode: Int
    /// Name of the datatype ("int16").
    public var datatypeName: String
    /// Bits per voxel as stored.
    public var bitpix: Int
    /// Offset of the voxel data, in (decompressed) bytes.
    public var voxOffset: Int
    /// Number of 3D volumes (`dim[4]` for 4D files, else 1).
    public var volumeCount: Int
    /// Size of the (decompressed) file in bytes.
    public var byteCount: Int
}

/// Header fields decoded from the raw bytes (either version, either byte order), before validation.
struct RawHeader {
    var format: NIfTIFormat
    var swapped: Bool
    var headerSize: Int
    var dim: [Int] = []          // 8
    var pixdim: [Double] = []    // 8
    var datatype = 0
    var bitpix = 0
    var voxOffset = 0.0
    var sclSlope = 0.0
    var sclInter = 0.0
    var calMin = 0.0
    var calMax = 0.0
    var qformCode = 0
    var sformCode = 0
    var quatern: [Double] = []   // b, c, d, qoffset x, y, z
    var srow: [Double] = []      // 12, row-major
    var xyztUnits = 0
    var intentCode = 0
    var intentName = ""
    var descrip = ""
}

/// Little reader of fixed-offset fields in a header buffer.
struct FieldReader {
    let bytes: UnsafeRawBufferPointer
    let swap: Bool
    func i16(_ o: Int) -> Int {
        let v = bytes.loadUnaligned(fromByteOffset: o, as: Int16.self)
        return Int(swap ? v.byteSwapped : v)
    }
    func i32(_ o: Int) -> Int {
        let v = bytes.loadUnaligned(fromByteOffset: o, as: Int32.self)
        return Int(swap ? v.byteSwapped : v)
    }
    func i64(_ o: Int) -> Int64 {
        let v = bytes.loadUnaligned(fromByteOffset: o, as: Int64.self)
        return swap ? v.byteSwapped : v
    }
    func f32(_ o: Int) -> Double {
        let v = bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)
        return Double(Float(bitPattern: swap ? v.byteSwapped : v))
    }
    func f64(_ o: Int) -> Double {
        let v = bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self)
        return Double(bitPattern: swap ? v.byteSwapped : v)
    }
    func u8(_ o: Int) -> Int { Int(bytes[o]) }
    /// A NUL-terminated string field of at most `length` bytes (invalid UTF-8 is repaired).
    func string(_ o: Int, _ length: Int) -> String {
        var end = o
        while end < o + length && bytes[end] != 0 { end += 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[o..<end]), as: UTF8.self)
    }
}

extension RawHeader {
    /// Decodes the header at the start of `bytes`; throws when it is not a single-file NIfTI header.
    static func decode(_ bytes: UnsafeRawBufferPointer, path: String) throws -> RawHeader {
        guard bytes.count >= 348 else {
            throw NIfTIError(path, "not a NIfTI file: \(bytes.count) bytes is shorter than a NIfTI-1 header (348)")
        }
        let size = bytes.loadUnaligned(fromByteOffset: 0, as: Int32.self)
        let format: NIfTIFormat
        let swapped: Bool
        switch size {
        case 348: (format, swapped) = (.nifti1, false)
        case Int32(348).byteSwapped: (format, swapped) = (.nifti1, true)
        case 540: (format, swapped) = (.nifti2, false)
        case Int32(540).byteSwapped: (format, swapped) = (.nifti2, true)
        default: throw NIfTIError(path, "not a NIfTI file (header size field is \(size), expected 348 or 540)")
        }
        let r = FieldReader(bytes: bytes, swap: swapped)
        var h = RawHeader(format: format, swapped: swapped, headerSize: format == .nifti1 ? 348 : 540)
        if format == .nifti1 {
            let magic = Array(bytes[344..<348])
            if magic == Array("ni1\0".utf8) {
                throw NIfTIError(path, "is the header of a .hdr/.img pair; only single-file .nii is supported")
            }
            guard magic == Array("n+1\0".utf8) else {
                throw NIfTIError(path, "not a NIfTI-1 file (no n+1 magic; Analyze 7.5 is not supported)")
            }
            h.dim = (0..<8).map { r.i16(40 + 2 * $0) }
            h.pixdim = (0..<8).map { r.f32(76 + 4 * $0) }
            h.intentCode = r.i16(68)
            h.datatype = r.i16(70)
            h.bitpix = r.i16(72)
            h.voxOffset = r.f32(108)
            h.sclSlope = r.f32(112)
            h.sclInter = r.f32(116)
            h.xyztUnits = r.u8(123)
            h.calMax = r.f32(124)
            h.calMin = r.f32(128)
            h.descrip = r.string(148, 80)
            h.qformCode = r.i16(252)
            h.sformCode = r.i16(254)
            h.quatern = (0..<6).map { r.f32(256 + 4 * $0) }
            h.srow = (0..<12).map { r.f32(280 + 4 * $0) }
            h.intentName = r.string(328, 16)
        } else {
            guard bytes.count >= 540 else {
                throw NIfTIError(path, "truncated: \(bytes.count) bytes is shorter than a NIfTI-2 header (540)")
            }
            guard Array(bytes[4..<12]) == Array("n+2\0\r\n\u{1A}\n".utf8) else {
                throw NIfTIError(path, "not a single-file NIfTI-2 file (no n+2 magic)")
            }
            h.datatype = r.i16(12)
            h.bitpix = r.i16(14)
            let dims64 = (0..<8).map { r.i64(16 + 8 * $0) }
            // Clamp to a range Int arithmetic can check; absurd values fail validation below.
            h.dim = dims64.map { Int(clamping: max(-1, min($0, Int64(1) << 48))) }
            h.pixdim = (0..<8).map { r.f64(104 + 8 * $0) }
            let off = r.i64(168)
            h.voxOffset = Double(off)
            h.sclSlope = r.f64(176)
            h.sclInter = r.f64(184)
            h.calMax = r.f64(192)
            h.calMin = r.f64(200)
            h.descrip = r.string(240, 80)
            h.qformCode = r.i32(344)
            h.sformCode = r.i32(348)
            h.quatern = (0..<6).map { r.f64(352 + 8 * $0) }
            h.srow = (0..<12).map { r.f64(400 + 8 * $0) }
            h.xyztUnits = r.i32(500)
            h.intentCode = r.i32(504)
            h.intentName = r.string(508, 16)
        }
        return h
    }

    /// Checks everything the reader relies on against the (decompressed) file size, so no later
    /// step can allocate from a corrupt header or read past the data. Returns the validated facts.
    func validate(byteCount: Int, path: String) throws -> (dims: VoxelDims, volumes: Int, type: NIfTIDataType, offset: Int) {
        let ndim = dim[0]
        guard (1...7).contains(ndim) else { throw NIfTIError(path, "invalid dim[0] = \(ndim) (must be 1 to 7)") }
        for a in 1...ndim where dim[a] < 1 {
            throw NIfTIError(path, "invalid dimension dim[\(a)] = \(dim[a]) (must be at least 1)")
        }
        if ndim > 4, let a = (5...ndim).first(where: { dim[$0] > 1 }) {
            throw NIfTIError(path, "has \(ndim) dimensions with dim[\(a)] = \(dim[a]); only 3D and 4D images are supported")
        }
        let extent = (1...3).map { $0 <= ndim ? dim[$0] : 1 }
        let volumes = ndim >= 4 ? dim[4] : 1
        guard let type = NIfTIDataType(rawValue: datatype) else {
            let name = String(cString: nifti_datatype_string(Int32(clamping: datatype)))
            throw NIfTIError(path, "unsupported datatype \(name) (code \(datatype)); supported: "
                + NIfTIDataType.allCases.map(\.description).joined(separator: ", "))
        }
        guard bitpix == type.byteCount * 8 || bitpix == 0 else {
            throw NIfTIError(path, "bitpix \(bitpix) does not match datatype \(type) (\(type.byteCount * 8) bits)")
        }
        for a in 1...min(3, ndim) where !(pixdim[a] > 0 && pixdim[a].isFinite) {
            throw NIfTIError(path, "voxel size pixdim[\(a)] = \(pixdim[a]) is not positive")
        }
        guard voxOffset.isFinite, voxOffset >= 0, voxOffset <= Double(byteCount) else {
            throw NIfTIError(path, "invalid vox_offset \(voxOffset) for a file of \(byteCount) bytes")
        }
        guard voxOffset == voxOffset.rounded() else { throw NIfTIError(path, "vox_offset \(voxOffset) is not a whole number") }
        let offset = max(Int(voxOffset), headerSize)
        // Overflow-checked byte count of all volumes.
        var total = type.byteCount
        for n in extent + [volumes] {
            let (p, o) = total.multipliedReportingOverflow(by: n)
            guard !o, p <= Int(Int32.max) * 64 else {
                throw NIfTIError(path, "dimensions \(Array(dim[1...ndim])) are too large")
            }
            total = p
        }
        guard offset + total <= byteCount else {
            throw NIfTIError(path, "truncated: header needs \(total) bytes of voxel data at offset \(offset), "
                + "the file has \(max(0, byteCount - offset))")
        }
        for (name, code) in [("qform_code", qformCode), ("sform_code", sformCode)] where !(0...5).contains(code) {
            throw NIfTIError(path, "invalid \(name) \(code) (must be 0 to 5)")
        }
        if sformCode > 0 {
            guard srow.allSatisfy(\.isFinite) else { throw NIfTIError(path, "sform has a non-finite element") }
        }
        if qformCode > 0 {
            guard quatern.allSatisfy(\.isFinite) else { throw NIfTIError(path, "qform has a non-finite parameter") }
        }
        if sclSlope != 0 && sclSlope.isFinite && !sclInter.isFinite {
            throw NIfTIError(path, "valid scl_slope \(sclSlope) but invalid scl_inter \(sclInter)")
        }
        return (VoxelDims(extent[0], extent[1], extent[2]), volumes, type, offset)
    }

    /// Spacing along i, j, k: pixdim for the image's axes, 1 for axes it lacks.
    func spacing() -> SIMD3<Double> {
        let s = (1...3).map { a in a <= dim[0] && pixdim[a] > 0 && pixdim[a].isFinite ? pixdim[a] : 1 }
        return SIMD3(s[0], s[1], s[2])
    }

    /// The qform from the quaternion, offsets, spacing and qfac (niftilib's `nifti_quatern_to_dmat44`).
    func qform(spacing: SIMD3<Double>) -> Affine {
        guard quatern.allSatisfy(\.isFinite) else { return Affine(scale: spacing) }
        let qfac = pixdim[0] < 0 ? -1.0 : 1.0
        let q = nifti_quatern_to_dmat44(quatern[0], quatern[1], quatern[2], quatern[3], quatern[4], quatern[5],
                                        spacing.x, spacing.y, spacing.z, qfac)
        return Affine(dmat44: q)
    }

    /// The sform from `srow_*` (identity when not finite).
    func sform() -> Affine {
        guard srow.allSatisfy(\.isFinite) else { return .identity }
        return Affine(uncheckedRows: [Array(srow[0..<4]), Array(srow[4..<8]), Array(srow[8..<12]), [0, 0, 0, 1]])
    }
}

extension Affine {
    /// From niftilib's double 4x4 matrix (which imports as a tuple of tuples).
    init(dmat44 d: nifti_dmat44) {
        let rows = withUnsafeBytes(of: d.m) { Array($0.bindMemory(to: Double.self)) }
        self.init(uncheckedRows: [Array(rows[0..<4]), Array(rows[4..<8]), Array(rows[8..<12]), [0, 0, 0, 1]])
    }

    /// As niftilib's double 4x4 matrix.
    var dmat44: nifti_dmat44 {
        var d = nifti_dmat44()
        withUnsafeMutableBytes(of: &d.m) { raw in
            let p = raw.bindMemory(to: Double.self)
            for i in 0..<16 { p[i] = m[i] }
        }
        return d
    }
}

import Foundation
internal import CNIfTI

/// Reading and writing NIfTI-1 and NIfTI-2 single files (`.nii`, `.nii.gz`) through niftilib.
///
/// Reading decompresses the whole file with niftilib's znzlib, decodes and validates the header
/// against the real (decompressed) size before anything is allocated from it, and converts the voxels
/// to Float32 applying `scl_slope`/`scl_inter`. niftilib never reads data or allocates from a header,
/// so a corrupt file cannot make it print, allocate wildly or exit: every failure is a `NIfTIError`.
public enum NIfTIFile {
    /// Reads the header facts of `path` (the whole file is decompressed to check its size).
    /// - Throws: `NIfTIError` naming `path` when the file is missing, not NIfTI, corrupt or truncated.
    public static func readHeader(_ path: String) throws -> NIfTIHeader {
        let bytes = try readAllBytes(path)
        return try bytes.withUnsafeBytes { raw in try parse(raw, path: path, compressed: isGzip(path)).header }
    }

    /// Reads a 3D volume from `path`.
    /// - Parameters:
    ///   - volume: which 3D volume of a 4D file (0-based). A 4D file holding one volume is read as 3D
    ///     without it; a file holding several needs it.
    /// - Returns: Float32 voxels (i fastest) after `scl_slope`/`scl_inter`, with the affine and header facts.
    /// - Throws: `NIfTIError` naming `path` for every problem (missing, not NIfTI, truncated, corrupt
    ///   gzip, unsupported datatype, invalid voxel size, several volumes and no `volume`, ...).
    public static func read(_ path: String, volume: Int? = nil) throws -> Volume {
        try load(path, volume: volume).volume
    }

    /// Reads a 3D volume and the header facts of `path` in one pass (see `read(_:volume:)`).
    public static func load(_ path: String, volume: Int? = nil) throws -> (header: NIfTIHeader, volume: Volume) {
        let bytes = try readAllBytes(path)
        return try bytes.withUnsafeBytes { raw in try decodeFile(raw, path: path, compressed: isGzip(path), volume: volume) }
    }

    /// Header facts and one volume from the decompressed bytes of a file (everything `load` does after
    /// reading; the fuzz tests call it directly).
    static func decodeFile(_ raw: UnsafeRawBufferPointer, path: String, compressed: Bool,
                           volume: Int?) throws -> (header: NIfTIHeader, volume: Volume) {
        let p = try parse(raw, path: path, compressed: compressed)
        let index: Int
        if let volume {
            guard (0..<p.header.volumeCount).contains(volume) else {
                throw NIfTIError(path, "volume \(volume) is out of range: the file holds \(p.header.volumeCount) "
                    + "volume\(p.header.volumeCount == 1 ? "" : "s") (0-based)")
            }
            index = volume
        } else {
            guard p.header.volumeCount == 1 else {
                throw NIfTIError(path, "holds \(p.header.volumeCount) volumes (4D); choose one with --volume N "
                    + "(0 to \(p.header.volumeCount - 1))")
            }
            index = 0
        }
        let h = p.raw
        let count = p.dims.count
        let start = p.offset + index * count * p.type.byteCount
        var voxels = decode(raw, from: start, count: count, type: p.type, swapped: h.swapped)
        var scaling: Scaling?
        if h.sclSlope != 0 && h.sclSlope.isFinite {
            let s = Scaling(slope: h.sclSlope, intercept: h.sclInter)
            scaling = s
            if s.slope != 1 || s.intercept != 0 {
                for n in voxels.indices { voxels[n] = Float(Double(voxels[n]) * s.slope + s.intercept) }
            }
        }
        let spacing = h.spacing()
        var v = try Volume(dims: p.dims, voxels: voxels, spacing: spacing, datatype: p.type, description: h.descrip)
        // An xform whose code is 0 is not stored by niftilib on write: keep the default for it so
        // that read, write, read gives equal volumes.
        v.sform = h.sformCode > 0 ? h.sform() : Affine(scale: spacing)
        v.sformCode = h.sformCode
        v.qform = h.qformCode > 0 ? h.qform(spacing: spacing) : Affine(scale: spacing)
        v.qformCode = h.qformCode
        v.spatialUnits = h.xyztUnits & 0x07
        v.temporalUnits = h.xyztUnits & 0x38
        v.scaling = scaling
        v.calMin = h.calMin
        v.calMax = h.calMax
        v.intentCode = h.intentCode
        v.intentName = h.intentName
        v.format = h.format
        return (p.header, v)
    }

    /// True when the file starts with the gzip magic bytes (false when it cannot be read).
    static func isGzip(_ path: String) -> Bool {
        guard let f = fopen(path, "rb") else { return false }
        defer { fclose(f) }
        var magic: [UInt8] = [0, 0]
        return fread(&magic, 1, 2, f) == 2 && magic == [0x1F, 0x8B]
    }

    struct Parsed {
        var raw: RawHeader
        var header: NIfTIHeader
        var dims: VoxelDims
        var type: NIfTIDataType
        var offset: Int
    }

    static func parse(_ raw: UnsafeRawBufferPointer, path: String, compressed: Bool) throws -> Parsed {
        let h = try RawHeader.decode(raw, path: path)
        let v = try h.validate(byteCount: raw.count, path: path)
        let ndim = h.dim[0]
        let header = NIfTIHeader(
            format: h.format, compressed: compressed, bigEndian: h.swapped == (UInt16(1).littleEndian == 1),
            ndim: ndim, shape: Array(h.dim[1...ndim]), pixdim: Array(h.pixdim[1...ndim]),
            datatypeCode: h.datatype, datatypeName: v.type.description, bitpix: h.bitpix, voxOffset: v.offset,
            volumeCount: v.volumes, byteCount: raw.count)
        return Parsed(raw: h, header: header, dims: v.dims, type: v.type, offset: v.offset)
    }

    /// Converts `count` stored values at byte `start` to Float32 (no scaling). Bounds were validated.
    static func decode(_ raw: UnsafeRawBufferPointer, from start: Int, count: Int, type: NIfTIDataType,
                       swapped: Bool) -> [Float] {
        func convert<T: FixedWidthInteger>(_: T.Type, _ f: (T) -> Float) -> [Float] {
            [Float](unsafeUninitializedCapacity: count) { out, n in
                for e in 0..<count {
                    let v = raw.loadUnaligned(fromByteOffset: start + e * MemoryLayout<T>.size, as: T.self)
                    out[e] = f(swapped ? v.byteSwapped : v)
                }
                n = count
            }
        }
        switch type {
        case .uint8: return convert(UInt8.self) { Float($0) }
        case .int8: return convert(Int8.self) { Float($0) }
        case .int16: return convert(Int16.self) { Float($0) }
        case .uint16: return convert(UInt16.self) { Float($0) }
        case .int32: return convert(Int32.self) { Float($0) }
        case .uint32: return convert(UInt32.self) { Float($0) }
        case .int64: return convert(Int64.self) { Float($0) }
        case .uint64: return convert(UInt64.self) { Float($0) }
        case .float32: return convert(UInt32.self) { Float(bitPattern: $0) }
        case .float64: return convert(UInt64.self) { Float(Double(bitPattern: $0)) }
        }
    }

    /// The whole file, decompressed when it is gzip (znzlib reads plain files through zlib as they are).
    /// - Throws: `NIfTIError` for a missing file, a folder, an unreadable file or corrupt gzip data.
    static func readAllBytes(_ path: String) throws -> [UInt8] {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw NIfTIError(path, errno == ENOENT ? "no such file" : "cannot access: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw NIfTIError(path, "not a regular file") }
        guard let fp = znzopen(path, "rb", 1) else {
            throw NIfTIError(path, "cannot open: \(String(cString: strerror(errno)))")
        }
        var file: znzFile? = fp
        defer { _ = Xznzclose(&file) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(min(st.st_size, 1 << 30)) + 1)
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = buffer.withUnsafeMutableBytes { znzread($0.baseAddress, 1, chunk, fp) }
            // znzread returns gzread's -1 (an error) cast to size_t, which Swift imports as Int: -1.
            if n < 0 || n > chunk {
                throw NIfTIError(path, "corrupt or truncated gzip data (\(gzipError(fp, path)))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        if let z = fp.pointee.zfptr {
            var code: Int32 = 0
            _ = gzerror(z, &code)
            if code != Z_OK && code != Z_STREAM_END {
                throw NIfTIError(path, "corrupt or truncated gzip data (\(gzipError(fp, path)))")
            }
        }
        return bytes
    }

    /// zlib's message for the last error, without the file name zlib puts in front of it.
    static func gzipError(_ fp: znzFile, _ path: String) -> String {
        guard let z = fp.pointee.zfptr else { return "read error" }
        var code: Int32 = 0
        guard let m = gzerror(z, &code) else { return "zlib error \(code)" }
        let message = String(cString: m)
        return message.hasPrefix(path + ": ") ? String(message.dropFirst(path.count + 2)) : message
    }
}

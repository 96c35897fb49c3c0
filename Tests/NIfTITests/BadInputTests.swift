import Foundation
import Testing
@testable import NIfTI
import _TestSupport

/// Bad files give one-line errors naming the file; nothing crashes, nothing half-written.
struct BadInputTests {
    /// Reads `path` expecting a `NIfTIError` naming it whose message contains `words`.
    func expectError(_ path: String, volume: Int? = nil, _ words: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try NIfTIFile.read(path, volume: volume)
            Issue.record("\(path): read succeeded, expected an error containing '\(words)'", sourceLocation: sourceLocation)
        } catch let e as NIfTIError {
            #expect(e.path == path, sourceLocation: sourceLocation)
            #expect(e.description.hasPrefix(path + ": "), sourceLocation: sourceLocation)
            #expect(e.problem.contains(words), "\(e)", sourceLocation: sourceLocation)
            #expect(!e.description.contains("\n"), sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(path): unexpected error type \(error)", sourceLocation: sourceLocation)
        }
    }

    func copy(_ name: String, to dir: String, patch: (inout [UInt8]) -> Void) throws -> String {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture(name))))
        patch(&bytes)
        let out = dir + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: out))
        return out
    }

    @Test func missingFile() { expectError("/nonexistent/scan.nii.gz", "no such file") }

    @Test func folderInsteadOfFile() { expectError(niftiFixtures.path, "not a regular file") }

    @Test func notNIfTI() throws {
        let dir = makeTempDir("bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = dir + "/notes.nii"
        try String(repeating: "this is not a NIfTI file\n", count: 30).write(toFile: text, atomically: true, encoding: .utf8)
        expectError(text, "not a NIfTI file")
        let short = dir + "/short.nii"
        try "tiny".write(toFile: short, atomically: true, encoding: .utf8)
        expectError(short, "shorter than a NIfTI-1 header")
        let empty = dir + "/empty.nii.gz"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        expectError(empty, "shorter than a NIfTI-1 header")
    }

    @Test(arguments: ["dtype_int16.nii", "nifti2.nii", "ct_scaled.nii.gz", "nifti2.nii.gz"])
    func truncated(_ name: String) throws {
        let dir = makeTempDir("trunc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        if name.hasSuffix(".gz") {
            // Cut the compressed stream: zlib reports the unexpected end.
            let path = try copy(name, to: dir) { $0.removeLast($0.count / 3) }
            expectError(path, "gzip")
        } else {
            let path = try copy(name, to: dir) { $0.removeLast(7) }
            expectError(path, "truncated")
        }
    }

    @Test func corruptGzip() throws {
        let dir = makeTempDir("gz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try copy("ct_scaled.nii.gz", to: dir) { b in
            for n in stride(from: 20, to: b.count - 10, by: 3) { b[n] ^= 0x5A }
        }
        expectError(path, "gzip")
        // A valid stream with a wrong CRC.
        let crc = try copy("oblique_sform.nii.gz", to: dir) { b in b[b.count - 6] ^= 0xFF }
        expectError(crc, "gzip")
    }

    @Test(arguments: ExpectedFixtures.shared.bad.map { [$0.file, $0.contains] })
    func rejectedFixtures(_ pair: [String]) { expectError(fixture(pair[0]), pair[1]) }

    @Test func volumeIndexOutOfRange() {
        expectError(fixture("t3.nii.gz"), volume: 3, "out of range")
        expectError(fixture("t3.nii.gz"), volume: -1, "out of range")
        expectError(fixture("t3.nii.gz"), "--volume")
    }

    /// pixdim[1...3] of zero, negative or NaN (NIfTI-1 pixdim at byte 76 + 4 * axis).
    @Test(arguments: [(1, Float(0)), (2, Float(-1.5)), (3, Float.nan), (1, Float.infinity)])
    func invalidVoxelSize(_ axis: Int, _ value: Float) throws {
        let dir = makeTempDir("pixdim")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try copy("dtype_int16.nii", to: dir) { b in
            withUnsafeBytes(of: value.bitPattern.littleEndian) { b.replaceSubrange((76 + 4 * axis)..<(80 + 4 * axis), with: $0) }
        }
        expectError(path, "voxel size pixdim[\(axis)]")
    }

    /// Headers that claim huge dimensions must fail on size, not allocate.
    @Test func hugeDimensionsFailWithoutAllocating() throws {
        let dir = makeTempDir("huge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let n1 = try copy("dtype_int16.nii", to: dir) { b in
            for a in 1...3 { withUnsafeBytes(of: Int16(32767).littleEndian) { b.replaceSubrange((40 + 2 * a)..<(42 + 2 * a), with: $0) } }
        }
        expectError(n1, "too large")
        let n1b = try copy("dtype_int16.nii", to: dir) { b in
            withUnsafeBytes(of: Int16(3000).littleEndian) { b.replaceSubrange(42..<44, with: $0) }
        }
        expectError(n1b, "truncated")
        let n2 = try copy("nifti2.nii", to: dir) { b in
            for a in 1...4 { withUnsafeBytes(of: Int64(1 << 40).littleEndian) { b.replaceSubrange((16 + 8 * a)..<(24 + 8 * a), with: $0) } }
            withUnsafeBytes(of: Int64(4).littleEndian) { b.replaceSubrange(16..<24, with: $0) }
        }
        expectError(n2, "too large")
        let offset = try copy("dtype_int16.nii", to: dir) { b in
            withUnsafeBytes(of: Float(1e30).bitPattern.littleEndian) { b.replaceSubrange(108..<112, with: $0) }
        }
        expectError(offset, "vox_offset")
        let dim0 = try copy("dtype_int16.nii", to: dir) { b in b[40] = 9 }
        expectError(dim0, "dim[0]")
        let fiveD = try copy("dtype_int16.nii", to: dir) { b in
            b[40] = 5
            withUnsafeBytes(of: Int16(2).littleEndian) { b.replaceSubrange(50..<52, with: $0) }
        }
        expectError(fiveD, "only 3D and 4D")
    }

    @Test func writeRefusesToOverwriteItsInput() throws {
        let dir = makeTempDir("overwrite")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = try copy("dtype_int16.nii", to: dir) { _ in }
        let before = try Data(contentsOf: URL(fileURLWithPath: input))
        let v = try NIfTIFile.read(input)
        for out in [input, dir + "/./dtype_int16.nii", dir + "/../" + (dir as NSString).lastPathComponent + "/dtype_int16.nii"] {
            let e = #expect(throws: NIfTIError.self) { try NIfTIFile.write(v, to: out, protecting: [input]) }
            #expect(e?.problem.contains("would overwrite the input") == true)
        }
        // A symbolic link to the input is the input too.
        let link = dir + "/link.nii"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: input)
        #expect(throws: NIfTIError.self) { try NIfTIFile.write(v, to: link, protecting: [input]) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: input)) == before)
    }

    /// The write check after writing: the header read back and the length (the gzip trailer's ISIZE,
    /// or the file's size). A file cut short, a trailer with another length, or another header fail
    /// it; the files `write` makes pass.
    @Test func writeCheckCatchesShortAndAlteredFiles() throws {
        let dir = makeTempDir("writecheck")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let v = try Volume(dims: VoxelDims(20, 16, 12), voxels: (0..<3840).map { Float($0 % 97) }, spacing: SIMD3(1, 1, 1))
        for name in ["a.nii.gz", "a.nii"] {
            let path = dir + "/" + name, compressed = name.hasSuffix(".gz")
            try NIfTIFile.write(v, to: path)
            let bytes = try NIfTIFile.readAllBytes(path)
            let header = Array(bytes.prefix(348))
            try NIfTIFile.checkWritten(path, header: header, total: bytes.count, compressed: compressed)
            var other = header
            other[100] ^= 0xFF
            #expect(throws: NIfTIError.self) { try NIfTIFile.checkWritten(path, header: other, total: bytes.count, compressed: compressed) }
            #expect(throws: NIfTIError.self) { try NIfTIFile.checkWritten(path, header: header, total: bytes.count + 1, compressed: compressed) }
            let raw = try Data(contentsOf: URL(fileURLWithPath: path))
            let cut = dir + "/cut-" + name
            try raw.prefix(raw.count - 9).write(to: URL(fileURLWithPath: cut))
            #expect(throws: NIfTIError.self) { try NIfTIFile.checkWritten(cut, header: header, total: bytes.count, compressed: compressed) }
            if compressed {
                var altered = raw
                altered[altered.count - 2] ^= 0x01
                let bad = dir + "/isize-" + name
                try altered.write(to: URL(fileURLWithPath: bad))
                #expect(throws: NIfTIError.self) { try NIfTIFile.checkWritten(bad, header: header, total: bytes.count, compressed: true) }
            }
        }
    }

    @Test func unwritableOutputFolder() throws {
        let dir = makeTempDir("folder")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/file.txt"
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        let v = try NIfTIFile.read(fixture("dtype_uint8.nii"))
        for out in [file + "/out.nii", dir + "/missing/out.nii.gz"] {
            let e = #expect(throws: NIfTIError.self) { try NIfTIFile.write(v, to: out) }
            #expect(e?.path == out)
        }
        let e = #expect(throws: NIfTIError.self) { try NIfTIFile.write(v, to: dir + "/out.nrrd") }
        #expect(e?.problem.contains(".nii or .nii.gz") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["file.txt"])
    }

    @Test func nanAndInfAreRead() throws {
        let v = try NIfTIFile.read(fixture("nan_inf.nii"))
        #expect(v.voxels.filter(\.isNaN).count == 1)
        #expect(v.voxels.filter(\.isInfinite).count == 2)
    }
}

import Foundation
import Testing
@testable import NIfTI
import _TestSupport

/// Thousands of truncations and byte flips of valid small files: every read either succeeds or throws
/// a `NIfTIError` naming the file; none crashes, traps or aborts.
struct FuzzTests {
    /// Decodes mutated bytes exactly as `read` does after decompression (no file system round trip);
    /// `gzipFilesOnDisk` goes through files so zlib's error paths are fuzzed too.
    /// When `writeTo` is given, a successfully decoded volume is also written there and read back
    /// (the writer must cope with whatever odd header a mutation produced, or throw).
    func readMutated(_ bytes: [UInt8], path: String, writeTo: String? = nil) {
        do {
            let v = try bytes.withUnsafeBytes { raw in
                try NIfTIFile.decodeFile(raw, path: path, compressed: false, volume: nil).volume
            }
            _ = v.affine.orientationCode
            _ = v.affine.inverse()
            if let out = writeTo {
                do {
                    try NIfTIFile.write(v, to: out)
                    let back = try NIfTIFile.read(out)
                    #expect(back.dims == v.dims && back.datatype == v.datatype)
                } catch let e as NIfTIError {
                    #expect(e.path == out && !e.problem.isEmpty)
                }
            }
        } catch let e as NIfTIError {
            #expect(e.path == path && !e.problem.isEmpty)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test(arguments: ["dtype_int16.nii", "nifti2.nii", "bigendian_int16.nii", "qform_only.nii"])
    func truncationsAndFlips(_ name: String) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture(name))))
        for n in 0..<bytes.count { readMutated(Array(bytes[0..<n]), path: name) }
        let dir = makeTempDir("fuzzwrite")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var g = SeededGenerator(seed: 42)
        for round in 0..<1500 {
            var b = bytes
            for _ in 0..<Int.random(in: 1...4, using: &g) {
                // Mostly the header, where the meaning is.
                let at = Int.random(in: 0..<(Bool.random(using: &g) ? min(b.count, 548) : b.count), using: &g)
                b[at] = Bool.random(using: &g) ? UInt8.random(in: 0...255, using: &g) : b[at] ^ (1 << UInt8.random(in: 0...7, using: &g))
            }
            readMutated(b, path: name, writeTo: round % 10 == 0 ? dir + "/w.nii" : nil)
        }
    }

    /// Through the file system: truncated and flipped .nii.gz files (zlib sees the damage).
    @Test func gzipFilesOnDisk() throws {
        let dir = makeTempDir("fuzz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("oblique_sform.nii.gz"))))
        var g = SeededGenerator(seed: 7)
        let path = dir + "/f.nii.gz"
        for n in 0..<300 {
            var b = n < bytes.count ? Array(bytes[0..<n]) : bytes
            if n >= bytes.count || n % 2 == 1 {
                b = bytes
                let at = Int.random(in: 0..<b.count, using: &g)
                b[at] ^= UInt8.random(in: 1...255, using: &g)
            }
            _ = FileManager.default.createFile(atPath: path, contents: Data(b))
            do { _ = try NIfTIFile.read(path) } catch let e as NIfTIError {
                #expect(e.path == path)
            }
        }
    }
}

import Foundation
import Testing
@testable import NIfTI
import _TestSupport

/// Thousands of truncations and byte flips of valid small files: every read either succeeds or throws
/// a `NIfTIError` naming the file; none crashes, traps or aborts.
struct FuzzTests {
    /// Parses mutated bytes the way `read` does after decompression (no file system round trip), and
    /// also through the file for a sample, so gzip handling is fuzzed too.
    func readMutated(_ bytes: [UInt8], path: String) {
        do {
            _ = try bytes.withUnsafeBytes { raw -> Int in
                let p = try NIfTIFile.parse(raw, path: path, compressed: false)
                let v = NIfTIFile.decode(raw, from: p.offset, count: p.dims.count, type: p.type, swapped: p.raw.swapped)
                _ = p.raw.qform(spacing: p.raw.spacing())
                _ = Volume.defaultAffine(dims: p.dims, spacing: p.raw.spacing()).orientationCode
                return v.count
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
        var g = SeededGenerator(seed: 42)
        for _ in 0..<1500 {
            var b = bytes
            for _ in 0..<Int.random(in: 1...4, using: &g) {
                // Mostly the header, where the meaning is.
                let at = Int.random(in: 0..<(Bool.random(using: &g) ? min(b.count, 548) : b.count), using: &g)
                b[at] = Bool.random(using: &g) ? UInt8.random(in: 0...255, using: &g) : b[at] ^ (1 << UInt8.random(in: 0...7, using: &g))
            }
            readMutated(b, path: name)
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
            FileManager.default.createFile(atPath: path, contents: Data(b))
            do { _ = try NIfTIFile.read(path) } catch let e as NIfTIError {
                #expect(e.path == path)
            }
        }
    }
}

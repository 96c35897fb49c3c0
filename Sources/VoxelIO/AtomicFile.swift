import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes files so that readers never see a half-written one: the bytes go to a temporary file in
/// the destination's folder, which is then renamed over the destination (rename(2) is atomic within
/// a file system). On failure the temporary file is removed and the destination is untouched.
public enum AtomicFile {
    /// Why a write failed, in words for a one-line error message.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var reason: String
        public var description: String { reason }
    }

    /// Writes `data` to `url` atomically.
    /// - Throws: `Failure` saying whether the folder could not be written or the rename failed.
    public static func write(_ data: Data, to url: URL) throws {
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UInt64.random(in: 0...UInt64.max)).tmp")
        do {
            try data.write(to: temporary)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw Failure(reason: "cannot write to the folder \(folder.path)")
        }
        guard rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw Failure(reason: "cannot move the written file into place (\(reason))")
        }
    }
}

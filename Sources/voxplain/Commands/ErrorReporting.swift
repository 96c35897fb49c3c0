import ArgumentParser
import Foundation
import Voxplain

/// Runs a command body; on error prints one line `voxplain: error: <file>: <problem>` to stderr and
/// exits with status 1 (ArgumentParser's `ExitCode` prints nothing more). A `VOXPLAIN_THREADS` that is
/// not a thread count is such an error, before anything runs.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        if let problem = System.threadSettingProblem { throw VoxplainError(problem) }
        try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        var stderr = StandardError()
        let line = String(describing: error).split(separator: "\n", omittingEmptySubsequences: true).joined(separator: " ")
        print("voxplain: error: \(line)", to: &stderr)
        throw ExitCode(1)
    }
}

/// Standard error as a `TextOutputStream`.
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { FileHandle.standardError.write(Data(string.utf8)) }
}

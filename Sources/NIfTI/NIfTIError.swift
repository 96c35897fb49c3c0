/// A NIfTI file could not be read or written: names the file and says what is wrong, in one line.
///
/// `description` is `"<path>: <problem>"`, ready for `voxplain: error: ...`.
public struct NIfTIError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file concerned (as given by the caller).
    public var path: String
    /// What is wrong, without the path: "truncated: header needs 120 bytes of voxel data, file has 60".
    public var problem: String

    /// An error about `path`.
    public init(_ path: String, _ problem: String) {
        self.path = path
        self.problem = problem
    }

    /// `"<path>: <problem>"`.
    public var description: String { "\(path): \(problem)" }
}

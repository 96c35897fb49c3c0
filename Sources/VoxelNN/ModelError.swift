import Foundation

/// An error raised while reading or checking a model file (ONNX or safetensors).
///
/// Its description is one line that starts with the file name: `model.onnx: initializer 'w' ...`.
public struct ModelError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of problem it is, so callers and tests can tell problems apart without parsing text.
    public enum Kind: String, Sendable {
        /// Not a file of the expected format, or its bytes are malformed or cut short.
        case corrupt
        /// A well-formed file whose content breaks the format's rules (wrong sizes, missing fields).
        case invalid
        /// A tensor whose data lives in another file.
        case externalData
        /// A tensor element type Voxplain does not read.
        case unsupportedDataType
        /// An operator set version outside the supported range.
        case unsupportedOpset
        /// A node from an operator domain other than the default ONNX one.
        case unsupportedDomain
        /// An operator type the importer does not implement.
        case unsupportedOperator
        /// A feature of the format that Voxplain does not read (subgraphs, sparse tensors...).
        case unsupportedFeature
        /// The file could not be read or written.
        case io
    }

    /// The file's name (last path component), as users know it.
    public var file: String
    /// The kind of problem.
    public var kind: Kind
    /// What is wrong, without the file name.
    public var message: String

    /// An error about `file`. Line breaks in the file name or message (names read from a model
    /// can hold any character) are shown as `\n` so the error stays on one line.
    public init(_ file: String, _ kind: Kind, _ message: String) {
        self.file = ModelError.oneLine(file)
        self.kind = kind
        self.message = ModelError.oneLine(message)
    }

    private static func oneLine(_ s: String) -> String {
        guard s.contains(where: \.isNewline) else { return s }
        return s.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
            .split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// `file: message`, on one line.
    public var description: String { "\(file): \(message)" }
}

/// Maps a model file into memory (or reads it), turning failures into a `ModelError` of kind `.io` that
/// says whether the file is missing or unreadable, then decodes it with `body`.
func withModelFileBytes<T>(_ url: URL, _ body: (UnsafeRawBufferPointer, String) throws -> T) throws -> T {
    let name = url.lastPathComponent
    let data: Data
    do {
        data = try Data(contentsOf: url, options: .mappedIfSafe)
    } catch {
        throw ModelError(name, .io, "cannot read the file (\(FileManager.default.fileExists(atPath: url.path) ? "unreadable" : "no such file"))")
    }
    return try data.withUnsafeBytes { try body($0, name) }
}

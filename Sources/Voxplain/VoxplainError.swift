/// An error in Voxplain's pipeline, with a one-line message that names the file or option at fault.
public struct VoxplainError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Parses `count` comma-separated numbers (`"0.7,0.7,1.25"`), for options and model-card strings.
/// - Throws: `VoxplainError` naming the option and showing an example.
public func parseNumbers(_ text: String, count: Int, option: String) throws -> [Double] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        .map { Double($0.trimmingCharacters(in: .whitespaces)) }
    guard parts.count == count, let values = parts as? [Double], values.allSatisfy(\.isFinite) else {
        let example = (1...count).map(String.init).joined(separator: ",")
        throw VoxplainError("\(option) \(text): expected \(count) comma-separated numbers, as \(example)")
    }
    return values
}

import Foundation
import VoxelTensor

/// The folder of committed test fixtures, `Tests/Fixtures`, found from this file's path so tests need
/// no bundle resources.
public let fixturesDirectory: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Tests/Fixtures")

/// A file of golden cases written by a script in `Scripts/` with a peer library (PyTorch, nibabel...).
///
/// Format (JSON): `{"generator": "...", "versions": {...}, "cases": [Case]}`; see `GoldenCase`.
public struct GoldenFile: Decodable, Sendable {
    public var generator: String
    public var versions: [String: String]
    public var cases: [GoldenCase]

    /// Loads `Tests/Fixtures/<relativePath>`.
    public static func load(_ relativePath: String) throws -> GoldenFile {
        let data = try Data(contentsOf: fixturesDirectory.appendingPathComponent(relativePath))
        return try JSONDecoder().decode(GoldenFile.self, from: data)
    }
}

/// One golden case: an op's parameters, and its named input and output tensors.
///
/// `ints`, `floats` and `strings` hold the op's parameters (`"stride": [1, 2, 2]`, `"alpha": [0.1]`,
/// `"mode": "trilinear"`); `tensors` holds named tensors as `{"shape": [...], "data": [...]}` with data
/// row-major. Float32 values are written with enough digits to round-trip exactly.
public struct GoldenCase: Decodable, Sendable {
    public var name: String
    public var op: String
    public var ints: [String: [Int]]
    public var floats: [String: [Double]]
    public var strings: [String: String]
    public var tensors: [String: GoldenTensor]

    enum CodingKeys: String, CodingKey { case name, op, ints, floats, strings, tensors }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        op = try c.decode(String.self, forKey: .op)
        ints = try c.decodeIfPresent([String: [Int]].self, forKey: .ints) ?? [:]
        floats = try c.decodeIfPresent([String: [Double]].self, forKey: .floats) ?? [:]
        strings = try c.decodeIfPresent([String: String].self, forKey: .strings) ?? [:]
        tensors = try c.decodeIfPresent([String: GoldenTensor].self, forKey: .tensors) ?? [:]
    }

    /// The tensor named `key`; fails the test with a clear message when absent.
    public func tensor(_ key: String) throws -> Tensor {
        guard let t = tensors[key] else { throw TensorError("golden case \(name) has no tensor \(key)") }
        return try Tensor(shape: t.shape, scalars: t.data.map(Float.init))
    }
    /// An integer parameter list; `fallback` when absent.
    public func ints(_ key: String, _ fallback: [Int]) -> [Int] { ints[key] ?? fallback }
    /// A single integer parameter; `fallback` when absent.
    public func int(_ key: String, _ fallback: Int) -> Int { ints[key]?.first ?? fallback }
    /// A single float parameter; `fallback` when absent.
    public func float(_ key: String, _ fallback: Float) -> Float { floats[key]?.first.map(Float.init) ?? fallback }
}

/// A tensor as stored in a golden file.
public struct GoldenTensor: Decodable, Sendable {
    public var shape: [Int]
    public var data: [Double]
}

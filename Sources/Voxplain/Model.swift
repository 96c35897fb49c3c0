import Foundation
import NIfTI
import VoxelNN
import VoxelTensor

/// The model card: JSON next to a model (`MODEL.json`) holding its preprocessing and class names, so
/// users do not retype them. Every field is optional; command-line options override it.
public struct ModelCard: Codable, Sendable, Equatable {
    public struct Input: Codable, Sendable, Equatable {
        /// The model's input size `(D, H, W)`.
        public var size: [Int]?
        /// The model's voxel size in mm along (i, j, k).
        public var spacing: [Double]?
        public var channels: Int?
    }
    public struct Layers: Codable, Sendable, Equatable {
        /// The last layer of every resolution stage, for HR-CAM.
        public var hrcam: [String]?
        /// The default target layer of CAM methods.
        public var `default`: String?
    }
    public var name: String?
    public var description: String?
    public var classes: [String]?
    public var input: Input?
    public var intensity: IntensityTransform?
    /// Value of padded voxels in model units.
    public var padValue: Float?
    public var layers: Layers?
    /// The linear layer of an HR-CAM head (pooled features of every level concatenated before it).
    public var hrcamHead: String?

    enum CodingKeys: String, CodingKey {
        case name, description, classes, input, intensity, layers
        case padValue = "pad_value", hrcamHead = "hrcam_head"
    }

    public init() {}

    /// Reads a model card.
    /// - Throws: `VoxplainError` naming the file when it cannot be read or is not a model card.
    public static func read(_ path: String) throws -> ModelCard {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw VoxplainError("\(path): cannot read the model card (\(error.localizedDescription))")
        }
        do {
            let card = try JSONDecoder().decode(ModelCard.self, from: data)
            try card.intensity?.validate(path)
            if let s = card.input?.size, s.count != 3 || s.contains(where: { $0 <= 0 }) {
                throw VoxplainError("\(path): input.size \(s) must be three positive integers (D, H, W)")
            }
            if let s = card.input?.spacing, s.count != 3 || s.contains(where: { !($0 > 0) }) {
                throw VoxplainError("\(path): input.spacing \(s) must be three positive numbers (mm)")
            }
            return card
        } catch let e as VoxplainError {
            throw e
        } catch {
            throw VoxplainError("\(path): not a model card (\(error))")
        }
    }
}

/// A model ready to run: its graph, its card, and where it came from.
public struct LoadedModel: Sendable {
    /// The graph as imported (unfused, so every layer is addressable).
    public var graph: Graph
    public var card: ModelCard
    public var path: String
    /// The card's path, when a card was found.
    public var cardPath: String?

    /// Loads an ONNX model (`.onnx`) or a native one (`.voxplain.json`) with its model card: `cardPath`
    /// when given, else `NAME.json` beside `NAME.onnx` or `NAME.voxplain.json` when it exists.
    /// - Parameter inputSize: the input size `(D, H, W)` to instantiate a model with symbolic spatial
    ///   sizes at; overrides the card's. A model with fixed sizes must agree with it.
    /// - Throws: `ModelError` or `VoxplainError` naming the file and the problem.
    public static func load(_ path: String, cardPath: String? = nil, inputSize: [Int]? = nil) throws -> LoadedModel {
        guard FileManager.default.fileExists(atPath: path) else { throw VoxplainError("\(path): no such file") }
        let url = URL(fileURLWithPath: path)
        let base: String
        if path.hasSuffix(NativeFormat.suffix) { base = String(path.dropLast(NativeFormat.suffix.count)) }
        else if path.hasSuffix(".onnx") { base = String(path.dropLast(5)) }
        else { throw VoxplainError("\(path): not a model file (expected .onnx or \(NativeFormat.suffix))") }
        let sibling = base + ".json"
        let chosenCard = cardPath ?? (FileManager.default.fileExists(atPath: sibling) ? sibling : nil)
        let card = try chosenCard.map(ModelCard.read) ?? ModelCard()
        var shape: [Int]? = nil
        if let size = inputSize ?? card.input?.size { shape = [1, card.input?.channels ?? 1] + size }
        let graph: Graph
        if path.hasSuffix(".onnx") {
            graph = try Graph(onnx: try ONNXModel(contentsOf: url), inputShape: shape)
        } else {
            graph = try NativeFormat.read(contentsOf: url)
            if let shape, Array(graph.values[graph.input].shape.dropFirst()) != Array(shape.dropFirst()) {
                throw VoxplainError("\(path): the model's input is \(graph.values[graph.input].shape), which does not fit the requested size \(shape)")
            }
        }
        return LoadedModel(graph: graph, card: card, path: path, cardPath: chosenCard)
    }

    /// The model's input shape `[1, C, D, H, W]` as declared.
    public var inputShape: [Int] { graph.values[graph.input].shape }

    /// The class names, from the card, or `class 0`, `class 1`... by the logits' width.
    public func classNames(count: Int) -> [String] {
        if let c = card.classes, c.count == count { return c }
        return (0..<count).map { "class \($0)" }
    }

    /// Resolves a class given as an index or a card class name; nil means the predicted class.
    public func classIndex(_ spec: String?, logits: [Float]) throws -> Int {
        guard let spec else { return logits.indices.max { logits[$0] < logits[$1] } ?? 0 }
        if let i = Int(spec) {
            guard i >= 0 && i < logits.count else { throw VoxplainError("--class \(i) is out of range: the model has \(logits.count) classes") }
            return i
        }
        let names = classNames(count: logits.count)
        guard let i = names.firstIndex(where: { $0.caseInsensitiveCompare(spec) == .orderedSame }) else {
            throw VoxplainError("--class '\(spec)' is not a class of the model (\(names.joined(separator: ", ")))")
        }
        return i
    }
}

/// Numerically stable softmax of one row of logits.
public func softmaxRow(_ logits: [Float]) -> [Float] {
    let m = logits.max() ?? 0
    let e = logits.map { Foundation.exp(Double($0 - m)) }
    let s = e.reduce(0, +)
    return e.map { Float($0 / s) }
}

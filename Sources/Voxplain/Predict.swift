import Foundation
import NIfTI
import VoxelNN
import VoxelTensor

/// Preprocessing asked for on the command line; anything not given comes from the model card.
public struct PreprocessingRequest: Sendable, Equatable {
    public var clip: [Float]?
    public var scale: [Float]?
    public var zscore = false
    /// Model voxel size (mm) along (i, j, k).
    public var spacing: [Double]?
    /// Model input size (D, H, W).
    public var size: [Int]?
    /// A patch centre in world mm (RAS+, or LPS when `lps`).
    public var centerWorld: [Double]?
    /// A patch centre as a scan voxel (i, j, k).
    public var centerVoxel: [Double]?
    public var lps = false

    public init() {}

    /// The input size to load the model at: the request's, else the card's.
    public func inputSize(card: ModelCard) -> [Int]? { size ?? card.input?.size }

    /// The preprocessing for `scan`, from this request, the model card, and the model's input size.
    /// - Throws: `VoxplainError` naming the option or scan at fault.
    public func resolve(model: LoadedModel, scan: Volume, scanName: String) throws -> Preprocessing {
        let card = model.card
        var intensity = card.intensity ?? IntensityTransform()
        if clip != nil || scale != nil || zscore {
            intensity = IntensityTransform(clip: clip, scale: scale, zscore: zscore)
        }
        try intensity.validate("intensity options")
        var p = Preprocessing(intensity: intensity)
        if let s = spacing ?? card.input?.spacing {
            guard s.count == 3, s.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw VoxplainError("--spacing \(s): expected three positive voxel sizes in mm")
            }
            p.spacing = SIMD3(s[0], s[1], s[2])
        }
        p.size = Array(model.inputShape.dropFirst(2))
        p.padValue = card.padValue ?? (intensity.scale?.first ?? 0)
        if centerWorld != nil && centerVoxel != nil { throw VoxplainError("give --center or --center-voxel, not both") }
        if let c = centerVoxel {
            p.center = SIMD3(c[0], c[1], c[2])
        } else if let c = centerWorld {
            let ras = lps ? SIMD3(-c[0], -c[1], c[2]) : SIMD3(c[0], c[1], c[2])
            guard let inv = scan.affine.inverse() else { throw VoxplainError("\(scanName): the affine is singular") }
            p.center = inv.apply(ras)
        }
        if let c = p.center, !(0..<3).allSatisfy({ c[$0] >= -0.5 && c[$0] <= Double(scan.dims.array[$0]) - 0.5 }) {
            throw VoxplainError("\(scanName): the patch centre (voxel \(c.x), \(c.y), \(c.z)) lies outside the scan (\(scan.dims))")
        }
        return p
    }
}

/// A model's prediction on one scan.
public struct Prediction: Codable, Sendable, Equatable {
    public var logits: [Float]
    public var probabilities: [Float]
    public var classIndex: Int
    public var className: String
    public var classNames: [String]

    enum CodingKeys: String, CodingKey {
        case logits, probabilities, classIndex = "class", className = "class_name", classNames = "classes"
    }
}

extension LoadedModel {
    /// Checks the scan can become this model's input, then builds it.
    public func input(for scan: Volume, scanName: String, request: PreprocessingRequest) throws -> ModelInput {
        let channels = inputShape[1]
        guard channels == 1 else {
            throw VoxplainError("\(path): the model takes \(channels) channels; Voxplain feeds one scan (one channel)")
        }
        let pre = try request.resolve(model: self, scan: scan, scanName: scanName)
        return try pre.apply(to: scan, scanName: scanName)
    }

    /// `input(for:scanName:request:)` for each request; requests that differ only in their centre
    /// (the candidates of one scan) share one resampling of the scan.
    public func inputs(for scan: Volume, scanName: String, requests: [PreprocessingRequest]) throws -> [ModelInput] {
        guard inputShape[1] == 1, requests.count > 1 else {
            return try requests.map { try input(for: scan, scanName: scanName, request: $0) }
        }
        let resolved = try requests.map { try $0.resolve(model: self, scan: scan, scanName: scanName) }
        func uncentred(_ p: Preprocessing) -> Preprocessing { var q = p; q.center = nil; return q }
        let shared = uncentred(resolved[0])
        guard resolved.allSatisfy({ uncentred($0) == shared }) else {
            return try resolved.map { try $0.apply(to: scan, scanName: scanName) }
        }
        return try shared.apply(to: scan, scanName: scanName, centers: resolved.map(\.center))
    }

    /// The index in `graph.outputs` of the output named `name` (an ONNX output name); 0 for nil.
    /// - Throws: `VoxplainError` listing the model's outputs when none has that name.
    public func outputIndex(_ name: String?) throws -> Int {
        guard let name else { return 0 }
        let names = graph.outputs.map { graph.values[$0].name }
        guard let i = names.firstIndex(of: name) else {
            throw VoxplainError("--output \(name): the model's outputs are \(names.joined(separator: ", "))")
        }
        return i
    }

    /// Runs the model on a prepared input and returns one output's first row (the first output unless
    /// `output` names another) as a prediction.
    public func predict(_ input: ModelInput, output: String? = nil) throws -> Prediction {
        let index = try outputIndex(output)
        let out = try graph.fused().run(input.tensor).outputs[index]
        guard out.rank == 2, out.shape[0] == 1 else {
            throw VoxplainError("\(path): output '\(graph.values[graph.outputs[index]].name)' has shape \(out.shape); a classifier gives [1, classes]")
        }
        let logits = out.scalars
        let probs = softmaxRow(logits)
        let k = try classIndex(nil, logits: logits)
        let names = classNames(count: logits.count)
        return Prediction(logits: logits, probabilities: probs, classIndex: k, className: names[k], classNames: names)
    }
}

/// One row of `voxplain layers`.
public struct LayerInfo: Codable, Sendable, Equatable {
    /// The node's name (ONNX node name).
    public var name: String
    /// The operation, ONNX style.
    public var op: String
    /// The value the node writes (ONNX value name).
    public var output: String
    /// The PyTorch module path, or "".
    public var module: String
    /// The output shape at the model's input size, batch 1.
    public var shape: [Int]
    /// Whether CAM methods can target it (a 5D feature map).
    public var spatial: Bool
}

extension LoadedModel {
    /// Every node with its op, output shape and module path, in graph order.
    public var layers: [LayerInfo] {
        graph.nodes.map { n in
            let shape = graph.values[n.output].shape
            return LayerInfo(name: n.name, op: n.op.name, output: graph.values[n.output].name, module: n.modulePath,
                             shape: shape, spatial: shape.count == 5 && n.op.isConvolutional)
        }
    }

    /// The layer listing as an aligned text table.
    public func layersText() -> String {
        let rows = layers
        let w0 = max(4, rows.map(\.name.count).max() ?? 0), w1 = max(2, rows.map(\.op.count).max() ?? 0)
        let w2 = max(6, rows.map(\.module.count).max() ?? 0)
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        var out = "\(pad("node", w0))  \(pad("op", w1))  \(pad("module", w2))  output shape\n"
        for r in rows {
            out += "\(pad(r.name, w0))  \(pad(r.op, w1))  \(pad(r.module.isEmpty ? "-" : r.module, w2))  \(r.shape)\(r.spatial ? "" : "  (not spatial)")\n"
        }
        out += "input \(graph.values[graph.input].name) \(inputShape); \(graph.nodes.count) nodes, \(String(format: "%.2f", Double(graph.flops) / 1e9)) GFLOP per forward pass\n"
        return out
    }
}

import Foundation
import NIfTI
import VoxelCAM
import VoxelIO
import VoxelNN
import VoxelTensor

/// `voxplain hrcam-fit`: fits HR-CAM's fusion classifier on labelled scans with the model frozen.
public enum HRCAMFitting {
    /// `NAME.hrcam.json` beside `NAME.onnx` or `NAME.voxplain.json`.
    public static func headPath(forModel path: String) -> String {
        for ext in [NativeFormat.suffix, ".onnx"] where path.hasSuffix(ext) { return String(path.dropLast(ext.count)) + ".hrcam.json" }
        return path + ".hrcam.json"
    }

    /// The fitted head saved beside the model, if there is one.
    /// - Throws: `VoxplainError` naming the file when it exists but cannot be read.
    public static func load(forModel path: String) throws -> HRCAMHead? {
        let p = headPath(forModel: path)
        guard let data = FileManager.default.contents(atPath: p) else { return nil }
        do { return try JSONDecoder().decode(HRCAMHead.self, from: data) } catch {
            throw VoxplainError("\(p): not an HR-CAM head written by hrcam-fit (\(error))")
        }
    }

    /// Fits the head: pooled features of `levels` (default: the last layer of every resolution stage)
    /// on each scan of the list, labels from the list's `label` column (index or card class name).
    public static func fit(model: LoadedModel, list: DatasetList, request: PreprocessingRequest, levels names: [String]?,
                           l2: Float, progress: (@Sendable (String, Int, Int) -> Void)? = nil) throws -> HRCAMHead {
        let graph = model.graph
        let logits = graph.outputs[0]
        let levels = try names?.map { try graph.value(named: $0) } ?? graph.stageEnds(toward: logits)
        guard !levels.isEmpty else { throw VoxplainError("\(model.path): no resolution levels found for HR-CAM") }
        let fused = try graph.fused(keeping: Set(levels))
        var features: [[Float]] = [], labels: [Int] = []
        var classes = 0
        for (n, row) in list.rows.enumerated() {
            guard let labelText = row.label else { throw VoxplainError("\(list.path): scan \(row.scan) has no label") }
            let scan = try NIfTIFile.read(row.scan)
            let input = try model.input(for: scan, scanName: row.scan, request: request)
            let r = try fused.run(input.tensor, capture: Set(levels))
            classes = r.outputs[0].count
            labels.append(try model.classIndex(labelText, logits: r.outputs[0].scalars))
            features.append(levels.flatMap { pooledFeatures(r.captured[$0]!) })
            progress?("hrcam-fit", n + 1, list.rows.count)
        }
        let fit = try HRCAMHead.fit(features: features, labels: labels, classes: classes, l2: l2)
        return HRCAMHead(levels: levels.map { graph.values[$0].name }, channels: levels.map { graph.values[$0].shape[1] },
                         weights: fit.weights, bias: fit.bias, l2: l2, trainingAccuracy: fit.accuracy, scans: list.rows.count)
    }

    /// Writes the head beside the model (atomically).
    public static func save(_ head: HRCAMHead, forModel path: String) throws -> String {
        let p = headPath(forModel: path)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { try AtomicFile.write(try enc.encode(head), to: URL(fileURLWithPath: p)) } catch let f as AtomicFile.Failure {
            throw VoxplainError("\(p): \(f.reason)")
        }
        return p
    }
}

import ArgumentParser
import Foundation
import Voxplain

/// `voxplain hrcam-fit MODEL --data LIST`: fit HR-CAM's fusion classifier with the model frozen.
struct HRCAMFitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hrcam-fit",
        abstract: "Fit HR-CAM's multi-level linear classifier on labelled scans (the model stays frozen).",
        discussion: """
            LIST is a CSV with a header and columns scan,label (label: class index or model-card class name). \
            The features are the globally averaged feature maps of the last layer of every resolution stage \
            (or --level ...). Fitting is an L2-regularised logistic regression. The head is saved as \
            MODEL.hrcam.json and used by `explain --method hrcam` (form "fitted" in the report).
            """)

    @Argument(help: "The model (.onnx or .voxplain.json).")
    var model: String

    @Option(help: "CSV list of scans with labels.")
    var data: String

    @Option(help: "A level's layer (repeatable; default: the last layer of every resolution stage).")
    var level: [String] = []

    @Option(help: "L2 penalty on the weights.")
    var l2: Float = 1e-2

    @OptionGroup var preprocessing: PreprocessingOptions

    func run() throws {
        Memory.reuseLargeAllocations()  // batched passes free and reallocate large tensors: keep them in the heap
        try reportingErrors {
            guard l2 >= 0, l2.isFinite else { throw VoxplainError("--l2 \(l2): must be zero or positive") }
            let request = try preprocessing.request()
            let m = try preprocessing.loadModel(model, request: request)
            let list = try DatasetList(path: data)
            let head = try HRCAMFitting.fit(model: m, list: list, request: request, levels: level.isEmpty ? nil : level,
                                            l2: l2, progress: Progress.reporter())
            let path = try HRCAMFitting.save(head, forModel: model)
            print("\(path): \(head.levels.count) levels, \(head.channels.reduce(0, +)) features, training accuracy \(String(format: "%.3f", head.trainingAccuracy)) on \(head.scans) scans")
        }
    }
}

import ArgumentParser
import Foundation
import NIfTI
import Voxplain

/// `voxplain predict MODEL SCAN`: the model's logits, probabilities and class on one scan.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Run a model on a scan and print its logits, probabilities and predicted class.",
        discussion: "JSON: {\"logits\": [...], \"probabilities\": [...], \"class\": k, \"class_name\": ..., \"classes\": [...]}")

    @Argument(help: "The model (.onnx or .voxplain.json).")
    var model: String

    @Argument(help: "The scan (.nii or .nii.gz).")
    var scan: String

    @Option(help: "For a model with several outputs: the output to use, by its ONNX name (default: the first).")
    var output: String?

    @OptionGroup var preprocessing: PreprocessingOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        Memory.reuseLargeAllocations()  // batched passes free and reallocate large tensors: keep them in the heap
        try reportingErrors {
            let request = try preprocessing.request()
            let m = try preprocessing.loadModel(model, request: request)
            let volume = try NIfTIFile.read(scan, volume: preprocessing.volume)
            let p = try m.predict(try m.input(for: volume, scanName: scan, request: request), output: output)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.sortedKeys]
                print(String(decoding: try enc.encode(p), as: UTF8.self))
            } else {
                for (i, name) in p.classNames.enumerated() {
                    print("\(i == p.classIndex ? "*" : " ") \(name): logit \(p.logits[i]), probability \(String(format: "%.4f", p.probabilities[i]))")
                }
            }
        }
    }
}

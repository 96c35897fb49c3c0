import ArgumentParser
import Foundation
import Voxplain

/// `voxplain convert MODEL.onnx OUT.voxplain.json`: the native format (JSON graph + safetensors).
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a model to Voxplain's native format: OUT.voxplain.json and OUT.safetensors beside it.",
        discussion: "Shape arithmetic is already folded away, and PyTorch module paths are kept. See docs/native-format.md.")

    @Argument(help: "The model (.onnx or .voxplain.json).")
    var model: String

    @Argument(help: "The output, ending in .voxplain.json.")
    var output: String

    @Option(help: ArgumentHelp("Input size for models with symbolic sizes.", valueName: "d,h,w"))
    var size: String?

    func run() throws {
        try reportingErrors {
            let inputSize = try size.map { try parseNumbers($0, count: 3, option: "--size").map { Int($0) } }
            let m = try LoadedModel.load(model, inputSize: inputSize)
            let url = URL(fileURLWithPath: output)
            let weights = url.deletingLastPathComponent().appendingPathComponent(
                String(url.lastPathComponent.dropLast(output.hasSuffix(NativeFormat.suffix) ? NativeFormat.suffix.count : 0)) + ".safetensors")
            for p in [url.path, weights.path] where NIfTIFile.canonicalPathForComparison(p) == NIfTIFile.canonicalPathForComparison(model) {
                throw VoxplainError("\(p): the output would overwrite the input model")
            }
            try NativeFormat.write(m.graph, to: url)
            print(output)
        }
    }
}

import ArgumentParser
import Foundation
import Voxplain

/// `voxplain layers MODEL`: nodes with their output shapes, for `--layer`.
struct LayersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layers",
        abstract: "List a model's nodes with their ops, module paths and output shapes.",
        discussion: """
            A layer is named by its ONNX node name, its output value name, or a PyTorch module path \
            (`layer4`, `features.26`), which means the last node inside that module. Shapes are at the \
            model's input size (from the model, the model card or --size), batch 1.
            JSON: a list of {name, op, output, module, shape, spatial}.
            """)

    @Argument(help: "The model (.onnx or .voxplain.json).")
    var model: String

    @Flag(help: "Print JSON.")
    var json = false

    @Option(name: .customLong("model-card"), help: "The model card (default: MODEL.json beside the model).")
    var modelCard: String?

    @Option(help: ArgumentHelp("Input size D,H,W for a model with symbolic sizes.", valueName: "d,h,w"))
    var size: String?

    func run() throws {
        try reportingErrors {
            let size = try size.map { try parseNumbers($0, count: 3, option: "--size").map { Int($0) } }
            let m = try LoadedModel.load(model, cardPath: modelCard, inputSize: size)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(m.layers), as: UTF8.self))
            } else {
                print(m.layersText(), terminator: "")
            }
        }
    }
}

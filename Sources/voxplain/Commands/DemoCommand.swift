import ArgumentParser
import Foundation
import Voxplain

/// `voxplain demo`: the whole job on a bundled sample.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Make a phantom chest CT with nodules, explain the sample model on it with every method, summarise.",
        discussion: """
            Writes DIR/phantom.nii.gz, its mask and facts, DIR/candidates.csv (the nodules and lung \
            background points, LUNA16 style), DIR/maps/<method>.nii.gz and report.json, and DIR/summary.json.
            """)

    @Option(help: "Output folder (created if missing).")
    var out: String = "demo-out"

    @Option(help: "The model (default: the bundled Volumes/sample-model.onnx).")
    var model: String?

    @Option(help: "Nodules in the phantom.")
    var nodules: Int = 4

    @Option(help: "Phantom seed.")
    var seed: UInt64 = 2026

    func run() throws {
        Memory.reuseLargeAllocations()  // batched passes free and reallocate large tensors: keep them in the heap
        try reportingErrors {
            guard let path = model ?? Demo.locateSampleModel(executable: CommandLine.arguments[0]) else {
                throw VoxplainError("Volumes/sample-model.onnx: the sample model was not found beside the executable or in ./Volumes; give --model")
            }
            let summary = try Demo.run(outputDirectory: out, model: path, nodules: nodules, seed: seed,
                                       progress: Progress.reporter())
            print(Demo.table(summary), terminator: "")
        }
    }
}

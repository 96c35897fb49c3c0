import ArgumentParser
import Voxplain

@main
struct VoxplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "voxplain",
        abstract: "Explain 3D CNN classifiers on CT and MRI volumes.",
        version: VoxplainInfo.version,
        subcommands: [InspectCommand.self, PhantomCommand.self, LayersCommand.self, PredictCommand.self, ExplainCommand.self, EvaluateCommand.self,
                      BenchCommand.self])
}

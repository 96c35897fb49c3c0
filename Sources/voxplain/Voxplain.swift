import ArgumentParser
import Voxplain

@main
struct VoxplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "voxplain",
        abstract: "Explain 3D CNN classifiers on CT and MRI volumes.",
        version: VoxplainInfo.version,
        subcommands: [
            DemoCommand.self, InspectCommand.self, PhantomCommand.self, ViewCommand.self, LayersCommand.self,
            PredictCommand.self, ExplainCommand.self, MontageCommand.self, LesionsCommand.self,
            EvaluateCommand.self, HRCAMFitCommand.self, ConvertCommand.self, BenchCommand.self,
        ])
}

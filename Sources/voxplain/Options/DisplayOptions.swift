import ArgumentParser
import Voxplain

/// The display options shared by `montage` and `view`: window, colormap, opacity and threshold.
struct DisplayOptions: ParsableArguments {
    @Option(help: ArgumentHelp("lung, mediastinum, bone, brain, W,L or pLO,HI (default: lung for CT, p1,99 otherwise).",
                               valueName: "window"))
    var window: String?

    @Option(help: ArgumentHelp("Colormap: \(Colormap.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "name"))
    var cmap: String = "inferno"

    @Option(help: "Opacity of the heat colours (0 to 1).")
    var alpha: Float = 0.4

    @Option(help: "Heat below this fraction of the scale gets no colour (0 to 1).")
    var threshold: Float = 0.2

    /// The parsed window (nil: chosen from the scan) and colormap.
    func parsed() throws -> (window: WindowSpec?, colormap: Colormap) {
        (try window.map(WindowSpec.init(parsing:)), try Colormap(parsing: cmap))
    }
}

import ArgumentParser
import Foundation
import Voxplain

extension ViewAxis: ExpressibleByArgument {}

/// `voxplain view SCAN`: one slice in the terminal (24-bit colour half-blocks), interactive on a terminal.
struct ViewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "Show a slice of a scan (and a heatmap over it) in the terminal.",
        discussion: """
            Each character is a half block with two square pixels (24-bit colour). When standard input \
            and output are terminals, keys browse: j/k or down/up arrows move a slice, a/c/s switch to \
            axial/coronal/sagittal, q quits (the terminal is restored, also on Ctrl-C). Otherwise the \
            slice is printed once, then a status line (slice, position, orientation letters, window). \
            Width: --width, else $COLUMNS, else the terminal's width, else 80.
            """)

    @Argument(help: "The scan (.nii or .nii.gz).")
    var scan: String

    @Option(help: "A heatmap on the scan's grid.")
    var overlay: String?

    @Option(help: "The plane.")
    var axis: ViewAxis = .axial

    @Option(help: "The slice (default: through the hottest voxel, else the middle).")
    var slice: Int?

    @OptionGroup var display: DisplayOptions

    @Option(help: "Width in characters.")
    var width: Int?

    func run() throws {
        try reportingErrors {
            if let width, !(8...2000).contains(width) { throw VoxplainError("--width \(width): must be 8 to 2000 columns") }
            var o = ViewOptions()
            o.axis = axis
            o.slice = slice
            (o.window, o.colormap) = try display.parsed()
            o.alpha = display.alpha
            o.threshold = display.threshold
            var viewer = try SliceView.viewer(scanPath: scan, overlayPath: overlay, options: o)
            if TerminalView.isTerminal(0) && TerminalView.isTerminal(1) {
                try viewer.runInteractive(columns: width)
            } else {
                let cols = TerminalView.columns(explicit: width, environment: ProcessInfo.processInfo.environment)
                print(try viewer.frame(columns: cols, rows: nil), terminator: "")
            }
        }
    }
}

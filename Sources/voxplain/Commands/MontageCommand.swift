import ArgumentParser
import Voxplain

extension MontageView: ExpressibleByArgument {}

/// `voxplain montage SCAN --overlay MAP --out PNG`: slices with the heatmap over them, as a PNG.
struct MontageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "montage",
        abstract: "Draw slices of a scan with heatmaps over them into a PNG.",
        discussion: """
            One --overlay gives a grid of slices with a colour bar; several give a comparison sheet (one row \
            per map, the same slices, one shared scale). Slices show the patient's right on the left \
            (radiological), anterior up in axial, superior up in coronal and sagittal, with orientation \
            letters read from the affine, the slice index and its world position (RAS mm), and square \
            pixels in mm. --slices auto picks slices through the lesions of --truth, then the heat peaks. \
            See docs/viewing.md.
            """)

    @Argument(help: "The scan (.nii or .nii.gz).")
    var scan: String

    @Option(name: .customLong("overlay"), help: "A heatmap on the scan's grid; repeat for a comparison sheet.")
    var overlays: [String] = []

    @Option(help: "The PNG to write.")
    var out: String

    @Option(help: "The plane, or triplanar (three planes through the hottest voxel).")
    var axis: MontageView = .axial

    @Option(help: ArgumentHelp("Slice indices along the plane's normal voxel axis, or auto.", valueName: "i,j,...|auto"))
    var slices: String = "auto"

    @Option(help: "Number of slices for --slices auto.")
    var count: Int = 8

    @OptionGroup var display: DisplayOptions

    @Option(help: "A truth label mask: lesion outlines in green, and slices through them.")
    var truth: String?

    @Option(help: "Tile size in pixels (longer side).")
    var tile: Int = 256

    @Option(help: "Tiles per row (default: about square).")
    var columns: Int?

    func run() throws {
        try reportingErrors {
            var o = MontageOptions()
            o.view = axis
            o.count = count
            (o.window, o.colormap) = try display.parsed()
            o.alpha = display.alpha
            o.threshold = display.threshold
            o.tilePixels = tile
            o.columns = columns
            _ = try OverlayStyle(colormap: o.colormap, alpha: display.alpha, threshold: display.threshold)   // option checks before reading files
            if slices.lowercased() != "auto" {
                let parts = slices.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !parts.isEmpty, let list = parts as? [Int] else {
                    throw VoxplainError("--slices \(slices): expected auto or comma-separated slice indices, as 10,20,30")
                }
                o.slices = list
            }
            if let columns, columns < 1 { throw VoxplainError("--columns \(columns): must be at least 1") }
            try Montage.run(scanPath: scan, overlayPaths: overlays, truthPath: truth, outPath: out, options: o)
            print(out)
        }
    }
}

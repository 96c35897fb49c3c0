import ArgumentParser
import Voxplain

/// `voxplain phantom OUT.nii.gz`: a seeded synthetic chest CT with nodules, a label mask and a JSON list.
struct PhantomCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phantom",
        abstract: "Write a seeded synthetic chest CT (HU) with lung nodules, a label mask and a nodule list.",
        discussion: """
            Air, soft tissue, fat, two lungs, spine, branching vessels and N nodules (4-30 mm, soft edges, \
            some spiculated). Orientation is LPS-like (affine diag(-dx, -dy, dz), sform and qform code 1). \
            The same seed gives the same files. The nodule list (label, centre in world mm and voxels, \
            diameter) goes to <stem>.json beside OUT unless --info is given.
            """)

    @Argument(help: "The CT to write (.nii or .nii.gz).")
    var out: String

    @Option(help: "Also write the nodule label mask here (uint8, one label per nodule).")
    var mask: String?

    @Option(help: "Where to write the nodule list (default: OUT with .json).")
    var info: String?

    @Option(help: "Number of nodules (0 to 255).")
    var nodules: Int = 3

    @Option(help: "Grid size in voxels, i,j,k.")
    var size: String = "128,128,96"

    @Option(help: "Voxel size in mm, i,j,k.")
    var spacing: String = "0.7,0.7,1.25"

    @Option(help: "Random seed.")
    var seed: UInt64 = 1

    @Option(help: "Noise standard deviation in HU.")
    var noise: Double = 12

    @Flag(help: "Store the CT as float32 instead of int16.")
    var float32 = false

    func run() throws {
        try reportingErrors {
            let options = try PhantomOptions(size: size, spacing: spacing, noduleCount: nodules, seed: seed, noiseHU: noise)
            try Phantom.checkOutputs(ct: out, mask: mask, info: info)
            let phantom = try Phantom.generate(options)
            let written = try phantom.write(ct: out, mask: mask, info: info, ctDatatype: float32 ? .float32 : .int16)
            for path in written { print(path) }
        }
    }
}

import ArgumentParser
import Voxplain

extension VolumeAxis: ExpressibleByArgument {}

/// `voxplain inspect SCAN`: header, geometry, orientation and intensity statistics.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a scan's header, geometry, orientation and intensity statistics.",
        discussion: """
            The affine is the sform when sform_code > 0, else the qform when qform_code > 0, else \
            nibabel's pixdim default. Orientation codes follow nibabel's aff2axcodes. Statistics are over \
            finite voxels (after scl_slope/scl_inter); NaN and Inf voxels are counted.
            JSON keys: file, format, compressed, big_endian, dims, volumes, volume, spacing, spatial_units, \
            datatype, bitpix, vox_offset, scaling, affine, affine_source, sform, sform_code, qform, qform_code, \
            orientation, description, intent_code, cal_min, cal_max, intensity, slices.
            """)

    @Argument(help: "The scan (.nii or .nii.gz, NIfTI-1 or NIfTI-2).")
    var scan: String

    @Flag(help: "Print JSON (stable keys) instead of text.")
    var json = false

    @Option(help: "The volume of a 4D file to inspect (0-based); required when it holds several.")
    var volume: Int?

    @Flag(help: "Add statistics for each slice along --axis.")
    var slices = false

    @Option(help: "The axis for --slices.")
    var axis: VolumeAxis = .k

    func run() throws {
        try reportingErrors {
            let report = try InspectReport.make(path: scan, volume: volume, slices: slices ? axis : nil)
            print(json ? try report.json() : report.text(), terminator: "")
        }
    }
}

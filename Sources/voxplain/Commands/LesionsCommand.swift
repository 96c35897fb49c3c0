import ArgumentParser
import Foundation
import Voxplain

/// `voxplain lesions MAP`: connected components of a thresholded heatmap, matched to a truth mask.
struct LesionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lesions",
        abstract: "List the hot regions of a heatmap (3D connected components above a threshold).",
        discussion: """
            Voxels with heat >= --threshold are joined through faces, edges and corners (26-connectivity; \
            --six for faces only). Per component: id (hottest first), voxel count, volume in mm^3, centroid \
            (voxel and RAS mm), bounding box, peak and mean heat; with --truth, the true lesion labels it \
            overlaps (with voxel counts) and the true lesions no component hits.
            JSON keys: map, threshold, connectivity, dims, components (id, voxels, volume_mm3, centroid_voxel, \
            centroid_world_mm, bbox_min, bbox_max, peak, peak_voxel, mean, truth), truth_mask, truth_labels, missed_labels.
            """)

    @Argument(help: "The heatmap (.nii or .nii.gz).")
    var map: String

    @Option(help: "Heat at or above this value is foreground.")
    var threshold: Float = 0.5

    @Option(help: "A truth label mask on the map's grid (0 background, one label per lesion).")
    var truth: String?

    @Flag(help: "Print JSON instead of the text table.")
    var json = false

    @Option(help: "Also write the table as CSV here.")
    var csv: String?

    @Flag(help: "Join voxels through faces only (6-connectivity).")
    var six = false

    func run() throws {
        try reportingErrors {
            let inputs = [map] + (truth.map { [$0] } ?? [])
            if let csv { try NIfTIFile.checkOutputPath(csv, protecting: inputs) }
            let table = try LesionTable.run(mapPath: map, threshold: threshold, truthPath: truth, connectivity: six ? .six : .twentySix)
            if let csv { try table.writeCSV(to: csv, protecting: inputs) }
            print(json ? try table.json() : table.text(), terminator: "")
        }
    }
}

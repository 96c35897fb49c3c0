import Foundation
import Testing
import Voxplain
import _TestSupport

/// Writes a small phantom (CT, mask) and a Float32 heatmap on its grid, each with an expected JSON
/// holding every voxel, for `Scripts/make_nifti_fixtures.py --check DIR` (nibabel). The folder is
/// `$VOXPLAIN_NIBABEL_CHECK_DIR` when set, else a temporary one; the JSON is read back here either way.
struct PhantomExportTests {
    @Test func exportPhantomForNibabel() throws {
        let env = ProcessInfo.processInfo.environment["VOXPLAIN_NIBABEL_CHECK_DIR"]
        let dir = env ?? FileManager.default.temporaryDirectory.appendingPathComponent("voxplain-pexport-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { if env == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let p = try Phantom.generate(PhantomOptions(size: VoxelDims(48, 40, 24), spacing: SIMD3(1.8, 2.2, 5), noduleCount: 2, seed: 9))
        try p.write(ct: dir + "/small-phantom.nii.gz", mask: dir + "/small-phantom-mask.nii", info: dir + "/small-phantom-info.json")
        let map = try Volume(mapLike: p.ct, voxels: p.mask.voxels.map { $0 > 0 ? 1 : 0.25 }, description: "voxplain test map")
        try NIfTIFile.write(map, to: dir + "/small-phantom-map.nii.gz")
        for (name, v) in [("small-phantom.nii.gz", p.ct), ("small-phantom-mask.nii", p.mask), ("small-phantom-map.nii.gz", map)] {
            let json = dir + "/" + name + ".expected.json"
            try nibabelExpectedJSON(file: name, v).write(to: URL(fileURLWithPath: json))
            let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
            #expect((obj?["voxels"] as? [Double])?.map(Float.init) == v.voxels)
            #expect(try NIfTIFile.read(dir + "/" + name).voxels == v.voxels)
        }
    }
}

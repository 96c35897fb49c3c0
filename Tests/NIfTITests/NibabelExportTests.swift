import Foundation
import Testing
import NIfTI
import _TestSupport

/// Writes Voxplain-made files with the JSON that `Scripts/make_nifti_fixtures.py --check DIR` compares
/// against nibabel: every fixture re-written by Voxplain, and Float32 heatmaps copying a reference's
/// geometry. The folder is `$VOXPLAIN_NIBABEL_CHECK_DIR` when set (to run the script on it), else a
/// temporary folder; either way the test reads every file back and checks the JSON it wrote.
struct NibabelExportTests {
    @Test func exportForNibabel() throws {
        let env = ProcessInfo.processInfo.environment["VOXPLAIN_NIBABEL_CHECK_DIR"]
        let dir = env ?? makeTempDir("nibabel")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { if env == nil { try? FileManager.default.removeItem(atPath: dir) } }
        var written: [(String, Volume)] = []
        for e in ExpectedFixtures.shared.files where e.volume ?? 0 == 0 {
            let v = try NIfTIFile.read(fixture(e.file), volume: e.volume)
            let name = "copy_" + e.file
            try NIfTIFile.write(v, to: dir + "/" + name, protecting: [fixture(e.file)])
            written.append((name, v))
        }
        // Heatmaps: Float32 maps on the grids of an oblique and an LPS CT fixture.
        for ref in ["oblique_sform.nii.gz", "ct_scaled.nii.gz", "qform_only.nii"] {
            let r = try NIfTIFile.read(fixture(ref))
            let d = r.dims
            var voxels = [Float](repeating: 0, count: d.count)
            for k in 0..<d.k { for j in 0..<d.j { for i in 0..<d.i {
                voxels[r.index(i, j, k)] = Float(i) / Float(d.i) + 0.5 * Float(j * k) / Float(d.j * d.k)
            } } }
            let map = try Volume(mapLike: r, voxels: voxels, description: "voxplain gradcam layer4 class 1")
            let name = "heatmap_" + ref.replacingOccurrences(of: ".nii.gz", with: "").replacingOccurrences(of: ".nii", with: "") + ".nii.gz"
            try NIfTIFile.write(map, to: dir + "/" + name, protecting: [fixture(ref)])
            written.append((name, map))
        }
        for (name, v) in written {
            let json = dir + "/" + name + ".expected.json"
            try nibabelExpectedJSON(file: name, v).write(to: URL(fileURLWithPath: json))
            let back = try NIfTIFile.read(dir + "/" + name)
            #expect(sameVoxels(back.voxels, v.voxels) && back.affine.maxAbsDifference(v.affine) < 1e-5, "\(name)")
            let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
            #expect(obj?["file"] as? String == name && (obj?["voxels"] as? [Any])?.count == v.dims.count)
        }
    }
}

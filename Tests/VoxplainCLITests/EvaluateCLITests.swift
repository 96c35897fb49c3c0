import Foundation
import Testing
import _TestSupport

/// `voxplain evaluate` end to end on the fixture ResNet and two phantoms: outputs, resumability, bad inputs.
@Suite struct EvaluateCLITests {
    let cli = CLITests()

    @Test func evaluateWritesTablesAndResumes() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for s in ["1", "2"] {
            let r = try CLITests.run(["phantom", dir + "/ct\(s).nii.gz", "--mask", dir + "/m\(s).nii.gz", "--nodules", "2",
                                      "--seed", s, "--size", "64,64,48"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        // A 24 mm patch (2 mm voxels) around ct1's first nodule, so the lesion reaches the 12^3 model grid.
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/ct1.json"))) as! [String: Any]
        let centre = ((info["nodules"] as! [[String: Any]])[0]["center_voxel"] as! [Double]).map { String(format: "%.1f", $0) }
        try "scan,mask,label\nct1.nii.gz,m1.nii.gz,0\nct2.nii.gz,,1\n".write(toFile: dir + "/list.csv", atomically: true, encoding: .utf8)
        let prep = ["--size", "12,12,12", "--spacing", "2,2,2", "--clip=-1000,400", "--scale", "0,1", "--center-voxel", centre.joined(separator: ",")]
        let args = ["evaluate", ModelCLITests.resnet, "--data", dir + "/list.csv", "--method", "gradcam,layercam", "--out", dir + "/eval",
                    "--steps", "10", "--deletion-steps", "10", "--region", "3", "--perturbation", "mean", "--tolerance", "10"] + prep
        let r = try CLITests.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("| method | group | scans | AOPC MoRF"))
        #expect(r.stdout.contains("| gradcam | all | 2 |") && r.stdout.contains("| layercam | all | 2 |"))
        for f in ["summary.csv", "summary.json", "summary.md", "curves.csv", "curves.png", "scans/ct1.json", "scans/ct2.json"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/eval/" + f), "\(f) missing")
        }
        let scan = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/eval/scans/ct1.json"))) as! [String: Any]
        let methods = scan["methods"] as! [[String: Any]]
        #expect(methods.count == 2 && methods[0]["localization"] != nil && methods[0]["sanity"] != nil)
        #expect(!(scan["lostLabels"] as! [Int]).contains(1))  // the nodule the patch is centred on
        let curves = (methods[0]["regionPerturbation"] as! [String: Any])["morf"] as! [Double]
        #expect(curves.count == 11)
        let csv = try String(contentsOfFile: dir + "/eval/curves.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 1 + 2 * 11)
        // Run again: both scans are skipped (their files are not rewritten) and the table is the same.
        let before = try FileManager.default.attributesOfItem(atPath: dir + "/eval/scans/ct1.json")[.modificationDate] as! Date
        let again = try CLITests.run(args)
        #expect(again.status == 0 && again.stdout == r.stdout, "\(again.stderr)")
        let after = try FileManager.default.attributesOfItem(atPath: dir + "/eval/scans/ct1.json")[.modificationDate] as! Date
        #expect(before == after)
        // Whole passes in batches instead of incremental scoring: the same table (the scores are bit-identical).
        var whole = args
        whole[whole.firstIndex(of: dir + "/eval")!] = dir + "/eval-whole"
        let w = try CLITests.run(whole + ["--whole-passes"])
        #expect(w.status == 0 && w.stdout == r.stdout, "\(w.stderr)")
    }

    @Test func badInputs() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ct = try ModelCLITests.phantom(dir)
        try cli.expectFailure(["evaluate", ModelCLITests.resnet, "--data", dir + "/none.csv"], naming: "none.csv", "cannot read")
        try "scan,label\n\(ct),7\n".write(toFile: dir + "/l.csv", atomically: true, encoding: .utf8)
        try cli.expectFailure(["evaluate", ModelCLITests.resnet, "--data", dir + "/l.csv", "--out", dir + "/o"] + ModelCLITests.prep,
                              naming: ct, "out of range")
        try cli.expectFailure(["evaluate", ModelCLITests.resnet, "--data", dir + "/l.csv", "--region", "2.5"], naming: "--region")
        try cli.expectFailure(["evaluate", ModelCLITests.resnet, "--data", dir + "/l.csv", "--steps", "0"], naming: "--steps")
        // --truth-masks: a row without a mask is an error naming the list and the line.
        try cli.expectFailure(["evaluate", ModelCLITests.resnet, "--data", dir + "/l.csv", "--truth-masks", "--out", dir + "/o2"],
                              naming: "l.csv", "--truth-masks needs a mask on every row; 1 row(s) have none (lines 2)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/o2"))
    }
}

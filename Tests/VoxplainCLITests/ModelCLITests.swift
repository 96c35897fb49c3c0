import Foundation
import Testing
import NIfTI
import _TestSupport

/// `layers`, `predict` and `explain` end to end on a committed fixture model and a phantom, and
/// their bad inputs: one line naming the file or option, non-zero exit, nothing on stdout.
@Suite struct ModelCLITests {
    let cli = CLITests()
    static let resnet = fixturesDirectory.appendingPathComponent("models/resnet.onnx").path
    static let lstm = fixturesDirectory.appendingPathComponent("onnx/unsupported_lstm.onnx").path
    /// The bundled sample model (`Volumes/`), which takes 32 mm patches at 1 mm.
    static let sample = fixturesDirectory.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Volumes/sample-model.onnx").path
    // The fixture ResNet takes 12^3; these options bring the phantom there.
    static let prep = ["--size", "12,12,12", "--spacing", "8,8,8", "--clip=-1000,400", "--scale", "0,1"]

    static func phantom(_ dir: String) throws -> String {
        let ct = dir + "/ct.nii.gz"
        let r = try CLITests.run(["phantom", ct, "--nodules", "2", "--seed", "3", "--size", "64,64,48"])
        #expect(r.status == 0, "\(r.stderr)")
        return ct
    }

    @Test func layersListsModulePaths() throws {
        let r = try CLITests.run(["layers", Self.resnet, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
        #expect(rows.contains { ($0["module"] as? String) == "layer4.0.conv2" })
        #expect(rows.contains { ($0["op"] as? String) == "GlobalAveragePool" && ($0["spatial"] as? Bool) == false })
    }

    @Test func predictAndExplainWriteOnTheScanGrid() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ct = try Self.phantom(dir)
        let p = try CLITests.run(["predict", Self.resnet, ct, "--json"] + Self.prep)
        #expect(p.status == 0, "\(p.stderr)")
        let pred = try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)) as! [String: Any]
        #expect((pred["probabilities"] as! [Double]).reduce(0, +) > 0.999)
        let e = try CLITests.run(["explain", Self.resnet, ct, "--method", "gradcam,hrcam", "--layer", "layer4", "--out", dir + "/maps"] + Self.prep)
        #expect(e.status == 0, "\(e.stderr)")
        for f in ["gradcam.nii.gz", "hrcam.nii.gz", "hrcam-level1.nii.gz", "report.json"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/maps/" + f), "\(f) missing")
        }
        let scan = try CLITests.run(["inspect", ct, "--json"]), map = try CLITests.run(["inspect", dir + "/maps/gradcam.nii.gz", "--json"])
        let a = try JSONSerialization.jsonObject(with: Data(scan.stdout.utf8)) as! [String: Any]
        let b = try JSONSerialization.jsonObject(with: Data(map.stdout.utf8)) as! [String: Any]
        #expect(a["dims"] as? [Int] == b["dims"] as? [Int])
        #expect(a["affine"] as? [[Double]] == b["affine"] as? [[Double]])
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/maps/report.json"))) as! [String: Any]
        #expect(((report["input"] as! [String: Any])["sha256"] as! String).count == 64)
    }

    /// Results do not depend on the thread count: the sample model's maps (Winograd, direct and
    /// pointwise layers; Score-CAM's batches; HR-CAM's backward passes) are the same bytes with 1, 2
    /// and 3 threads (`VOXPLAIN_THREADS`; 3 on two cores oversubscribes the pool).
    @Test func mapsAreTheSameBytesForAnyThreadCount() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ct = try Self.phantom(dir)
        let methods = ["gradcam", "gradcampp", "scorecam", "hrcam", "layercam"]
        var maps: [String: [Data]] = [:]
        for threads in ["1", "2", "3"] {
            let out = dir + "/threads" + threads
            let r = try CLITests.run(["explain", Self.sample, ct, "--method", methods.joined(separator: ","), "--raw",
                                      "--no-montage", "--out", out], environment: ["VOXPLAIN_THREADS": threads])
            #expect(r.status == 0, "\(r.stderr)")
            maps[threads] = try methods.map { try Data(contentsOf: URL(fileURLWithPath: out + "/\($0)-raw.nii.gz")) }
        }
        #expect(maps["1"] == maps["2"], "1 and 2 threads")
        #expect(maps["2"] == maps["3"], "2 and 3 threads")
    }

    /// Candidates: one patch per point, their maps combined on the scan's grid by the maximum. The
    /// combined raw map peaks at the larger of the single patches' peaks, the report lists both
    /// patches, and the files are the same bytes with 1 and 2 threads and with the points reversed.
    @Test func explainCombinesCandidatePatches() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ct = try Self.phantom(dir)
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/ct.json"))) as! [String: Any]
        let points = (info["nodules"] as! [[String: Any]]).prefix(2).map { ($0["center_voxel"] as! [Double]).map { String(format: "%.2f", $0) }.joined(separator: ",") }
        #expect(points.count == 2)
        func explain(_ rows: [String], _ out: String, threads: String = "2") throws -> (max: Float, files: [Data], patches: Int) {
            try (["i,j,k"] + rows).joined(separator: "\n").write(toFile: dir + "/\(out).csv", atomically: true, encoding: .utf8)
            let r = try CLITests.run(["explain", Self.sample, ct, "--candidates", dir + "/\(out).csv", "--method", "gradcam,hrcam", "--raw",
                                      "--no-montage", "--out", dir + "/" + out], environment: ["VOXPLAIN_THREADS": threads])
            #expect(r.status == 0, "\(r.stderr)")
            let raw = try NIfTIFile.read(dir + "/\(out)/gradcam-raw.nii.gz")
            let files = try ["gradcam.nii.gz", "gradcam-raw.nii.gz", "hrcam.nii.gz", "hrcam-level1.nii.gz"].map {
                try Data(contentsOf: URL(fileURLWithPath: dir + "/\(out)/" + $0))
            }
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/\(out)/report.json"))) as! [String: Any]
            return (raw.voxels.max()!, files, (report["patches"] as? [Any])?.count ?? 0)
        }
        let both = try explain(points, "both"), first = try explain([points[0]], "first"), second = try explain([points[1]], "second")
        #expect(both.patches == 2 && first.patches == 1)
        #expect(both.max == Swift.max(first.max, second.max))
        #expect(try explain(points, "serial", threads: "1").files == both.files)
        // The maximum does not depend on the order of the points.
        #expect(try explain(points.reversed(), "reversed").files == both.files)
    }

    @Test func badInputs() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ct = try Self.phantom(dir)
        try cli.expectFailure(["predict", dir + "/missing.onnx", ct], naming: "missing.onnx", "no such file")
        try cli.expectFailure(["predict", Self.lstm, ct], naming: "unsupported_lstm.onnx", "LSTM")
        try cli.expectFailure(["predict", ct, ct], naming: ct, "not a model file")
        try cli.expectFailure(["predict", Self.resnet, dir + "/none.nii.gz"] + Self.prep, naming: "none.nii.gz")
        try cli.expectFailure(["explain", Self.resnet, ct, "--method", "bogus", "--out", dir + "/o"] + Self.prep, naming: "--method", "unknown method")
        try cli.expectFailure(["explain", Self.resnet, ct, "--class", "7", "--out", dir + "/o"] + Self.prep, naming: "--class", "out of range")
        try cli.expectFailure(["explain", Self.resnet, ct, "--layer", "nope", "--out", dir + "/o"] + Self.prep, naming: "nope", "no layer")
        try cli.expectFailure(["explain", Self.resnet, ct, "--method", "cam", "--layer", "layer4.0.conv1", "--out", dir + "/o"] + Self.prep,
                              naming: "CAM", "global average pooling")
        try cli.expectFailure(["explain", Self.resnet, ct, "--out", ct + "/sub"] + Self.prep, naming: ct)
        try cli.expectFailure(["predict", Self.resnet, ct, "--size", "12,12"], naming: "--size", "3 comma-separated")
        try cli.expectFailure(["predict", Self.resnet, ct, "--size", "16,16,16"], naming: "resnet.onnx", "does not fit")
        try cli.expectFailure(["predict", Self.resnet, ct, "--clip", "400,-1000"] + ["--size", "12,12,12"], naming: "clip", "increasing")
        try cli.expectFailure(["explain", Self.resnet, ct, "--memory-budget", "lots", "--out", dir + "/o"] + Self.prep, naming: "--memory-budget")
        try cli.expectFailure(["predict", Self.resnet, ct, "--center", "0,0,9999"] + Self.prep, naming: ct, "outside the scan")
    }
}

extension ModelCLITests {
    @Test func modelsThatAreNot3DAreRefused() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ct = try Self.phantom(dir)
        let conv2d = fixturesDirectory.appendingPathComponent("models/conv2d.onnx").path
        try cli.expectFailure(["predict", conv2d, ct], naming: "conv2d.onnx", "5D input")
        try cli.expectFailure(["layers", conv2d], naming: "conv2d.onnx", "5D input")
    }

    @Test func convertWritesTheNativeFormat() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/resnet.voxplain.json"
        let r = try CLITests.run(["convert", Self.resnet, out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/resnet.safetensors"))
        let a = try CLITests.run(["layers", Self.resnet, "--json"]), b = try CLITests.run(["layers", out, "--json"])
        #expect(a.stdout == b.stdout && !a.stdout.isEmpty)
        try cli.expectFailure(["convert", Self.resnet, dir + "/no-such-folder/m.voxplain.json"], naming: "m.voxplain.json")
        try cli.expectFailure(["convert", Self.resnet, dir + "/m.json"], naming: "m.json", "must end in .voxplain.json")
    }
}

extension ModelCLITests {
    /// A model with two heads: `--output` picks the one explained, by its ONNX output name.
    @Test func outputsAreChosenByName() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ct = try Self.phantom(dir)
        let model = fixturesDirectory.appendingPathComponent("models/twoheads.onnx").path
        let a = try CLITests.run(["predict", model, ct, "--json"] + Self.prep)
        let b = try CLITests.run(["predict", model, ct, "--json", "--output", "texture"] + Self.prep)
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        let na = (try JSONSerialization.jsonObject(with: Data(a.stdout.utf8)) as! [String: Any])["logits"] as! [Double]
        let nb = (try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as! [String: Any])["logits"] as! [Double]
        #expect(na.count == 2 && nb.count == 3)
        let e = try CLITests.run(["explain", model, ct, "--output", "texture", "--class", "2", "--method", "gradcam", "--no-montage", "--out", dir + "/m"] + Self.prep)
        #expect(e.status == 0, "\(e.stderr)")
        try cli.expectFailure(["predict", model, ct, "--output", "size"] + Self.prep, naming: "--output", "malignancy, texture")
    }
}

extension ModelCLITests {
    /// hrcam-fit on a labelled list writes MODEL.hrcam.json beside the model, and explain then runs
    /// the fitted form; a list without labels, or of one class, is refused.
    @Test func hrcamFitThenExplain() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/m.onnx"
        try FileManager.default.copyItem(atPath: Self.resnet, toPath: model)
        var csv = "scan,label\n"
        for i in 0..<6 {
            let r = try CLITests.run(["phantom", dir + "/p\(i).nii.gz", "--nodules", "\(i % 2 + 1)", "--seed", "\(40 + i)", "--size", "64,64,48"])
            #expect(r.status == 0, "\(r.stderr)")
            csv += "p\(i).nii.gz,\(i % 2)\n"
        }
        try csv.write(toFile: dir + "/list.csv", atomically: true, encoding: .utf8)
        let fit = try CLITests.run(["hrcam-fit", model, "--data", dir + "/list.csv"] + Self.prep)
        #expect(fit.status == 0, "\(fit.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/m.hrcam.json"))
        let e = try CLITests.run(["explain", model, dir + "/p0.nii.gz", "--method", "hrcam", "--no-montage", "--out", dir + "/maps", "--json"] + Self.prep)
        #expect(e.status == 0, "\(e.stderr)")
        #expect(e.stdout.contains("\"form\" : \"fitted\""))
        try "scan,label\np0.nii.gz,1\np1.nii.gz,1\n".write(toFile: dir + "/one.csv", atomically: true, encoding: .utf8)
        try cli.expectFailure(["hrcam-fit", model, "--data", dir + "/one.csv"] + Self.prep, naming: "hrcam-fit", "two classes")
        try "scan\np0.nii.gz\n".write(toFile: dir + "/nolabel.csv", atomically: true, encoding: .utf8)
        try cli.expectFailure(["hrcam-fit", model, "--data", dir + "/nolabel.csv"] + Self.prep, naming: "nolabel.csv", "no label")
    }
}

extension ModelCLITests {
    /// A run that fails on its inputs leaves no output folder behind.
    @Test func failedExplainWritesNothing() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try cli.expectFailure(["explain", Self.resnet, dir + "/missing.nii.gz", "--out", dir + "/maps"] + Self.prep, naming: "missing.nii.gz")
        #expect(!FileManager.default.fileExists(atPath: dir + "/maps"))
    }
}

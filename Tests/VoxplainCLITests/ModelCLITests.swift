import Foundation
import Testing
import _TestSupport

/// `layers`, `predict` and `explain` end to end on a committed fixture model and a phantom, and
/// their bad inputs: one line naming the file or option, non-zero exit, nothing on stdout.
@Suite struct ModelCLITests {
    let cli = CLITests()
    static let resnet = fixturesDirectory.appendingPathComponent("models/resnet.onnx").path
    static let lstm = fixturesDirectory.appendingPathComponent("onnx/unsupported_lstm.onnx").path
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

import Foundation
import Testing
import _TestSupport

/// `voxplain montage`, `lesions` and `view` as a user runs them: outputs and one-line errors.
struct RenderCLITests {
    let cli = CLITests()

    /// A small phantom CT, its mask (used as a heat map too) and a phantom on another grid.
    static func files() throws -> (dir: String, ct: String, mask: String, other: String) {
        let dir = try CLITests.tempDir()
        let ct = dir + "/ct.nii.gz", mask = dir + "/mask.nii.gz", other = dir + "/other.nii.gz"
        let r = try CLITests.run(["phantom", ct, "--mask", mask, "--size", "48,48,32", "--spacing", "1.8,1.8,3.5", "--nodules", "2", "--seed", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try CLITests.run(["phantom", other, "--size", "40,48,32", "--nodules", "0"]).status == 0)
        return (dir, ct, mask, other)
    }

    static func pngSize(_ path: String) throws -> (Int, Int) {
        let d = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(d.prefix(8) == Data([137, 80, 78, 71, 13, 10, 26, 10]))
        func be(_ o: Int) -> Int { d[o..<o + 4].reduce(0) { $0 << 8 | Int($1) } }
        return (be(16), be(20))
    }

    @Test func montageWritesPNGs() throws {
        let f = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let out = f.dir + "/m.png"
        let r = try CLITests.run(["montage", f.ct, "--overlay", f.mask, "--out", out, "--truth", f.mask, "--count", "4", "--tile", "64"])
        #expect(r.status == 0 && r.stdout == out + "\n" && r.stderr.isEmpty, "\(r.stderr)")
        let (w, h) = try Self.pngSize(out)
        #expect(w > 2 * 64 && h > 2 * 50)
        for axis in ["coronal", "sagittal", "triplanar"] {
            let o = f.dir + "/\(axis).png"
            let a = try CLITests.run(["montage", f.ct, "--overlay", f.mask, "--out", o, "--axis", axis, "--window", "p1,99", "--cmap", "turbo", "--slices", axis == "triplanar" ? "auto" : "1,5"])
            #expect(a.status == 0, "\(axis): \(a.stderr)")
        }
        let sheet = f.dir + "/sheet.png"
        let s = try CLITests.run(["montage", f.ct, "--overlay", f.mask, "--overlay", f.mask, "--out", sheet, "--slices", "3,10,20"])
        #expect(s.status == 0, "\(s.stderr)")
        let (sw, sh) = try Self.pngSize(sheet)
        #expect(sw > 3 * 100 && sh > 2 * 100)
    }

    @Test func montageErrors() throws {
        let f = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let out = f.dir + "/m.png"
        let base = ["montage", f.ct, "--overlay", f.mask, "--out", out]
        try cli.expectFailure(["montage", f.ct, "--overlay", f.other, "--out", out], naming: f.other, "48x48x32")
        #expect(try CLITests.run(["montage", f.ct, "--overlay", f.other, "--out", out]).stderr.contains("40x48x32"))
        try cli.expectFailure(["montage", f.ct, "--overlay", f.mask, "--overlay", f.other, "--out", out], naming: f.other, f.ct)
        try cli.expectFailure(base + ["--window", "lungs"], naming: "--window")
        try cli.expectFailure(base + ["--cmap", "rainbow"], naming: "--cmap")
        try cli.expectFailure(base + ["--alpha", "2"], naming: "--alpha")
        try cli.expectFailure(base + ["--threshold=-1"], naming: "--threshold")
        try cli.expectFailure(base + ["--slices", "3,99"], naming: "--slices", "99")
        try cli.expectFailure(base + ["--slices", "3,x"], naming: "--slices")
        try cli.expectFailure(["montage", f.ct, "--overlay", f.mask, "--out", f.dir + "/nowhere/m.png"], naming: "nowhere")
        try cli.expectFailure(["montage", f.ct, "--overlay", f.mask, "--out", f.dir + "/m.jpg"], naming: "m.jpg")
        // The output may not overwrite an input (here through a .png-named input).
        let pngInput = f.dir + "/scan.png"
        try FileManager.default.copyItem(atPath: f.mask, toPath: pngInput)
        try cli.expectFailure(["montage", f.ct, "--overlay", pngInput, "--out", pngInput], naming: pngInput, "overwrite")
        try cli.expectFailure(["montage", f.dir + "/missing.nii.gz", "--out", out], naming: "missing.nii.gz")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func lesionsTextJSONAndCSV() throws {
        let f = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: f.dir + "/ct.json"))) as? [String: Any]
        let nodules = try #require(info?["nodules"] as? [[String: Any]])
        let csv = f.dir + "/l.csv"
        let r = try CLITests.run(["lesions", f.mask, "--truth", f.mask, "--json", "--csv", csv])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let comps = try #require(obj["components"] as? [[String: Any]])
        #expect(comps.count >= nodules.count)
        #expect(obj["missed_labels"] as? [Int] == [])
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        #expect(rows.count == comps.count + 1 && rows[0].hasPrefix("id,voxels,volume_mm3"))
        let text = try CLITests.run(["lesions", f.mask, "--threshold", "9"])
        #expect(text.status == 0 && text.stdout.contains("0 components"))
        try cli.expectFailure(["lesions", f.mask, "--truth", f.other], naming: f.other, "48x48x32")
        try cli.expectFailure(["lesions", f.mask, "--csv", f.mask], naming: f.mask, "overwrite")
        try cli.expectFailure(["lesions", f.mask, "--csv", f.dir + "/no/dir.csv"], naming: "no/dir.csv")
    }

    @Test func viewPrintsOnceWhenNotATerminal() throws {
        let f = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let r = try CLITests.run(["view", f.ct, "--overlay", f.mask, "--width", "30", "--axis", "coronal", "--slice", "20"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        // 48 x 1.8 mm wide, 32 x 3.5 mm high: 30 columns of 2.88 mm, 39 pixel rows, 20 text rows.
        #expect(lines.count == 21)
        #expect(lines.dropLast().allSatisfy { $0.components(separatedBy: "\u{2580}").count - 1 == 30 && $0.hasSuffix("\u{1B}[0m") })
        #expect(lines.last?.hasPrefix("coronal j=20") == true && lines.last?.contains("left R right L top S bottom I") == true)
        #expect(r.stdout.contains("\u{1B}[38;2;") && r.stdout.contains("\u{1B}[48;2;"))
        try cli.expectFailure(["view", f.ct, "--slice", "99"], naming: "--slice")
        try cli.expectFailure(["view", f.ct, "--overlay", f.other], naming: f.other)
    }
}

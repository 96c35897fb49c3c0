import Foundation
import Testing
import _TestSupport

/// Runs the built `voxplain` binary: phantom then inspect, and bad inputs (exit status and message).
struct CLITests {
    /// `voxplain` next to the test bundle (`swift test` builds it first: this target depends on it),
    /// else `.build/debug/voxplain` under the package root.
    static let binary: String = {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [beside, beside.deletingLastPathComponent()] {
            let p = dir.appendingPathComponent("voxplain").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return fixturesDirectory.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/voxplain").path
    }()

    struct Run { var status: Int32; var stdout: String; var stderr: String }

    /// Runs `voxplain args` with this process's environment changed by `environment` (nil removes a
    /// variable), through `launcher` (a program given the binary's path and then `args`, such as
    /// `taskset -c 0`) when there is one.
    static func run(_ args: [String], environment: [String: String?] = [:], launcher: [String] = []) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: launcher.first ?? binary)
        p.arguments = launcher.isEmpty ? args : Array(launcher.dropFirst()) + [binary] + args
        var env = ProcessInfo.processInfo.environment
        for (name, value) in environment { env[name] = value }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func tempDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("voxplain-cli-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Exit status non-zero, nothing on stdout, one line `voxplain: error: ...` naming `file`.
    func expectFailure(_ args: [String], naming file: String, _ words: String? = nil, environment: [String: String?] = [:],
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try Self.run(args, environment: environment)
        #expect(r.status != 0, "\(args) exited 0", sourceLocation: sourceLocation)
        #expect(r.stdout.isEmpty, "stdout: \(r.stdout)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("voxplain: error: ") && r.stderr.contains(file), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        if let words { #expect(r.stderr.contains(words), "stderr: \(r.stderr)", sourceLocation: sourceLocation) }
    }

    @Test func phantomThenInspect() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ct = dir + "/phantom.nii.gz", mask = dir + "/phantom-mask.nii.gz"
        let r = try Self.run(["phantom", ct, "--mask", mask, "--nodules", "4", "--seed", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "\(ct)\n\(mask)\n\(dir)/phantom.json\n")
        let text = try Self.run(["inspect", ct])
        #expect(text.status == 0 && text.stderr.isEmpty)
        #expect(text.stdout.contains("128 x 128 x 96") && text.stdout.contains("LPS") && text.stdout.contains("0 NaN, 0 Inf"))
        let js = try Self.run(["inspect", ct, "--json", "--slices", "--axis", "j"])
        #expect(js.status == 0)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(js.stdout.utf8)) as? [String: Any])
        #expect(obj["dims"] as? [Int] == [128, 128, 96])
        #expect(obj["orientation"] as? String == "LPS")
        #expect(obj["sform_code"] as? Int == 1 && obj["qform_code"] as? Int == 1)
        #expect(obj["datatype"] as? String == "int16")
        let intensity = try #require(obj["intensity"] as? [String: Any])
        #expect((intensity["min"] as? Double ?? 0) >= -1024 && (intensity["max"] as? Double ?? 9999) <= 3071)
        let slices = try #require(obj["slices"] as? [String: Any])
        #expect(slices["axis"] as? String == "j" && (slices["stats"] as? [Any])?.count == 128)
        // The mask holds labels 1...4.
        let m = try #require(try JSONSerialization.jsonObject(with: Data(try Self.run(["inspect", mask, "--json"]).stdout.utf8)) as? [String: Any])
        #expect((m["intensity"] as? [String: Any])?["max"] as? Double == 4)
        // Same seed, same bytes.
        let again = dir + "/again.nii.gz"
        #expect(try Self.run(["phantom", again, "--seed", "1", "--nodules", "4"]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: again)) == Data(contentsOf: URL(fileURLWithPath: ct)))
    }

    /// `bench --json` names each pass's algorithm: a 3x3x3 stride-1 layer with 32-wide rows runs as
    /// Winograd on AVX-512, and so does a 3x3x3 stride-2 layer (the stride-2 kernel); the 7x7x7 stem
    /// on the direct engine.
    @Test func benchReportsTheAlgorithm() throws {
        let r = try Self.run(["bench", "--json", "--quick", "--skip-peak", "--only", "32->32 @32^3", "--passes", "forward"])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let results = report?["results"] as? [[String: Any]] ?? []
        #expect(results.count == 1)
        let avx512 = report?["isa"] as? String == "avx512"
        #expect(results.first?["algorithm"] as? String == (avx512 ? "winograd" : "direct"))
        #expect((results.first?["gflops"] as? Double ?? 0) > 0)
        let s2 = try Self.run(["bench", "--json", "--quick", "--skip-peak", "--only", "64->128 s2 @32^3", "--passes", "forward"])
        let s2Results = (try JSONSerialization.jsonObject(with: Data(s2.stdout.utf8)) as? [String: Any])?["results"] as? [[String: Any]]
        #expect(s2Results?.first?["algorithm"] as? String == (avx512 ? "winograd" : "direct"))
        let stem = try Self.run(["bench", "--json", "--quick", "--skip-peak", "--only", "stem7 s2 1->64 @128^3",
                                 "--passes", "forward"])
        let stemResults = (try JSONSerialization.jsonObject(with: Data(stem.stdout.utf8)) as? [String: Any])?["results"] as? [[String: Any]]
        #expect(stemResults?.first?["algorithm"] as? String == "direct")
    }

    /// Parallel regions use the CPUs the process may use (an affinity mask from `taskset`, a cgroup
    /// quota), or `VOXPLAIN_THREADS`; a `VOXPLAIN_THREADS` that is not a thread count is refused
    /// before anything runs.
    @Test func threadCountFollowsAffinityAndSetting() throws {
        let args = ["bench", "--json", "--quick", "--skip-peak", "--only", "128->128 @8^3", "--passes", "forward"]
        func threads(_ r: Run) -> Int? {
            (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["threads"] as? Int
        }
        for n in [1, 3] {
            let r = try Self.run(args, environment: ["VOXPLAIN_THREADS": "\(n)"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(threads(r) == n)
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") {
            let pinned = try Self.run(args, environment: ["VOXPLAIN_THREADS": nil], launcher: ["/usr/bin/taskset", "-c", "0"])
            #expect(pinned.status == 0, "\(pinned.stderr)")
            #expect(threads(pinned) == 1)
        }
        for bad in ["0", "-2", "two", "", "5000", "1.5"] {
            try expectFailure(["inspect", "scan.nii.gz"], naming: "VOXPLAIN_THREADS", "'\(bad)'",
                              environment: ["VOXPLAIN_THREADS": bad])
        }
    }

    @Test func badInputs() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try expectFailure(["inspect", dir + "/missing.nii.gz"], naming: dir + "/missing.nii.gz", "no such file")
        let text = dir + "/notes.nii"
        try String(repeating: "not a scan\n", count: 50).write(toFile: text, atomically: true, encoding: .utf8)
        try expectFailure(["inspect", text], naming: text, "not a NIfTI file")
        let good = try Data(contentsOf: fixturesDirectory.appendingPathComponent("nifti/dtype_int16.nii"))
        let cut = dir + "/cut.nii"
        try good.prefix(good.count - 10).write(to: URL(fileURLWithPath: cut))
        try expectFailure(["inspect", cut], naming: cut, "truncated")
        let gz = try Data(contentsOf: fixturesDirectory.appendingPathComponent("nifti/ct_scaled.nii.gz"))
        let badgz = dir + "/bad.nii.gz"
        try gz.prefix(gz.count / 2).write(to: URL(fileURLWithPath: badgz))
        try expectFailure(["inspect", badgz], naming: badgz, "gzip")
        let t3 = fixturesDirectory.appendingPathComponent("nifti/t3.nii.gz").path
        try expectFailure(["inspect", t3], naming: t3, "--volume")
        #expect(try Self.run(["inspect", t3, "--volume", "2"]).status == 0)
        let rgb = fixturesDirectory.appendingPathComponent("nifti/rgb24.nii").path
        try expectFailure(["inspect", rgb], naming: rgb, "unsupported datatype")
        // Outputs: a folder under a regular file, a missing folder, the same path twice, bad options.
        let file = dir + "/file.txt"
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        try expectFailure(["phantom", file + "/out.nii.gz", "--size", "32,32,16"], naming: file + "/out.nii.gz")
        try expectFailure(["phantom", dir + "/no/such/out.nii"], naming: dir + "/no/such/out.nii")
        try expectFailure(["phantom", dir + "/a.nii.gz", "--mask", dir + "/a.nii.gz"], naming: dir + "/a.nii.gz")
        try expectFailure(["phantom", dir + "/b.nii.gz", "--nodules", "300"], naming: "nodule count 300")
        try expectFailure(["phantom", dir + "/c.nii.gz", "--size", "12,x,3"], naming: "--size")
        try expectFailure(["phantom", dir + "/d.nii.gz", "--spacing", "0,1,1"], naming: "spacing")
        // Nothing was left behind by the failures.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["bad.nii.gz", "cut.nii", "file.txt", "notes.nii"])
    }
}

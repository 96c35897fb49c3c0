import Foundation
import NIfTI
import VoxelCAM
import VoxelIO
import VoxelTensor

/// `voxplain demo`: the whole job on a phantom scan and the bundled sample model.
public enum Demo {
    /// One row of the demo's summary table.
    public struct Row: Codable, Sendable {
        public var method: String
        public var form: String?
        public var seconds: Double
        public var forwardPasses: Int
        /// Where the map is hottest, and how far that is from the nearest true nodule's centre.
        public var peakWorldMM: [Double]
        public var peakToNearestNoduleMM: Double
        /// True nodules whose centre voxel has normalised heat >= 0.5.
        public var nodulesAtCentre: Int
        /// Hot regions (heat >= 0.5), and the true nodules they hit.
        public var hotRegions: Int
        public var nodulesHit: Int
    }

    public struct Summary: Codable, Sendable {
        public var scan: String, mask: String, candidates: String, report: String
        public var nodules: Int
        public var rows: [Row]
        public var seconds: Double
    }

    /// The bundled sample model: beside the executable's package (`Volumes/sample-model.onnx` in a
    /// folder above it), else in the current folder's `Volumes/`.
    public static func locateSampleModel(executable: String) -> String? {
        var dir = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("Volumes/sample-model.onnx").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let here = FileManager.default.currentDirectoryPath + "/Volumes/sample-model.onnx"
        return FileManager.default.fileExists(atPath: here) ? here : nil
    }

    /// Runs the demo into `outputDirectory`.
    /// - Parameters:
    ///   - model: the model file (the sample model).
    ///   - nodules, seed: the phantom.
    public static func run(outputDirectory: String, model modelPath: String, nodules: Int = 4, seed: UInt64 = 2026,
                           methods: [CAMMethod] = CAMMethod.allCases,
                           progress: (@Sendable (String, Int, Int) -> Void)? = nil) throws -> Summary {
        let clock = ContinuousClock(), start = clock.now
        let out = URL(fileURLWithPath: outputDirectory)
        do { try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true) } catch {
            throw VoxplainError("\(outputDirectory): cannot create the output folder (\(error.localizedDescription))")
        }
        // 1. A phantom chest CT with nodules, its mask and facts.
        let phantom = try Phantom.generate(PhantomOptions(noduleCount: nodules, seed: seed))
        let scan = out.appendingPathComponent("phantom.nii.gz").path, mask = out.appendingPathComponent("phantom-mask.nii.gz").path
        _ = try phantom.write(ct: scan, mask: mask)
        // 2. LUNA16-style candidates: every nodule, and as many lung points away from the nodules.
        let candidates = candidatePoints(phantom, seed: seed)
        var csv = "coordX,coordY,coordZ,class\n"
        for (c, label) in candidates { csv += c.map { String(format: "%.3f", $0) }.joined(separator: ",") + ",\(label)\n" }
        let candidatesPath = out.appendingPathComponent("candidates.csv")
        do { try AtomicFile.write(Data(csv.utf8), to: candidatesPath) } catch let f as AtomicFile.Failure {
            throw VoxplainError("\(candidatesPath.path): \(f.reason)")
        }
        // 3. Explain the "nodule" class with every method, one patch per candidate.
        let model = try LoadedModel.load(modelPath)
        var request = ExplainRequest(methods: methods, outputDirectory: out.appendingPathComponent("maps").path)
        request.candidates = try Candidate.read(candidatesPath.path)
        request.classSpec = model.card.classes?.contains("nodule") == true ? "nodule" : nil
        request.cam.progress = progress
        request.truthPath = mask
        let report = try ExplainPipeline.run(model: model, scanPath: scan, request: request)
        // 4. How each map relates to the true nodules.
        let centres = phantom.nodules.map { SIMD3($0.centerWorldMM[0], $0.centerWorldMM[1], $0.centerWorldMM[2]) }
        var rows: [Row] = []
        for r in report.results {
            let map = try NIfTIFile.read(r.map)
            let peak = SIMD3(r.stats.peakWorldMM[0], r.stats.peakWorldMM[1], r.stats.peakWorldMM[2])
            let nearest = centres.map { (($0 - peak) * ($0 - peak)).sum().squareRoot() }.min() ?? .nan
            let atCentre = phantom.nodules.filter { n in
                let v = n.centerVoxel.map { Int($0.rounded()) }
                return map[v[0], v[1], v[2]] >= 0.5
            }.count
            rows.append(Row(method: r.method, form: r.form, seconds: r.seconds, forwardPasses: r.forwardPasses,
                            peakWorldMM: r.stats.peakWorldMM, peakToNearestNoduleMM: nearest, nodulesAtCentre: atCentre,
                            hotRegions: r.lesions.components.count,
                            nodulesHit: (r.lesions.truthLabels?.count ?? 0) - (r.lesions.missedLabels?.count ?? 0)))
        }
        let elapsed = clock.now - start
        let summary = Summary(scan: scan, mask: mask, candidates: candidatesPath.path,
                              report: out.appendingPathComponent("maps/report.json").path, nodules: phantom.nodules.count,
                              rows: rows, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { try AtomicFile.write(try enc.encode(summary), to: out.appendingPathComponent("summary.json")) } catch let f as AtomicFile.Failure {
            throw VoxplainError("\(out.appendingPathComponent("summary.json").path): \(f.reason)")
        }
        return summary
    }

    /// The summary as a text table.
    public static func table(_ s: Summary) -> String {
        var t = "method      form      time s  passes  peak (world mm, RAS)      peak to nodule mm  centres >= 0.5  hot regions  nodules hit\n"
        for r in s.rows {
            let peak = r.peakWorldMM.map { String(format: "%7.1f", $0) }.joined(separator: " ")
            t += r.method.padding(toLength: 12, withPad: " ", startingAt: 0)
                + (r.form ?? "-").padding(toLength: 10, withPad: " ", startingAt: 0).prefix(10)
                + String(format: "%6.2f  %6d  ", r.seconds, r.forwardPasses) + peak
                + String(format: "  %17.1f  %6d of %d  %11d  %6d of %d\n", r.peakToNearestNoduleMM, r.nodulesAtCentre, s.nodules,
                         r.hotRegions, r.nodulesHit, s.nodules)
        }
        let maps = URL(fileURLWithPath: s.report).deletingLastPathComponent().path
        t += String(format: "total %.1f s; scan %@; heatmaps, montages (<method>.png, comparison.png), lesion tables and report.json in %@\n",
                    s.seconds, s.scan, maps)
        return t
    }

    /// Nodule centres (class 1) and lung points at least 10 mm from every nodule's edge (class 0).
    static func candidatePoints(_ p: Phantom, seed: UInt64) -> [([Double], Int)] {
        var out: [([Double], Int)] = p.nodules.map { ($0.centerWorldMM, 1) }
        var rng = SplitMix64(seed: seed ^ 0xCA4D)
        var tries = 0
        while out.count < 2 * p.nodules.count && tries < 10_000 {
            tries += 1
            let lung = p.lungs[Int(rng.next() % UInt64(p.lungs.count))]
            let u = SIMD3(rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1))
            guard (u * u).sum() < 0.6 else { continue }
            let w = SIMD3(lung.centerWorldMM[0], lung.centerWorldMM[1], lung.centerWorldMM[2])
                + u * SIMD3(lung.semiAxesMM[0], lung.semiAxesMM[1], lung.semiAxesMM[2])
            let clear = p.nodules.allSatisfy { n in
                let c = SIMD3(n.centerWorldMM[0], n.centerWorldMM[1], n.centerWorldMM[2])
                return ((c - w) * (c - w)).sum().squareRoot() > n.diameterMM / 2 + 10
            }
            if clear { out.append(([w.x, w.y, w.z], 0)) }
        }
        return out
    }
}

import Foundation
import VoxelRender
import VoxelCAM
import VoxelEval
import VoxelIO

/// One row of the evaluation table: a method's mean metrics over a group of scans.
public struct MethodSummary: Codable, Sendable, Equatable {
    /// The method's name.
    public var method: String
    /// "all", "correct", "wrong" (by the scans' labels) or "unlabelled".
    public var group: String
    /// Scans in the group.
    public var scans: Int
    /// Mean AOPC of MoRF, of LeRF, and of their difference.
    public var aopcMoRF: Double
    /// See `aopcMoRF`.
    public var aopcLeRF: Double
    /// See `aopcMoRF`.
    public var aopcDifference: Double
    /// Mean deletion and insertion AUC.
    public var deletionAUC: Double
    /// See `deletionAUC`.
    public var insertionAUC: Double
    /// Share of scans with a lesion mask where the pointing game hits (nil without masks).
    public var pointingGame: Double?
    /// Mean relevance mass inside the lesion mask (energy pointing game).
    public var energyInside: Double?
    /// Mean lesion-level hit rate over scans with masks.
    public var lesionHitRate: Double?
    /// Share of sanity-checked scans where the method passes (nil when none was checked; scans whose
    /// original map is constant are not counted).
    public var sanityPass: Double?
    /// Share of scans with a body mask whose map is flagged as implausible.
    public var implausible: Double?
}

/// A method's mean MoRF and LeRF curves over all scans.
public struct MeanCurves: Codable, Sendable, Equatable {
    /// The method, the scans averaged, and the mean curves (k = 0...L).
    public var method: String
    /// See `method`.
    public var scans: Int
    /// See `method`.
    public var morf: [Double]
    /// See `method`.
    public var lerf: [Double]
}

/// The evaluation's summary: the table per method and group, and the mean curves.
public struct EvaluationSummary: Codable, Sendable {
    /// The table, by method then group.
    public var rows: [MethodSummary]
    /// Mean curves per method.
    public var curves: [MeanCurves]
    /// Scans evaluated (or resumed).
    public var scans: Int

    /// The table as Markdown.
    public var markdown: String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "-" }
        var s = "| method | group | scans | AOPC MoRF | AOPC LeRF | MoRF − LeRF | deletion AUC | insertion AUC | pointing game | energy inside | lesion hit rate | sanity pass | implausible |\n"
        s += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in rows {
            s += "| \(r.method) | \(r.group) | \(r.scans) | \(f(r.aopcMoRF)) | \(f(r.aopcLeRF)) | \(f(r.aopcDifference)) | \(f(r.deletionAUC)) | \(f(r.insertionAUC)) | \(f(r.pointingGame)) | \(f(r.energyInside)) | \(f(r.lesionHitRate)) | \(f(r.sanityPass)) | \(f(r.implausible)) |\n"
        }
        return s
    }

    /// The table as CSV (empty cells where a metric does not apply).
    public var csv: String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.6g", $0) } ?? "" }
        var s = "method,group,scans,aopc_morf,aopc_lerf,aopc_morf_minus_lerf,deletion_auc,insertion_auc,pointing_game,energy_inside,lesion_hit_rate,sanity_pass,implausible\n"
        for r in rows {
            s += "\(r.method),\(r.group),\(r.scans),\(f(r.aopcMoRF)),\(f(r.aopcLeRF)),\(f(r.aopcDifference)),\(f(r.deletionAUC)),\(f(r.insertionAUC)),\(f(r.pointingGame)),\(f(r.energyInside)),\(f(r.lesionHitRate)),\(f(r.sanityPass)),\(f(r.implausible))\n"
        }
        return s
    }

    /// The mean curves as CSV: `method,step,morf,lerf`.
    public var curvesCSV: String {
        var s = "method,step,morf,lerf\n"
        for c in curves {
            for k in c.morf.indices { s += "\(c.method),\(k),\(String(format: "%.6g", c.morf[k])),\(String(format: "%.6g", c.lerf[k]))\n" }
        }
        return s
    }

    /// The mean MoRF (solid) and LeRF (dashed) curves of every method on shared axes.
    public func curvesPlot() throws -> Image {
        var series: [LinePlot.Series] = []
        for (k, c) in curves.enumerated() {
            let color = LinePlot.palette[k % LinePlot.palette.count]
            series.append(.init(name: "\(c.method) MoRF", values: c.morf, color: color))
            series.append(.init(name: "\(c.method) LeRF", values: c.lerf, color: color, dashed: true))
        }
        return try LinePlot(title: "Mean perturbation curves (\(curves.first?.scans ?? 0) scans)",
                            xLabel: "regions perturbed", yLabel: "class score", series: series).render()
    }

    /// Writes summary.json, summary.csv, summary.md, curves.csv and curves.png into `dir`.
    public func write(to dir: URL) throws {
        try EvaluatePipeline.write(self, to: dir.appendingPathComponent("summary.json"))
        if !curves.isEmpty { try curvesPlot().writePNG(to: dir.appendingPathComponent("curves.png").path) }
        for (name, text) in [("summary.csv", csv), ("summary.md", markdown), ("curves.csv", curvesCSV)] {
            let url = dir.appendingPathComponent(name)
            do { try AtomicFile.write(Data(text.utf8), to: url) } catch let f as AtomicFile.Failure {
                throw VoxplainError("\(url.path): \(f.reason)")
            }
        }
    }
}

/// Running sums over scans, so that memory stays flat whatever the number of scans.
struct EvaluationAggregate {
    struct Sums {
        var scans = 0, morf = 0.0, lerf = 0.0, deletion = 0.0, insertion = 0.0
        var masked = 0, pointing = 0.0, energy = 0.0, lesionRate = 0.0
        var sanityScans = 0, sanityPassed = 0, bodies = 0, flagged = 0
    }
    let methods: [CAMMethod]
    var sums: [String: Sums] = [:]
    var groups: [String] = ["all"]
    var curveSums: [[Double]] = [], lerfSums: [[Double]] = [], curveCounts: [Int] = []
    var scans = 0

    init(methods: [CAMMethod]) {
        self.methods = methods
        curveSums = methods.map { _ in [] }
        lerfSums = curveSums
        curveCounts = methods.map { _ in 0 }
    }

    mutating func add(_ r: ScanEvaluation) {
        scans += 1
        let group = r.correct.map { $0 ? "correct" : "wrong" } ?? "unlabelled"
        if !groups.contains(group) { groups.append(group) }
        for (m, e) in r.methods.enumerated() {
            for g in ["all", group] {
                var s = sums["\(e.method.rawValue)/\(g)"] ?? Sums()
                s.scans += 1
                s.morf += e.regionPerturbation.aopcMoRF; s.lerf += e.regionPerturbation.aopcLeRF
                s.deletion += e.deletionInsertion.deletionAUC; s.insertion += e.deletionInsertion.insertionAUC
                if let l = e.localization {
                    s.masked += 1
                    s.pointing += l.pointingHit ? 1 : 0
                    s.energy += l.energyInside
                    s.lesionRate += l.lesions.hitRate
                }
                if let q = e.sanity, !q.degenerate { s.sanityScans += 1; s.sanityPassed += q.passed ? 1 : 0 }
                if let p = e.plausibility { s.bodies += 1; s.flagged += p.flagged ? 1 : 0 }
                sums["\(e.method.rawValue)/\(g)"] = s
            }
            guard m < curveSums.count else { continue }
            let morf = e.regionPerturbation.morf.map(Double.init), lerf = e.regionPerturbation.lerf.map(Double.init)
            if curveCounts[m] == 0 {
                curveSums[m] = morf; lerfSums[m] = lerf; curveCounts[m] = 1
            } else if curveSums[m].count == morf.count {
                for k in morf.indices { curveSums[m][k] += morf[k]; lerfSums[m][k] += lerf[k] }
                curveCounts[m] += 1
            }
        }
    }

    func summary() -> EvaluationSummary {
        var rows: [MethodSummary] = []
        let order = ["all", "correct", "wrong", "unlabelled"].filter(groups.contains)
        for method in methods {
            for g in order {
                guard let s = sums["\(method.rawValue)/\(g)"], s.scans > 0 else { continue }
                let n = Double(s.scans), masked = Double(s.masked)
                rows.append(MethodSummary(
                    method: method.rawValue, group: g, scans: s.scans, aopcMoRF: s.morf / n, aopcLeRF: s.lerf / n,
                    aopcDifference: (s.morf - s.lerf) / n, deletionAUC: s.deletion / n, insertionAUC: s.insertion / n,
                    pointingGame: s.masked > 0 ? s.pointing / masked : nil, energyInside: s.masked > 0 ? s.energy / masked : nil,
                    lesionHitRate: s.masked > 0 ? s.lesionRate / masked : nil,
                    sanityPass: s.sanityScans > 0 ? Double(s.sanityPassed) / Double(s.sanityScans) : nil,
                    implausible: s.bodies > 0 ? Double(s.flagged) / Double(s.bodies) : nil))
            }
        }
        let curves = methods.indices.compactMap { m -> MeanCurves? in
            guard curveCounts[m] > 0 else { return nil }
            let c = Double(curveCounts[m])
            return MeanCurves(method: methods[m].rawValue, scans: curveCounts[m], morf: curveSums[m].map { $0 / c },
                              lerf: lerfSums[m].map { $0 / c })
        }
        return EvaluationSummary(rows: rows, curves: curves, scans: scans)
    }
}

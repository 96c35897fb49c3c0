import Foundation
import NIfTI
import VoxelCAM
import VoxelEval
import VoxelIO
import VoxelNN
import VoxelTensor

/// What `voxplain evaluate` is asked to do.
public struct EvaluateRequest: Sendable {
    /// The methods to evaluate.
    public var methods: [CAMMethod]
    /// DIR: per-scan JSON in DIR/scans, the tables and curves in DIR.
    public var outputDirectory: String
    /// Target layers by name (default from the card or the last 3D feature map).
    public var layers: [String] = []
    /// Region perturbation: steps L, region edge (voxels, or mm when `regionEdgeMM` is set), perturbation, target.
    public var steps = 100
    public var regionEdge: Int?
    public var regionEdgeMM: Double?
    public var perturbation = Perturbation(.noise)
    public var target: ScoreTarget = .probability
    /// Deletion/insertion steps and baseline.
    public var deletionSteps = 100
    /// See `deletionSteps`.
    public var baseline: Baseline = .constant(0)
    /// Localisation options (spacing is set per scan from the model grid).
    public var localization = LocalizationOptions()
    /// Plausibility flag threshold (share of heat outside the body mask).
    public var plausibilityThreshold = 0.2
    /// Run the cascading randomisation check on the first `sanityScans` scans (0: never).
    public var sanityScans = 1
    /// Options of the randomisation check (3 checkpoints by default).
    public var sanity = SanityOptions()
    public var memoryBudget = 1 << 30
    /// Score perturbation curves incrementally (only what a perturbed region reaches is recomputed;
    /// the same scores, bit for bit) rather than in batches of whole passes.
    public var incremental = true
    public var cam = CAMOptions()
    public var preprocessing = PreprocessingRequest()
    /// Called with (what, done, total) as batched work proceeds, and ("scan", i, n) per scan.
    public var progress: (@Sendable (String, Int, Int) -> Void)?

    public init(methods: [CAMMethod], outputDirectory: String) {
        self.methods = methods
        self.outputDirectory = outputDirectory
        sanity.checkpoints = 3
    }
}

/// One row of the data list: a scan, an optional lesion mask, body mask and true label, and an optional
/// candidate point (world mm, RAS+; LPS with `--lps`) to centre the model input on, for patch models.
public struct EvaluationItem: Sendable, Equatable {
    public var scan: String
    public var mask: String?
    public var body: String?
    public var label: String?
    public var center: [Double]?

    /// An item of a data list; paths as given.
    public init(scan: String, mask: String? = nil, body: String? = nil, label: String? = nil, center: [Double]? = nil) {
        self.scan = scan; self.mask = mask; self.body = body; self.label = label; self.center = center
    }

    /// Reads a CSV with header `scan,mask,label` (mask, label, a `body` column and a candidate point
    /// `coordX,coordY,coordZ` optional; a scan may appear on several rows, one per point);
    /// relative paths are taken from the CSV's folder.
    /// - Throws: `VoxplainError` naming the file and line.
    public static func readList(_ path: String) throws -> [EvaluationItem] {
        let list = try DatasetList(path: path)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        return try list.rows.enumerated().map { n, row in
            let body = row.fields["body"].flatMap { $0.isEmpty ? nil : ($0.hasPrefix("/") ? $0 : folder.appendingPathComponent($0).path) }
            let coords = ["coordx", "coordy", "coordz"].map { row.fields[$0] ?? "" }
            var center: [Double]? = nil
            if coords.contains(where: { !$0.isEmpty }) {
                guard let c = coords.map(Double.init) as? [Double], c.allSatisfy(\.isFinite) else {
                    throw VoxplainError("\(path): line \(n + 2): coordX,coordY,coordZ \(coords) are not three numbers")
                }
                center = c
            }
            return EvaluationItem(scan: row.scan, mask: row.mask, body: body, label: row.label, center: center)
        }
    }
}

/// The evaluation of one method on one scan.
public struct MethodEvaluation: Codable, Sendable {
    public var method: CAMMethod
    public var regionPerturbation: PerturbationCurves
    public var deletionInsertion: DeletionInsertionCurves
    public var localization: LocalizationScores?
    public var plausibility: Plausibility?
    public var sanity: SanityResult?
    public var explainSeconds: Double
}

/// The evaluation of one scan: prediction, each method's metrics, and agreement between methods.
public struct ScanEvaluation: Codable, Sendable {
    public var scan: String
    public var mask: String?
    /// Mask labels that no model-grid voxel carries (lesions lost in resampling or outside the crop).
    public var lostLabels: [Int]
    public var label: Int?
    public var predicted: Int
    public var probability: Float
    /// nil when the scan has no label.
    public var correct: Bool?
    public var explainedClass: Int
    public var methods: [MethodEvaluation]
    /// Pairwise Spearman ρ between the methods' maps, in `methods` order.
    public var agreement: [[Double]]
    public var seconds: Double
}

/// Runs `voxplain evaluate`: per scan, explain, then faithfulness, localisation, plausibility and
/// sanity metrics; writes one JSON per scan (resumable) and the summary tables.
public enum EvaluatePipeline {
    /// - Throws: `VoxplainError`, `NIfTIError`, `CAMError`, `EvalError` naming what is wrong.
    public static func run(model: LoadedModel, items: [EvaluationItem], request: EvaluateRequest) throws -> EvaluationSummary {
        guard !request.methods.isEmpty else { throw VoxplainError("--method: give at least one method") }
        let outDir = URL(fileURLWithPath: request.outputDirectory)
        let scansDir = outDir.appendingPathComponent("scans")
        do {
            try FileManager.default.createDirectory(at: scansDir, withIntermediateDirectories: true)
        } catch {
            throw VoxplainError("\(request.outputDirectory): cannot create the output folder (\(error.localizedDescription))")
        }
        let graph = model.graph
        var scorer = try ModelScorer(graph: graph, memoryBudget: request.memoryBudget, progress: request.progress)
        scorer.incremental = request.incremental
        let layerNames = request.layers.isEmpty ? (model.card.layers?.default.map { [$0] } ?? []) : request.layers
        let layers = try layerNames.map { try graph.value(named: $0) }
        var aggregate = EvaluationAggregate(methods: request.methods)
        let names = Self.uniqueNames(items.map(\.scan))
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        for (n, item) in items.enumerated() {
            request.progress?("scan", n, items.count)
            let file = scansDir.appendingPathComponent(names[n] + ".json")
            let result: ScanEvaluation
            if let done = try? decoder.decode(ScanEvaluation.self, from: Data(contentsOf: file)),
               done.methods.map(\.method) == request.methods {
                result = done  // resumable: this scan was evaluated by an earlier run
            } else {
                result = try evaluate(item, model: model, scorer: scorer, layers: layers, sanity: n < request.sanityScans, request: request)
                try write(result, to: file)
            }
            aggregate.add(result)
        }
        request.progress?("scan", items.count, items.count)
        let summary = aggregate.summary()
        try summary.write(to: outDir)
        return summary
    }

    /// Evaluates one scan; nothing but the small per-method results outlives the call.
    static func evaluate(_ item: EvaluationItem, model: LoadedModel, scorer: ModelScorer, layers: [ValueID], sanity: Bool,
                         request: EvaluateRequest) throws -> ScanEvaluation {
        let clock = ContinuousClock(), start = clock.now
        let scan = try NIfTIFile.read(item.scan, volume: nil)
        var preprocessing = request.preprocessing
        if let c = item.center { preprocessing.centerWorld = c; preprocessing.centerVoxel = nil }
        let input = try model.input(for: scan, scanName: item.scan, request: preprocessing)
        let x = input.tensor
        let logits = try scorer.logits(x)
        let probs = softmaxRow(logits)
        let predicted = logits.indices.max { logits[$0] < logits[$1] } ?? 0
        let label = try item.label.map { try labelIndex($0, model: model, classes: logits.count, scan: item.scan) }
        let spacing = input.modelSpacing(scanSpacing: scan.spacing)
        // Lesions smaller than a model voxel may fall between nearest-neighbour samples: they are listed.
        var lost: [Int] = []
        let mask = try item.mask.map { path -> Tensor in
            let volume = try NIfTIFile.read(path, volume: nil)
            let onGrid = try input.labelsOnModelGrid(volume, name: path)
            let labels = { (v: [Float]) in Set(v.filter { $0 > 0 }.map { Int($0.rounded()) }) }
            lost = labels(volume.voxels).subtracting(labels(onGrid.scalars)).sorted()
            return onGrid
        }
        let body = try item.body.map { path -> Tensor in
            try input.labelsOnModelGrid(try NIfTIFile.read(path, volume: nil), name: path)
        }
        let explainStart = clock.now
        var cam = request.cam
        cam.memoryBudget = request.memoryBudget
        cam.progress = request.progress
        let explanations = try CAMExplainer(graph: model.graph).explain(x, methods: request.methods, layers: layers,
                                                                         classIndex: predicted, options: cam)
        let explainSeconds = seconds(clock.now - explainStart) / Double(request.methods.count)
        var rp = RegionPerturbationOptions()
        rp.steps = request.steps
        rp.perturbation = request.perturbation
        rp.target = request.target
        rp.classIndex = predicted
        if let mm = request.regionEdgeMM {
            rp.regionEdge = RegionGrid.edge(mm: mm, spacing: spacing)
        } else {
            rp.regionEdge = Size3(request.regionEdge ?? max(1, x.shape[2...].min()! / 8))
        }
        var di = DeletionInsertionOptions()
        di.steps = request.deletionSteps
        di.baseline = request.baseline
        di.classIndex = predicted
        var loc = request.localization
        loc.spacing = spacing
        var sanityResults: [SanityResult]? = nil
        if sanity {
            var s = request.sanity
            s.classIndex = predicted
            s.layers = layers
            s.cam = cam
            sanityResults = try cascadingRandomization(graph: model.graph, input: x, methods: request.methods, options: s)
        }
        var methods: [MethodEvaluation] = []
        for (m, e) in explanations.enumerated() {
            let hasLesion = mask.map { $0.scalars.contains { $0 > 0 } } ?? false
            methods.append(MethodEvaluation(
                method: e.method,
                regionPerturbation: try scorer.regionPerturbation(x, map: e.map, options: rp),
                deletionInsertion: try scorer.deletionInsertion(x, map: e.map, options: di),
                localization: hasLesion ? try localize(e.map, mask: mask!, options: loc) : nil,
                plausibility: try body.map { try plausibility(e.map, region: $0, threshold: request.plausibilityThreshold) },
                sanity: sanityResults?[m], explainSeconds: explainSeconds))
        }
        let agreement = try VoxelEval.agreement(explanations.map(\.map)).spearman
        return ScanEvaluation(scan: item.scan, mask: item.mask, lostLabels: lost, label: label, predicted: predicted, probability: probs[predicted],
                              correct: label.map { $0 == predicted }, explainedClass: predicted, methods: methods,
                              agreement: agreement, seconds: seconds(clock.now - start))
    }

    /// A label given as a class index or a model-card class name.
    static func labelIndex(_ text: String, model: LoadedModel, classes: Int, scan: String) throws -> Int {
        if let i = Int(text) {
            guard i >= 0 && i < classes else { throw VoxplainError("\(scan): label \(i) is out of range: the model has \(classes) classes") }
            return i
        }
        let names = model.classNames(count: classes)
        guard let i = names.firstIndex(where: { $0.caseInsensitiveCompare(text) == .orderedSame }) else {
            throw VoxplainError("\(scan): label '\(text)' is not a class of the model (\(names.joined(separator: ", ")))")
        }
        return i
    }

    /// File stems for the per-scan outputs, unique even when two scans share a name.
    static func uniqueNames(_ paths: [String]) -> [String] {
        var seen: [String: Int] = [:]
        return paths.map { p in
            var stem = URL(fileURLWithPath: p).lastPathComponent
            for ext in [".nii.gz", ".nii"] where stem.hasSuffix(ext) { stem = String(stem.dropLast(ext.count)) }
            seen[stem, default: 0] += 1
            return seen[stem]! == 1 ? stem : "\(stem)-\(seen[stem]!)"
        }
    }

    static func write<T: Encodable>(_ value: T, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            try AtomicFile.write(try encoder.encode(value), to: url)
        } catch let f as AtomicFile.Failure {
            throw VoxplainError("\(url.path): \(f.reason)")
        }
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
}

import ArgumentParser
import Foundation
import Voxplain

extension PerturbationKind: ExpressibleByArgument {}
extension ScoreTarget: ExpressibleByArgument {}

/// `voxplain evaluate MODEL --data LIST --method M`: faithfulness, localisation and sanity of methods.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Measure how faithful and how well-localised each method's explanations are over a list of scans.",
        discussion: """
            LIST is a CSV with header scan,mask,label (mask, label and an extra body column are optional; \
            paths are relative to the CSV's folder). Per scan: AOPC of MoRF and LeRF region perturbation \
            (Samek et al. 2017), deletion and insertion AUC (Petsiuk et al. 2018), pointing game, energy \
            inside and lesion hits against the mask, plausibility against the body mask, and (first \
            --sanity-scans scans) the cascading randomisation check (Adebayo et al. 2018). Writes \
            DIR/scans/<scan>.json (a scan whose file exists is skipped), DIR/summary.{csv,json,md} with \
            correctly and wrongly classified scans apart, and DIR/curves.csv (mean MoRF and LeRF curves). \
            Prints the Markdown table. See docs/evaluation.md.
            """)

    @Argument(help: "The model (.onnx or .voxplain.json).")
    var model: String

    @Option(help: ArgumentHelp("The data list (CSV: scan,mask,label).", valueName: "list.csv"))
    var data: String

    @Option(help: ArgumentHelp("Methods, comma-separated, or all.", valueName: "m[,m...]"))
    var method: String = "gradcam"

    @Option(help: "Target layer (ONNX node or value name, or PyTorch module path); repeatable.")
    var layer: [String] = []

    @Option(help: "Output folder (created if missing).")
    var out: String = "evaluation"

    @Option(help: "Region perturbation steps L (regions perturbed one after another).")
    var steps: Int = 100

    @Option(help: ArgumentHelp("Region edge in voxels, or in mm as 8mm (default: an eighth of the smallest input edge).", valueName: "edge"))
    var region: String?

    @Option(help: "How perturbed regions change.")
    var perturbation: PerturbationKind = .noise

    @Option(name: .customLong("noise-sigma"), help: "Standard deviation of the noise perturbation, in model-input units.")
    var noiseSigma: Float = 0.1

    @Option(help: "What the curves follow: the class probability or the logit.")
    var target: ScoreTarget = .probability

    @Option(name: .customLong("deletion-steps"), help: "Deletion/insertion steps.")
    var deletionSteps: Int = 100

    @Option(help: "Distance in mm within which a map's peak counts as pointing at a lesion.")
    var tolerance: Double = 0

    @Flag(name: .customLong("truth-masks"), help: "Every scan must have a lesion mask in the list's mask column (an error names the rows without one); without this flag, masks are used where given.")
    var truthMasks = false

    @Option(name: .customLong("sanity-scans"), help: "Run the randomisation check on this many first scans (0: none).")
    var sanityScans: Int = 1

    @Option(help: "Seed of the noise and of the random weights.")
    var seed: UInt64 = 0

    @Flag(name: .customLong("whole-passes"), help: "Score perturbation curves with batched whole forward passes instead of incrementally (the same scores; for checking, and slower).")
    var wholePasses = false

    @Option(name: .customLong("memory-budget"), help: ArgumentHelp("Peak memory for batched passes, as 512M or 2G.", valueName: "size"))
    var memoryBudget: String = "1G"

    @OptionGroup var preprocessing: PreprocessingOptions

    func run() throws {
        Memory.reuseLargeAllocations()  // batched passes free and reallocate large tensors: keep them in the heap
        try reportingErrors {
            guard steps > 0, deletionSteps > 0 else { throw VoxplainError("--steps and --deletion-steps must be positive") }
            guard sanityScans >= 0 else { throw VoxplainError("--sanity-scans must be 0 or more, got \(sanityScans)") }
            guard tolerance >= 0, tolerance.isFinite else { throw VoxplainError("--tolerance must be a distance in mm, got \(tolerance)") }
            var request = EvaluateRequest(methods: try CAMMethod.parseList(method), outputDirectory: out)
            request.layers = layer
            request.steps = steps
            request.deletionSteps = deletionSteps
            if let region {
                let mm = region.lowercased().hasSuffix("mm")
                let text = mm ? String(region.dropLast(2)) : region
                guard let v = Double(text.trimmingCharacters(in: .whitespaces)), v > 0, v.isFinite, mm || v == v.rounded() else {
                    throw VoxplainError("--region \(region): expected a whole number of voxels (8) or a length in mm (8mm)")
                }
                if mm { request.regionEdgeMM = v } else { request.regionEdge = Int(v) }
            }
            request.perturbation = Perturbation(perturbation)
            request.perturbation.noiseSigma = noiseSigma
            request.perturbation.seed = seed
            request.sanity.seed = seed
            request.target = target
            request.localization.toleranceMM = tolerance
            request.sanityScans = sanityScans
            request.memoryBudget = try parseByteSize(memoryBudget, option: "--memory-budget")
            request.incremental = !wholePasses
            request.preprocessing = try preprocessing.request()
            if let passes = Progress.reporter() {
                request.progress = { what, done, total in
                    if what == "scan" {
                        FileHandle.standardError.write(Data("\rscan \(min(done + 1, total))/\(total)\(done == total ? " done\n" : "")".utf8))
                    } else {
                        passes(what, done, total)
                    }
                }
            }
            let items = try EvaluationItem.readList(data)
            if truthMasks {
                let missing = items.enumerated().filter { $0.element.mask == nil }.map { $0.offset + 2 }
                guard missing.isEmpty else {
                    let lines = missing.prefix(5).map(String.init).joined(separator: ", ") + (missing.count > 5 ? ", ..." : "")
                    throw VoxplainError("\(data): --truth-masks needs a mask on every row; \(missing.count) row(s) have none (lines \(lines))")
                }
            }
            let m = try preprocessing.loadModel(model, request: request.preprocessing)
            let summary = try EvaluatePipeline.run(model: m, items: items, request: request)
            print(summary.markdown, terminator: "")
        }
    }
}

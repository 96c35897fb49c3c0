import ArgumentParser
import Foundation
import Voxplain
import VoxelCAM

/// `voxplain explain MODEL SCAN --method M --out DIR`: heatmaps on the scan's grid and a report.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain a model's class score on a scan with CAM methods; write heatmaps and report.json.",
        discussion: """
            Methods: \(CAMMethod.allCases.map(\.rawValue).joined(separator: ", ")), or all.
            Writes DIR/<method>.nii.gz (min-max normalised, on the scan's grid with its affine; \
            --raw adds DIR/<method>-raw.nii.gz), DIR/hrcam-level<N>.nii.gz for HR-CAM, DIR/<method>.png \
            (axial montage through the heat peaks), DIR/comparison.png (every method on shared slices), \
            DIR/<method>-lesions.csv (hot regions, matched to --truth), and DIR/report.json.
            """)

    @Argument(help: "The model (.onnx or .voxplain.json).")
    var model: String

    @Argument(help: "The scan (.nii or .nii.gz).")
    var scan: String

    @Option(help: ArgumentHelp("Methods, comma-separated, or all.", valueName: "m[,m...]"))
    var method: String = "gradcam"

    @Option(help: "Target layer (ONNX node or value name, or PyTorch module path); repeatable.")
    var layer: [String] = []

    @Option(name: .customLong("class"), help: "Class index or name (default: the predicted class).")
    var classSpec: String?

    @Option(help: "Output folder (created if missing).")
    var out: String

    @Flag(help: "Also write the raw (unnormalised) maps.")
    var raw = false

    @Option(name: .customLong("memory-budget"), help: ArgumentHelp("Peak memory for batched passes, as 512M or 2G.", valueName: "size"))
    var memoryBudget: String = "2G"

    @Option(help: "Score-CAM: score only the k channels of highest variance (Faster Score-CAM).")
    var topk: Int?

    @Option(help: ArgumentHelp("Candidates CSV (coordX,coordY,coordZ world mm, as LUNA16; or i,j,k voxels): one patch per point, maps combined by the maximum.", valueName: "csv"))
    var candidates: String?

    @Option(help: "With --candidates: keep only the rows of this seriesuid.")
    var series: String?

    @Option(help: "A label mask of the true lesions (scan grid): outlined in montages, matched in lesion tables.")
    var truth: String?

    @Option(name: .customLong("lesion-threshold"), help: "Heat threshold of the lesion tables.")
    var lesionThreshold: Float = 0.5

    @Flag(name: .customLong("no-montage"), help: "Write no PNG montages.")
    var noMontage = false

    @Option(help: "For a model with several outputs: the output to use, by its ONNX name (default: the first).")
    var output: String?

    @OptionGroup var preprocessing: PreprocessingOptions

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        Memory.reuseLargeAllocations()  // batched passes free and reallocate large tensors: keep them in the heap
        try reportingErrors {
            var request = ExplainRequest(methods: try CAMMethod.parseList(method), outputDirectory: out)
            request.layers = layer
            request.classSpec = classSpec
            request.raw = raw
            request.preprocessing = try preprocessing.request()
            request.cam.memoryBudget = try parseByteSize(memoryBudget, option: "--memory-budget")
            request.cam.scoreCAMTopK = topk
            request.cam.progress = Progress.reporter()
            if let candidates { request.candidates = try Candidate.read(candidates, series: series) }
            request.truthPath = truth
            request.output = output
            request.lesionThreshold = lesionThreshold
            if noMontage { request.montage = nil }
            let m = try preprocessing.loadModel(model, request: request.preprocessing)
            let report = try ExplainPipeline.run(model: m, scanPath: scan, volume: preprocessing.volume, request: request)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(report), as: UTF8.self))
            } else {
                print("class \(report.explainedClass) (\(report.explainedClassName)), probability \(String(format: "%.3f", report.explainedProbability))")
                for r in report.results {
                    print("\(r.method.padding(toLength: 10, withPad: " ", startingAt: 0)) \(String(format: "%6.2f", r.seconds)) s  \(r.forwardPasses) passes  peak at voxel \(r.stats.peakVoxel)  \(r.map)")
                }
            }
        }
    }
}

extension CAMMethod {
    /// Methods from `a,b,c` or `all`.
    static func parseList(_ text: String) throws -> [CAMMethod] {
        if text == "all" { return CAMMethod.allCases }
        return try text.split(separator: ",").map { name in
            guard let m = CAMMethod(rawValue: name.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw VoxplainError("--method \(name): unknown method; choose from \(CAMMethod.allCases.map(\.rawValue).joined(separator: ", ")) or all")
            }
            return m
        }
    }
}

/// Bytes from `512M`, `2G` or a plain number.
func parseByteSize(_ text: String, option: String) throws -> Int {
    let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
    var digits = text.uppercased()
    var scale = 1
    if let last = digits.last, let u = units[last] { scale = u; digits.removeLast() }
    guard let v = Double(digits), v > 0, v.isFinite, v * Double(scale) < 1e15 else {
        throw VoxplainError("\(option) \(text): expected a size such as 512M or 2G")
    }
    return Int(v * Double(scale))
}

/// Progress lines on stderr, only when stderr is a terminal.
enum Progress {
    static func reporter() -> (@Sendable (String, Int, Int) -> Void)? {
        guard isatty(2) != 0 else { return nil }
        return { what, done, total in
            FileHandle.standardError.write(Data("\r\(what): \(done)/\(total) forward passes\(done == total ? "\n" : "")".utf8))
        }
    }
}

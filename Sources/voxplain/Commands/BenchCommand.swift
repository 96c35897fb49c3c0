import ArgumentParser
import Foundation
import Voxplain

/// `voxplain bench`: engine throughput as GFLOP/s and % of this machine's measured FMA peak.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure peak FMA throughput and conv3d forward/backward GFLOP/s on standard layers.",
        discussion: """
            With --model, time whole models instead: the fused forward pass, Grad-CAM, Grad-CAM++ and \
            HR-CAM at the default layer; --scorecam adds Score-CAM and its peak memory, --aopc \
            perturbation curves against single forward passes, --profile every node of the forward \
            pass. JSON {"models": [...]}. Scripts/bench_models_vs_pytorch.py runs it beside PyTorch \
            and MONAI.
            """)

    @Option(help: "Time this model (.onnx or .voxplain.json) and explanations on it; repeatable.")
    var model: [String] = []

    @Option(help: ArgumentHelp("With --model: input size for models with symbolic sizes.", valueName: "d,h,w"))
    var size: String?

    @Option(help: "With --model: repetitions (best time is kept).")
    var reps: Int = 3

    @Flag(help: "With --model: also time Score-CAM at the default layer.")
    var scorecam = false

    @Flag(help: "With --model: also time every node of the forward pass (the 25 slowest are printed).")
    var profile = false

    @Flag(help: "With --model: also time AOPC (MoRF and LeRF, 100 steps each), incremental and batched, against single forward passes.")
    var aopc = false

    @Flag(help: "Print machine-readable JSON instead of a table.")
    var json = false

    @Flag(help: "Fewer repetitions (noisier, faster).")
    var quick = false

    @Flag(help: "Skip the peak-FMA measurement (for profiling the kernels; percentages become 0).")
    var skipPeak = false

    @Option(help: "Only the layer with exactly this label, or else layers whose label contains it (e.g. '64->64').")
    var only: String?

    @Option(help: "Comma-separated passes: forward, backwardInput, backwardWeight.")
    var passes: String = "forward,backwardInput,backwardWeight"

    func run() throws {
        if !model.isEmpty { return try runModels() }
        try reportingErrors { try runLayers() }
    }

    func runLayers() throws {
        var layers = BenchLayer.standard
        if let only {
            let exact = layers.filter { $0.label == only }
            layers = exact.isEmpty ? layers.filter { $0.label.contains(only) } : exact
            if layers.isEmpty { throw VoxplainError("--only \(only): no benchmark layer matches") }
        }
        let passSet = Set(passes.split(separator: ",").map { String($0) })
        let known: Set<String> = ["forward", "backwardInput", "backwardWeight"]
        guard !passSet.isEmpty, passSet.isSubset(of: known) else {
            throw VoxplainError("--passes \(passes): unknown pass; choose from forward, backwardInput, backwardWeight")
        }
        let progress = isatty(2) != 0
        let report = try Bench.run(quick: quick, measurePeak: !skipPeak, layers: layers, passes: passSet) { line in
            if progress { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
            return
        }
        print(String(format: "kernels: %@; peak FMA: %.1f GFLOP/s one core, %.1f GFLOP/s on %d cores (AVX2 loop: %.1f)",
                     report.isa, report.peakOneCoreGFLOPS, report.peakAllCoresGFLOPS, report.threads,
                     report.peakAVX2AllCoresGFLOPS))
        print("layer".padding(toLength: 24, withPad: " ", startingAt: 0) + " pass            time ms   GFLOP/s  % peak  algorithm")
        for r in report.results {
            print(r.layer.padding(toLength: 24, withPad: " ", startingAt: 0) + " "
                  + r.pass.padding(toLength: 15, withPad: " ", startingAt: 0)
                  + String(format: " %9.2f %9.1f %7.1f  ", r.milliseconds, r.gflops, r.percentOfPeak) + r.algorithm)
        }
        if report.results.contains(where: { $0.algorithm == "winograd" }) {
            print("GFLOP/s count the direct convolution's 2 x MACs; Winograd layers need fewer products, so they can exceed the peak.")
        }
        print(String(format: "peak memory: %.0f MiB", report.peakMemoryMiB))
    }

    func runModels() throws {
        try reportingErrors {
            guard reps >= 1 else { throw VoxplainError("--reps \(reps): must be at least 1") }
            let inputSize = try size.map { try parseNumbers($0, count: 3, option: "--size").map { Int($0) } }
            let results = try model.map { try Bench.model($0, size: inputSize, reps: reps, scoreCAM: scorecam, profile: profile, aopc: aopc) }
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(["models": results]), as: UTF8.self))
                return
            }
            for r in results {
                print(String(format: "%@ %@: %.2f GFLOP, forward %.1f ms (%.1f GFLOP/s), Grad-CAM %.1f ms, Grad-CAM++ %.1f ms, HR-CAM %.1f ms",
                             r.model, "\(r.inputShape)", r.gflop, r.forwardMs, r.forwardGFLOPS, r.gradcamMs, r.gradcamppMs, r.hrcamMs))
                if let s = r.scorecamMs, let n = r.scorecamPasses {
                    print(String(format: "  Score-CAM on %@ (%d channels): %.1f ms, %d forward passes", r.layer, r.layerChannels, s, n)
                          + (r.scorecamPeakMiB.map { String(format: ", peak resident %.0f MiB (budget %.0f MiB)", $0, r.memoryBudgetMiB ?? 0) } ?? ""))
                }
                print(String(format: "  peak memory %.0f MiB", r.peakMemoryMiB))
                if let a = r.aopcMs, let b = r.aopcBatchedMs, let n = r.aopcPasses,
                   let ra = r.aopcPerCurveOver100Forward, let rb = r.aopcBatchedPerCurveOver100Forward {
                    print(String(format: "  AOPC, MoRF + LeRF of 100 steps (%d passes): incremental %.0f ms (one curve = %.2f x 100 forward passes), batched whole passes %.0f ms (%.2f x)",
                                 n, a, ra, b, rb))
                }
                if let nodes = r.nodes { printProfile(nodes, forwardMs: r.forwardMs) }
            }
        }
    }

    /// The slowest nodes, then the time per operator kind.
    func printProfile(_ nodes: [NodeTiming], forwardMs: Double) {
        let total = nodes.reduce(0) { $0 + $1.milliseconds }
        print(String(format: "  nodes: %.1f ms in all (forward %.1f ms)", total, forwardMs))
        print("  " + "node".padding(toLength: 44, withPad: " ", startingAt: 0) + " "
              + "op".padding(toLength: 12, withPad: " ", startingAt: 0) + " output shape           ms  GFLOP/s  share")
        for n in nodes.sorted(by: { $0.milliseconds > $1.milliseconds }).prefix(25) {
            print("  " + String(n.name.suffix(44)).padding(toLength: 44, withPad: " ", startingAt: 0) + " "
                  + n.op.padding(toLength: 12, withPad: " ", startingAt: 0) + " "
                  + "\(n.outputShape)".padding(toLength: 20, withPad: " ", startingAt: 0)
                  + String(format: " %7.2f %8.1f %5.1f%%", n.milliseconds, n.gflops, 100 * n.milliseconds / max(total, 1e-9)))
        }
        var byOp: [String: Double] = [:]
        for n in nodes { byOp[n.op, default: 0] += n.milliseconds }
        print("  by operator: " + byOp.sorted { $0.value > $1.value }
            .map { String(format: "%@ %.1f ms (%.0f%%)", $0.key, $0.value, 100 * $0.value / max(total, 1e-9)) }
            .joined(separator: ", "))
    }
}

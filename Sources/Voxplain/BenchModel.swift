import Foundation
import VoxelCAM
import VoxelEval
import VoxelNN
import VoxelTensor

/// Timings of a whole model and of explanations on it (`voxplain bench --model`).
public struct ModelBenchResult: Codable, Sendable {
    public var model: String
    public var inputShape: [Int]
    /// Multiply-adds x 2 of one forward pass.
    public var gflop: Double
    /// Best forward time (fused graph) and its throughput.
    public var forwardMs: Double
    public var forwardGFLOPS: Double
    /// Best Grad-CAM time at the default layer (one forward and the backward to that layer, plus the map).
    public var gradcamMs: Double
    /// Grad-CAM++ on the same capture.
    public var gradcamppMs: Double
    /// Score-CAM at the default layer, its forward passes, and its batch size within the budget.
    public var scorecamMs: Double?
    public var scorecamPasses: Int?
    /// Peak resident memory of the process during Score-CAM (MiB), with the budget it was given.
    public var scorecamPeakMiB: Double?
    public var memoryBudgetMiB: Double?
    /// With `aopc`: MoRF and LeRF curves of 100 steps each (8^3 regions, Gaussian noise) on a random
    /// map, scored incrementally (the default) and in batches of whole passes; their forward passes.
    public var aopcMs: Double?
    public var aopcBatchedMs: Double?
    public var aopcPasses: Int?
    /// One curve's time over 100 single forward passes (the evaluation issue's target: at most 1).
    public var aopcPerCurveOver100Forward: Double?
    public var aopcBatchedPerCurveOver100Forward: Double?
    /// HR-CAM (every level) time.
    public var hrcamMs: Double
    public var layer: String
    public var layerChannels: Int
    /// Peak resident memory of the process so far (MiB).
    public var peakMemoryMiB: Double
    /// With `profile`: every node of the fused forward graph, in graph order.
    public var nodes: [NodeTiming]?
}

/// One node's share of a forward pass (`voxplain bench --model M --profile`).
public struct NodeTiming: Codable, Sendable {
    public var name: String
    public var op: String
    public var outputShape: [Int]
    /// Best time over the repetitions, and the throughput of convolutions and products (0 for others).
    public var milliseconds: Double
    public var gflops: Double
}

extension Bench {
    /// Times a model file's forward pass and its explanations on a random input.
    /// - Parameters:
    ///   - size: input size `(D, H, W)` for models with symbolic sizes.
    ///   - scoreCAM: also time Score-CAM (many forward passes).
    ///   - profile: also time every node of the forward pass (best of `reps` runs each).
    ///   - aopc: also time MoRF/LeRF perturbation curves (201 forward passes, incremental and batched).
    public static func model(_ path: String, size: [Int]?, reps: Int, scoreCAM: Bool, profile: Bool = false,
                             aopc: Bool = false, memoryBudget: Int = 2 << 30) throws -> ModelBenchResult {
        Memory.reuseLargeAllocations()  // as explain, predict and evaluate run
        let loaded = try LoadedModel.load(path, inputSize: size)
        let graph = loaded.graph
        let fused = try graph.fused()
        let x = Tensor.random(loaded.inputShape, in: -1...1, seed: 7)
        _ = try fused.run(x)  // warm-up: first-touch of buffers and packed weights
        let forward = try bestTime(reps: reps) { _ = try fused.run(x) }
        var nodes: [NodeTiming]?
        if profile {
            var best = [Double](repeating: .infinity, count: fused.nodes.count)
            for _ in 0..<reps { _ = try fused.run(x) { i, t in best[i] = min(best[i], t) } }
            nodes = fused.nodes.indices.map { i in
                let n = fused.nodes[i]
                return NodeTiming(name: n.name, op: n.op.name, outputShape: fused.values[n.output].shape,
                                  milliseconds: best[i] * 1e3, gflops: Double(fused.flops(ofNode: i)) / best[i] / 1e9)
            }
        }
        let explainer = CAMExplainer(graph: graph)
        guard let layer = explainer.defaultLayer else { throw VoxplainError("\(path): the model has no 3D feature map") }
        func time(_ m: CAMMethod, reps: Int) throws -> Double {
            try bestTime(reps: reps) { _ = try explainer.explain(x, methods: [m], layers: [layer], classIndex: 0) }
        }
        let gradcam = try time(.gradcam, reps: reps)
        let gradcampp = try time(.gradcampp, reps: reps)
        let hrcam = try time(.hrcam, reps: max(1, reps / 2))
        var score: Double?, passes: Int?, scorePeak: Double?
        if scoreCAM {
            var options = CAMOptions()
            options.memoryBudget = memoryBudget
            let measured = resetPeakMemory()
            let t0 = ContinuousClock.now
            let e = try explainer.explain(x, methods: [.scorecam], layers: [layer], classIndex: 0, options: options)
            score = seconds(since: t0)
            passes = e[0].forwardPasses
            scorePeak = measured ? residentPeakMiB() : nil
        }
        var aopcTimes: (incremental: Double, batched: Double, passes: Int)?
        if aopc {
            let map = Tensor.random(Array(x.shape[2...]), in: 0...1, seed: 8)
            var o = RegionPerturbationOptions()
            o.steps = 100
            o.regionEdge = 8
            o.classIndex = 0
            var scorer = try ModelScorer(graph: graph)
            var passes = 0
            let t0 = ContinuousClock.now
            passes = try scorer.regionPerturbation(x, map: map, options: o).forwardPasses
            let incremental = seconds(since: t0)
            scorer.incremental = false
            let t1 = ContinuousClock.now
            _ = try scorer.regionPerturbation(x, map: map, options: o)
            aopcTimes = (incremental, seconds(since: t1), passes)
        }
        let gflop = Double(graph.flops) / 1e9
        var result = ModelBenchResult(
            model: URL(fileURLWithPath: path).lastPathComponent, inputShape: loaded.inputShape, gflop: gflop,
            forwardMs: forward * 1e3, forwardGFLOPS: gflop / forward, gradcamMs: gradcam * 1e3,
            gradcamppMs: gradcampp * 1e3, scorecamMs: score.map { $0 * 1e3 }, scorecamPasses: passes,
            scorecamPeakMiB: scorePeak, memoryBudgetMiB: scoreCAM ? Double(memoryBudget) / 1048576 : nil,
            hrcamMs: hrcam * 1e3, layer: graph.values[layer].name, layerChannels: graph.values[layer].shape[1],
            peakMemoryMiB: peakMemoryMiB(), nodes: nodes)
        if let a = aopcTimes {
            result.aopcMs = a.incremental * 1e3
            result.aopcBatchedMs = a.batched * 1e3
            result.aopcPasses = a.passes
            result.aopcPerCurveOver100Forward = a.incremental / 2 / (100 * forward)
            result.aopcBatchedPerCurveOver100Forward = a.batched / 2 / (100 * forward)
        }
        return result
    }
}

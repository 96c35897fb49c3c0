import Foundation
import Testing
import VoxelCAM
import VoxelEval
import VoxelNN
import VoxelTensor
import _TestSupport

/// The cost of AOPC against single forward passes (the issue's target: 100 steps cost at most 100
/// forward passes thanks to batching). Runs only with `VOXPLAIN_AOPC_BENCH=path/to/model.onnx`, e.g.
/// Scripts/models3d.py's VGG3D exported at 64^3 (not committed: 3.5 MB).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["VOXPLAIN_AOPC_BENCH"] != nil))
struct AOPCBenchmarkTests {
    static func seconds(_ body: () throws -> Void) rethrows -> Double { try measure(body).wall }

    /// Wall and CPU (user + system, all threads) seconds: on a shared machine CPU time is the steadier.
    static func measure(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
        func cpu() -> Double {
            var u = rusage()
            getrusage(RUSAGE_SELF.rawValue, &u)
            return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
        }
        let start = DispatchTime.now().uptimeNanoseconds, c0 = cpu()
        try body()
        return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, cpu() - c0)
    }

    @Test func aopcCostAgainstSingleForwardPasses() throws {
        let path = ProcessInfo.processInfo.environment["VOXPLAIN_AOPC_BENCH"]!
        let graph = try Graph(onnx: try ONNXModel(contentsOf: URL(fileURLWithPath: path)))
        let shape = graph.values[graph.input].shape
        let x = Tensor.random(shape, seed: 1)
        let map = Tensor.random(Array(shape[2...]), in: 0...1, seed: 2)
        let budget = Int(ProcessInfo.processInfo.environment["VOXPLAIN_AOPC_BUDGET"] ?? "") ?? (1 << 30)
        let scorer = try ModelScorer(graph: graph, memoryBudget: budget)
        _ = try scorer.logits(x)  // warm up
        var single = Double.infinity, singleCPU = Double.infinity
        for _ in 0..<5 {
            let m = try Self.measure { _ = try scorer.logits(x) }
            single = min(single, m.wall); singleCPU = min(singleCPU, m.cpu)
        }
        var o = RegionPerturbationOptions()
        o.steps = 100
        o.regionEdge = 8
        var curves: PerturbationCurves?
        let m = try Self.measure { curves = try scorer.regionPerturbation(x, map: map, options: o) }
        let t = m.wall
        let passes = curves!.forwardPasses
        print("AOPC bench CPU time: one forward \(String(format: "%.3f", singleCPU)) s; MoRF+LeRF \(String(format: "%.2f", m.cpu)) s = \(String(format: "%.3f", m.cpu / (Double(passes) * singleCPU))) of \(passes) single passes; per curve (101 passes) \(String(format: "%.2f", m.cpu / 2 / (100 * singleCPU))) x 100 single passes")
        print("AOPC bench \(shape): batch \(scorer.batchSize) (budget \(budget >> 20) MiB, \(scorer.graph.peakActivationBytes >> 20) MiB per sample); one forward \(String(format: "%.3f", single)) s; MoRF+LeRF with L=100 (\(passes) passes) \(String(format: "%.2f", t)) s = \(String(format: "%.2f", t / (100 * single))) x 100 single passes, \(String(format: "%.3f", t / (Double(passes) * single))) of \(passes) single passes")
        #expect(passes == 201)
        _ = t
    }
}

extension AOPCBenchmarkTests {
    @Test(arguments: [1, 4, 8, 31, 1])
    func forwardCostPerSampleByBatch(_ batch: Int) throws {
        let path = ProcessInfo.processInfo.environment["VOXPLAIN_AOPC_BENCH"]!
        let graph = try Graph(onnx: try ONNXModel(contentsOf: URL(fileURLWithPath: path))).fused()
        let shape = graph.values[graph.input].shape
        let x = Tensor.random([batch] + shape.dropFirst(), seed: 1)
        _ = try graph.run(x)
        var best = Double.infinity
        for _ in 0..<3 { best = min(best, try Self.seconds { _ = try graph.run(x) }) }
        print("forward batch \(batch): \(String(format: "%.4f", best / Double(batch))) s per sample")
    }
}

extension AOPCBenchmarkTests {
    @Test func roadCost() throws {
        let path = ProcessInfo.processInfo.environment["VOXPLAIN_AOPC_BENCH"]!
        let graph = try Graph(onnx: try ONNXModel(contentsOf: URL(fileURLWithPath: path)))
        let shape = graph.values[graph.input].shape
        let x = Tensor.random(shape, seed: 1)
        let map = Tensor.random(Array(shape[2...]), in: 0...1, seed: 2)
        let scorer = try ModelScorer(graph: graph)
        var o = RegionPerturbationOptions()
        o.steps = 100
        o.regionEdge = 8
        o.perturbation = Perturbation(.constant)
        let constant = try Self.measure { _ = try scorer.regionPerturbation(x, map: map, options: o) }
        o.perturbation = Perturbation(.road)
        let road = try Self.measure { _ = try scorer.regionPerturbation(x, map: map, options: o) }
        print("ROAD bench: constant \(String(format: "%.2f", constant.wall)) s, ROAD \(String(format: "%.2f", road.wall)) s wall")
    }
}

extension AOPCBenchmarkTests {
    /// The same 100-step MoRF+LeRF run unbatched (one pass per input) and batched, alternated so both
    /// see the same machine load.
    @Test func batchedAgainstUnbatched() throws {
        let path = ProcessInfo.processInfo.environment["VOXPLAIN_AOPC_BENCH"]!
        let graph = try Graph(onnx: try ONNXModel(contentsOf: URL(fileURLWithPath: path)))
        let shape = graph.values[graph.input].shape
        let x = Tensor.random(shape, seed: 1)
        let map = Tensor.random(Array(shape[2...]), in: 0...1, seed: 2)
        var single = try ModelScorer(graph: graph)
        single.maxBatch = 1
        var batched = try ModelScorer(graph: graph)
        if let m = Int(ProcessInfo.processInfo.environment["VOXPLAIN_AOPC_MAXBATCH"] ?? "") { batched.maxBatch = m }
        var o = RegionPerturbationOptions()
        o.steps = 100
        o.regionEdge = 8
        var a: PerturbationCurves?, b: PerturbationCurves?
        func faults() -> (Int, Double) {
            var u = rusage()
            getrusage(RUSAGE_SELF.rawValue, &u)
            return (u.ru_minflt, Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) * 1e-6)
        }
        for round in 0..<2 {
            let f0 = faults()
            _ = try single.regionPerturbation(x, map: map, options: o)
            let f1 = faults()
            _ = try batched.regionPerturbation(x, map: map, options: o)
            let f2 = faults()
            print("page faults: unbatched \(f1.0 - f0.0) (\(String(format: "%.2f", f1.1 - f0.1)) s system), batched \(f2.0 - f1.0) (\(String(format: "%.2f", f2.1 - f1.1)) s system)")
            let s = try Self.measure { a = try single.regionPerturbation(x, map: map, options: o) }
            let t = try Self.measure { b = try batched.regionPerturbation(x, map: map, options: o) }
            print("AOPC round \(round): unbatched (201 single passes) \(String(format: "%.2f", s.wall)) s wall \(String(format: "%.2f", s.cpu)) s CPU; batched (batch \(batched.batchSize)) \(String(format: "%.2f", t.wall)) s wall \(String(format: "%.2f", t.cpu)) s CPU; ratio \(String(format: "%.3f", t.wall / s.wall)) wall \(String(format: "%.3f", t.cpu / s.cpu)) CPU; one 100-step curve (101 passes) = \(String(format: "%.3f", t.wall / s.wall * 1.01)) x 100 single passes (wall)")
        }
        #expect(maxAbsDifference(a!.morf, b!.morf) < 1e-5)
    }
}

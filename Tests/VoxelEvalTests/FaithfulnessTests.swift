import Foundation
import Testing
import VoxelEval
import VoxelNN
import VoxelTensor
import _TestSupport

/// Region perturbation, AOPC, deletion and insertion on cases computed by hand.
struct FaithfulnessTests {
    /// 4^3 input split into eight 2^3 regions; region r (z-major order) holds the value r + 1, and the
    /// map equals the input, so MoRF removes 8, 7, ... and LeRF 1, 2, ...
    static func regionCase() throws -> (Tensor, Tensor) {
        let grid = try RegionGrid(shape: [4, 4, 4], edge: 2)
        var v = [Float](repeating: 0, count: 64)
        for r in 0..<8 { for i in grid.voxels(r) { v[i] = Float(r + 1) } }
        return try volume(v, [4, 4, 4])
    }

    @Test func aopcByHandWithTheLogit() throws {
        // f = mean(x) = 288/64 = 4.5. Zeroing the top-k regions removes 8·S_k, S_k = 8, 15, 21, 26, 30,
        // 33, 35, 36 (MoRF) and 1, 3, 6, 10, 15, 21, 28, 36 (LeRF), so
        // AOPC_MoRF = (1/9) Σ 8·S_k/64 = 204/72 = 2.8333..., AOPC_LeRF = 120/72 = 1.6666...
        let (x, map) = try Self.regionCase()
        let scorer = try ModelScorer(graph: try meanModel(), memoryBudget: 1 << 20)
        var o = RegionPerturbationOptions()
        o.regionEdge = 2
        o.perturbation = Perturbation(.constant)
        o.target = .logit
        o.classIndex = 0
        let c = try scorer.regionPerturbation(x, map: map, options: o)
        #expect(c.steps == 8 && c.regionCount == 8 && c.forwardPasses == 17)
        let morf: [Float] = [288, 224, 168, 120, 80, 48, 24, 8, 0].map { $0 / 64 }
        let lerf: [Float] = [288, 280, 264, 240, 208, 168, 120, 64, 0].map { $0 / 64 }
        // Float32 sums of at most 64 small integers over 64: exact to a few ulps.
        #expect(maxAbsDifference(c.morf, morf) < 1e-5 && maxAbsDifference(c.lerf, lerf) < 1e-5)
        #expect(abs(c.aopcMoRF - 204.0 / 72) < 1e-5 && abs(c.aopcLeRF - 120.0 / 72) < 1e-5)
        #expect(abs(c.aopcDifference - 84.0 / 72) < 1e-5)
    }

    @Test func probabilityTargetIsTheSoftmax() throws {
        // logits [m, 0]: p = 1 / (1 + e^-m). Three steps only.
        let (x, map) = try Self.regionCase()
        let scorer = try ModelScorer(graph: try meanModel(weight: 0.5), memoryBudget: 1 << 20)
        var o = RegionPerturbationOptions()
        o.regionEdge = 2
        o.steps = 3
        o.perturbation = Perturbation(.constant)
        let c = try scorer.regionPerturbation(x, map: map, options: o)
        #expect(c.classIndex == 0 && c.morf.count == 4)
        let expected = [288, 224, 168, 120].map { Float(1 / (1 + exp(-0.5 * Double($0) / 64))) }
        #expect(maxAbsDifference(c.morf, expected) < 1e-6)
        #expect(abs(c.aopcMoRF - (0..<3).map { Double(expected[0] - expected[$0 + 1]) }.reduce(0, +) / 4) < 1e-6)
    }

    /// Six steps of seeded Gaussian noise.
    static var seededNoise: RegionPerturbationOptions {
        var o = RegionPerturbationOptions()
        o.steps = 6
        o.perturbation = Perturbation(.noise)
        o.perturbation.seed = 9
        return o
    }

    @Test(arguments: [1 << 10, 1 << 14, 1 << 30])
    func batchSizeDoesNotChangeResults(_ budget: Int) throws {
        let f = try EvalFixture.data()
        let reference = try ModelScorer(graph: f.graph, memoryBudget: 1)
        var scorer = try ModelScorer(graph: f.graph, memoryBudget: budget)
        scorer.incremental = false
        let o = Self.seededNoise
        let a = try reference.regionPerturbation(f.input, map: f.map, options: o)
        let b = try scorer.regionPerturbation(f.input, map: f.map, options: o)
        #expect(reference.batchSize == 1)
        // Batched convolution sums in the same order per sample, so results agree to rounding.
        #expect(maxAbsDifference(a.morf, b.morf) < 1e-6 && maxAbsDifference(a.lerf, b.lerf) < 1e-6)
    }

    /// Incremental scoring (the default within the memory budget) and whole passes give the same bits.
    @Test func incrementalScoringEqualsWholePasses() throws {
        let f = try EvalFixture.data()
        var whole = try ModelScorer(graph: f.graph, memoryBudget: 1 << 30)
        whole.incremental = false
        let incremental = try ModelScorer(graph: f.graph, memoryBudget: 1 << 30)
        let o = Self.seededNoise
        let a = try whole.regionPerturbation(f.input, map: f.map, options: o)
        let b = try incremental.regionPerturbation(f.input, map: f.map, options: o)
        #expect(a.morf == b.morf && a.lerf == b.lerf)
        let d = try whole.deletionInsertion(f.input, map: f.map, options: DeletionInsertionOptions())
        let e = try incremental.deletionInsertion(f.input, map: f.map, options: DeletionInsertionOptions())
        #expect(d.deletion == e.deletion && d.insertion == e.insertion)
    }

    @Test func noiseIsSeededAndAdded() throws {
        let f = try EvalFixture.data()
        let scorer = try ModelScorer(graph: f.graph)
        var o = RegionPerturbationOptions()
        o.steps = 4
        o.perturbation = Perturbation(.noise)
        let a = try scorer.regionPerturbation(f.input, map: f.map, options: o)
        let b = try scorer.regionPerturbation(f.input, map: f.map, options: o)
        o.perturbation.seed = 1
        let c = try scorer.regionPerturbation(f.input, map: f.map, options: o)
        o.perturbation.noiseSigma = 0
        let d = try scorer.regionPerturbation(f.input, map: f.map, options: o)
        #expect(a == b)
        #expect(a.morf != c.morf)
        #expect(d.morf.allSatisfy { $0 == d.morf[0] })  // σ = 0 leaves the input as it is
    }

    @Test func progressReportsEveryPass() throws {
        let (x, map) = try Self.regionCase()
        final class Log: @unchecked Sendable { var last = (0, 0) }
        let log = Log()
        let scorer = try ModelScorer(graph: try meanModel(), memoryBudget: 3 * 4096, progress: { _, done, total in log.last = (done, total) })
        var o = RegionPerturbationOptions()
        o.regionEdge = 2
        _ = try scorer.regionPerturbation(x, map: map, options: o)
        #expect(log.last == (17, 17))
    }

    @Test func deletionAndInsertionOfAUniformInputAreLinear() throws {
        // x ≡ 1 and f = mean(x): deleting c of 64 voxels gives 1 − c/64, inserting gives c/64, both
        // linear in the fraction, so the trapezoid rule is exact: AUC = 0.5 for both, any step count.
        let x = Tensor(shape: [1, 1, 4, 4, 4], repeating: 1)
        let map = Tensor.random([4, 4, 4], seed: 3)
        let scorer = try ModelScorer(graph: try meanModel())
        for steps in [1, 5, 64, 100] {
            var o = DeletionInsertionOptions()
            o.steps = steps
            o.target = .logit
            o.classIndex = 0
            let c = try scorer.deletionInsertion(x, map: map, options: o)
            #expect(abs(c.deletionAUC - 0.5) < 1e-6 && abs(c.insertionAUC - 0.5) < 1e-6, "steps \(steps)")
            #expect(c.fractions.first == 0 && c.fractions.last == 1)
        }
    }

    @Test func deletionOfRankedValues() throws {
        // x = map = 1...64: deletion removes the largest first. f(c) = (2080 − Σ_{i<c} (64 − i)) / 64.
        // With 4 steps (16 voxels each) the points are c = 0, 16, 32, 48, 64.
        let values = (1...64).map { Float($0) }
        let (x, map) = try volume(values, [4, 4, 4])
        let scorer = try ModelScorer(graph: try meanModel())
        var o = DeletionInsertionOptions()
        o.steps = 4
        o.target = .logit
        o.classIndex = 0
        let c = try scorer.deletionInsertion(x, map: map, options: o)
        let del: [Float] = [2080, 2080 - 904, 2080 - 1552, 2080 - 1944, 0].map { $0 / 64 }
        let ins: [Float] = [0, 904, 1552, 1944, 2080].map { $0 / 64 }
        #expect(maxAbsDifference(c.deletion, del) < 1e-4 && maxAbsDifference(c.insertion, ins) < 1e-4)
        let auc = { (y: [Float]) in (0..<4).map { Double(y[$0] + y[$0 + 1]) / 2 * 0.25 }.reduce(0, +) }
        #expect(abs(c.deletionAUC - auc(del)) < 1e-5 && abs(c.insertionAUC - auc(ins)) < 1e-5)
        #expect(c.forwardPasses == 8)
    }

    @Test func badInputsThrowClearErrors() throws {
        let scorer = try ModelScorer(graph: try meanModel())
        let x = Tensor(shape: [1, 1, 4, 4, 4], repeating: 1)
        #expect(throws: EvalError.self) { try scorer.regionPerturbation(x, map: Tensor.zeros([4, 4, 5])) }
        do {
            _ = try scorer.deletionInsertion(x, map: Tensor.zeros([4, 4]))
            Issue.record("expected an error")
        } catch let e as EvalError {
            #expect(e.message.contains("[4, 4]") && e.message.contains("[4, 4, 4]"))
        }
        var o = RegionPerturbationOptions()
        o.classIndex = 5
        #expect(throws: EvalError.self) { try scorer.regionPerturbation(x, map: Tensor.zeros([4, 4, 4]), options: o) }
        o.classIndex = nil
        o.regionEdge = Size3(0)
        #expect(throws: EvalError.self) { try scorer.regionPerturbation(x, map: Tensor.zeros([4, 4, 4]), options: o) }
        var nan = Tensor.zeros([4, 4, 4])
        nan.scalars[3] = .nan
        #expect(throws: EvalError.self) { try scorer.deletionInsertion(x, map: nan) }
    }

    @Test func regionEdgeFromMillimetres() throws {
        #expect(RegionGrid.edge(mm: 8, spacing: SIMD3(1, 2, 0.7)) == Size3(8, 4, 11))
        #expect(RegionGrid.edge(mm: 0.1, spacing: SIMD3(1, 1, 1)) == Size3(1))
        let g = try RegionGrid(shape: [5, 4, 3], edge: 2)
        #expect(g.count == 3 * 2 * 2)
        #expect(g.voxels(g.count - 1) == [(4 * 4 + 2) * 3 + 2, (4 * 4 + 3) * 3 + 2])  // the partial corner region
        #expect((0..<g.count).flatMap { g.voxels($0) }.sorted() == Array(0..<60))
    }
}

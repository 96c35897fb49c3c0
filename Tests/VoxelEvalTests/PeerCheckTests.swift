import Foundation
import Testing
import VoxelEval
import VoxelNN
import VoxelTensor
import _TestSupport

/// Checks against the peers (Scripts/make_eval_fixtures.py) on EvalNet (Tests/Fixtures/eval/evalnet.onnx):
/// torch-cam's DeletionInsertionMetric (3D), an independent numpy + onnxruntime region perturbation
/// (Quantus's RegionPerturbation is 2D-only), Quantus's pointing game, relevance mass and rank accuracy
/// on volumes, scipy's spearmanr and gaussian_filter, skimage's 3D SSIM.
///
/// Tolerances: our logits match onnxruntime and torch to ~1e-6 (Float32 summation order), so class
/// probabilities agree to ~1e-6; curves are compared at 1e-5 and AUC/AOPC (means of such values) at 1e-5.
/// Similarities are computed in Double on both sides: 1e-9 for Spearman, 1e-7 for SSIM and the filter.
struct PeerCheckTests {
    @Test func logitsMatchTheFixture() throws {
        let f = try EvalFixture.data()
        let logits = try ModelScorer(graph: f.graph).logits(f.input)
        let stored = try EvalFixture.cases("data")[0].floats["logits"]!.map(Float.init)
        #expect(maxAbsDifference(logits, stored) < 1e-5)
    }

    @Test func deletionInsertionMatchesTorchCAM() throws {
        let f = try EvalFixture.data()
        let scorer = try ModelScorer(graph: f.graph, memoryBudget: 1 << 22)
        for c in try EvalFixture.cases("deletion-insertion") {
            var o = DeletionInsertionOptions()
            o.steps = c.int("steps", 20)
            o.classIndex = c.int("class", 0)
            o.baseline = c.strings["baseline"] == "blur2" ? .blur(sigma: 2) : .constant(0)
            let r = try scorer.deletionInsertion(f.input, map: f.map, options: o)
            #expect(abs(r.deletionAUC - c.floats["deletion_auc"]![0]) < 1e-5, "\(c.name) deletion \(r.deletionAUC)")
            #expect(abs(r.insertionAUC - c.floats["insertion_auc"]![0]) < 1e-5, "\(c.name) insertion \(r.insertionAUC)")
        }
    }

    @Test func regionPerturbationMatchesNumpy() throws {
        let f = try EvalFixture.data()
        let scorer = try ModelScorer(graph: f.graph, memoryBudget: 1 << 22)
        let cases = try EvalFixture.cases("region-perturbation")
        #expect(cases.count == 6)
        for c in cases {
            var o = RegionPerturbationOptions()
            o.regionEdge = Size3(c.int("edge", 4))
            o.steps = c.int("steps", 10)
            o.classIndex = c.int("class", 0)
            switch c.strings["perturbation"] {
            case "constant0": o.perturbation = Perturbation(.constant)
            case "mean": o.perturbation = Perturbation(.mean)
            default: o.perturbation = Perturbation(.blur); o.perturbation.blurSigma = 2
            }
            let r = try scorer.regionPerturbation(f.input, map: f.map, options: o)
            #expect(maxAbsDifference(r.morf, try c.tensor("morf").scalars) < 1e-5, "\(c.name) MoRF")
            #expect(maxAbsDifference(r.lerf, try c.tensor("lerf").scalars) < 1e-5, "\(c.name) LeRF")
            #expect(abs(r.aopcMoRF - c.floats["aopc_morf"]![0]) < 1e-5 && abs(r.aopcLeRF - c.floats["aopc_lerf"]![0]) < 1e-5, "\(c.name)")
        }
    }

    @Test func localizationMatchesQuantus() throws {
        let f = try EvalFixture.data()
        for c in try EvalFixture.cases("localization") {
            let mask = try c.tensor("mask")
            let s = try localize(f.map, mask: mask)
            #expect(s.pointingHit == (c.floats["pointing"]![0] == 1), "\(c.name)")
            #expect(abs(s.energyInside - c.floats["mass"]![0]) < 1e-6, "\(c.name) mass \(s.energyInside)")
            #expect(abs(s.rankAccuracy - c.floats["rank"]![0]) < 1e-9, "\(c.name) rank \(s.rankAccuracy)")
        }
    }

    @Test func spearmanMatchesScipy() throws {
        for c in try EvalFixture.cases("spearman") {
            let a = try c.tensor("a"), b = try c.tensor("b")
            #expect(abs(try spearman(a, b) - c.floats["rho"]![0]) < 1e-9, "\(c.name)")
        }
    }

    @Test func ssimMatchesSkimage() throws {
        for c in try EvalFixture.cases("ssim") {
            #expect(abs(try ssim3D(try c.tensor("a"), try c.tensor("b")) - c.floats["ssim"]![0]) < 1e-7, "\(c.name)")
        }
    }

    @Test func gaussianFilterMatchesScipy() throws {
        let c = try EvalFixture.cases("gaussian-filter")[0]
        let x = try c.tensor("x"), y = try c.tensor("y")
        let ours = gaussianFilter3D(x.scalars.map(Double.init), shape: x.shape, sigma: c.floats["sigma"]![0])
        let diff = zip(ours, y.scalars).map { abs($0 - Double($1)) }.max() ?? 1
        #expect(diff < 1e-6)  // the fixture stores Float32: 1e-6 covers its rounding
    }
}

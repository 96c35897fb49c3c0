import Foundation
import Testing
import VoxelEval
import VoxelTensor
import _TestSupport

/// Localisation metrics, similarity and ROAD imputation on cases computed by hand.
struct LocalizationTests {
    /// A 4x4x4 map that is 0 except a few voxels; a mask of the 2x2x2 cube at the origin.
    static func smallCase() throws -> (map: Tensor, mask: Tensor) {
        var map = Tensor.zeros([4, 4, 4])
        var mask = Tensor.zeros([4, 4, 4])
        for z in 0..<2 { for y in 0..<2 { for x in 0..<2 { mask[[z, y, x]] = 1 } } }
        map[[0, 0, 0]] = 2   // inside
        map[[1, 1, 1]] = 1   // inside
        map[[3, 3, 3]] = 4   // the peak, outside: √(2²·3) voxels from (1, 1, 1)
        map[[0, 3, 0]] = -5  // negative heat counts nowhere
        return (map, mask)
    }

    @Test func pointingGameEnergyAndRank() throws {
        let (map, mask) = try Self.smallCase()
        var o = LocalizationOptions()
        o.spacing = SIMD3(1, 1, 2)  // D is 2 mm: the peak lies √(4²+2²+2²) = √24 mm from voxel (1, 1, 1)
        let s = try localize(map, mask: mask, options: o)
        #expect(s.peakVoxel == [3, 3, 3] && !s.pointingHit)
        #expect(abs(s.peakDistanceMM - 24.0.squareRoot()) < 1e-12)
        o.toleranceMM = 4.9
        #expect(try localize(map, mask: mask, options: o).pointingHit)  // √24 ≈ 4.899
        // Positive heat 2 + 1 + 4 = 7, inside 3: 3/7.
        #expect(abs(s.energyInside - 3.0 / 7) < 1e-12)
        // K = 8 mask voxels; the 8 hottest are 4, 2, 1 and five zeros in index order: (0,0,1), (0,0,2),
        // (0,0,3), (0,1,0), (0,1,1); of those, (0,0,0), (1,1,1), (0,0,1), (0,1,0), (0,1,1) are inside: 5/8.
        #expect(s.rankAccuracy == 5.0 / 8)
    }

    @Test func iouAndDiceAtThresholds() throws {
        let (map, mask) = try Self.smallCase()
        var o = LocalizationOptions()
        // Normalised: (h + 5) / 9, so the zeros become 5/9 ≈ 0.556, 1 → 0.667, 2 → 0.778, 4 → 1, −5 → 0.
        o.thresholds = [0.5, 0.7, 0.9, 1.5]
        let s = try localize(map, mask: mask, options: o)
        // t = 0.5: A = every voxel but one (63), |A∩M| = 8: IoU 8/63, Dice 16/71.
        // t = 0.7: A = {2, 4}: |A∩M| = 1, IoU 1/9, Dice 2/10.  t = 0.9: A = {4}: IoU 0, Dice 0.
        // t = 1.5: A empty: IoU 0/8 = 0, Dice 0.
        #expect(zip(s.iou, [8.0 / 63, 1.0 / 9, 0, 0]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(zip(s.dice, [16.0 / 71, 0.2, 0, 0]).allSatisfy { abs($0 - $1) < 1e-12 })
    }

    @Test func lesionHitsAndMisses() throws {
        // Three lesions; the map has blobs on lesions 1 and 3 and one away from all of them.
        var mask = Tensor.zeros([10, 10, 10]), map = Tensor.zeros([10, 10, 10])
        for (label, c) in [(1, [1, 1, 1]), (2, [8, 8, 1]), (3, [5, 5, 8])] {
            for dz in 0...1 { for dy in 0...1 { for dx in 0...1 { mask[[c[0] + dz, c[1] + dy, c[2] + dx]] = Float(label) } } }
        }
        map[[1, 1, 1]] = 1; map[[1, 2, 1]] = 0.8       // on lesion 1
        map[[6, 6, 7]] = 0.9                            // next to lesion 3, not in it
        map[[2, 8, 8]] = 0.7                            // nowhere
        var o = LocalizationOptions()
        let strict = try lesionHits(map, mask: mask, options: o)
        #expect(strict.labels == [1, 2, 3] && strict.hit == [1] && strict.missed == [2, 3])
        #expect(strict.detections.count == 3 && strict.falsePositives == 2)
        o.toleranceMM = 1.5  // the blob at (6, 6, 7) is 1 mm from lesion 3 (voxel (6, 6, 8))
        let tolerant = try lesionHits(map, mask: mask, options: o)
        #expect(tolerant.hit == [1, 3] && tolerant.missed == [2] && tolerant.falsePositives == 1)
        #expect(abs(tolerant.hitRate - 2.0 / 3) < 1e-12)
    }

    @Test func plausibilityFlagsHeatOutsideTheBody() throws {
        var body = Tensor.zeros([4, 4, 4])
        for i in 0..<32 { body.scalars[i] = 1 }
        var map = Tensor.zeros([4, 4, 4])
        map.scalars[0] = 3; map.scalars[40] = 1; map.scalars[50] = -2
        let p = try plausibility(map, region: body)
        #expect(abs(p.outsideShare - 0.25) < 1e-12 && p.flagged)
        #expect(try !plausibility(map, region: body, threshold: 0.3).flagged)
        #expect(throws: EvalError.self) { try plausibility(map, region: Tensor.zeros([4, 4, 3])) }
        #expect(throws: EvalError.self) { try localize(map, mask: Tensor.zeros([4, 4, 4])) }  // empty mask
    }

    @Test func spearmanWithTiesByHand() throws {
        // ranks a = [1, 2.5, 2.5, 4], b = [1, 3, 2, 4]: ρ = 4.5 / √(4.5 · 5).
        let a = try Tensor(shape: [4], scalars: [1, 2, 2, 3]), b = try Tensor(shape: [4], scalars: [1, 3, 2, 4])
        #expect(averageRanks(a.scalars) == [1, 2.5, 2.5, 4])
        #expect(abs(try spearman(a, b) - 4.5 / (4.5 * 5).squareRoot()) < 1e-12)
        #expect(try spearman(a, Tensor(shape: [4], repeating: 1)) == 0)  // constant: 0, never NaN
        #expect(abs(try spearman(a, try Tensor(shape: [4], scalars: [9, 5, 5, 1])) + 1) < 1e-12)
    }

    @Test func agreementAndConsensus() throws {
        let a = try Tensor(shape: [1, 1, 3], scalars: [0, 1, 2]), b = try Tensor(shape: [1, 1, 3], scalars: [4, 2, 0])
        let g = try agreement([a, b, a])
        #expect(g.spearman[0][1] == -1 && g.spearman[0][2] == 1 && g.spearman[1][1] == 1)
        // normalised: a → [0, .5, 1], b → [1, .5, 0]; mean of a, b, a = [1/3, .5, 2/3].
        #expect(maxAbsDifference(g.consensus, [1.0 / 3, 0.5, 2.0 / 3]) < 1e-6)
        #expect(throws: EvalError.self) { try agreement([a, Tensor.zeros([3])]) }
    }

    @Test func ssimOfAMapWithItselfIsOneAndSmallMapsThrow() throws {
        let m = Tensor.random([11, 12, 13], seed: 2)
        #expect(abs(try ssim3D(m, m) - 1) < 1e-12)
        #expect(try ssim3D(m, Tensor.random([11, 12, 13], seed: 3)) < 0.2)
        #expect(throws: EvalError.self) { try ssim3D(Tensor.zeros([10, 12, 12]), Tensor.zeros([10, 12, 12])) }
    }

    @Test func roadImputesALinearRampExactly() throws {
        // A linear function equals the symmetric weighted mean of its 26 neighbours, so ROAD's solution
        // for an interior hole of a ramp is the ramp itself (to the solver's tolerance).
        var v = [Float](repeating: 0, count: 8 * 8 * 8)
        for z in 0..<8 { for y in 0..<8 { for x in 0..<8 { v[(z * 8 + y) * 8 + x] = Float(z) + 2 * Float(y) - 0.5 * Float(x) } } }
        let x = try Tensor(shape: [1, 1, 8, 8, 8], scalars: v)
        // A map whose hottest 2^3 region is the interior cube at (2...3)^3, then (4...5, 2...3, 2...3).
        var map = Tensor.zeros([8, 8, 8])
        for z in 2..<4 { for y in 2..<4 { for x in 2..<4 { map[[z, y, x]] = 2; map[[z + 2, y, x]] = 1 } } }
        var o = RegionPerturbationOptions()
        o.regionEdge = 2
        o.steps = 2
        o.perturbation = Perturbation(.road)
        o.perturbation.roadSweeps = 500
        o.perturbation.roadTolerance = 1e-7
        o.target = .logit
        o.classIndex = 0
        // The mean model's logit is the input mean, so an exact imputation leaves it unchanged.
        let c = try ModelScorer(graph: try meanModel(size: 8)).regionPerturbation(x, map: map, options: o)
        #expect(maxAbsDifference(c.morf, [c.morf[0], c.morf[0], c.morf[0]]) < 1e-5)
        // A constant perturbation of the same regions does change it.
        o.perturbation = Perturbation(.constant)
        let k = try ModelScorer(graph: try meanModel(size: 8)).regionPerturbation(x, map: map, options: o)
        #expect(abs(k.morf[2] - k.morf[0]) > 0.05)
    }
}

import Foundation
import Testing
import Voxplain
import _TestSupport

/// Connected components (fast two-pass union-find against a flood-fill oracle) and lesion tables.
struct LesionsTests {
    static func volume(_ dims: VoxelDims, _ hot: [(Int, Int, Int, Float)], spacing: SIMD3<Double> = SIMD3(1, 1, 1)) throws -> Volume {
        var v = [Float](repeating: 0, count: dims.count)
        for (i, j, k, x) in hot { v[i + dims.i * (j + dims.j * k)] = x }
        return try Volume(dims: dims, voxels: v, spacing: spacing)
    }

    static func count(_ v: Volume, _ c: Connectivity, threshold: Float = 0.5) throws -> Int {
        let fast = try ComponentLabels(values: v.voxels, dims: v.dims, threshold: threshold, connectivity: c)
        let slow = try ComponentLabels.reference(values: v.voxels, dims: v.dims, threshold: threshold, connectivity: c)
        #expect(fast == slow)
        return fast.count
    }

    // (voxels, components with 6-connectivity, with 26-connectivity).
    @Test(arguments: [
        ([(1, 1, 1), (2, 2, 2)], 2, 1),                         // corners touch
        ([(1, 1, 1), (2, 2, 1)], 2, 1),                         // edges touch
        ([(1, 1, 1), (2, 1, 1)], 1, 1),                         // faces touch
        ([(0, 0, 0), (2, 2, 2)], 2, 2),                         // one voxel apart
        ([(0, 0, 0), (3, 3, 3), (1, 1, 1), (2, 2, 2)], 4, 1),   // a diagonal chain
        ([(0, 3, 0), (1, 2, 1), (2, 1, 2), (3, 0, 3)], 4, 1),   // an anti-diagonal chain (merges late in the scan)
    ] as [([(Int, Int, Int)], Int, Int)])
    func connectivityCornerCases(_ voxels: [(Int, Int, Int)], _ six: Int, _ twentySix: Int) throws {
        let v = try Self.volume(VoxelDims(4, 4, 4), voxels.map { ($0.0, $0.1, $0.2, 1) })
        #expect(try Self.count(v, .six) == six)
        #expect(try Self.count(v, .twentySix) == twentySix)
    }

    /// A U shape whose arms meet only at the bottom: the scan sees two labels first, then merges them.
    @Test func uShapeMerges() throws {
        var hot: [(Int, Int, Int, Float)] = []
        for j in 0..<5 { hot.append((0, j, 0, 1)); hot.append((4, j, 0, 1)) }
        for i in 0..<5 { hot.append((i, 4, 0, 1)) }
        let v = try Self.volume(VoxelDims(5, 5, 1), hot)
        #expect(try Self.count(v, .six) == 1)
    }

    /// Random sparse and dense volumes: the fast labelling equals the flood fill, label for label.
    @Test(arguments: [(UInt64(1), 0.3), (2, 0.5), (3, 0.7), (4, 0.85), (5, 0.95)])
    func matchesReference(_ seed: UInt64, _ threshold: Double) throws {
        var rng = SeededGenerator(seed: seed)
        for dims in [VoxelDims(7, 5, 6), VoxelDims(1, 9, 4), VoxelDims(13, 1, 1), VoxelDims(12, 11, 10)] {
            let values = (0..<dims.count).map { _ in Float(rng.unit()) }
            for c in Connectivity.allCases {
                let fast = try ComponentLabels(values: values, dims: dims, threshold: Float(threshold), connectivity: c)
                let slow = try ComponentLabels.reference(values: values, dims: dims, threshold: Float(threshold), connectivity: c)
                #expect(fast == slow, "\(dims) \(c) threshold \(threshold)")
            }
        }
    }

    @Test func emptyAndAllHot() throws {
        let dims = VoxelDims(4, 5, 6)
        let empty = try LesionTable.make(map: try Volume(dims: dims, voxels: [Float](repeating: 0.2, count: dims.count), spacing: SIMD3(1, 1, 1)))
        #expect(empty.components.isEmpty)
        #expect(empty.text().contains("0 components"))
        #expect(empty.csv().split(separator: "\n").count == 1)
        let all = try LesionTable.make(map: try Volume(dims: dims, voxels: [Float](repeating: 1, count: dims.count), spacing: SIMD3(0.5, 1, 2)))
        #expect(all.components.count == 1)
        let c = all.components[0]
        #expect(c.voxels == 120 && c.volumeMM3 == 120)
        #expect(c.centroidVoxel == [1.5, 2, 2.5] && c.bboxMin == [0, 0, 0] && c.bboxMax == [3, 4, 5])
        #expect(c.peak == 1 && c.mean == 1)
        // NaN is background; the threshold is inclusive.
        let nan = try Self.volume(VoxelDims(3, 1, 1), [(0, 0, 0, .nan), (1, 0, 0, 0.5), (2, 0, 0, .nan)])
        #expect(try LesionTable.make(map: nan, threshold: 0.5).components.map(\.voxels) == [1])
    }

    /// Two touching blobs of different heat are one component; stats and truth overlaps by hand.
    @Test func touchingComponentsAndTruth() throws {
        let dims = VoxelDims(6, 4, 3)
        let map = try Self.volume(dims, [(0, 0, 0, 0.6), (1, 0, 0, 0.9), (2, 0, 0, 0.8), (5, 3, 2, 1.0)],
                                  spacing: SIMD3(2, 1, 1))
        let truth = try Self.volume(dims, [(1, 0, 0, 1), (2, 0, 0, 2), (0, 3, 2, 3)], spacing: SIMD3(2, 1, 1))
        let t = try LesionTable.make(map: map, mapName: "m", threshold: 0.5, truth: truth, truthName: "t")
        #expect(t.components.count == 2)
        let hottest = t.components[0], blob = t.components[1]
        #expect(hottest.id == 1 && hottest.voxels == 1 && hottest.peak == 1 && hottest.truth == [])
        #expect(blob.id == 2 && blob.voxels == 3 && blob.volumeMM3 == 6 && blob.centroidVoxel == [1, 0, 0])
        #expect(blob.peakVoxel == [1, 0, 0] && abs(blob.mean - 2.3 / 3) < 1e-6)
        #expect(blob.truth == [TruthOverlap(label: 1, voxels: 1), TruthOverlap(label: 2, voxels: 1)])
        #expect(t.truthLabels == [1, 2, 3] && t.missedLabels == [3])
        // World centroid through the affine (pixdim default: nibabel's centred diag(-dx, dy, dz)).
        let w = map.affine.apply(SIMD3(1, 0, 0))
        #expect(blob.centroidWorldMM == [w.x, w.y, w.z])
        let json = try JSONSerialization.jsonObject(with: Data(try t.json().utf8)) as? [String: Any]
        #expect(json?["missed_labels"] as? [Int] == [3])
        #expect(t.csv().split(separator: "\n")[2].hasSuffix(",1;2,1;1"))
        #expect(t.text().contains("missed (no component): 3") && t.text().contains("none (false positive)"))
        // A truth mask on another grid is refused, naming both.
        let other = try Self.volume(VoxelDims(6, 4, 2), [])
        #expect(throws: VoxplainError.self) { try LesionTable.make(map: map, mapName: "m.nii", truth: other, truthName: "t.nii") }
        do { _ = try LesionTable.make(map: map, mapName: "m.nii", truth: other, truthName: "t.nii") } catch {
            #expect("\(error)".contains("m.nii") && "\(error)".contains("t.nii") && "\(error)".contains("6x4x2") && "\(error)".contains("6x4x3"))
        }
    }

    /// The phantom's mask as a map, on the default grid (0.7 x 0.7 x 1.25 mm): one component per
    /// nodule, centroids at the listed centres within half a voxel. (Seeds whose spiculated nodules
    /// stay connected at this spacing; the general case is the next test.)
    @Test(arguments: [UInt64(1), 8])
    func phantomMaskGivesItsNodules(_ seed: UInt64) throws {
        let p = try Phantom.generate(PhantomOptions(noduleCount: 4, seed: seed))
        let t = try LesionTable.make(map: p.mask, threshold: 0.5, truth: p.mask)
        #expect(t.components.count == p.nodules.count)
        #expect(t.missedLabels == [])
        for n in p.nodules {
            let c = try #require(t.components.first { $0.truth == [TruthOverlap(label: n.label, voxels: n.voxels)] })
            #expect(c.voxels == n.voxels)
            for a in 0..<3 { #expect(abs(c.centroidVoxel[a] - n.centerVoxel[a]) < 0.5, "label \(n.label) axis \(a)") }
            for a in 0..<3 { #expect(abs(c.centroidWorldMM[a] - n.centerWorldMM[a]) < 0.5 * p.ct.spacing[a]) }
        }
    }

    /// Any seed, coarser grid: thin spicule tips can rasterise apart from the core, so a spiculated
    /// nodule may give small extra components. Every component still overlaps exactly one label,
    /// non-spiculated nodules give exactly one, and each nodule's largest component holds at least
    /// 90% of its voxels with its centroid within half a voxel of the listed centre.
    @Test(arguments: [UInt64(1), 3, 7])
    func phantomMaskOnACoarseGrid(_ seed: UInt64) throws {
        let p = try Phantom.generate(PhantomOptions(size: VoxelDims(96, 96, 64), spacing: SIMD3(0.9, 0.9, 1.9), noduleCount: 4, seed: seed))
        let t = try LesionTable.make(map: p.mask, threshold: 0.5, truth: p.mask)
        #expect(t.missedLabels == [])
        #expect(t.components.allSatisfy { $0.truth?.count == 1 && $0.truth?[0].voxels == $0.voxels })
        for n in p.nodules {
            let parts = t.components.filter { $0.truth?.first?.label == n.label }
            #expect(parts.map(\.voxels).reduce(0, +) == n.voxels)
            if !n.spiculated { #expect(parts.count == 1, "label \(n.label)") }
            let core = try #require(parts.max { $0.voxels < $1.voxels })
            #expect(Double(core.voxels) >= 0.9 * Double(n.voxels))
            for a in 0..<3 { #expect(abs(core.centroidVoxel[a] - n.centerVoxel[a]) < 0.5, "label \(n.label) axis \(a)") }
        }
    }

    /// 6-connectivity never joins more than 26 does: every 26-component is a union of 6-components.
    @Test func sixRefinesTwentySix() throws {
        var rng = SeededGenerator(seed: 9)
        let dims = VoxelDims(16, 15, 14)
        let values = (0..<dims.count).map { _ in Float(rng.unit()) }
        let six = try ComponentLabels(values: values, dims: dims, threshold: 0.6, connectivity: .six)
        let all = try ComponentLabels(values: values, dims: dims, threshold: 0.6, connectivity: .twentySix)
        var owner: [Int32: Int32] = [:]
        for n in 0..<dims.count where six.labels[n] != 0 {
            if let o = owner[six.labels[n]] { #expect(o == all.labels[n]) } else { owner[six.labels[n]] = all.labels[n] }
        }
        #expect(six.count >= all.count)
    }
}

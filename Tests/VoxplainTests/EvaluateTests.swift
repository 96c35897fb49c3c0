import Foundation
import Testing
import Voxplain
import _TestSupport

/// The evaluation's inputs: masks carried to the model grid, lesion hits on a phantom, the data list.
struct EvaluateTests {
    static let options = PhantomOptions(size: VoxelDims(64, 64, 48), spacing: SIMD3(1.4, 1.4, 2.5), noduleCount: 3, seed: 3)

    @Test func lesionHitsOnAThreeNodulePhantom() throws {
        let p = try Phantom.generate(Self.options)
        #expect(p.nodules.count == 3)
        // Identity preprocessing: the model grid is the scan's, so the mask comes over unchanged.
        let input = try Preprocessing().apply(to: p.ct, scanName: "phantom")
        let mask = try input.labelsOnModelGrid(p.mask, name: "mask")
        #expect(mask.scalars == p.mask.dhwScalars())
        // Blobs on nodules 1 and 2, and one in a corner far from every nodule.
        let shape = mask.shape
        var map = Tensor.zeros(shape)
        let centres = p.nodules.prefix(2).map { $0.centerVoxel } + [[3, 3, 3]]
        for (n, c) in centres.enumerated() {
            for d in 0..<shape[0] { for h in 0..<shape[1] { for w in 0..<shape[2] {
                let r2 = pow(Double(d) - c[0], 2) + pow(Double(h) - c[1], 2) + pow(Double(w) - c[2], 2)
                map[[d, h, w]] += Float((1 - 0.1 * Double(n)) * exp(-r2 / 4))
            } } }
        }
        var o = LocalizationOptions()
        o.spacing = input.modelSpacing(scanSpacing: p.ct.spacing)
        let hits = try lesionHits(map, mask: mask, options: o)
        #expect(hits.labels == [1, 2, 3])
        #expect(hits.hit == [1, 2] && hits.missed == [3] && hits.falsePositives == 1, "\(hits)")
        #expect(abs(hits.hitRate - 2.0 / 3) < 1e-12)
        #expect(try localize(map, mask: mask, options: o).pointingHit)  // the strongest blob is on nodule 1
    }

    @Test func masksFollowTheScanThroughResamplingAndCropping() throws {
        let p = try Phantom.generate(Self.options)
        var pre = Preprocessing(spacing: SIMD3(2.8, 2.8, 5), size: [24, 24, 20])
        pre.intensity = IntensityTransform(clip: [-1000, 400], scale: [0, 1])
        let input = try pre.apply(to: p.ct, scanName: "phantom")
        let mask = try input.labelsOnModelGrid(p.mask, name: "mask")
        #expect(mask.shape == [24, 24, 20])
        #expect(input.modelSpacing(scanSpacing: p.ct.spacing) == SIMD3(2.8, 2.8, 5))
        for n in p.nodules {
            // The nodule's centre on the model grid carries its label.
            let m = input.mapping.modelVoxel(SIMD3(n.centerVoxel[0], n.centerVoxel[1], n.centerVoxel[2]))
            let v = [Int(m.x.rounded()), Int(m.y.rounded()), Int(m.z.rounded())]
            guard v.indices.allSatisfy({ v[$0] >= 0 && v[$0] < mask.shape[$0] }) else { continue }
            #expect(mask[v] == Float(n.label), "nodule \(n.label) at model voxel \(v)")
        }
        var other = p.mask
        other.dims = VoxelDims(64, 64, 47)
        #expect(throws: VoxplainError.self) { try input.labelsOnModelGrid(other, name: "m.nii") }
    }

    @Test func dataListResolvesRelativePathsAndRejectsBadLines() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("voxplain-list-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let list = dir.appendingPathComponent("list.csv")
        try "scan,mask,label\na.nii.gz,ma.nii.gz,1\n/abs/b.nii,,\n\nc.nii,,nodule\n".write(to: list, atomically: true, encoding: .utf8)
        let items = try EvaluationItem.readList(list.path)
        #expect(items.count == 3)
        #expect(items[0] == EvaluationItem(scan: dir.appendingPathComponent("a.nii.gz").path, mask: dir.appendingPathComponent("ma.nii.gz").path, body: nil, label: "1"))
        #expect(items[1].scan == "/abs/b.nii" && items[1].mask == nil && items[1].label == nil)
        #expect(items[2].label == "nodule")
        for (text, words) in [("mask,label\na,b\n", "no 'scan' column"), ("scan,mask\na.nii\n", "1 fields"), ("scan\n", "no scans"), ("", "empty")] {
            try text.write(to: list, atomically: true, encoding: .utf8)
            do {
                _ = try EvaluationItem.readList(list.path)
                Issue.record("\(text) was accepted")
            } catch let e as VoxplainError {
                #expect(e.message.contains(list.path) && e.message.contains(words), "\(e.message)")
            }
        }
    }
}

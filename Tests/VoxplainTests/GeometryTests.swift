import Foundation
import Testing
import Voxplain
import _TestSupport

/// The geometry contract: whatever the resampling, cropping or anisotropy, a map carried back with
/// `ModelInput.toScan` lands where it belongs on the scan's grid.
@Suite struct GeometryTests {
    /// The test: a nodule at a known world position lights up at the same world position in
    /// the heatmap, within one voxel, after resampling from 0.7 x 0.7 x 1.25 mm to 1 mm and back.
    /// The "heatmap" is the phantom's own nodule mask pushed through the forward preprocessing (real
    /// resampling and cropping) and carried back by the inverse, so both directions are exercised.
    @Test(arguments: [[96, 96, 128], [64, 64, 64]])
    func noduleStaysAtItsWorldPosition(_ size: [Int]) throws {
        let p = try Phantom.generate(PhantomOptions(size: VoxelDims(128, 128, 96), spacing: SIMD3(0.7, 0.7, 1.25), noduleCount: 3, seed: 11))
        for nodule in p.nodules {
            var indicator = p.mask
            indicator.voxels = p.mask.voxels.map { $0 == Float(nodule.label) ? 1 : 0 }
            let pre = Preprocessing(spacing: SIMD3(1, 1, 1), size: size,
                                    center: SIMD3(nodule.centerVoxel[0], nodule.centerVoxel[1], nodule.centerVoxel[2]))
            let input = try pre.apply(to: indicator, scanName: "mask")
            let back = input.toScan(input.tensor.scalars, mapSize: Array(input.tensor.shape[2...]))
            // Centroid of the carried-back heat, in world mm.
            var sum = SIMD3<Double>(0, 0, 0), mass = 0.0
            for k in 0..<p.mask.dims.k { for j in 0..<p.mask.dims.j { for i in 0..<p.mask.dims.i {
                let v = Double(back[p.mask.index(i, j, k)])
                if v > 0 { sum += v * SIMD3(Double(i), Double(j), Double(k)); mass += v }
            } } }
            let world = p.ct.affine.apply(sum / mass)
            let truth = SIMD3(nodule.centerWorldMM[0], nodule.centerWorldMM[1], nodule.centerWorldMM[2])
            let err = world - truth
            #expect(Swift.abs(err.x) <= 0.7 && Swift.abs(err.y) <= 0.7 && Swift.abs(err.z) <= 1.25, "nodule \(nodule.label): \(world) vs \(truth)")
        }
    }

    @Test func identityPreprocessingIsExact() throws {
        let p = try Phantom.generate(PhantomOptions(size: VoxelDims(40, 36, 30), spacing: SIMD3(1, 1, 1), noduleCount: 0, seed: 2))
        let input = try Preprocessing().apply(to: p.ct, scanName: "ct")
        #expect(input.toScan(input.tensor.scalars, mapSize: Array(input.tensor.shape[2...])) == p.ct.voxels)
    }

    @Test func nanVoxelsAreRefused() throws {
        var v = try Volume(dims: VoxelDims(4, 4, 4), voxels: [Float](repeating: 0, count: 64), spacing: SIMD3(1, 1, 1))
        v.voxels[5] = .nan
        #expect(throws: VoxplainError("scan.nii: 1 voxels are NaN or infinite; the model cannot take them")) {
            try Preprocessing().apply(to: v, scanName: "scan.nii")
        }
    }
}

import Foundation
import Testing
@testable import Voxplain
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

    /// `toScan` visits only the field of view's box of scan voxels, and `maxIntoScan` combines in
    /// place: both give what the whole-scan loop gave (every scan voxel mapped and tested), bit for
    /// bit, for patches inside the scan, across its edges and past it, with layer maps coarser than
    /// the input.
    @Test func fieldOfViewGivesTheWholeScansValues() throws {
        let p = try Phantom.generate(PhantomOptions(size: VoxelDims(50, 44, 30), spacing: SIMD3(0.7, 0.8, 1.25), noduleCount: 0, seed: 5))
        var combined = [Float](repeating: -.infinity, count: p.ct.dims.count), expected = combined
        for center in [SIMD3(25.0, 22, 15), SIMD3(2, 40, 1), SIMD3(48.5, 3, 29), SIMD3(80, 80, 80)] {
            let pre = Preprocessing(spacing: SIMD3(1, 1, 1), size: [12, 10, 8], center: center)
            let input = try pre.apply(to: p.ct, scanName: "ct")
            for mapSize in [[12, 10, 8], [3, 3, 2]] {
                let count = mapSize[0] * mapSize[1] * mapSize[2]
                let map: [Float] = (0..<count).map { (n: Int) -> Float in Float(n % 7) - 2.5 + Float(n) * 0.01 }
                // The whole-scan loop, as toScan ran until stop 20.
                var whole = [Float](repeating: -1, count: p.ct.dims.count)
                let model = SIMD3<Double>(12, 10, 8), grid = SIMD3<Int>(mapSize[0], mapSize[1], mapSize[2])
                map.withUnsafeBufferPointer { m in
                    let src = VoxelTensor.SharedConstPointer<Float>(m.baseAddress!)
                    for k in 0..<p.ct.dims.k { for j in 0..<p.ct.dims.j { for i in 0..<p.ct.dims.i {
                        let mv = input.mapping.modelVoxel(SIMD3(Double(i), Double(j), Double(k)))
                        guard all(mv .>= -0.5) && all(mv .<= model - 0.5) else { continue }
                        whole[p.ct.index(i, j, k)] = trilinear(src, grid, (mv + 0.5) * SIMD3<Double>(grid) / model - 0.5)
                    } } }
                }
                let differing = zip(input.toScan(map, mapSize: mapSize, outside: -1), whole).filter { $0 != $1 }.count
                #expect(differing == 0, "centre \(center), map \(mapSize): \(differing) voxels differ")
                if mapSize == [12, 10, 8] {
                    input.maxIntoScan(&combined, map, mapSize: mapSize)
                    expected = zip(expected, whole.map { $0 == -1 ? -Float.infinity : $0 }).map { Swift.max($0, $1) }
                }
            }
        }
        #expect(zip(combined, expected).allSatisfy { $0 == $1 }, "maxIntoScan differs from the whole-scan maximum")
        // The first patch stores, as toScan does: a NaN stays NaN, where the maximum would keep -inf.
        let input = try Preprocessing(spacing: SIMD3(1, 1, 1), size: [12, 10, 8], center: SIMD3(25, 22, 15)).apply(to: p.ct, scanName: "ct")
        let nan = [Float](repeating: .nan, count: 12 * 10 * 8)
        var stored = [Float](repeating: -.infinity, count: p.ct.dims.count), kept = stored
        input.maxIntoScan(&stored, nan, mapSize: [12, 10, 8], replacing: true)
        input.maxIntoScan(&kept, nan, mapSize: [12, 10, 8])
        let onScan = input.toScan(nan, mapSize: [12, 10, 8], outside: -.infinity)
        #expect(zip(stored, onScan).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
        #expect(stored.contains(where: \.isNaN) && !kept.contains(where: \.isNaN))
        #expect(combined.contains(where: \.isFinite) && combined.contains(-.infinity))
    }

    /// Several patches of one scan, resampled once (`apply(to:scanName:centers:)`), are the inputs
    /// `apply` makes for each centre alone, bit for bit: with and without resampling, for every
    /// intensity transform, centres inside, at the edge, past the scan and none.
    @Test func patchesShareOneResamplingExactly() throws {
        let p = try Phantom.generate(PhantomOptions(size: VoxelDims(40, 36, 30), spacing: SIMD3(0.7, 0.8, 1.25), noduleCount: 0, seed: 9))
        let centers: [SIMD3<Double>?] = [SIMD3(20, 18, 15), SIMD3(0, 35, 29), SIMD3(60, -5, 10), nil]
        for intensity in [IntensityTransform(clip: [-1000, 400], scale: [0, 1]), IntensityTransform(scale: [-1, 1]),
                          IntensityTransform(zscore: true)] {
            for spacing in [SIMD3(1.0, 1.0, 1.0), nil] {
                let pre = Preprocessing(intensity: intensity, spacing: spacing, size: [16, 12, 10])
                let together = try pre.apply(to: p.ct, scanName: "ct", centers: centers)
                for (n, c) in centers.enumerated() {
                    var one = pre
                    one.center = c
                    let alone = try one.apply(to: p.ct, scanName: "ct")
                    #expect(together[n].tensor == alone.tensor && together[n].mapping == alone.mapping,
                            "centre \(String(describing: c)), spacing \(String(describing: spacing))")
                }
            }
        }
    }

    @Test func nanVoxelsAreRefused() throws {
        var v = try Volume(dims: VoxelDims(4, 4, 4), voxels: [Float](repeating: 0, count: 64), spacing: SIMD3(1, 1, 1))
        v.voxels[5] = .nan
        #expect(throws: VoxplainError("scan.nii: 1 voxels are NaN or infinite; the model cannot take them")) {
            try Preprocessing().apply(to: v, scanName: "scan.nii")
        }
    }
}

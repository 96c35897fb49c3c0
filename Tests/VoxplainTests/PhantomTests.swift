import Foundation
import Testing
import Voxplain
import _TestSupport

struct PhantomTests {
    /// A smaller grid (same field of view) keeps most tests fast; one test runs the default grid.
    static let small = PhantomOptions(size: VoxelDims(64, 64, 48), spacing: SIMD3(1.4, 1.4, 2.5), noduleCount: 4, seed: 3)

    @Test func sameSeedSameResultOtherSeedOther() throws {
        let a = try Phantom.generate(Self.small)
        let b = try Phantom.generate(Self.small)
        #expect(a.ct.voxels == b.ct.voxels && a.mask.voxels == b.mask.voxels && a.nodules == b.nodules)
        var o = Self.small
        o.seed = 4
        let c = try Phantom.generate(o)
        #expect(c.ct.voxels != a.ct.voxels)
        #expect(c.nodules.map(\.centerWorldMM) != a.nodules.map(\.centerWorldMM))
    }

    @Test func defaultGridGeometry() throws {
        let p = try Phantom.generate(PhantomOptions())
        #expect(p.ct.dims == VoxelDims(128, 128, 96))
        #expect(p.ct.spacing == SIMD3(0.7, 0.7, 1.25))
        #expect(p.ct.affine.orientationCode == "LPS")
        #expect(p.ct.sformCode == 1 && p.ct.qformCode == 1)
        let origin = p.ct.affine.apply(SIMD3(0, 0, 0))
        #expect(origin != SIMD3(0, 0, 0))
        // The grid centre is at world (0, 20, -150).
        let c = p.ct.affine.apply(SIMD3(63.5, 63.5, 47.5))
        #expect(abs(c.x) < 1e-9 && abs(c.y - 20) < 1e-9 && abs(c.z + 150) < 1e-9)
        #expect(p.mask.affine == p.ct.affine && p.mask.dims == p.ct.dims)
        #expect(p.ct.datatype == .int16 && p.mask.datatype == .uint8)
        #expect(p.nodules.count == 3)
    }

    @Test(arguments: [UInt64(1), 2, 3, 11, 12])
    func tissuesAndNodulesAreWhereTheyShouldBe(_ seed: UInt64) throws {
        var o = Self.small
        o.seed = seed
        let p = try Phantom.generate(o)
        let ct = p.ct
        // Corner: air. Noise is 12 HU, so +-60 HU is 5 sigma.
        #expect(abs(ct[0, 0, 24] + 1000) < 60)
        // A point in the body between the lungs, in front of the spine (local x = 0, y = +0.25 * 0.36 FOV).
        let ant = try #require(ct.affine.inverse()).apply(SIMD3(0, 20 + 0.09 * 89.6, -150))
        #expect(abs(ct[Int(ant.x.rounded()), Int(ant.y.rounded()), Int(ant.z.rounded())] - 40) < 60)
        #expect(p.nodules.count == 4)
        let inverse = try #require(ct.affine.inverse())
        var labelCounts = [Int](repeating: 0, count: 5)
        for v in p.mask.voxels { labelCounts[Int(v)] += 1 }
        for n in p.nodules {
            #expect((4...30).contains(n.diameterMM), "diameter \(n.diameterMM)")
            #expect(n.voxels == labelCounts[n.label] && n.voxels > 0)
            // World and voxel centres agree through the affine.
            let v = inverse.apply(SIMD3(n.centerWorldMM[0], n.centerWorldMM[1], n.centerWorldMM[2]))
            #expect(abs(v.x - n.centerVoxel[0]) < 1e-9 && abs(v.y - n.centerVoxel[1]) < 1e-9 && abs(v.z - n.centerVoxel[2]) < 1e-9)
            // Labelled voxels: dense (nodule HU, not lung) and near the centre.
            var sum = 0.0, count = 0.0, far = 0.0
            for k in 0..<ct.dims.k { for j in 0..<ct.dims.j { for i in 0..<ct.dims.i where p.mask[i, j, k] == Float(n.label) {
                sum += Double(ct[i, j, k]); count += 1
                let w = ct.affine.apply(SIMD3(Double(i), Double(j), Double(k)))
                let d = w - SIMD3(n.centerWorldMM[0], n.centerWorldMM[1], n.centerWorldMM[2])
                far = max(far, (d * d).sum().squareRoot())
            } } }
            #expect(sum / count > -300, "label \(n.label) mean \(sum / count) HU")
            // Spicules reach at most 2x the largest semi-axis (+ soft edge and a voxel diagonal).
            #expect(far <= 2 * n.semiAxesMM.max()! + 1.5 + 3.2, "label \(n.label) reaches \(far) mm")
            // Every labelled voxel lies inside the nodule's lung.
            let lung = try #require(p.lungs.first { $0.name == n.lung })
            var outside = 0
            for k in 0..<ct.dims.k { for j in 0..<ct.dims.j { for i in 0..<ct.dims.i where p.mask[i, j, k] == Float(n.label) {
                if !lung.contains(world: ct.affine.apply(SIMD3(Double(i), Double(j), Double(k)))) { outside += 1 }
            } } }
            #expect(outside == 0, "label \(n.label): \(outside) voxels outside the \(n.lung) lung")
        }
        // Lung centres are dark (unless a nodule or vessel sits there: allow one of two).
        let dark = p.lungs.filter { l in
            let v = inverse.apply(SIMD3(l.centerWorldMM[0], l.centerWorldMM[1], l.centerWorldMM[2]))
            return ct[Int(v.x.rounded()), Int(v.y.rounded()), Int(v.z.rounded())] < -700
        }
        #expect(!dark.isEmpty)
    }

    @Test func lungsAreLungs() throws {
        let p = try Phantom.generate(Self.small)
        let lung = IntensityStats(p.ct.voxels.filter { $0 < -700 && $0 > -950 })
        // Most lung voxels sit near -850 HU.
        #expect(abs(lung.mean! + 850) < 20)
        #expect(lung.count > p.ct.dims.count / 10)
    }

    @Test func impossibleRequestsFail() {
        #expect(throws: PhantomError.self) { try Phantom.generate(PhantomOptions(noduleCount: 256)) }
        #expect(throws: PhantomError.self) { try Phantom.generate(PhantomOptions(size: VoxelDims(Int.max, 3, 1 << 40))) }
        #expect(throws: PhantomError.self) {
            try Phantom.generate(PhantomOptions(size: VoxelDims(16, 16, 8), spacing: SIMD3(0.7, 0.7, 1.25), noduleCount: 1))
        }
        #expect(throws: PhantomError.self) { try Phantom.generate(PhantomOptions(size: VoxelDims(64, 64, 48), noduleCount: 200)) }
        #expect(throws: PhantomError.self) { try PhantomOptions(size: "128,128", spacing: "1,1,1", noduleCount: 1, seed: 1, noiseHU: 1) }
        #expect(throws: PhantomError.self) { try PhantomOptions(size: "128,128,0", spacing: "1,1,1", noduleCount: 1, seed: 1, noiseHU: 1) }
        #expect(throws: PhantomError.self) { try PhantomOptions(size: "8,8,8", spacing: "1,x,1", noduleCount: 1, seed: 1, noiseHU: 1) }
        #expect(throws: PhantomError.self) { try Phantom.generate(try PhantomOptions(size: "8,8,8", spacing: "0,1,1", noduleCount: 0, seed: 1, noiseHU: 1)) }
    }

    @Test func writesScanMaskAndInfo() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("voxplain-phantom-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try Phantom.generate(Self.small)
        let written = try p.write(ct: dir + "/ct.nii.gz", mask: dir + "/mask.nii.gz")
        #expect(written == [dir + "/ct.nii.gz", dir + "/mask.nii.gz", dir + "/ct.json"])
        let ct = try NIfTIFile.read(dir + "/ct.nii.gz")
        #expect(ct.voxels == p.ct.voxels && ct.datatype == .int16)
        let mask = try NIfTIFile.read(dir + "/mask.nii.gz")
        #expect(mask.voxels == p.mask.voxels && mask.datatype == .uint8)
        struct Info: Decodable { var seed: UInt64; var size: [Int]; var orientation: String; var nodules: [PhantomNodule] }
        let info = try JSONDecoder().decode(Info.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/ct.json")))
        #expect(info.nodules == p.nodules && info.size == [64, 64, 48] && info.orientation == "LPS" && info.seed == 3)
        // Float32 CT, and refusals: the same path twice, a folder under a file.
        try p.write(ct: dir + "/f.nii", info: dir + "/f-info.json", ctDatatype: .float32)
        #expect(try NIfTIFile.read(dir + "/f.nii").datatype == .float32)
        #expect(throws: PhantomError.self) { try p.write(ct: dir + "/a.nii.gz", mask: dir + "/a.nii.gz") }
        #expect(throws: (any Error).self) { try p.write(ct: dir + "/ct.json/x.nii.gz") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/a.nii.gz"))
    }
}

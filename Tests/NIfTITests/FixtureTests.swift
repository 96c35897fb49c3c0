import Foundation
import Testing
@testable import NIfTI
import _TestSupport

/// Every fixture read as nibabel reads it: voxels, affine, codes, spacing, scaling, axis codes.
struct FixtureTests {
    static let cases = ExpectedFixtures.shared.files

    @Test(arguments: cases)
    func readsLikeNibabel(_ e: ExpectedFile) throws {
        let (header, v) = try NIfTIFile.load(fixture(e.file), volume: e.volume)
        #expect(v.dims.array == e.shape, "\(e.file)")
        #expect(header.volumeCount == e.volumes)
        #expect(v.datatype.description == e.datatype)
        #expect(v.format.rawValue == e.format)
        #expect(header.bigEndian == e.big_endian)
        #expect(header.compressed == e.file.hasSuffix(".gz"))
        // Voxels: nibabel's float64 values rounded to Float32 must equal ours exactly (scaling is
        // computed in Double on both sides, then rounded once).
        let expected = e.voxels.map { Float($0) }
        #expect(sameVoxels(v.voxels, expected), "\(e.file): voxels differ")
        // Affine: sform rows are the same stored numbers (exact); qforms go through two quaternion
        // implementations (niftilib, nibabel) in Double from Float32 parameters: 1e-6 mm.
        #expect(v.affine.maxAbsDifference(try Affine(rows: e.affine)) < 1e-6, "\(e.file): affine \(v.affine)")
        #expect(v.sformCode == e.sform_code)
        #expect(v.qformCode == e.qform_code)
        if e.sform_code > 0, let s = e.sform { #expect(v.sform.maxAbsDifference(try Affine(rows: s)) < 1e-6) }
        if e.qform_code > 0, let q = e.qform { #expect(v.qform.maxAbsDifference(try Affine(rows: q)) < 1e-6) }
        #expect(abs(v.spacing.x - e.spacing[0]) < 1e-12 && abs(v.spacing.y - e.spacing[1]) < 1e-12
            && abs(v.spacing.z - e.spacing[2]) < 1e-12)
        #expect(v.scaling?.slope == e.slope)
        #expect(v.scaling?.intercept == e.intercept)
        #expect(v.affine.orientationCode == e.axcodes, "\(e.file)")
        #expect(v.description == e.description)
        #expect(v.intentCode == e.intent_code)
        #expect(Float(v.calMin) == Float(e.cal_min) && Float(v.calMax) == Float(e.cal_max))
        #expect(v.spatialUnits == e.xyz_units)
    }

    /// Write, read, compare every field; for both compressions and both header versions.
    @Test(arguments: cases)
    func roundTrips(_ e: ExpectedFile) throws {
        let original = try NIfTIFile.read(fixture(e.file), volume: e.volume)
        let dir = makeTempDir("roundtrip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for ext in ["nii", "nii.gz"] {
            let out = dir + "/copy." + ext
            try NIfTIFile.write(original, to: out, protecting: [fixture(e.file)])
            let back = try NIfTIFile.read(out)
            #expect(sameVoxels(back.voxels, original.voxels), "\(e.file) -> \(ext): voxels")
            #expect(back.dims == original.dims)
            #expect(back.spacing == original.spacing)
            #expect(back.datatype == original.datatype)
            #expect(back.scaling == original.scaling)
            #expect(back.sformCode == original.sformCode && back.qformCode == original.qformCode)
            // sform: NIfTI-1 stores Float32, which the original already was: exact. qform: re-derived
            // through nifti_dmat44_to_quatern and stored as Float32 quaternion: 1e-5 mm.
            #expect(back.sform.maxAbsDifference(original.sform) < 1e-9)
            #expect(back.qform.maxAbsDifference(original.qform) < 1e-5, "\(e.file): qform \(back.qform) vs \(original.qform)")
            #expect(back.affine.maxAbsDifference(original.affine) < 1e-5)
            #expect(back.spatialUnits == original.spatialUnits && back.temporalUnits == original.temporalUnits)
            #expect(back.description == original.description)
            #expect(back.calMin == original.calMin && back.calMax == original.calMax)
            #expect(back.intentCode == original.intentCode && back.intentName == original.intentName)
            #expect(back.format == original.format)
            #expect(back.affine.orientationCode == original.affine.orientationCode)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
            #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
        }
    }

    @Test(arguments: ExpectedFixtures.shared.orientations.indices)
    func orientationMatchesNibabel(_ n: Int) throws {
        let c = ExpectedFixtures.shared.orientations[n]
        #expect(try Affine(rows: c.affine).orientationCode == c.axcodes, "\(c.affine)")
    }

    @Test func svdReconstructs() {
        let m: [[Double]] = [[0.3, -1.2, 2.0], [4.0, 0.1, -0.5], [1.0, 1.0, 1.0]]
        let (u, s, v) = Orientation.svd3(m)
        for r in 0..<3 {
            for c in 0..<3 {
                let x = (0..<3).map { u[r][$0] * s[$0] * v[c][$0] }.reduce(0, +)
                #expect(abs(x - m[r][c]) < 1e-12)
            }
        }
    }

    @Test func dhwMappingIsTheTranspose() throws {
        let dims = VoxelDims(5, 4, 3)
        let voxels = (0..<dims.count).map { Float($0) }
        let v = try Volume(dims: dims, voxels: voxels, spacing: SIMD3(1, 1, 1))
        let t = v.dhwScalars()
        for i in 0..<5 { for j in 0..<4 { for k in 0..<3 {
            // Tensor [D, H, W] = [5, 4, 3], W fastest: index (d, h, w) = (i, j, k).
            #expect(t[(i * 4 + j) * 3 + k] == v[i, j, k])
        } } }
        let back = try Volume(dhw: t, like: v)
        #expect(back.voxels == v.voxels)
    }

    @Test func mapLikeCopiesGeometryAndSetsHeaderFacts() throws {
        let ct = try NIfTIFile.read(fixture("ct_scaled.nii.gz"))
        let map = try Volume(mapLike: ct, voxels: ct.voxels.map { $0 / 1000 }, description: "voxplain gradcam layer4 class 1")
        let dir = makeTempDir("map")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NIfTIFile.write(map, to: dir + "/map.nii.gz", protecting: [fixture("ct_scaled.nii.gz")])
        let back = try NIfTIFile.read(dir + "/map.nii.gz")
        #expect(back.datatype == .float32 && back.scaling == nil)
        #expect(back.sformCode == ct.sformCode && back.qformCode == ct.qformCode)
        #expect(back.affine.maxAbsDifference(ct.affine) < 1e-5)
        #expect(back.spacing == ct.spacing && back.spatialUnits == ct.spatialUnits)
        #expect(back.description == "voxplain gradcam layer4 class 1")
        #expect(back.intentCode == 1001)
        #expect(Float(back.calMin) == map.voxels.min()! && Float(back.calMax) == map.voxels.max()!)
        #expect(back.voxels == map.voxels)
    }

    /// cal_min and cal_max are the range of the finite voxels (NaN and infinities skipped), 0 and 0
    /// when there is none.
    @Test func mapRangeSkipsNonFiniteVoxels() throws {
        let grid = try Volume(dims: VoxelDims(2, 2, 2), voxels: [Float](repeating: 0, count: 8), spacing: SIMD3(1, 1, 1))
        for (voxels, lo, hi) in [([.nan, 3, -.infinity, 1, 5, .infinity, 2, -1], -1.0, 5.0),
                                 ([Float](repeating: .nan, count: 8), 0, 0), ([7, 7, 7, 7, 7, 7, 7, .nan], 7, 7)] as [([Float], Double, Double)] {
            let map = try Volume(mapLike: grid, voxels: voxels, description: "m")
            #expect(map.calMin == lo && map.calMax == hi, "\(voxels)")
        }
    }

    @Test func longDescriptionIsCutAtACharacterBoundary() throws {
        var v = try Volume(dims: VoxelDims(2, 2, 2), voxels: [Float](repeating: 1, count: 8), spacing: SIMD3(1, 1, 1))
        v.description = String(repeating: "é", count: 60)   // 120 bytes
        let dir = makeTempDir("descrip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NIfTIFile.write(v, to: dir + "/d.nii")
        let back = try NIfTIFile.read(dir + "/d.nii")
        #expect(back.description == String(repeating: "é", count: 39))
    }

    @Test func integerWritesRoundAndRejectOverflow() throws {
        var v = try Volume(dims: VoxelDims(2, 1, 1), voxels: [1.4, -2.6], spacing: SIMD3(1, 1, 1), datatype: .int16)
        let dir = makeTempDir("int")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NIfTIFile.write(v, to: dir + "/r.nii")
        #expect(try NIfTIFile.read(dir + "/r.nii").voxels == [1, -3])
        v.voxels = [1, 40000]
        let e = #expect(throws: NIfTIError.self) { try NIfTIFile.write(v, to: dir + "/o.nii") }
        #expect(e?.description.contains("does not fit datatype int16") == true)
        #expect(!FileManager.default.fileExists(atPath: dir + "/o.nii"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["r.nii"])
    }

    @Test func shearedQformIsRejected() throws {
        var v = try Volume(dims: VoxelDims(2, 2, 2), voxels: [Float](repeating: 0, count: 8), spacing: SIMD3(1, 1, 1))
        v.qform = try Affine(rows: [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
        v.qformCode = 1
        let dir = makeTempDir("shear")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: NIfTIError.self) { try NIfTIFile.write(v, to: dir + "/s.nii") }
    }
}

extension ExpectedFile: CustomTestStringConvertible {
    var testDescription: String { file + (volume.map { " volume \($0)" } ?? "") }
}

struct VolumeInitTests {
    @Test func qformOnlyForRigidAffines() throws {
        let sp = SIMD3(0.5, 1.0, 2.0)
        let rigid = try Affine(rows: [[0, -1.0, 0, 3], [0.5, 0, 0, 4], [0, 0, 2, 5]])
        let v = try Volume(dims: VoxelDims(2, 2, 2), voxels: [Float](repeating: 0, count: 8), spacing: sp, affine: rigid)
        #expect(v.qformCode == 1 && v.sformCode == 1 && v.qform == rigid)
        let sheared = try Affine(rows: [[0.5, 0.3, 0, 3], [0, 1, 0, 4], [0, 0, 2, 5]])
        let w = try Volume(dims: VoxelDims(2, 2, 2), voxels: [Float](repeating: 0, count: 8), spacing: sp, affine: sheared)
        #expect(w.qformCode == 0 && w.sformCode == 1 && w.affine == sheared)
        let dir = makeTempDir("init")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NIfTIFile.write(w, to: dir + "/s.nii")
        #expect(try NIfTIFile.read(dir + "/s.nii").affine.maxAbsDifference(sheared) < 1e-6)
        #expect(throws: NIfTIError.self) {
            try Volume(dims: VoxelDims(2, 2, 2), voxels: [Float](repeating: 0, count: 7), spacing: sp)
        }
        #expect(throws: NIfTIError.self) {
            try Volume(dims: VoxelDims(2, 2, 2), voxels: [Float](repeating: 0, count: 8), spacing: SIMD3(1, 0, 1))
        }
    }
}

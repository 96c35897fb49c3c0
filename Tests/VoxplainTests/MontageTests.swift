import Foundation
import Testing
import Voxplain
import _TestSupport

/// NIfTI-aware montages on a phantom with a Gaussian heat blob at a nodule.
struct MontageTests {
    static let options = PhantomOptions(size: VoxelDims(64, 64, 48), spacing: SIMD3(1.4, 1.4, 2.5), noduleCount: 3, seed: 1)

    /// A Gaussian blob (sigma 6 mm) at the world centre of `nodule`, normalised to [0, 1].
    static func blob(_ p: Phantom, at nodule: Int, sigma: Double = 6) throws -> Volume {
        let c = p.nodules[nodule].centerWorldMM
        var v = [Float](repeating: 0, count: p.ct.dims.count)
        let d = p.ct.dims, a = p.ct.affine
        for k in 0..<d.k { for j in 0..<d.j { for i in 0..<d.i {
            let w = a.apply(SIMD3(Double(i), Double(j), Double(k))) - SIMD3(c[0], c[1], c[2])
            v[i + d.i * (j + d.j * k)] = Float(exp(-(w * w).sum() / (2 * sigma * sigma)))
        } } }
        let mx = v.max() ?? 1
        return try Volume(mapLike: p.ct, voxels: v.map { $0 / mx }, description: "blob")
    }

    @Test func autoSlicesGoThroughLesionsAndPeaks() throws {
        let p = try Phantom.generate(Self.options)
        let heat = try Self.blob(p, at: 0)
        let g = try Montage.grid(of: p.ct)
        let style = try OverlayStyle()
        let centres = Montage.lesionCentres(p.mask)
        #expect(centres.count == 3)
        let slices = Montage.autoSlices(grid: g, axis: .axial, heat: heat.voxels, style: style, truth: p.mask, count: 5)
        #expect(slices.count == 5)
        for n in p.nodules { #expect(slices.contains(Int(n.centerVoxel[2].rounded())) || slices.contains { abs($0 - Int(n.centerVoxel[2].rounded())) < 48 / 20 }) }
        // Without truth, the first slice offered is the peak's.
        let peakOnly = Montage.autoSlices(grid: g, axis: .axial, heat: heat.voxels, style: style, truth: nil, count: 1)
        #expect(peakOnly == [Montage.focus(grid: g, heat: heat.voxels, truth: nil)[2]])
        #expect(Montage.focus(grid: g, heat: nil, truth: p.mask) == centres[0].toInts())
    }

    @Test func montagesAndComparison() throws {
        let p = try Phantom.generate(Self.options)
        let a = try Self.blob(p, at: 0), b = try Self.blob(p, at: 1, sigma: 4)
        var o = MontageOptions()
        o.count = 4
        o.tilePixels = 96
        let m = try Montage.render(scan: p.ct, overlay: a, truth: p.mask, options: o)
        #expect(m.width > 2 * 96 && m.height > 2 * 96)
        o.view = .triplanar
        let tri = try Montage.render(scan: p.ct, overlay: a, options: o)
        #expect(tri.width > 3 * 60)
        o.view = .coronal
        let sheet = try Montage.comparison(scan: p.ct, maps: [("gradcam", a), ("hirescam", b)], options: o)
        #expect(sheet.height > 2 * 60)
        // Window: lung for a CT, percentiles for something that is not.
        #expect(try Montage.window(for: p.ct, nil) == .lung)
        let mr = try Volume(mapLike: p.ct, voxels: p.ct.voxels.map { $0 + 2000 }, description: "")
        #expect(try Montage.window(for: mr, nil) != .lung)
    }

    @Test func gridMismatchNamesBothFiles() throws {
        let p = try Phantom.generate(Self.options)
        let small = try Volume(dims: VoxelDims(32, 32, 24), voxels: [Float](repeating: 0, count: 32 * 32 * 24), spacing: SIMD3(1, 1, 1))
        var o = MontageOptions()
        o.tilePixels = 64
        do {
            _ = try Montage.render(scan: p.ct, overlay: small, options: o, names: ("ct.nii.gz", "map.nii.gz", "t"))
            Issue.record("no error")
        } catch {
            let s = "\(error)"
            #expect(s.contains("ct.nii.gz") && s.contains("map.nii.gz") && s.contains("64x64x48") && s.contains("32x32x24"), "\(s)")
        }
        var shifted = try Self.blob(p, at: 0)
        shifted.sform[0, 3] += 5
        #expect(throws: VoxplainError.self) { try Montage.comparison(scan: p.ct, maps: [("a", shifted)], options: o) }
        o.slices = [48]
        #expect(throws: RenderError.self) { try Montage.render(scan: p.ct, overlay: nil, options: o) }
    }
}

extension SIMD3 where Scalar == Double {
    func toInts() -> [Int] { [Int(x.rounded()), Int(y.rounded()), Int(z.rounded())] }
}

/// The same anatomy stored LPS or RAS draws the same picture: layout comes from the affine.
struct StorageOrderTests {
    /// `v` with its voxels reversed along i and j and the affine changed to match (LPS to RAS).
    static func flippedIJ(_ v: Volume) throws -> Volume {
        let d = v.dims
        var out = [Float](repeating: 0, count: d.count)
        for k in 0..<d.k { for j in 0..<d.j { for i in 0..<d.i {
            out[(d.i - 1 - i) + d.i * ((d.j - 1 - j) + d.j * k)] = v.voxels[i + d.i * (j + d.j * k)]
        } } }
        // world = A [i, j, k] = A' [ni-1-i, nj-1-j, k]: A' = A * F, F flips i and j about the grid.
        let a = v.affine
        var rows = a.rows
        for r in 0..<3 {
            rows[r][3] = a[r, 0] * Double(d.i - 1) + a[r, 1] * Double(d.j - 1) + a[r, 3]
            rows[r][0] = -a[r, 0]
            rows[r][1] = -a[r, 1]
        }
        return try Volume(dims: d, voxels: out, spacing: v.spacing, affine: try Affine(rows: rows))
    }

    /// Unannotated pictures of corresponding slices (slice labels name storage indices, which differ).
    @Test(arguments: [ViewAxis.axial, .coronal, .sagittal])
    func lpsAndRasDrawAlike(_ axis: ViewAxis) throws {
        let p = try Phantom.generate(MontageTests.options)
        let heat = try MontageTests.blob(p, at: 0)
        let ras = try Self.flippedIJ(p.ct), rasHeat = try Self.flippedIJ(heat)
        #expect(ras.affine.orientationCode == "RAS" && p.ct.affine.orientationCode == "LPS")
        let style = try OverlayStyle()
        let a = try SliceRenderer(grid: try Montage.grid(of: p.ct), scan: p.ct.voxels, window: .lung, overlay: heat.voxels, style: style)
        let b = try SliceRenderer(grid: try Montage.grid(of: ras), scan: ras.voxels, window: .lung, overlay: rasHeat.voxels, style: style)
        let la = PlaneLayout(grid: a.grid, axis: axis), lb = PlaneLayout(grid: b.grid, axis: axis)
        #expect(la.letters == lb.letters)
        let c = p.nodules[0].centerVoxel.map { Int($0.rounded()) }
        let sa = c[la.normal], sb = axis == .axial ? sa : la.sliceCount - 1 - sa
        let px = a.pixelMM(for: [axis], tilePixels: 80)
        let ia = try a.picture(axis: axis, slice: sa, pixelMM: px), ib = try b.picture(axis: axis, slice: sb, pixelMM: px)
        #expect(ia.width == ib.width && ia.height == ib.height)
        // Bilinear weights mirror (f and 1 - f), so values can differ by rounding: one grey level.
        let worst = zip(ia.pixels, ib.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(worst <= 1, "largest channel difference \(worst)")
        // And the picture is not trivially uniform: the heat blob is coloured.
        #expect(Set(stride(from: 0, to: ia.pixels.count, by: 3).map { ia.pixels[$0] != ia.pixels[$0 + 2] }).contains(true))
    }
}

/// Snapshot: a small phantom montage against `Tests/Fixtures/render/`, within one grey level.
/// Re-record with `VOXPLAIN_RECORD_SNAPSHOTS=1 swift test --filter SnapshotTests` after an intended
/// change, and look at the new PNGs before committing them.
struct SnapshotTests {
    static func check(_ image: Image, _ name: String) throws {
        let url = fixturesDirectory.appendingPathComponent("render/\(name)")
        if ProcessInfo.processInfo.environment["VOXPLAIN_RECORD_SNAPSHOTS"] == "1" {
            try image.writePNG(to: url.path)
            return
        }
        let expected = try Image.readPNG(url.path)
        #expect(expected.width == image.width && expected.height == image.height, "\(name): size")
        guard expected.width == image.width && expected.height == image.height && expected.format == image.format else { return }
        // Rounding in bilinear sampling or blending may differ by one unit across compilers and CPUs.
        let worst = zip(expected.pixels, image.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(worst <= 1, "\(name): largest channel difference \(worst)")
    }

    @Test func phantomMontages() throws {
        let p = try Phantom.generate(MontageTests.options)
        let heat = try MontageTests.blob(p, at: 0)
        var o = MontageOptions()
        o.count = 2
        o.tilePixels = 96
        try Self.check(try Montage.render(scan: p.ct, overlay: heat, truth: p.mask, options: o, names: ("phantom", "blob", "mask")), "axial.png")
        o.view = .triplanar
        try Self.check(try Montage.render(scan: p.ct, overlay: heat, options: o, names: ("phantom", "blob", "mask")), "triplanar.png")
    }
}

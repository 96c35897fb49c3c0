import Testing
@testable import VoxelRender

/// Plane layouts from affines, orientation letters, square pixels for anisotropic voxels.
struct PlaneTests {
    static func affine(_ cols: [SIMD3<Double>], origin: SIMD3<Double> = .zero) -> [Double] {
        [cols[0].x, cols[1].x, cols[2].x, origin.x, cols[0].y, cols[1].y, cols[2].y, origin.y,
         cols[0].z, cols[1].z, cols[2].z, origin.z, 0, 0, 0, 1]
    }
    static let ras = affine([SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1)])
    static let lps = affine([SIMD3(-1, 0, 0), SIMD3(0, -1, 0), SIMD3(0, 0, 1)])
    /// i along world z (superior), j along world x (left: -x), k along world y (anterior).
    static let permuted = affine([SIMD3(0, 0, 2), SIMD3(-1, 0, 0), SIMD3(0, 1.5, 0)])

    // The letters depend only on the convention, whatever the affine: that is the point.
    @Test(arguments: [ras, lps, permuted])
    func letters(_ a: [Double]) throws {
        let g = try VoxelGrid(dims: [6, 7, 8], affine: a)
        #expect(PlaneLayout(grid: g, axis: .axial).letters == OrientationLetters(left: "R", right: "L", top: "A", bottom: "P"))
        #expect(PlaneLayout(grid: g, axis: .coronal).letters == OrientationLetters(left: "R", right: "L", top: "S", bottom: "I"))
        #expect(PlaneLayout(grid: g, axis: .sagittal).letters == OrientationLetters(left: "A", right: "P", top: "S", bottom: "I"))
    }

    @Test func axesFollowTheAffine() throws {
        let g = try VoxelGrid(dims: [6, 7, 8], affine: Self.permuted)
        let axial = PlaneLayout(grid: g, axis: .axial)
        #expect(axial.normal == 0 && axial.sliceCount == 6)              // i runs along z
        #expect(axial.across == 1 && axial.acrossSign == 1)              // j runs to the patient's left = screen right
        #expect(axial.down == 2 && axial.downSign == -1)                 // k runs anterior = screen up
        #expect(axial.acrossMM == 1 && axial.downMM == 1.5)
        let r = try VoxelGrid(dims: [6, 7, 8], affine: Self.ras)
        let ra = PlaneLayout(grid: r, axis: .axial)
        #expect(ra.across == 0 && ra.acrossSign == -1 && ra.down == 1 && ra.downSign == -1)
    }

    /// One hot voxel lands where the convention puts it, for RAS and LPS grids.
    @Test(arguments: [(ras, 6, 2), (lps, 2, 6)])
    func hotVoxelPixel(_ a: [Double], _ x: Int, _ y: Int) throws {
        let g = try VoxelGrid(dims: [9, 9, 5], affine: a)
        var heat = [Float](repeating: 0, count: g.count)
        heat[g.index(2, 6, 2)] = 1
        let r = try SliceRenderer(grid: g, scan: [Float](repeating: 0, count: g.count), window: try Window(width: 2, level: 0),
                                  overlay: heat, style: try OverlayStyle(alpha: 1, threshold: 0.2))
        let image = try r.picture(axis: .axial, slice: 2, pixelMM: 1)
        #expect(image.width == 9 && image.height == 9)
        #expect(image[x, y] == Colormap.inferno.table[255])
        // Pixel centres sit on voxel centres, so every other pixel is the plain grey of 0 HU (128).
        var others = 0
        for yy in 0..<9 { for xx in 0..<9 where (xx, yy) != (x, y) && image[xx, yy] != RGBA(grey: 128) { others += 1 } }
        #expect(others == 0)
    }

    @Test func squarePixelsForAnisotropicVoxels() throws {
        let a = Self.affine([SIMD3(0.5, 0, 0), SIMD3(0, 0.5, 0), SIMD3(0, 0, 2.5)])
        let g = try VoxelGrid(dims: [20, 10, 4], affine: a)
        let v = [Float](repeating: 1, count: g.count)
        let cor = try SliceRaster(v, grid: g, layout: PlaneLayout(grid: g, axis: .coronal), slice: 3, pixelMM: 0.5)
        #expect(cor.width == 20 && cor.height == 20)   // 10 mm x 10 mm
        let sag = try SliceRaster(v, grid: g, layout: PlaneLayout(grid: g, axis: .sagittal), slice: 3, pixelMM: 1)
        #expect(sag.width == 5 && sag.height == 10)
        #expect(throws: RenderError.self) { try SliceRaster(v, grid: g, layout: PlaneLayout(grid: g, axis: .axial), slice: 4, pixelMM: 1) }
    }

    /// With pixels the size of voxels, both samplers read exactly the voxel that `layout.voxel` names.
    @Test(arguments: [ViewAxis.axial, .coronal, .sagittal])
    func samplerMatchesLayout(_ axis: ViewAxis) throws {
        let g = try VoxelGrid(dims: [5, 6, 7], affine: Self.lps)
        var rng = SystemRandomNumberGenerator()
        let values = (0..<g.count).map { _ in Float.random(in: -1...1, using: &rng) }
        let layout = PlaneLayout(grid: g, axis: axis)
        for interp in [Interpolation.linear, .nearest] {
            let s = try SliceRaster(values, grid: g, layout: layout, slice: 2, pixelMM: 1, interpolation: interp)
            for y in 0..<s.height {
                for x in 0..<s.width {
                    let p = layout.voxel(u: Double(x), v: Double(y), slice: 2)
                    #expect(s.values[y * s.width + x] == values[g.index(Int(p.x), Int(p.y), Int(p.z))])
                }
            }
        }
    }

    /// Halfway between two voxel centres the linear sampler gives the mean (pixel 2x smaller than voxels).
    @Test func bilinearMidpoint() throws {
        let g = try VoxelGrid(dims: [2, 1, 1], affine: Self.lps)
        let s = try SliceRaster([0, 8], grid: g, layout: PlaneLayout(grid: g, axis: .axial), slice: 0, pixelMM: 0.25)
        // Pixel centres at 0.125...1.875 mm; voxel centres at 0.5 and 1.5 mm: u = x / 4 + 0.125 - 0.5, clamped.
        #expect(s.width == 8 && s.height == 4 && Array(s.values.prefix(8)) == [0, 0, 1, 3, 5, 7, 8, 8].map(Float.init))
    }

    @Test func badGrids() {
        #expect(throws: RenderError.self) { try VoxelGrid(dims: [2, 2], affine: Self.ras) }
        #expect(throws: RenderError.self) { try VoxelGrid(dims: [2, 2, 2], affine: Array(Self.ras.prefix(12))) }
        #expect(throws: RenderError.self) { try VoxelGrid(dims: [2, 2, 2], affine: Self.affine([.zero, SIMD3(0, 1, 0), SIMD3(0, 0, 1)])) }
    }
}

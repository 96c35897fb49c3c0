import CPNG
import Foundation
import Testing
@testable import VoxelRender

/// PNG files written by VoxelRender and decoded here with libpng directly.
struct PNGTests {
    /// Decodes `path` with libpng's simplified reader into RGB bytes.
    static func decode(_ path: String) throws -> (width: Int, height: Int, rgb: [UInt8]) {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, path) != 0 else { throw RenderError("libpng cannot open \(path)") }
        image.format = UInt32(PNG_FORMAT_RGB)
        var buffer = [UInt8](repeating: 0, count: Int(image.width * image.height * 3))
        let ok = buffer.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard ok != 0 else { throw RenderError("libpng cannot decode \(path)") }
        return (Int(image.width), Int(image.height), buffer)
    }

    static func tempPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("voxelrender-\(UUID().uuidString.prefix(8))-\(name)").path
    }

    @Test func roundTrip() throws {
        var image = try Image(width: 5, height: 3)
        image[0, 0] = RGBA(255, 0, 0)
        image[4, 2] = RGBA(1, 2, 3)
        image[2, 1] = RGBA(10, 200, 30)
        let path = Self.tempPath("rt.png")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try image.writePNG(to: path)
        let d = try Self.decode(path)
        #expect(d.width == 5 && d.height == 3)
        #expect(Array(d.rgb[0..<3]) == [255, 0, 0])
        #expect(Array(d.rgb[(2 * 5 + 4) * 3..<(2 * 5 + 4) * 3 + 3]) == [1, 2, 3])
        #expect(Array(d.rgb[(1 * 5 + 2) * 3..<(1 * 5 + 2) * 3 + 3]) == [10, 200, 30])
        #expect(d.rgb == image.pixels)
        #expect(try Image.readPNG(path) == image)
        // RGBA keeps alpha.
        var rgba = try Image(width: 2, height: 2, format: .rgba, fill: RGBA(9, 8, 7, 100))
        rgba[1, 1] = RGBA(0, 0, 0, 0)
        try rgba.writePNG(to: path)
        #expect(try Image.readPNG(path) == rgba)
        // No temporary file is left beside it.
        let folder = (path as NSString).deletingLastPathComponent
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(".") && $0.contains((path as NSString).lastPathComponent) }
        #expect(leftovers.isEmpty)
    }

    @Test func unwritableFolder() throws {
        let image = try Image(width: 2, height: 2)
        #expect(throws: RenderError.self) { try image.writePNG(to: "/nonexistent-folder-voxplain/x.png") }
        #expect(throws: RenderError.self) { try Image.readPNG("/nonexistent-folder-voxplain/x.png") }
        #expect(throws: RenderError.self) { try Image(width: 0, height: 2) }
    }

    /// A map with one hot voxel: the top colour of the colormap at the expected pixel of the PNG,
    /// through the whole montage path (tiles, sheet, colour bar).
    @Test(arguments: [Colormap.inferno, .turbo, .viridis])
    func hotVoxelInMontage(_ cmap: Colormap) throws {
        let g = try VoxelGrid(dims: [9, 9, 5], affine: PlaneTests.lps)
        var heat = [Float](repeating: 0, count: g.count)
        heat[g.index(2, 6, 3)] = 1
        let r = try SliceRenderer(grid: g, scan: [Float](repeating: -600, count: g.count), window: .lung, overlay: heat,
                                  style: try OverlayStyle(colormap: cmap, alpha: 1, threshold: 0.2))
        let path = Self.tempPath("hot.png")
        defer { try? FileManager.default.removeItem(atPath: path) }
        // Tiles of 45 pixels: 5 pixels per voxel; a single tile starts at the sheet margin (8, 8).
        // Pixel x = 5 u + 2 has its centre on voxel centre u, where bilinear heat is exactly the voxel's.
        try r.montage(axis: .axial, slices: [3], tilePixels: 45).writePNG(to: path)
        let d = try Self.decode(path)
        func px(_ x: Int, _ y: Int) -> [UInt8] { let o = (y * d.width + x) * 3; return Array(d.rgb[o..<o + 3]) }
        let top = cmap.table[255]
        #expect(px(8 + 12, 8 + 32) == [top.r, top.g, top.b])
        // The lung window maps -600 HU to 128: voxel (6, 4), away from the hot one and the letters, is that grey.
        #expect(px(8 + 32, 8 + 22) == [128, 128, 128])
        // The colour bar (right of the tile, its bar from y = 8 + 32) starts with a colour from the
        // top of the table (its top row's centre is a little below 1: entry 254 for a 112-pixel bar).
        let topColours = Set((250...255).map { [cmap.table[$0].r, cmap.table[$0].g, cmap.table[$0].b] })
        #expect((8 + 45..<d.width).map { px($0, 8 + 32) }.contains { topColours.contains($0) })
    }
}

import Testing
@testable import VoxelRender

/// Half-block text, key parsing, the bitmap font, colour bars and heat peaks.
struct TerminalAndTextTests {
    /// Reads half-block text back into cells (fg, bg) per line; bg nil for the default background.
    static func parse(_ text: String) -> [[(fg: RGBA, bg: RGBA?)]] {
        var lines: [[(fg: RGBA, bg: RGBA?)]] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            var cells: [(fg: RGBA, bg: RGBA?)] = []
            var fg = RGBA.white, bg: RGBA? = nil
            var s = Substring(line)
            while !s.isEmpty {
                if s.hasPrefix("\u{1B}[") {
                    let end = s.firstIndex(of: "m")!
                    let params = s[s.index(s.startIndex, offsetBy: 2)..<end].split(separator: ";").compactMap { UInt8($0) }
                    if params.count == 5 && params[0] == 38 { fg = RGBA(params[2], params[3], params[4]) }
                    if params.count == 5 && params[0] == 48 { bg = RGBA(params[2], params[3], params[4]) }
                    if params == [49] { bg = nil }
                    s = s[s.index(after: end)...]
                } else {
                    #expect(s.first == "\u{2580}")
                    cells.append((fg, bg))
                    s = s.dropFirst()
                }
            }
            lines.append(cells)
        }
        return lines
    }

    @Test func halfBlocks() throws {
        var image = try Image(width: 3, height: 3)
        for y in 0..<3 { for x in 0..<3 { image[x, y] = RGBA(UInt8(10 * x), UInt8(10 * y), 7) } }
        let text = TerminalView.halfBlocks(image)
        #expect(text.hasSuffix("\u{1B}[0m\n"))
        let lines = Self.parse(text)
        #expect(lines.count == 2 && lines.allSatisfy { $0.count == 3 })
        for x in 0..<3 {
            #expect(lines[0][x].fg == image[x, 0] && lines[0][x].bg == image[x, 1])
            #expect(lines[1][x].fg == image[x, 2] && lines[1][x].bg == nil)
        }
    }

    @Test func frameFitsTheWidth() throws {
        let g = try VoxelGrid(dims: [40, 20, 6], affine: PlaneTests.affine([SIMD3(-1, 0, 0), SIMD3(0, -2, 0), SIMD3(0, 0, 3)]))
        let scan = (0..<g.count).map { Float($0 % 40) * 50 - 1000 }
        let r = try SliceRenderer(grid: g, scan: scan, window: .lung, style: try OverlayStyle())
        let viewer = try TerminalViewer(renderer: r, axis: .axial, slice: nil, focus: nil)
        #expect(viewer.slice == 3)
        let frame = try viewer.frame(columns: 20, rows: nil)
        let lines = frame.split(separator: "\n").map(String.init)
        // 40 mm x 40 mm at 2 mm per pixel: 20 x 20 pixels, 10 text rows, then the status line.
        let cells = Self.parse(lines.dropLast().joined(separator: "\n") + "\n")
        #expect(cells.count == 10 && cells.allSatisfy { $0.count == 20 })
        #expect(lines.last?.hasPrefix("axial k=3  z=9.0 mm (0-5)  left R right L top A bottom P") == true)
        // i runs to the patient's left = screen right here (LPS), so grey grows left to right.
        #expect(cells[0][0].fg.r < cells[0][19].fg.r)
        #expect(throws: RenderError.self) { try TerminalViewer(renderer: r, axis: .sagittal, slice: 40, focus: nil) }
    }

    @Test func keys() {
        let keys = TerminalKey.parse([106, 27, 91, 65, 27, 79, 66, 3, 113, 27, 99])
        #expect(keys == [.character("j"), .up, .down, .interrupt, .character("q"), .escape, .character("c")])
    }

    @Test func viewerKeys() throws {
        let g = try VoxelGrid(dims: [4, 5, 6], affine: PlaneTests.ras)
        let r = try SliceRenderer(grid: g, scan: [Float](repeating: 0, count: g.count), window: .lung, style: try OverlayStyle())
        var v = try TerminalViewer(renderer: r, axis: .axial, slice: 5, focus: nil)
        #expect(v.handle(.up) && v.slice == 5)          // clamped at the last slice
        #expect(v.handle(.character("j")) && v.slice == 4)
        #expect(v.handle(.character("c")) && v.axis == .coronal && v.slice == 2)
        #expect(!v.handle(.character("q")) && !v.handle(.interrupt))
    }

    @Test func columns() {
        #expect(TerminalView.columns(explicit: 33, environment: ["COLUMNS": "99"]) == 33)
        #expect(TerminalView.columns(explicit: nil, environment: ["COLUMNS": "99"]) == 99)
    }

    @Test func font() throws {
        #expect(BitmapFont.size(of: "AB", scale: 2) == (22, 16))
        var image = try Image(width: 12, height: 10)
        BitmapFont.draw("I", in: &image, x: 1, y: 1, scale: 1, color: .white, outline: nil)
        // "I" is 0x00 0x41 0x7F 0x41 0x00: its middle column is rows 0...6.
        for row in 0..<7 { #expect(image[1 + 2, 1 + row] == .white) }
        #expect(image[1 + 2, 1 + 7] == .black && image[1, 1] == .black && image[1 + 1, 1] == .white)
        #expect(BitmapFont.isSet("\u{E9}", column: 1, row: 0) == BitmapFont.isSet("?", column: 1, row: 0))
    }

    @Test func formatting() {
        #expect(formatNumber(-150, decimals: 1) == "-150.0")
        #expect(formatNumber(0.125, decimals: 2) == "0.13" || formatNumber(0.125, decimals: 2) == "0.12")
        #expect(formatNumber(-0.01, decimals: 1) == "0.0")
        #expect(formatNumber(2.5, decimals: 0) == "3" || formatNumber(2.5, decimals: 0) == "2")
        #expect(formatNumber(1.05, decimals: 3) == "1.050")
    }

    @Test func colorBar() throws {
        let bar = ColorBar(style: try OverlayStyle(colormap: .viridis, threshold: 0.2, low: 0, high: 2))
        #expect(bar.ticks == [0, 0.5, 1, 1.5, 2])
        let image = try bar.render(height: 200)
        #expect(image.height == 200)
        let column = (0..<image.height).map { image[3, $0] }
        #expect(column.contains(Colormap.viridis.table[255]))
        #expect(!column.contains(Colormap.viridis.table[0]))   // below the threshold: dimmed
    }

    @Test func peaks() {
        let dims = [10, 10, 10]
        var v = [Float](repeating: 0, count: 1000)
        func set(_ i: Int, _ j: Int, _ k: Int, _ x: Float) { v[i + 10 * (j + 10 * k)] = x }
        set(2, 2, 2, 1); set(3, 2, 2, 0.9)     // one blob: one peak
        set(7, 7, 7, 0.5)                      // a second, weaker
        set(8, 8, 8, 0.1)                      // below the minimum
        let p = HeatPeaks.localMaxima(v, dims: dims, minimum: 0.2, limit: 10)
        #expect(p.map(\.voxel) == [[2, 2, 2], [7, 7, 7]])
        #expect(HeatPeaks.argmax(v, dims: dims) == [2, 2, 2])
        #expect(HeatPeaks.argmax([.nan], dims: [1, 1, 1]) == nil)
        let g = try! VoxelGrid(dims: dims, affine: PlaneTests.ras)
        let s = HeatPeaks.chooseSlices(layout: PlaneLayout(grid: g, axis: .axial), lesions: [SIMD3(5, 5, 4.6)], peaks: p.map(\.voxel), count: 4)
        #expect(s.count == 4 && s.contains(5) && s.contains(2) && s.contains(7) && s == s.sorted())
    }
}

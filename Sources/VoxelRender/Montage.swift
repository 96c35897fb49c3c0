/// Montages: grids of annotated slices, tri-planar views and comparison sheets.
extension SliceRenderer {
    /// A grid of `slices` along `axis` (ceil(sqrt(n)) columns unless given), each tile `tilePixels`
    /// on its longer side at the plane's physical aspect, with a colour bar when there is a heatmap.
    /// - Throws: `RenderError` when a slice is outside the grid or the sheet is too large.
    public func montage(axis: ViewAxis, slices: [Int], columns: Int? = nil, tilePixels: Int = 256,
                        title: String? = nil) throws -> Image {
        let layout = PlaneLayout(grid: grid, axis: axis)
        for s in slices where !(0..<layout.sliceCount).contains(s) {
            throw RenderError("--slices: \(s) is outside the \(axis.rawValue) range 0...\(layout.sliceCount - 1)")
        }
        let px = pixelMM(for: [axis], tilePixels: tilePixels)
        let tiles = try slices.map { try tile(axis: axis, slice: $0, pixelMM: px) }
        let cols = max(1, columns ?? Int(Double(slices.count).squareRoot().rounded(.up)))
        let rows = stride(from: 0, to: tiles.count, by: cols).map { Array(tiles[$0..<min(tiles.count, $0 + cols)]) }
        return try Sheet.compose(rows: rows, title: title, colorBar: overlay == nil ? nil : ColorBar(style: style))
    }

    /// Axial, coronal and sagittal slices through voxel `point` (i, j, k), side by side at one pixel
    /// size, with a cross-hair at the point.
    /// - Throws: `RenderError` when the point is outside the grid.
    public func triplanar(at point: [Int], tilePixels: Int = 256, title: String? = nil) throws -> Image {
        guard point.count == 3, (0..<3).allSatisfy({ (0..<grid.dims[$0]).contains(point[$0]) }) else {
            throw RenderError("point \(point) is outside the grid \(grid.dims)")
        }
        let axes = ViewAxis.allCases
        let px = pixelMM(for: axes, tilePixels: tilePixels)
        let p = SIMD3<Double>(point.map(Double.init))
        let tiles = try axes.map { a in
            try tile(axis: a, slice: point[PlaneLayout(grid: grid, axis: a).normal], pixelMM: px, cross: p)
        }
        return try Sheet.compose(rows: [tiles], title: title, colorBar: overlay == nil ? nil : ColorBar(style: style))
    }

    /// A comparison sheet: one row per map (its name on the left), one column per slice, every map
    /// drawn with this renderer's style (one shared scale and colour bar); this renderer's own
    /// overlay is ignored.
    /// - Throws: `RenderError` when a map's size differs from the grid or a slice is outside it.
    public func comparison(maps: [(name: String, values: [Float])], axis: ViewAxis, slices: [Int],
                           tilePixels: Int = 192, title: String? = nil) throws -> Image {
        guard !maps.isEmpty else { throw RenderError("comparison: no maps given") }
        let layout = PlaneLayout(grid: grid, axis: axis)
        for s in slices where !(0..<layout.sliceCount).contains(s) {
            throw RenderError("--slices: \(s) is outside the \(axis.rawValue) range 0...\(layout.sliceCount - 1)")
        }
        let px = pixelMM(for: [axis], tilePixels: tilePixels)
        var rows: [[Image]] = []
        for map in maps {
            guard map.values.count == grid.count else {
                throw RenderError("\(map.name): \(map.values.count) values do not fill the grid \(grid.dims)")
            }
            var r = self
            r.overlay = map.values
            rows.append(try slices.map { try r.tile(axis: axis, slice: $0, pixelMM: px) })
        }
        return try Sheet.compose(rows: rows, rowLabels: maps.map(\.name), title: title, colorBar: ColorBar(style: style))
    }
}

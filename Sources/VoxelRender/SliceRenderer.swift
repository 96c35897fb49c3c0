/// How a heatmap is drawn over the greyscale scan.
public struct OverlayStyle: Equatable, Sendable {
    /// The colormap (inferno by default).
    public var colormap: Colormap
    /// Opacity of the colour over the grey (0...1; 0.4 by default).
    public var alpha: Float
    /// Heat below this fraction of the scale (0...1) gets no colour (0.2 by default).
    public var threshold: Float
    /// The heat shown at the bottom and at the top of the colormap.
    public var low: Float, high: Float

    /// A style; heat `v` maps to `t = (v - low) / (high - low)` on the colormap.
    /// - Throws: `RenderError` naming `--alpha` or `--threshold` when out of 0...1, or when `low >= high`.
    public init(colormap: Colormap = .inferno, alpha: Float = 0.4, threshold: Float = 0.2, low: Float = 0, high: Float = 1) throws {
        guard alpha >= 0, alpha <= 1 else { throw RenderError("--alpha \(alpha): must be between 0 and 1") }
        guard threshold >= 0, threshold <= 1 else { throw RenderError("--threshold \(threshold): must be between 0 and 1") }
        guard low.isFinite, high.isFinite, low < high else { throw RenderError("heat scale \(low)...\(high) must be finite and increasing") }
        self.colormap = colormap
        self.alpha = alpha
        self.threshold = threshold
        self.low = low
        self.high = high
    }

    /// The position of `v` on the colormap: `(v - low) / (high - low)`, not clamped.
    @inlinable public func fraction(_ v: Float) -> Float { (v - low) / (high - low) }

    /// The colour of grey level `grey` under heat `v`: `(1 - alpha) * grey + alpha * colour`, rounded,
    /// when `fraction(v) >= threshold`; plain grey otherwise (and for NaN heat).
    public func blend(grey: UInt8, heat v: Float, table: [RGBA]) -> RGBA {
        let t = fraction(v)
        guard t >= threshold, t == t else { return RGBA(grey: grey) }
        let c = table[Colormap.index(t)]
        func mix(_ c: UInt8) -> UInt8 { UInt8(((1 - alpha) * Float(grey) + alpha * Float(c)).rounded()) }
        return RGBA(mix(c.r), mix(c.g), mix(c.b))
    }
}

/// Draws slices of a scan, with an optional heatmap and truth mask, as annotated tiles.
public struct SliceRenderer: Sendable {
    /// The grid of every array below.
    public let grid: VoxelGrid
    /// Scan intensities, i fastest.
    public let scan: [Float]
    /// The grey window.
    public var window: Window
    /// Heat on the same grid, or nil for the scan alone.
    public var overlay: [Float]?
    /// How heat is drawn.
    public var style: OverlayStyle
    /// A label mask on the same grid (0 background): lesion outlines are drawn in green.
    public var truth: [Float]?

    /// Colour of truth-mask outlines.
    public static let outlineColor = RGBA(0, 255, 96)
    /// Colour of the cross-hair in tri-planar views.
    public static let crossColor = RGBA(0, 200, 255)

    /// A renderer; every array holds `grid.count` values.
    /// - Throws: `RenderError` when a count differs from the grid.
    public init(grid: VoxelGrid, scan: [Float], window: Window, overlay: [Float]? = nil, style: OverlayStyle,
                truth: [Float]? = nil) throws {
        for (name, a) in [("scan", scan), ("overlay", overlay), ("truth", truth)] as [(String, [Float]?)] {
            if let a, a.count != grid.count {
                throw RenderError("\(name): \(a.count) values do not fill the grid \(grid.dims)")
            }
        }
        self.grid = grid
        self.scan = scan
        self.window = window
        self.overlay = overlay
        self.style = style
        self.truth = truth
    }

    /// The pixel size that makes the largest of `axes`' planes `tilePixels` wide or high.
    public func pixelMM(for axes: [ViewAxis], tilePixels: Int) -> Double {
        let extents = axes.map { a -> Double in let e = PlaneLayout(grid: grid, axis: a).extentMM; return max(e.width, e.height) }
        return (extents.max() ?? 1) / Double(max(1, tilePixels))
    }

    /// The slice picture without annotations: grey scan, heat blended over it, truth outlines.
    /// - Throws: `RenderError` when the slice is outside the grid.
    public func picture(axis: ViewAxis, slice: Int, pixelMM: Double) throws -> Image {
        let layout = PlaneLayout(grid: grid, axis: axis)
        let s = try SliceRaster(scan, grid: grid, layout: layout, slice: slice, pixelMM: pixelMM)
        let heat = try overlay.map { try SliceRaster($0, grid: grid, layout: layout, slice: slice, pixelMM: pixelMM) }
        let labels = try truth.map { try SliceRaster($0, grid: grid, layout: layout, slice: slice, pixelMM: pixelMM, interpolation: .nearest) }
        var image = try Image(width: s.width, height: s.height)
        let table = style.colormap.table
        for y in 0..<s.height {
            for x in 0..<s.width {
                let n = y * s.width + x
                let g = window.grey(s.values[n])
                image[x, y] = heat.map { style.blend(grey: g, heat: $0.values[n], table: table) } ?? RGBA(grey: g)
            }
        }
        if let labels {
            // A labelled pixel is on the outline when a 4-neighbour has another label (or is outside).
            let w = s.width, h = s.height
            for y in 0..<h {
                for x in 0..<w {
                    let l = labels.values[y * w + x]
                    guard l != 0 else { continue }
                    func differs(_ nx: Int, _ ny: Int) -> Bool {
                        nx < 0 || ny < 0 || nx >= w || ny >= h || labels.values[ny * w + nx] != l
                    }
                    let edge = differs(x - 1, y) || differs(x + 1, y) || differs(x, y - 1) || differs(x, y + 1)
                    if edge { image[x, y] = SliceRenderer.outlineColor }
                }
            }
        }
        return image
    }

    /// A tile: the picture with the slice label (`k=48  z=-150.0 mm`: voxel index and world position
    /// of the slice along the normal world axis, RAS mm) at the top left and the orientation letters
    /// on the four sides; an optional cross-hair through `cross` (fractional voxel).
    /// - Throws: `RenderError` when the slice is outside the grid.
    public func tile(axis: ViewAxis, slice: Int, pixelMM: Double, cross: SIMD3<Double>? = nil) throws -> Image {
        var image = try picture(axis: axis, slice: slice, pixelMM: pixelMM)
        let layout = PlaneLayout(grid: grid, axis: axis)
        if let cross {
            let r = try SliceRaster([Float](repeating: 0, count: grid.count), grid: grid, layout: layout, slice: slice, pixelMM: pixelMM)
            let p = r.pixel(of: cross)
            let gap = max(4, image.width / 24)
            for x in 0..<image.width where abs(x - p.x) > gap { image.plot(x, p.y, SliceRenderer.crossColor) }
            for y in 0..<image.height where abs(y - p.y) > gap { image.plot(p.x, y, SliceRenderer.crossColor) }
        }
        annotate(&image, layout: layout, slice: slice)
        return image
    }

    /// The label of a slice: `k=48  z=-150.0 mm`, or `k=48 z=-150.0` when `compact`.
    public func sliceLabel(_ layout: PlaneLayout, slice: Int, compact: Bool = false) -> String {
        var centre = SIMD3<Double>((0..<3).map { Double(grid.dims[$0] - 1) / 2 })
        centre[layout.normal] = Double(slice)
        let position = grid.world(centre)[layout.worldNormal]
        let axis = ["x", "y", "z"][layout.worldNormal], mm = formatNumber(position, decimals: 1)
        return compact ? "\(layout.normalName)=\(slice) \(axis)=\(mm)" : "\(layout.normalName)=\(slice)  \(axis)=\(mm) mm"
    }

    func annotate(_ image: inout Image, layout: PlaneLayout, slice: Int) {
        // Double-size text on large tiles when the slice label still fits across the tile; on small
        // tiles a compact label ("k=36 z=-118.8") when the full one does not fit.
        var label = sliceLabel(layout, slice: slice)
        if BitmapFont.size(of: label).width + 6 > image.width { label = sliceLabel(layout, slice: slice, compact: true) }
        let scale = max(image.width, image.height) >= 256 && BitmapFont.size(of: label, scale: 2).width + 12 <= image.width ? 2 : 1
        let pad = 3 * scale
        BitmapFont.draw(label, in: &image, x: pad, y: pad, scale: scale, color: RGBA(255, 255, 160))
        let l = layout.letters, (cw, ch) = BitmapFont.size(of: "R", scale: scale)
        let midX = (image.width - cw) / 2, midY = (image.height - ch) / 2
        BitmapFont.draw(l.left, in: &image, x: pad, y: midY, scale: scale)
        BitmapFont.draw(l.right, in: &image, x: image.width - cw - pad, y: midY, scale: scale)
        BitmapFont.draw(l.top, in: &image, x: midX, y: pad + (midX < BitmapFont.size(of: label, scale: scale).width + 2 * pad + cw ? ch + pad : 0), scale: scale)
        BitmapFont.draw(l.bottom, in: &image, x: midX, y: image.height - ch - pad, scale: scale)
    }
}

/// `v` with `decimals` digits after the point ("-150.0"), without Foundation's locale.
public func formatNumber(_ v: Double, decimals: Int) -> String {
    guard v.isFinite else { return String(v) }
    var p = 1.0
    for _ in 0..<decimals { p *= 10 }
    let scaled = (abs(v) * p).rounded()
    let whole = Int(scaled / p), frac = Int(scaled - Double(whole) * p)
    let sign = v < 0 && scaled != 0 ? "-" : ""
    guard decimals > 0 else { return sign + String(whole) }
    let f = String(frac)
    return sign + String(whole) + "." + String(repeating: "0", count: decimals - f.count) + f
}

/// A vertical colour bar with tick values, for the right side of a sheet.
public struct ColorBar: Sendable {
    /// The colours and scale (the threshold is marked; colours below it are dimmed: they are not drawn).
    public var style: OverlayStyle
    /// The caption above the bar ("heat").
    public var caption: String
    /// Number of tick intervals (4: ticks at 0, 1/4, 1/2, 3/4 and 1 of the scale).
    public var intervals: Int

    /// A colour bar for `style`.
    public init(style: OverlayStyle, caption: String = "heat", intervals: Int = 4) {
        self.style = style
        self.caption = caption
        self.intervals = max(1, intervals)
    }

    /// The tick values from low to high.
    public var ticks: [Float] {
        (0...intervals).map { style.low + (style.high - style.low) * Float($0) / Float(intervals) }
    }

    /// The bar `height` pixels tall (top = high), with tick labels at font `scale`.
    /// - Throws: `RenderError` when `height` is out of range.
    public func render(height: Int, scale: Int = 1) throws -> Image {
        let s = max(1, scale)
        let barW = 12 * s, tick = 4 * s, pad = 4 * s
        let labels = ticks.map { formatNumber(Double($0), decimals: 2) }
        let labelW = labels.map { BitmapFont.size(of: $0, scale: s).width }.max() ?? 0
        let captionH = BitmapFont.glyphHeight * s + pad
        let top = captionH + BitmapFont.glyphHeight * s / 2, barH = max(16, height - top - BitmapFont.glyphHeight * s)
        let width = max(barW + tick + pad + labelW, BitmapFont.size(of: caption, scale: s).width) + pad
        var image = try Image(width: width, height: top + barH + BitmapFont.glyphHeight * s)
        BitmapFont.draw(caption, in: &image, x: 0, y: 0, scale: s)
        let table = style.colormap.table
        for y in 0..<barH {
            let t = 1 - (Float(y) + 0.5) / Float(barH)
            var c = table[Colormap.index(t)]
            if t < style.threshold { c = RGBA(c.r / 3, c.g / 3, c.b / 3) }
            image.fill(x: 0, y: top + y, width: barW, height: 1, c)
        }
        if style.threshold > 0 {
            let y = top + Int(((1 - style.threshold) * Float(barH)).rounded())
            image.fill(x: 0, y: y, width: barW + tick, height: max(1, s / 2), .white)
        }
        for (n, label) in labels.enumerated() {
            let y = top + Int((Float(barH - 1) * (1 - Float(n) / Float(intervals))).rounded())
            image.fill(x: barW, y: y, width: tick, height: max(1, s / 2 + 1) - (s > 1 ? 0 : 0), .white)
            BitmapFont.draw(label, in: &image, x: barW + tick + pad, y: y - BitmapFont.glyphHeight * s / 2, scale: s, outline: nil)
        }
        return image
    }
}

/// Lays tiles out in a grid with optional row labels, a title and a colour bar.
public enum Sheet {
    /// A grid of `rows` (each a row of tiles; tiles are centred in cells of the largest tile's size),
    /// row labels on the left, a title on top and a colour bar on the right; black background.
    /// - Throws: `RenderError` when there are no tiles or the sheet would be too large.
    public static func compose(rows: [[Image]], rowLabels: [String]? = nil, title: String? = nil,
                               colorBar: ColorBar? = nil, gap: Int = 4, fontScale: Int = 2) throws -> Image {
        let tiles = rows.flatMap { $0 }
        guard !tiles.isEmpty else { throw RenderError("nothing to draw: no slices") }
        let cellW = tiles.map(\.width).max() ?? 1, cellH = tiles.map(\.height).max() ?? 1
        let columns = rows.map(\.count).max() ?? 1
        let margin = 8, s = fontScale
        let labelW = (rowLabels ?? []).map { BitmapFont.size(of: $0, scale: s).width }.max().map { $0 + margin } ?? 0
        let titleH = title.map { _ in BitmapFont.glyphHeight * s + margin } ?? 0
        let gridW = columns * cellW + (columns - 1) * gap, gridH = rows.count * cellH + (rows.count - 1) * gap
        // The bar spans the grid, but at least 160 pixels (so five tick labels never touch) and at most 512.
        let bar = try colorBar.map { try $0.render(height: min(512, max(160, gridH)), scale: s) }
        let titleW = title.map { BitmapFont.size(of: $0, scale: s).width } ?? 0
        let width = max(margin + labelW + gridW + (bar.map { margin * 2 + $0.width } ?? 0), margin + titleW) + margin
        let height = margin + titleH + max(gridH, bar?.height ?? 0) + margin
        guard width <= Image.maxSide, height <= Image.maxSide else {
            throw RenderError("the sheet would be \(width)x\(height) pixels (at most \(Image.maxSide)); use fewer slices or smaller tiles")
        }
        var sheet = try Image(width: width, height: height)
        if let title { BitmapFont.draw(title, in: &sheet, x: margin, y: margin, scale: s, outline: nil) }
        let x0 = margin + labelW, y0 = margin + titleH
        for (r, row) in rows.enumerated() {
            let cy = y0 + r * (cellH + gap)
            if let rowLabels, r < rowLabels.count {
                BitmapFont.draw(rowLabels[r], in: &sheet, x: margin, y: cy + (cellH - BitmapFont.glyphHeight * s) / 2, scale: s, outline: nil)
            }
            for (c, tile) in row.enumerated() {
                let cx = x0 + c * (cellW + gap)
                sheet.draw(tile, x: cx + (cellW - tile.width) / 2, y: cy + (cellH - tile.height) / 2)
            }
        }
        if let bar { sheet.draw(bar, x: x0 + gridW + 2 * margin, y: y0) }
        return sheet
    }
}

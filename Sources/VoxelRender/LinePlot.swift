/// A line chart: several named series on shared axes, with a grid, tick values and a legend, drawn
/// with the bitmap font. Used for perturbation curves (MoRF and LeRF of every method).
public struct LinePlot: Sendable {
    /// One line: a name, its y values at x = 0, 1, ..., and whether it is dashed.
    public struct Series: Sendable {
        public var name: String
        public var values: [Double]
        public var color: RGBA
        public var dashed: Bool
        public init(name: String, values: [Double], color: RGBA, dashed: Bool = false) {
            self.name = name; self.values = values; self.color = color; self.dashed = dashed
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    /// Colour-blind-safe line colours (Okabe and Ito 2008), cycled.
    public static let palette: [RGBA] = [
        RGBA(230, 159, 0), RGBA(86, 180, 233), RGBA(0, 158, 115), RGBA(240, 228, 66), RGBA(0, 114, 178),
        RGBA(213, 94, 0), RGBA(204, 121, 167), RGBA(255, 255, 255), RGBA(153, 153, 153),
    ]

    /// Draws the chart.
    /// - Throws: `RenderError` when there is nothing finite to plot.
    public func render(width: Int = 900, height: Int = 560) throws -> Image {
        let finite = series.flatMap(\.values).filter(\.isFinite)
        guard let lo0 = finite.min(), let hi0 = finite.max(), let n = series.map(\.values.count).max(), n > 1 else {
            throw RenderError("plot '\(title)': no finite values to draw")
        }
        let pad = (hi0 - lo0) * 0.05 + (hi0 == lo0 ? 1 : 0)
        let lo = lo0 - pad, hi = hi0 + pad
        var img = try Image(width: width, height: height, format: .rgb, fill: RGBA(24, 24, 24))
        let left = 80, right = width - 220, top = 40, bottom = height - 60
        func px(_ i: Double) -> Int { left + Int((i / Double(n - 1)) * Double(right - left)) }
        func py(_ v: Double) -> Int { bottom - Int((v - lo) / (hi - lo) * Double(bottom - top)) }
        BitmapFont.draw(title, in: &img, x: left, y: 12, scale: 2, outline: nil)
        // Grid and ticks: five on each axis.
        for t in 0...4 {
            let v = lo + (hi - lo) * Double(t) / 4, y = py(v)
            img.fill(x: left, y: y, width: right - left, height: 1, RGBA(60, 60, 60))
            BitmapFont.draw(String(format: "%.3g", v), in: &img, x: 8, y: y - 4, outline: nil)
            let i = Double(n - 1) * Double(t) / 4, x = px(i)
            img.fill(x: x, y: top, width: 1, height: bottom - top, RGBA(60, 60, 60))
            BitmapFont.draw("\(Int(i.rounded()))", in: &img, x: x - 6, y: bottom + 8, outline: nil)
        }
        img.fill(x: left, y: bottom, width: right - left, height: 1, .white)
        img.fill(x: left, y: top, width: 1, height: bottom - top, .white)
        BitmapFont.draw(xLabel, in: &img, x: (left + right) / 2 - BitmapFont.size(of: xLabel).width / 2, y: bottom + 26, outline: nil)
        BitmapFont.draw(yLabel, in: &img, x: 8, y: top - 18, outline: nil)
        for (k, s) in series.enumerated() {
            var previous: (Int, Int)? = nil
            for (i, v) in s.values.enumerated() where v.isFinite {
                let p = (px(Double(i)), py(v))
                if let q = previous, !(s.dashed && i % 2 == 1) { img.line(from: q, to: p, color: s.color, thickness: 2) }
                previous = p
            }
            let y = top + 14 * k
            img.fill(x: right + 16, y: y + 3, width: 20, height: 2, s.color)
            if s.dashed { img.fill(x: right + 22, y: y + 3, width: 4, height: 2, RGBA(24, 24, 24)) }
            BitmapFont.draw(s.name, in: &img, x: right + 42, y: y, outline: nil)
        }
        return img
    }
}

extension Image {
    /// A straight line between two pixels (Bresenham), `thickness` pixels wide.
    public mutating func line(from a: (Int, Int), to b: (Int, Int), color: RGBA, thickness: Int = 1) {
        var (x0, y0) = a
        let (x1, y1) = b
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        while true {
            fill(x: x0 - thickness / 2, y: y0 - thickness / 2, width: thickness, height: thickness, color)
            if x0 == x1 && y0 == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x0 += sx }
            if e2 <= dx { err += dx; y0 += sy }
        }
    }
}

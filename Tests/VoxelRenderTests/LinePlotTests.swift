import Testing
import VoxelRender

@Suite struct LinePlotTests {
    @Test func drawsEverySeriesInItsColour() throws {
        let a = LinePlot.Series(name: "a MoRF", values: [1, 0.5, 0.2, 0.1], color: LinePlot.palette[0])
        let b = LinePlot.Series(name: "a LeRF", values: [1, 1, 0.9, 0.95], color: LinePlot.palette[1], dashed: true)
        let img = try LinePlot(title: "t", xLabel: "x", yLabel: "y", series: [a, b]).render(width: 400, height: 300)
        #expect(img.width == 400 && img.height == 300)
        var seen = Set<RGBA>()
        for y in 0..<img.height { for x in 0..<img.width { seen.insert(img[x, y]) } }
        #expect(seen.contains(LinePlot.palette[0]) && seen.contains(LinePlot.palette[1]))
    }

    @Test func nothingFiniteIsAnError() {
        #expect(throws: RenderError.self) {
            try LinePlot(title: "t", xLabel: "x", yLabel: "y", series: [.init(name: "n", values: [.nan, .nan], color: .white)]).render()
        }
    }
}

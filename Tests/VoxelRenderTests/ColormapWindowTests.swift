import Testing
@testable import VoxelRender

/// Colormap tables against published values, and window presets against hand-computed grey levels.
struct ColormapWindowTests {
    // Known first and last entries of the published tables, rounded to 8 bits: matplotlib's
    // _viridis_data[0] = (0.267004, 0.004874, 0.329415), [255] = (0.993248, 0.906157, 0.143936);
    // _inferno_data[0] = (0.001462, 0.000466, 0.013866), [255] = (0.988362, 0.998364, 0.644924);
    // _magma_data[255] = (0.987053, 0.991438, 0.749504); _cividis_data[0] = (0, 0.135112, 0.304751),
    // [255] = (0.995737, 0.909344, 0.217772); Google turbo[0] = (0.18995, 0.07176, 0.23217),
    // [255] = (0.4796, 0.01583, 0.01055); jet[0] = (0, 0, 0.5), jet[255] = (0.5, 0, 0).
    @Test(arguments: [
        (Colormap.viridis, 0, RGBA(68, 1, 84)), (.viridis, 255, RGBA(253, 231, 37)),
        (.inferno, 0, RGBA(0, 0, 4)), (.inferno, 255, RGBA(252, 255, 164)),
        (.magma, 255, RGBA(252, 253, 191)), (.cividis, 0, RGBA(0, 34, 78)), (.cividis, 255, RGBA(254, 232, 56)),
        (.turbo, 0, RGBA(48, 18, 59)), (.turbo, 255, RGBA(122, 4, 3)),
        (.jet, 0, RGBA(0, 0, 128)), (.jet, 255, RGBA(128, 0, 0)),
        (.grey, 0, RGBA(0, 0, 0)), (.grey, 200, RGBA(200, 200, 200)),
    ])
    func knownEntries(_ map: Colormap, _ index: Int, _ expected: RGBA) {
        #expect(map.table.count == 256)
        #expect(map.table[index] == expected)
    }

    @Test func lookupFollowsMatplotlib() {
        #expect(Colormap.index(0) == 0 && Colormap.index(1) == 255 && Colormap.index(2) == 255)
        #expect(Colormap.index(-1) == 0 && Colormap.index(.nan) == 0)
        #expect(Colormap.index(0.5) == 128 && Colormap.index(0.999) == 255 && Colormap.index(1.0 / 256) == 1)
        #expect(Colormap.inferno.color(1) == RGBA(252, 255, 164))
        // Viridis: luminance grows monotonically (its design goal); a crude check on the green channel.
        let g = Colormap.viridis.table.map(\.g)
        #expect(zip(g, g.dropFirst()).allSatisfy { $0 <= $1 })
    }

    @Test func colormapNames() throws {
        #expect(try Colormap(parsing: "Turbo") == .turbo)
        #expect(try Colormap(parsing: "gray") == .grey)
        #expect(throws: RenderError.self) { try Colormap(parsing: "rainbow") }
    }

    // (window, HU, expected grey): 255 (v - (L - W/2)) / W, rounded; clamped outside.
    @Test(arguments: [
        (Window.lung, Float(-1350), UInt8(0)), (.lung, -600, 128), (.lung, 150, 255), (.lung, -975, 64), (.lung, 3000, 255),
        (.mediastinum, -125, 0), (.mediastinum, 50, 128), (.mediastinum, 137.5, 191), (.mediastinum, 225, 255),
        (.bone, -500, 0), (.bone, 500, 128), (.bone, 1500, 255), (.brain, 0, 0), (.brain, 60, 191), (.brain, 80, 255),
        (.brain, .nan, 0),
    ])
    func presets(_ w: Window, _ hu: Float, _ grey: UInt8) {
        #expect(w.grey(hu) == grey)
    }

    @Test func windowParsing() throws {
        #expect(try WindowSpec(parsing: "lung") == .fixed(.lung))
        #expect(try WindowSpec(parsing: "Mediastinum") == .fixed(.mediastinum))
        #expect(try WindowSpec(parsing: "400,40") == .fixed(try Window(width: 400, level: 40)))
        #expect(try WindowSpec(parsing: "p1,99") == .percentile(1, 99))
        for bad in ["abc", "0,40", "-5,40", "p99,1", "p1,101", "400", "1,2,3", "p,"] {
            #expect(throws: RenderError.self, "\(bad)") { try WindowSpec(parsing: bad) }
        }
        let e = try? WindowSpec(parsing: "soft")
        #expect(e == nil)
    }

    @Test func percentileWindow() throws {
        let values = (0...100).map(Float.init) + [.nan, .infinity]
        let w = try Window.percentile(1, 99, of: values)
        #expect(abs(w.lower - 1) < 1e-9 && abs(w.upper - 99) < 1e-9)
        let c = try Window.percentile(1, 99, of: [Float](repeating: 7, count: 10))
        #expect(c.width == 1 && c.level == 7)
        #expect(throws: RenderError.self) { try Window.percentile(1, 99, of: [.nan]) }
    }

    /// Selection gives the sorted array's element at every rank, on data with long runs of equal
    /// values (a CT's air), sorted, reversed and constant data; percentile windows equal those of a
    /// full sort (numpy's linear interpolation) exactly.
    @Test func selectionMatchesSorting() throws {
        var rng = SystemRandomNumberGenerator()
        let inputs: [[Float]] = [
            (0..<1000).map { _ in Float.random(in: -1...1, using: &rng) },
            (0..<5000).map { _ in Bool.random(using: &rng) ? -1000 : Float(Int.random(in: -50...400, using: &rng)) },
            (0..<777).map(Float.init), (0..<777).reversed().map(Float.init),
            [Float](repeating: 3, count: 64), [2, 1], [5],
        ]
        for values in inputs {
            let sorted = values.sorted()
            for k in Set([0, 1, values.count / 3, values.count / 2, values.count - 2, values.count - 1].filter { $0 >= 0 && $0 < values.count }) {
                var copy = values
                #expect(selectOrderStatistic(&copy, k) == sorted[k], "rank \(k) of \(values.count)")
                #expect(copy[..<k].allSatisfy { $0 <= sorted[k] } && copy[(k + 1)...].allSatisfy { $0 >= sorted[k] })
            }
            for (lo, hi) in [(1.0, 99.0), (0.0, 100.0), (1.0, 2.0), (37.5, 62.5)] {
                func q(_ p: Double) -> Double {
                    let pos = p / 100 * Double(sorted.count - 1)
                    let a = Int(pos.rounded(.down)), b = min(sorted.count - 1, a + 1)
                    return Double(sorted[a]) + (pos - Double(a)) * (Double(sorted[b]) - Double(sorted[a]))
                }
                let w = try Window.percentile(lo, hi, of: values)
                let a = q(lo), b = q(hi)
                if b > a { #expect(w.width == b - a && w.level == (a + b) / 2, "p\(lo)-\(hi) of \(values.count)") }
            }
        }
    }

    @Test func blendAndThreshold() throws {
        let style = try OverlayStyle(colormap: .inferno, alpha: 0.4, threshold: 0.2)
        let table = style.colormap.table
        #expect(style.blend(grey: 100, heat: 0.1, table: table) == RGBA(grey: 100))   // below threshold: grey
        #expect(style.blend(grey: 100, heat: .nan, table: table) == RGBA(grey: 100))
        // 0.6 * 100 + 0.4 * (252, 255, 164) = (160.8, 162, 125.6).
        #expect(style.blend(grey: 100, heat: 1, table: table) == RGBA(161, 162, 126))
        #expect(throws: RenderError.self) { try OverlayStyle(alpha: 1.5) }
        #expect(throws: RenderError.self) { try OverlayStyle(threshold: -0.1) }
        #expect(throws: RenderError.self) { try OverlayStyle(low: 1, high: 1) }
    }
}

/// How windows print in titles and status lines.
struct WindowTextTests {
    @Test func descriptions() throws {
        #expect(Window.lung.description == "W1500 L-600")
        #expect(try Window(width: 0.986152764484286, level: 0.5251461702957748).description == "W0.9862 L0.5251")
        #expect(try Window(width: 1234.56, level: 12.3456).description == "W1235 L12.35")
        #expect(WindowSpec.percentile(1, 99).description == "p1-99")
    }
}

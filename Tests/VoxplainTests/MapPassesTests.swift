import Testing
import VoxelCAM
@testable import Voxplain

/// The one-pass `fillUncovered` and `stats` of explain against their definitions (a lazy filter and
/// `min()`; `indices.max(by:)`, `reduce`, `min()` and `max()`): the same values, ties and NaN alike.
struct MapPassesTests {
    @Test func fillUncoveredMatchesItsDefinition() {
        var rng = SystemRandomNumberGenerator()
        let cases: [[Float]] = [
            (0..<5000).map { _ in Bool.random(using: &rng) ? -.infinity : Float.random(in: -2...3, using: &rng) },
            [-.infinity, -.infinity], [], [.nan, 2, -.infinity, 1], [4, 4, -.infinity],
        ]
        for m in cases {
            let floor = m.lazy.filter(\.isFinite).min() ?? 0
            let want = m.map { $0.isFinite ? $0 : floor }
            let got = ExplainPipeline.fillUncovered(m)
            #expect(got.count == want.count && zip(got, want).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "\(m.prefix(4))")
        }
    }

    @Test func statsMatchTheirDefinition() throws {
        let scan = try Volume(dims: VoxelDims(10, 8, 6), voxels: [Float](repeating: 0, count: 480), spacing: SIMD3(0.7, 0.8, 1.25))
        var rng = SystemRandomNumberGenerator()
        let raw = (0..<480).map { _ in Float(Int.random(in: -20...20, using: &rng)) / 4 }
        for normalized in [raw.map { ($0 + 5) / 10 }, [Float](repeating: 0.5, count: 480), raw.map { $0 > 4 ? 1 : 0 }] {
            let s = ExplainPipeline.stats(raw: raw, range: mapRange(raw), normalized: normalized, scan: scan)
            let peak = normalized.indices.max { normalized[$0] < normalized[$1] } ?? 0
            #expect(s.peakVoxel == [peak % 10, (peak / 10) % 8, peak / 80])
            #expect(s.min == raw.min()! && s.max == raw.max()!)
            #expect(s.mean == Float(raw.reduce(0.0) { $0 + Double($1) } / 480))
            #expect(s.fractionAboveHalf == Double(normalized.reduce(0) { $0 + ($1 >= 0.5 ? 1 : 0) }) / 480)
        }
    }
}

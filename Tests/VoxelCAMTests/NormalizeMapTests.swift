import Testing
import VoxelCAM

/// `normalizeMap` (one pass, raw pointers) against its definition: `x.min()` and `x.max()`, zeros
/// when they are equal or not finite, else `(x - min) / (max - min)`; NaN first or later, infinities,
/// constant and empty maps. `mapRange` likewise.
struct NormalizeMapTests {
    static func definition(_ x: [Float]) -> [Float] {
        guard let lo = x.min(), let hi = x.max(), hi > lo, lo.isFinite, hi.isFinite else {
            return [Float](repeating: 0, count: x.count)
        }
        let k = 1 / (hi - lo)
        return x.map { ($0 - lo) * k }
    }

    @Test func matchesTheDefinition() {
        var rng = SystemRandomNumberGenerator()
        let random = (0..<10_000).map { _ in Float.random(in: -3...5, using: &rng) }
        let cases: [[Float]] = [
            random, [2, 2, 2], [], [7], [1, .nan, 3], [.nan, 1, 3], [-.infinity, 0, 1], [0, 1, .infinity],
            random.map { $0 < 0 ? 0 : $0 },
        ]
        for x in cases {
            let got = normalizeMap(x), want = Self.definition(x)
            #expect(got.count == want.count && zip(got, want).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) },
                    "\(x.prefix(4))")
            // `mapRange`, which explain passes to `normalizeMap(_:range:)`, is `min()` and `max()`.
            let range = mapRange(x)
            func same(_ a: Float?, _ b: Float?) -> Bool { a == b || (a?.isNaN == true && b?.isNaN == true) }
            #expect(same(range?.low, x.min()) && same(range?.high, x.max()), "\(x.prefix(4))")
        }
    }
}

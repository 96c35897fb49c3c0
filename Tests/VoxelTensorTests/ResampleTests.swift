import Testing
import VoxelTensor
import _TestSupport

/// One resampling configuration.
struct ResampleCase: CustomStringConvertible, Sendable {
    var shape: [Int], size: Size3, mode: ResampleMode, alignCorners: Bool, scales: [Double]? = nil
    var description: String { "\(shape) -> \(size) \(mode) ac \(alignCorners) scales \(scales.map { "\($0)" } ?? "-")" }
}

@Suite struct ResampleTests {
    static let cases: [ResampleCase] = [
        ResampleCase(shape: [1, 2, 3, 4, 5], size: [7, 5, 9], mode: .trilinear, alignCorners: false),
        ResampleCase(shape: [1, 2, 3, 4, 5], size: [7, 5, 9], mode: .trilinear, alignCorners: true),
        ResampleCase(shape: [2, 1, 5, 7, 6], size: [3, 5, 2], mode: .trilinear, alignCorners: false),
        ResampleCase(shape: [1, 1, 4, 5, 6], size: [1, 3, 2], mode: .trilinear, alignCorners: true),
        ResampleCase(shape: [1, 1, 1, 1, 1], size: [3, 2, 4], mode: .trilinear, alignCorners: false),
        ResampleCase(shape: [1, 2, 3, 4, 5], size: [7, 5, 9], mode: .nearest, alignCorners: false),
        ResampleCase(shape: [1, 1, 5, 7, 6], size: [3, 5, 2], mode: .nearest, alignCorners: false),
        ResampleCase(shape: [1, 1, 3, 4, 6], size: [6, 6, 3], mode: .trilinear, alignCorners: false, scales: [2, 1.5, 0.5]),
        ResampleCase(shape: [1, 1, 3, 4, 6], size: [6, 6, 3], mode: .nearest, alignCorners: false, scales: [2, 1.5, 0.5]),
    ]

    @Test(arguments: cases)
    func fastMatchesReference(c: ResampleCase) throws {
        let x = Tensor.random(c.shape, seed: 91)
        let fast = try resize3d(x, size: c.size, mode: c.mode, alignCorners: c.alignCorners, scales: c.scales)
        let ref = try resize3dReference(x, size: c.size, mode: c.mode, alignCorners: c.alignCorners, scales: c.scales)
        #expect(fast.shape == ref.shape)
        // Separable Float blend vs Double 8-tap sum of convex weights, |x| <= 1: a few ulps.
        #expect(allClose(fast.scalars, ref.scalars, rtol: 1e-6, atol: 1e-6), "max diff \(maxAbsDifference(fast.scalars, ref.scalars))")
    }

    @Test(arguments: cases)
    func backwardIsTheAdjoint(c: ResampleCase) throws {
        let x = Tensor.random(c.shape, seed: 92)
        let y = try resize3d(x, size: c.size, mode: c.mode, alignCorners: c.alignCorners, scales: c.scales)
        let g = Tensor.random(y.shape, seed: 93)
        let gx = try resize3dBackward(gradOutput: g, inputShape: x.shape, mode: c.mode, alignCorners: c.alignCorners, scales: c.scales)
        // Resampling is linear, so central differences are exact up to Float rounding.
        try checkGradient("resize3d \(c)", at: x, upstream: g, forward: {
            try resize3d($0, size: c.size, mode: c.mode, alignCorners: c.alignCorners, scales: c.scales)
        }, analytic: gx)
    }

    @Test func identityAndConstantsArePreserved() throws {
        let x = Tensor.random([1, 2, 3, 4, 5], seed: 94)
        for mode in ResampleMode.allCases {
            #expect(try resize3d(x, size: [3, 4, 5], mode: mode).scalars == x.scalars)
        }
        let constant = Tensor(shape: [1, 1, 3, 3, 3], repeating: 2.5)
        let up = try resize3d(constant, size: [8, 7, 5])
        #expect(up.scalars.allSatisfy { abs($0 - 2.5) < 1e-6 })
        #expect(try resize3d(x, scales: [2, 0.5, 1.5]).shape == [1, 2, 6, 2, 7])
    }

    @Test func badArgumentsThrow() {
        let x = Tensor.zeros([1, 1, 2, 2, 2])
        #expect(errorMessage { _ = try resize3d(Tensor.zeros([2, 2, 2]), size: 4) }?.contains("[2, 2, 2]") == true)
        #expect(errorMessage { _ = try resize3d(x, size: [0, 2, 2]) } != nil)
        #expect(errorMessage { _ = try resize3d(x, scales: [1, -1, 1]) } != nil)
        #expect(errorMessage { _ = try resize3dBackward(gradOutput: Tensor.zeros([1, 2, 4, 4, 4]), inputShape: [1, 1, 2, 2, 2]) } != nil)
    }
}

/// onnxruntime Resize cases from `Tests/Fixtures/onnxruntime/resize.json` (written by
/// `Scripts/make_resize_fixtures.py`). Tolerance 1e-5 relative + 1e-6 absolute: nearest must be exact
/// (same index rule) and linear differs only in Float rounding order on values of magnitude <= 2.
@Suite struct ONNXResizeTests {
    static let names: [String] = (try? GoldenFile.load("onnxruntime/resize.json"))?.cases.map(\.name) ?? ["<resize.json missing>"]

    @Test(arguments: names)
    func matchesOnnxRuntime(name: String) throws {
        let file = try GoldenFile.load("onnxruntime/resize.json")
        guard let c = file.cases.first(where: { $0.name == name }) else { Issue.record("case \(name) not found"); return }
        let x = try c.tensor("x"), expected = try c.tensor("y")
        let mode: ResampleMode = c.strings["mode"] == "nearest" ? .nearest : .trilinear
        guard let transform = ResizeCoordinateTransform(rawValue: c.strings["coordinate_transformation_mode"] ?? ""),
              let rounding = NearestRounding(rawValue: c.strings["nearest_mode"] ?? "") else {
            Issue.record("\(name): unknown attributes \(c.strings)"); return
        }
        let size = Size3(c.ints("sizes", [])) ?? Size3(1)
        let scales = c.floats["scales"]
        let y = try resize3d(x, size: size, mode: mode, coordinates: transform, nearestRounding: rounding, scales: scales)
        #expect(y.shape == expected.shape)
        guard y.shape == expected.shape else { return }
        let close = allClose(y.scalars, expected.scalars, rtol: 1e-5, atol: 1e-6)
        #expect(close, "\(name): max diff \(maxAbsDifference(y.scalars, expected.scalars))")
        let ref = try resize3dReference(x, size: size, mode: mode, coordinates: transform, nearestRounding: rounding, scales: scales)
        #expect(allClose(y.scalars, ref.scalars, rtol: 1e-6, atol: 1e-6))
        // The backward is the adjoint: <resize(x), g> == <x, resizeBackward(g)> (Double sums, Float terms).
        let g = Tensor.random(y.shape, seed: 95)
        let gx = try resize3dBackward(gradOutput: g, inputShape: x.shape, mode: mode, coordinates: transform,
                                      nearestRounding: rounding, scales: scales)
        let lhs = zip(y.scalars, g.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(x.scalars, gx.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(lhs - rhs) <= 1e-4 * max(1, abs(lhs)), "\(name): adjoint \(lhs) vs \(rhs)")
    }
}

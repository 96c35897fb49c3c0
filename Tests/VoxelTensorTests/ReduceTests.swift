import Testing
import VoxelTensor
import _TestSupport

@Suite struct ReduceTests {
    static let cases: [([Int], [Int]?, Bool)] = [
        ([2, 3, 4, 5], [1, 3], true), ([2, 3, 4, 5], [0], false), ([2, 3, 4, 5], nil, true),
        ([2, 3, 4, 5], [2, 3], true), ([2, 3, 4, 5], [-1], false), ([3, 1, 7], [1], true),
        ([2, 3, 40, 50], [0, 2], false), ([4, 5], [0, 1], false), ([1, 2, 3, 4, 5], [2, 3, 4], true),
    ]

    @Test(arguments: cases, [ReduceKind.sum, .mean, .max])
    func fastMatchesReference(c: ([Int], [Int]?, Bool), kind: ReduceKind) throws {
        let x = Tensor.random(c.0, seed: 11)
        let fast = try reduce(x, kind, axes: c.1, keepDims: c.2)
        let ref = try reduceReference(x, kind, axes: c.1, keepDims: c.2)
        #expect(fast.shape == ref.shape)
        // Float partial sums vs a Double reference over up to 4000 values of |x| <= 1: 1e-5 absolute.
        #expect(allClose(fast.scalars, ref.scalars, rtol: 1e-5, atol: 1e-5), "max diff \(maxAbsDifference(fast.scalars, ref.scalars))")
    }

    @Test(arguments: cases.filter { $0.0.product <= 120 })
    func backwardMatchesFiniteDifferences(c: ([Int], [Int]?, Bool)) throws {
        let x = distinctValues(c.0, gap: 0.05, seed: 12)
        for kind in [ReduceKind.sum, .mean] {
            let y = try reduce(x, kind, axes: c.1, keepDims: c.2)
            let g = Tensor.random(y.shape, seed: 13)
            let gx = try reduceBackward(gradOutput: g, inputShape: x.shape, kind, axes: c.1, keepDims: c.2)
            try checkGradient("reduce \(kind)", at: x, upstream: g, forward: { try reduce($0, kind, axes: c.1, keepDims: c.2) }, analytic: gx)
        }
        let y = try reduceMax(x, axes: c.1, keepDims: c.2)
        let g = Tensor.random(y.shape, seed: 14)
        let gx = try reduceMaxBackward(gradOutput: g, input: x, axes: c.1, keepDims: c.2)
        // Values are 0.05 apart and eps is 1e-2, so no argmax changes within a step.
        try checkGradient("reduce max", at: x, upstream: g, forward: { try reduceMax($0, axes: c.1, keepDims: c.2) }, analytic: gx)
    }

    @Test func maxBackwardPicksFirstOfTies() throws {
        let x = try Tensor(shape: [1, 4], scalars: [1, 3, 3, 2])
        let gx = try reduceMaxBackward(gradOutput: try Tensor(shape: [1, 1], scalars: [5]), input: x, axes: [1])
        #expect(gx.scalars == [0, 5, 0, 0])
    }

    @Test func globalPools() throws {
        let x = distinctValues([2, 3, 2, 3, 4], seed: 15)
        let avg = try globalAveragePool(x), mx = try globalMaxPool(x)
        #expect(avg.shape == [2, 3, 1, 1, 1] && mx.shape == [2, 3, 1, 1, 1])
        let g = Tensor.random([2, 3, 1, 1, 1], seed: 16)
        try checkGradient("globalAveragePool", at: x, upstream: g, forward: { try globalAveragePool($0) },
                          analytic: try globalAveragePoolBackward(gradOutput: g, inputShape: x.shape))
        try checkGradient("globalMaxPool", at: x, upstream: g, forward: { try globalMaxPool($0) },
                          analytic: try globalMaxPoolBackward(gradOutput: g, input: x))
        #expect(errorMessage { _ = try globalAveragePool(Tensor.zeros([2, 3])) } != nil)
    }

    @Test func badAxesThrow() {
        #expect(errorMessage { _ = try reduceMean(Tensor.zeros([2, 3]), axes: [2]) } != nil)
        #expect(errorMessage { _ = try reduceMean(Tensor.zeros([2, 3]), axes: [1, -1]) } != nil)
        #expect(errorMessage { _ = try reduceMax(Tensor.zeros([2, 0]), axes: [1]) } != nil)
        let g = Tensor.zeros([3])
        #expect(errorMessage { _ = try reduceBackward(gradOutput: g, inputShape: [2, 3], .sum, axes: [1], keepDims: false) } != nil)
    }
}

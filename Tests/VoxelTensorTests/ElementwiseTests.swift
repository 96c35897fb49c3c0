import Testing
import VoxelTensor
import _TestSupport

@Suite struct ElementwiseTests {
    static let shapePairs: [([Int], [Int])] = [
        ([2, 3, 4], [2, 3, 4]), ([2, 3, 4], [4]), ([2, 3, 4], [3, 1]), ([1, 3, 1], [2, 1, 4]),
        ([2, 3, 4, 5, 6], [1, 3, 1, 1, 1]), ([5], []), ([], [2, 2]), ([3, 1, 5], [1, 4, 1]),
        ([2, 1, 3, 1, 2], [4, 1, 1, 2]), ([0, 3], [1, 3]),
    ]

    @Test(arguments: shapePairs, [BinaryOp.add, .sub, .mul, .div, .prelu])
    func fastMatchesReference(shapes: ([Int], [Int]), op: BinaryOp) throws {
        let a = Tensor.random(shapes.0, seed: 1)
        let b = Tensor.random(shapes.1, in: 0.5...2, seed: 2)
        let fast = try binary(a, b, op), ref = try binaryReference(a, b, op)
        #expect(fast.shape == ref.shape)
        // Identical arithmetic per element, so the results must be bit-identical.
        #expect(fast.scalars == ref.scalars)
    }

    @Test func broadcastErrorNamesBothShapes() {
        let message = errorMessage { _ = try add(Tensor.zeros([2, 3]), Tensor.zeros([4])) }
        #expect(message?.contains("[2, 3]") == true && message?.contains("[4]") == true, "\(message ?? "no error")")
        #expect(errorMessage { _ = try broadcast(Tensor.zeros([3]), to: [2, 4]) } != nil)
        #expect(errorMessage { _ = try sumToShape(Tensor.zeros([2, 3]), [4]) } != nil)
    }

    @Test func broadcastAndExpand() throws {
        let x = try Tensor(shape: [3, 1], scalars: [1, 2, 3])
        let e = try expand(x, [2, 1, 4])
        #expect(e.shape == [2, 3, 4])
        #expect(e[[1, 2, 3]] == 3 && e[[0, 0, 0]] == 1)
        let g = Tensor.random([2, 3, 4], seed: 3)
        let back = try expandBackward(gradOutput: g, inputShape: [3, 1])
        #expect(back.shape == [3, 1])
        var s: Float = 0
        for i in 0..<2 { for k in 0..<4 { s += g[[i, 1, k]] } }
        #expect(abs(back[[1, 0]] - s) < 1e-5)
    }

    static let gradCases: [([Int], [Int])] = [([2, 3, 4], [3, 1]), ([4], [2, 1, 4]), ([1, 3, 1], [2, 1, 2]), ([2, 2], [])]

    @Test(arguments: gradCases)
    func backwardMatchesFiniteDifferences(shapes: ([Int], [Int])) throws {
        let a = Tensor.random(shapes.0, seed: 4)
        let b = Tensor.random(shapes.1, in: 0.5...1.5, seed: 5)
        let out = try broadcastShapes(a.shape, b.shape)
        let g = Tensor.random(out, seed: 6)
        let ga = try addBackward(gradOutput: g, aShape: a.shape, bShape: b.shape)
        try checkGradient("add/a", at: a, upstream: g, forward: { try add($0, b) }, analytic: ga.a)
        try checkGradient("add/b", at: b, upstream: g, forward: { try add(a, $0) }, analytic: ga.b)
        let gs = try subBackward(gradOutput: g, aShape: a.shape, bShape: b.shape)
        try checkGradient("sub/a", at: a, upstream: g, forward: { try sub($0, b) }, analytic: gs.a)
        try checkGradient("sub/b", at: b, upstream: g, forward: { try sub(a, $0) }, analytic: gs.b)
        let gm = try mulBackward(gradOutput: g, a: a, b: b)
        try checkGradient("mul/a", at: a, upstream: g, forward: { try mul($0, b) }, analytic: gm.a)
        try checkGradient("mul/b", at: b, upstream: g, forward: { try mul(a, $0) }, analytic: gm.b)
        let gd = try divBackward(gradOutput: g, a: a, b: b)
        try checkGradient("div/a", at: a, upstream: g, forward: { try div($0, b) }, analytic: gd.a)
        // 1/b is smooth on [0.5, 1.5]: truncation error eps² * 2|a/b⁴| / 6 ≲ 5e-4 relative, so a looser rtol.
        try checkGradient("div/b", at: b, upstream: g, eps: 1e-3, rtol: 2e-3, forward: { try div(a, $0) }, analytic: gd.b)
    }
}

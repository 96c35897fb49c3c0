import Testing
import VoxelTensor
import _TestSupport

/// One Gemm configuration.
struct GemmCase: CustomStringConvertible, Sendable {
    var m: Int, k: Int, n: Int, transA: Bool, transB: Bool, alpha: Float, beta: Float, cShape: [Int]?
    var description: String { "M\(m) K\(k) N\(n) tA \(transA) tB \(transB) alpha \(alpha) beta \(beta) C \(cShape.map { "\($0)" } ?? "none")" }
}

@Suite struct LinearTests {
    static let cases: [GemmCase] = [
        GemmCase(m: 1, k: 1, n: 1, transA: false, transB: false, alpha: 1, beta: 1, cShape: nil),
        GemmCase(m: 4, k: 16, n: 16, transA: false, transB: false, alpha: 1, beta: 1, cShape: [16]),
        GemmCase(m: 7, k: 13, n: 35, transA: true, transB: false, alpha: 0.5, beta: 2, cShape: [7, 35]),
        GemmCase(m: 67, k: 33, n: 70, transA: false, transB: true, alpha: -1.5, beta: 0.25, cShape: [67, 1]),
        GemmCase(m: 130, k: 65, n: 17, transA: true, transB: true, alpha: 1, beta: 0, cShape: [1]),
        GemmCase(m: 3, k: 0, n: 5, transA: false, transB: false, alpha: 1, beta: 1, cShape: [5]),
        GemmCase(m: 2, k: 512, n: 1000, transA: false, transB: true, alpha: 1, beta: 1, cShape: [1000]),
    ]

    func operands(_ c: GemmCase) -> (Tensor, Tensor, Tensor?) {
        (Tensor.random(c.transA ? [c.k, c.m] : [c.m, c.k], seed: 61), Tensor.random(c.transB ? [c.n, c.k] : [c.k, c.n], seed: 62),
         c.cShape.map { Tensor.random($0, seed: 63) })
    }

    @Test(arguments: cases)
    func blockedMatchesNaive(c: GemmCase) throws {
        let (a, b, cc) = operands(c)
        let fast = try gemm(a, b, c: cc, alpha: c.alpha, beta: c.beta, transA: c.transA, transB: c.transB)
        let ref = try gemmReference(a, b, c: cc, alpha: c.alpha, beta: c.beta, transA: c.transA, transB: c.transB)
        #expect(fast.shape == [c.m, c.n])
        // Float FMA chains of length K (<= 512) of terms |a b| <= 1 vs Double: error grows ~ sqrt(K) * 6e-8 * K.
        let tol = Float(c.k) * 2e-6
        let close = allClose(fast.scalars, ref.scalars, rtol: 1e-5, atol: max(1e-6, tol))
        #expect(close, "max diff \(maxAbsDifference(fast.scalars, ref.scalars))")
    }

    @Test(arguments: cases.filter { $0.m * $0.k * $0.n <= 4000 && $0.k > 0 })
    func backwardMatchesFiniteDifferences(c: GemmCase) throws {
        let (a, b, cc) = operands(c)
        let g = Tensor.random([c.m, c.n], seed: 64)
        let back = try gemmBackward(gradOutput: g, a: a, b: b, cShape: cc?.shape, alpha: c.alpha, beta: c.beta,
                                    transA: c.transA, transB: c.transB)
        let f = { (a: Tensor, b: Tensor, cc: Tensor?) in try gemm(a, b, c: cc, alpha: c.alpha, beta: c.beta, transA: c.transA, transB: c.transB) }
        try checkGradient("gemm A \(c)", at: a, upstream: g, forward: { try f($0, b, cc) }, analytic: back.a)
        try checkGradient("gemm B \(c)", at: b, upstream: g, forward: { try f(a, $0, cc) }, analytic: back.b)
        if let cc, let gc = back.c {
            try checkGradient("gemm C \(c)", at: cc, upstream: g, forward: { try f(a, b, $0) }, analytic: gc)
        }
    }

    static let matmulShapes: [([Int], [Int])] = [
        ([3, 4], [4, 5]), ([2, 1, 3, 4], [3, 4, 5]), ([4], [2, 4, 3]), ([2, 3, 4], [4]), ([4], [4]),
        ([5, 1, 2, 3], [1, 4, 3, 2]), ([2, 20, 17], [2, 17, 33]),
    ]

    @Test(arguments: matmulShapes)
    func matmulMatchesPerBatchGemm(shapes: ([Int], [Int])) throws {
        let a = Tensor.random(shapes.0, seed: 65), b = Tensor.random(shapes.1, seed: 66)
        let y = try matmul(a, b)
        // Reference: promote 1D operands, broadcast batches explicitly, one naive gemm per batch.
        let a2 = a.rank == 1 ? try a.reshaped([1, a.shape[0]]) : a
        let b2 = b.rank == 1 ? try b.reshaped([b.shape[0], 1]) : b
        let batch = try broadcastShapes(Array(a2.shape.dropLast(2)), Array(b2.shape.dropLast(2)))
        let ae = try broadcast(a2, to: batch + a2.shape.suffix(2)), be = try broadcast(b2, to: batch + b2.shape.suffix(2))
        let (m, k, n) = (a2.shape[a2.rank - 2], a2.shape[a2.rank - 1], b2.shape[b2.rank - 1])
        var expected: [Float] = []
        for i in 0..<batch.product {
            let ai = try Tensor(shape: [m, k], scalars: Array(ae.scalars[(i * m * k)..<((i + 1) * m * k)]))
            let bi = try Tensor(shape: [k, n], scalars: Array(be.scalars[(i * k * n)..<((i + 1) * k * n)]))
            expected += try gemmReference(ai, bi).scalars
        }
        #expect(y.count == expected.count)
        #expect(allClose(y.scalars, expected, rtol: 1e-5, atol: 1e-5))
        if a.count * b.count <= 2000 {
            let g = Tensor.random(y.shape, seed: 67)
            let back = try matmulBackward(gradOutput: g, a: a, b: b)
            try checkGradient("matmul a \(shapes)", at: a, upstream: g, forward: { try matmul($0, b) }, analytic: back.a)
            try checkGradient("matmul b \(shapes)", at: b, upstream: g, forward: { try matmul(a, $0) }, analytic: back.b)
        }
    }

    @Test func shapeErrorsNameBothShapes() {
        let m1 = errorMessage { _ = try matmul(Tensor.zeros([2, 3]), Tensor.zeros([4, 5])) }
        #expect(m1?.contains("[2, 3]") == true && m1?.contains("[4, 5]") == true, "\(m1 ?? "no error")")
        let m2 = errorMessage { _ = try gemm(Tensor.zeros([2, 3]), Tensor.zeros([2, 3])) }
        #expect(m2?.contains("[2, 3]") == true)
        #expect(errorMessage { _ = try gemm(Tensor.zeros([2, 3]), Tensor.zeros([3, 4]), c: Tensor.zeros([3])) } != nil)
        #expect(errorMessage { _ = try matmul(Tensor.zeros([2, 2, 3]), Tensor.zeros([3, 3, 4])) } != nil)
        #expect(errorMessage { _ = try gemm(Tensor.zeros([2, 3, 1]), Tensor.zeros([3, 4])) } != nil)
    }
}

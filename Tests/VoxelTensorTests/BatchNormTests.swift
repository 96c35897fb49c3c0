import Testing
import VoxelTensor
import _TestSupport

@Suite struct BatchNormTests {
    let x = Tensor.random([2, 3, 2, 3, 4], seed: 41)
    let mean = Tensor.random([3], seed: 42)
    let variance = Tensor.random([3], in: 0.3...2, seed: 43)
    let scale = Tensor.random([3], seed: 44)
    let shift = Tensor.random([3], seed: 45)

    @Test func forwardMatchesDefinition() throws {
        let y = try batchNorm(x, mean: mean, variance: variance, scale: scale, shift: shift, epsilon: 1e-3)
        for (i, v) in x.scalars.enumerated() {
            let c = (i / 24) % 3
            let expected = (Double(v) - Double(mean.scalars[c])) / (Double(variance.scalars[c]) + 1e-3).squareRoot()
                * Double(scale.scalars[c]) + Double(shift.scalars[c])
            // One Float multiply-add from Double coefficients: a few ulps.
            #expect(abs(Double(y.scalars[i]) - expected) < 1e-5 * max(1, abs(expected)))
        }
    }

    /// The activation in the same pass: each kind against `Activation.apply` of the plain batch norm,
    /// bit for bit, NaN and infinities included.
    @Test(arguments: [Activation.relu, .leakyRelu(alpha: 0.1), .clip(min: -0.5, max: 0.7), .identity])
    func activationInTheSamePass(_ activation: Activation) throws {
        var v = Tensor.random([1, 3, 5, 7, 9], seed: 47)
        v.scalars[3] = .nan; v.scalars[400] = .infinity; v.scalars[500] = -.infinity; v.scalars[900] = -0.0
        let plain = try batchNorm(v, mean: mean, variance: variance, scale: scale, shift: shift, epsilon: 1e-3)
        let y = try batchNorm(v, mean: mean, variance: variance, scale: scale, shift: shift, epsilon: 1e-3,
                              activation: activation)
        for i in 0..<v.count {
            let e = activation.apply(plain.scalars[i])
            #expect(y.scalars[i].bitPattern == e.bitPattern || (y.scalars[i].isNaN && e.isNaN), "\(activation) at \(i)")
        }
        #expect(y.scalars[3].isNaN)
        let act = activate(plain, activation)
        for i in 0..<v.count {
            #expect(act.scalars[i].bitPattern == y.scalars[i].bitPattern || (act.scalars[i].isNaN && y.scalars[i].isNaN))
        }
    }

    @Test func backwardMatchesFiniteDifferences() throws {
        let g = Tensor.random(x.shape, seed: 46)
        let b = try batchNormBackward(gradOutput: g, input: x, mean: mean, variance: variance, scale: scale, epsilon: 1e-3)
        try checkGradient("batchNorm x", at: x, upstream: g,
                          forward: { try batchNorm($0, mean: mean, variance: variance, scale: scale, shift: shift, epsilon: 1e-3) },
                          analytic: b.input)
        try checkGradient("batchNorm scale", at: scale, upstream: g,
                          forward: { try batchNorm(x, mean: mean, variance: variance, scale: $0, shift: shift, epsilon: 1e-3) },
                          analytic: b.scale)
        try checkGradient("batchNorm shift", at: shift, upstream: g,
                          forward: { try batchNorm(x, mean: mean, variance: variance, scale: scale, shift: $0, epsilon: 1e-3) },
                          analytic: b.shift)
    }

    @Test func foldingIntoLinearMatchesSeparateOps() throws {
        // A linear layer y = x W^T + b stands in for a convolution (same [Cout, ...] weight layout).
        let input = Tensor.random([5, 4], seed: 47)
        let weight = Tensor.random([3, 4], seed: 48), bias = Tensor.random([3], seed: 49)
        let separate = try batchNorm(try gemm(input, weight, c: bias, transB: true),
                                     mean: mean, variance: variance, scale: scale, shift: shift, epsilon: 1e-3)
        let folded = try foldBatchNorm(weight: weight, bias: bias, mean: mean, variance: variance, scale: scale,
                                       shift: shift, epsilon: 1e-3)
        let fused = try gemm(input, folded.weight, c: folded.bias, transB: true)
        // Same math in a different rounding order: 1e-5 relative to values of order 1.
        #expect(allClose(fused.scalars, separate.scalars, rtol: 1e-5, atol: 1e-5))
        let noBias = try foldBatchNorm(weight: weight, bias: nil, mean: mean, variance: variance, scale: scale, shift: shift)
        #expect(noBias.bias.shape == [3])
    }

    @Test func badParametersThrow() {
        #expect(errorMessage { _ = try batchNorm(x, mean: Tensor.zeros([4]), variance: variance, scale: scale, shift: shift) }?
            .contains("[4]") == true)
        #expect(errorMessage { _ = try batchNorm(Tensor.zeros([3]), mean: mean, variance: variance, scale: scale, shift: shift) } != nil)
        #expect(errorMessage { _ = try foldBatchNorm(weight: Tensor.zeros([3, 2]), bias: Tensor.zeros([2]), mean: mean,
                                                      variance: variance, scale: scale, shift: shift) } != nil)
    }
}

@Suite struct GroupNormTests {
    @Test(arguments: [1, 2, 4])
    func backwardMatchesFiniteDifferences(groups: Int) throws {
        let x = Tensor.random([2, 4, 2, 2, 3], seed: 101)
        let scale = Tensor.random([4], seed: 102), shift = Tensor.random([4], seed: 103)
        let g = Tensor.random(x.shape, seed: 104)
        let b = try groupNormBackward(gradOutput: g, input: x, groups: groups, scale: scale, epsilon: 1e-3)
        // Smooth in x; groups of 12..48 values of variance ~1/3, so curvature is moderate at eps = 1e-2.
        try checkGradient("groupNorm x G\(groups)", at: x, upstream: g, rtol: 5e-3,
                          forward: { try groupNorm($0, groups: groups, scale: scale, shift: shift, epsilon: 1e-3) }, analytic: b.input)
        try checkGradient("groupNorm scale G\(groups)", at: scale, upstream: g,
                          forward: { try groupNorm(x, groups: groups, scale: $0, shift: shift, epsilon: 1e-3) }, analytic: b.scale)
        try checkGradient("groupNorm shift G\(groups)", at: shift, upstream: g,
                          forward: { try groupNorm(x, groups: groups, scale: scale, shift: $0, epsilon: 1e-3) }, analytic: b.shift)
    }

    @Test func instanceNormNormalisesEachChannel() throws {
        let x = Tensor.random([2, 3, 3, 4, 5], in: 2...5, seed: 105)
        let y = try instanceNorm(x, scale: Tensor(shape: [3], repeating: 1), shift: Tensor.zeros([3]))
        let mean = try reduceMean(y, axes: [2, 3, 4]), sq = try reduceMean(try mul(y, y), axes: [2, 3, 4])
        #expect(mean.scalars.allSatisfy { abs($0) < 1e-5 })
        // Variance 1 minus the epsilon share: var / (var + 1e-5) with var ~ 0.75.
        #expect(sq.scalars.allSatisfy { abs($0 - 1) < 1e-4 })
        #expect(errorMessage { _ = try groupNorm(x, groups: 2, scale: Tensor.zeros([3]), shift: Tensor.zeros([3])) } != nil)
        #expect(errorMessage { _ = try instanceNorm(x, scale: Tensor.zeros([4]), shift: Tensor.zeros([3])) }?.contains("[4]") == true)
    }
}

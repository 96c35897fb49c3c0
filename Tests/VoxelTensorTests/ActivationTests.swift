import Testing
@testable import VoxelTensor
import _TestSupport

@Suite struct ActivationTests {
    // Inputs 0.05 apart and offset by 0.025, so none lies within eps = 1e-2 of a kink at 0.
    let x = distinctValues([2, 3, 4, 5], gap: 0.05, seed: 21)
    let g = Tensor.random([2, 3, 4, 5], seed: 22)

    @Test func reluFamily() throws {
        try checkGradient("relu", at: x, upstream: g, forward: { relu($0) },
                          analytic: try reluBackward(gradOutput: g, input: x))
        try checkGradient("leakyRelu", at: x, upstream: g, forward: { leakyRelu($0, alpha: 0.2) },
                          analytic: try leakyReluBackward(gradOutput: g, input: x, alpha: 0.2))
        // Kinks of clip at -0.5 and 1.25 are multiples of 0.05 away from the 0.025-offset grid.
        try checkGradient("clip", at: x, upstream: g, forward: { try clip($0, min: -0.5, max: 1.25) },
                          analytic: try clipBackward(gradOutput: g, input: x, min: -0.5, max: 1.25))
        for act in [Activation.identity, .relu, .leakyRelu(alpha: 0.1), .clip(min: 0, max: 6)] {
            let y = activate(x, act)
            #expect(y.scalars == x.scalars.map { act.apply($0) })
            try checkGradient("activate \(act)", at: x, upstream: g, forward: { activate($0, act) },
                              analytic: try activateBackward(gradOutput: g, input: x, act))
        }
        #expect(errorMessage { _ = try clip(x, min: 2, max: 1) } != nil)
        #expect(errorMessage { _ = try reluBackward(gradOutput: g, input: Tensor.zeros([3])) }?.contains("[3]") == true)
    }

    @Test func smoothActivations() throws {
        let xs = Tensor.random([3, 7], in: -4...4, seed: 23), gs = Tensor.random([3, 7], seed: 24)
        try checkGradient("sigmoid", at: xs, upstream: gs, forward: { sigmoid($0) },
                          analytic: try sigmoidBackward(gradOutput: gs, output: sigmoid(xs)))
        try checkGradient("tanh", at: xs, upstream: gs, forward: { VoxelTensor.tanh($0) },
                          analytic: try tanhBackward(gradOutput: gs, output: VoxelTensor.tanh(xs)))
        // Extreme inputs stay finite.
        let big = try Tensor(shape: [2], scalars: [-200, 200])
        #expect(sigmoid(big).scalars == [0, 1])
    }

    @Test func preluInputAndSlope() throws {
        let x5 = distinctValues([2, 3, 2, 2, 3], seed: 25)
        let g5 = Tensor.random(x5.shape, seed: 26)
        for slope in [Tensor.random([3, 1, 1, 1], in: -0.5...0.5, seed: 27), Tensor.random([1], seed: 28),
                      Tensor.random([3], seed: 29)] {
            let back = try preluBackward(gradOutput: g5, input: x5, slope: slope)
            try checkGradient("prelu x slope \(slope.shape)", at: x5, upstream: g5, forward: { try prelu($0, slope: slope) },
                              analytic: back.input)
            try checkGradient("prelu slope \(slope.shape)", at: slope, upstream: g5, forward: { try prelu(x5, slope: $0) },
                              analytic: back.slope)
        }
        #expect(errorMessage { _ = try prelu(x5, slope: Tensor.zeros([4])) }?.contains("[4]") == true)
        #expect(errorMessage { _ = try prelu(x5, channelSlope: Tensor.zeros([2])) }?.contains("[2]") == true)
        let cs = Tensor.random([3], seed: 33)
        let back = try preluBackward(gradOutput: g5, input: x5, channelSlope: cs)
        try checkGradient("prelu channel slope", at: cs, upstream: g5, forward: { try prelu(x5, channelSlope: $0) },
                          analytic: back.slope)
    }

    @Test(arguments: [0, 1, 2, -1])
    func softmaxAlongAxis(axis: Int) throws {
        let xs = Tensor.random([2, 3, 4], in: -3...3, seed: 30), gs = Tensor.random([2, 3, 4], seed: 31)
        let y = try softmax(xs, axis: axis)
        // Each line sums to 1 (Float rounding over at most 4 terms).
        let sums = try reduceSum(y, axes: [axis])
        #expect(sums.scalars.allSatisfy { abs($0 - 1) < 1e-6 })
        try checkGradient("softmax \(axis)", at: xs, upstream: gs, forward: { try softmax($0, axis: axis) },
                          analytic: try softmaxBackward(gradOutput: gs, output: y, axis: axis))
        let ly = try logSoftmax(xs, axis: axis)
        #expect(allClose(ly.scalars, y.scalars.map { naturalLog($0) }, rtol: 1e-5, atol: 1e-6))
        try checkGradient("logSoftmax \(axis)", at: xs, upstream: gs, forward: { try logSoftmax($0, axis: axis) },
                          analytic: try logSoftmaxBackward(gradOutput: gs, output: ly, axis: axis))
    }

    @Test func softmaxLargeInnerAndStability() throws {
        // Inner extent larger than one tile chunk (256) exercises the chunked path.
        let xs = Tensor.random([1, 3, 300], in: -50...50, seed: 32)
        let y = try softmax(xs, axis: 1)
        let sums = try reduceSum(y, axes: [1])
        #expect(sums.scalars.allSatisfy { abs($0 - 1) < 1e-6 })
        let huge = try Tensor(shape: [3], scalars: [1000, 1000, -1000])
        #expect(try softmax(huge).scalars == [0.5, 0.5, 0])
        #expect(errorMessage { _ = try softmax(xs, axis: 3) } != nil)
    }

    /// Activations keep NaN (PyTorch's `relu(nan)` and `clamp(nan)` are nan) in the element-wise kernel
    /// and fused into a convolution's store alike, so fusing a graph never changes what a NaN becomes.
    @Test(arguments: [Activation.relu, .leakyRelu(alpha: 0.1), .clip(min: -0.5, max: 0.5)])
    func activationsKeepNaNWhetherFusedOrNot(_ activation: Activation) throws {
        var x = Tensor.random([1, 1, 3, 3, 20], seed: 3)
        x[0, 0, 1, 1, 5] = .nan
        let standalone = activate(x, activation)
        #expect(standalone[0, 0, 1, 1, 5].isNaN && standalone.scalars.filter(\.isNaN).count == 1)
        let identity = try Tensor(shape: [1, 1, 1, 1, 1], scalars: [1])
        for isa in ConvISA.allCases {
            let fused = try PackedConv3D(weight: identity, bias: nil, stride: 1, padding: 0, dilation: 1, groups: 1,
                                         activation: activation, isa: isa).forward(x)
            #expect(fused.scalars.map(\.bitPattern) == standalone.scalars.map(\.bitPattern), "\(isa)")
        }
    }
}

import Foundation
private func naturalLog(_ x: Float) -> Float { Foundation.log(x) }

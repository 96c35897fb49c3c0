import Testing
import VoxelTensor
import _TestSupport

/// One pooling configuration: input shape, kernel, stride, padding, dilation, ceil mode.
struct PoolCase: CustomStringConvertible, Sendable {
    var shape: [Int], kernel: Size3, stride: Size3, padding: Padding3, dilation: Size3, ceil: Bool
    var description: String { "\(shape) k\(kernel) s\(stride) p\(padding) d\(dilation) ceil \(ceil)" }
}

@Suite struct Pool3DTests {
    static let cases: [PoolCase] = [
        PoolCase(shape: [1, 2, 5, 6, 7], kernel: 3, stride: 2, padding: 1, dilation: 1, ceil: true),
        PoolCase(shape: [1, 2, 5, 6, 7], kernel: 3, stride: 2, padding: 1, dilation: 1, ceil: false),
        PoolCase(shape: [2, 1, 4, 5, 5], kernel: [2, 3, 2], stride: [2, 1, 2], padding: [0, 1, 1], dilation: 1, ceil: false),
        PoolCase(shape: [1, 2, 5, 5, 6], kernel: 2, stride: [1, 2, 2], padding: [1, 1, 0], dilation: [2, 1, 2], ceil: true),
        PoolCase(shape: [1, 1, 6, 6, 6], kernel: 2, stride: 2, padding: 0, dilation: 1, ceil: false),
        PoolCase(shape: [1, 2, 4, 5, 5], kernel: 3, stride: 2, padding: [1, 0, 2, 0, 2, 1], dilation: 1, ceil: false),
        PoolCase(shape: [1, 2, 4, 5, 5], kernel: 3, stride: 2, padding: [1, 0, 1, 1, 1, 0], dilation: 1, ceil: true),
        PoolCase(shape: [1, 1, 3, 3, 9], kernel: [1, 1, 4], stride: [1, 1, 3], padding: [0, 0, 2], dilation: 1, ceil: true),
    ]

    @Test(arguments: cases)
    func fastMatchesReference(c: PoolCase) throws {
        let x = Tensor.random(c.shape, seed: 51)
        let mx = try maxPool3d(x, kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation, ceilMode: c.ceil)
        let mref = try pool3dReference(x, max: true, kernel: c.kernel, stride: c.stride, padding: c.padding,
                                       dilation: c.dilation, ceilMode: c.ceil)
        #expect(mx.shape == mref.shape && mx.scalars == mref.scalars)
        for include in [true, false] {
            let av = try avgPool3d(x, kernel: c.kernel, stride: c.stride, padding: c.padding, ceilMode: c.ceil,
                                   countIncludePad: include)
            let aref = try pool3dReference(x, max: false, kernel: c.kernel, stride: c.stride, padding: c.padding,
                                           ceilMode: c.ceil, countIncludePad: include)
            // Float sum of at most 27 values vs a Double sum: 1e-6 absolute for |x| <= 1.
            #expect(av.shape == aref.shape && allClose(av.scalars, aref.scalars, rtol: 1e-6, atol: 1e-6))
        }
    }

    @Test(arguments: cases)
    func backwardMatchesFiniteDifferences(c: PoolCase) throws {
        // Distinct values 0.05 apart: a step of 1e-2 never changes which voxel is a window's maximum.
        let x = distinctValues(c.shape, gap: 0.05, seed: 52)
        let y = try maxPool3d(x, kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation, ceilMode: c.ceil)
        let g = Tensor.random(y.shape, seed: 53)
        let gmax = try maxPool3dBackward(gradOutput: g, input: x, kernel: c.kernel, stride: c.stride, padding: c.padding,
                                         dilation: c.dilation, ceilMode: c.ceil)
        try checkGradient("maxPool3d \(c)", at: x, upstream: g, forward: {
            try maxPool3d($0, kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation, ceilMode: c.ceil)
        }, analytic: gmax)
        for include in [true, false] {
            let ya = try avgPool3d(x, kernel: c.kernel, stride: c.stride, padding: c.padding, ceilMode: c.ceil, countIncludePad: include)
            let g = Tensor.random(ya.shape, seed: 54)
            let ga = try avgPool3dBackward(gradOutput: g, inputShape: x.shape, kernel: c.kernel, stride: c.stride,
                                           padding: c.padding, ceilMode: c.ceil, countIncludePad: include)
            try checkGradient("avgPool3d \(c) include \(include)", at: x, upstream: g, forward: {
                try avgPool3d($0, kernel: c.kernel, stride: c.stride, padding: c.padding, ceilMode: c.ceil, countIncludePad: include)
            }, analytic: ga)
        }
    }

    @Test func maxPoolTieGoesToFirst() throws {
        let x = Tensor(shape: [1, 1, 1, 2, 2], repeating: 1)
        let g = try maxPool3dBackward(gradOutput: Tensor(shape: [1, 1, 1, 1, 1], repeating: 3), input: x, kernel: [1, 2, 2])
        #expect(g.scalars == [3, 0, 0, 0])
    }

    @Test func nanPropagatesThroughMaxPool() throws {
        var x = Tensor.random([1, 1, 4, 4, 4], seed: 55)
        x[0, 0, 1, 1, 1] = .nan
        let y = try maxPool3d(x, kernel: 2)
        // Only the window holding the NaN (the first one) is NaN.
        #expect(y.scalars[0].isNaN && y.scalars.dropFirst().allSatisfy { !$0.isNaN })
        let ref = try pool3dReference(x, max: true, kernel: 2)
        #expect(ref.scalars[0].isNaN && Array(ref.scalars.dropFirst()) == Array(y.scalars.dropFirst()))
        #expect(try reduceMax(x).scalars[0].isNaN)
    }

    /// Rows wide enough for the 16-lane path, with NaNs inside the vector part and the tail.
    @Test func nanPropagatesThroughWideRows() throws {
        var x = Tensor.random([1, 2, 3, 6, 37], seed: 56)
        x[0, 0, 1, 2, 5] = .nan
        x[0, 1, 2, 4, 35] = .nan
        let y = try maxPool3d(x, kernel: [2, 3, 3], stride: [1, 1, 2], padding: 1)
        let ref = try pool3dReference(x, max: true, kernel: [2, 3, 3], stride: [1, 1, 2], padding: 1)
        #expect(y.shape == ref.shape)
        #expect(zip(y.scalars, ref.scalars).allSatisfy { $0.isNaN ? $1.isNaN : $0 == $1 })
        #expect(y.scalars.contains { $0.isNaN })
    }

    @Test func outputSizesFollowPyTorch() throws {
        // k3 s2 p1 ceil: D 5 -> ceil(4/2)+1 = 3; H 6 -> ceil(5/2)+1 = 4 (last start 5 < 6 + 1); W 7 -> 4.
        let y = try maxPool3d(Tensor.zeros([1, 1, 5, 6, 7]), kernel: 3, stride: 2, padding: 1, ceilMode: true)
        #expect(y.shape == [1, 1, 3, 4, 4])
        // in 5, k 2, s 2, ceil: 3 windows, the last starting inside the input at 4.
        #expect(try avgPool3d(Tensor.zeros([1, 1, 5, 5, 5]), kernel: 2, stride: 2, ceilMode: true).shape == [1, 1, 3, 3, 3])
        // in 4, k 2, s 2, p 1, ceil: ceil((4+2-2)/2)+1 = 3, and window 2 starts at 3 < 4 + 1, so 3.
        #expect(try avgPool3d(Tensor.zeros([1, 1, 4, 4, 4]), kernel: 2, stride: 2, padding: 1, ceilMode: true).shape == [1, 1, 3, 3, 3])
    }

    @Test func badParametersThrow() {
        let x = Tensor.zeros([1, 1, 3, 3, 3])
        #expect(errorMessage { _ = try maxPool3d(x, kernel: 4) } != nil)
        #expect(errorMessage { _ = try maxPool3d(x, kernel: 2, stride: [1, 0, 1]) } != nil)
        #expect(errorMessage { _ = try avgPool3d(Tensor.zeros([3, 3, 3]), kernel: 2) }?.contains("[3, 3, 3]") == true)
        #expect(errorMessage { _ = try maxPool3dBackward(gradOutput: Tensor.zeros([1, 1, 2, 2, 2]), input: x, kernel: 2) }?
            .contains("[1, 1, 1, 1, 1]") == true)
    }
}

import Testing
import VoxelTensor
import _TestSupport

@Suite struct Conv3DBackwardTests {
    @Test(arguments: ConvCase.table.filter { $0.activation == .identity })
    func backwardInputMatchesReference(_ c: ConvCase) throws {
        let (x, w, _) = c.inputs(seed: 20)
        let gy = Tensor.random(try conv3dReference(x, weight: w, stride: c.stride, padding: c.padding,
                                                   dilation: c.dilation, groups: c.groups).shape, seed: 21)
        let fast = try conv3dBackwardInput(gradOutput: gy, weight: w, inputShape: x.shape, stride: c.stride,
                                           padding: c.padding, dilation: c.dilation, groups: c.groups)
        let ref = try conv3dBackwardInputReference(gradOutput: gy, weight: w, inputShape: x.shape, stride: c.stride,
                                                   padding: c.padding, dilation: c.dilation, groups: c.groups)
        // Each input element sums at most Cout/groups * kernel volume products.
        let close = convClose(fast, ref, terms: c.cout / c.groups * c.kernel.product)
        #expect(close,
                "max diff \(maxAbsDifference(fast.scalars, ref.scalars))")
    }

    @Test(arguments: ConvCase.table.filter { $0.activation == .identity })
    func backwardWeightMatchesReference(_ c: ConvCase) throws {
        let (x, w, _) = c.inputs(seed: 30)
        let gy = Tensor.random(try conv3dReference(x, weight: w, stride: c.stride, padding: c.padding,
                                                   dilation: c.dilation, groups: c.groups).shape, seed: 31)
        let fast = try conv3dBackwardWeight(gradOutput: gy, input: x, weightShape: w.shape, stride: c.stride,
                                            padding: c.padding, dilation: c.dilation, groups: c.groups)
        let ref = try conv3dBackwardWeightReference(gradOutput: gy, input: x, weightShape: w.shape, stride: c.stride,
                                                    padding: c.padding, dilation: c.dilation, groups: c.groups)
        // Each weight gradient sums N * output-volume products.
        let terms = c.batch * gy.count / (c.batch * c.cout)
        let close = convClose(fast.weight, ref.weight, terms: c.batch * terms)
        #expect(close,
                "max diff \(maxAbsDifference(fast.weight.scalars, ref.weight.scalars))")
        let biasClose = convClose(fast.bias, ref.bias, terms: c.batch * terms)
        #expect(biasClose)
    }

    /// Planes large enough that the AVX-512 weight-gradient kernel runs the output planes in several
    /// chunks (half of L2 for 8 gradient channels: 2 planes of 80x80, 3 of 65x65), adding each chunk's
    /// sums in turn; a partial second block of output channels; stride 2 with a partial last chunk.
    @Test(arguments: [([1, 3, 9, 80, 80], 1), ([2, 2, 11, 130, 130], 2)])
    func backwardWeightOverPlaneChunks(shape: [Int], stride: Int) throws {
        let x = Tensor.random(shape, seed: 32)
        let w = Tensor.random([10, shape[1], 3, 3, 3], seed: 33)
        let gy = Tensor.random(try conv3dReference(x, weight: w, stride: Size3(stride), padding: 1).shape, seed: 34)
        let fast = try conv3dBackwardWeight(gradOutput: gy, input: x, weightShape: w.shape, stride: Size3(stride), padding: 1)
        let ref = try conv3dBackwardWeightReference(gradOutput: gy, input: x, weightShape: w.shape, stride: Size3(stride), padding: 1)
        let terms = gy.count / 10
        #expect(convClose(fast.weight, ref.weight, terms: terms),
                "max diff \(maxAbsDifference(fast.weight.scalars, ref.weight.scalars))")
        #expect(convClose(fast.bias, ref.bias, terms: terms))
    }

    @Test func packedInputGradientReusesWeightsAcrossSizes() throws {
        let w = Tensor.random([12, 5, 3, 3, 3], seed: 60)
        let grad = try PackedConv3DInputGradient(weight: w, stride: [2, 1, 2], padding: 1)
        for (i, shape) in [[1, 5, 6, 7, 13], [2, 5, 5, 4, 9]].enumerated() {
            let outShape = try conv3dReference(Tensor.zeros(shape), weight: w, stride: [2, 1, 2], padding: 1).shape
            let gy = Tensor.random(outShape, seed: 61 + UInt64(i))
            let ref = try conv3dBackwardInputReference(gradOutput: gy, weight: w, inputShape: shape, stride: [2, 1, 2], padding: 1)
            let fast = try grad.backward(gy, inputShape: shape)
            let close = convClose(fast, ref, terms: 12 * 27)
            #expect(close, "max diff \(maxAbsDifference(fast.scalars, ref.scalars))")
        }
        #expect(throws: TensorError.self) { _ = try grad.backward(.zeros([1, 12, 3, 7, 6]), inputShape: [1, 5, 6, 7, 13]) }
    }

    /// Tiny shapes for finite differences (every input and weight element is perturbed).
    static let tiny: [ConvCase] = [
        ConvCase(name: "fd k3 s1 p1", cin: 2, cout: 3, size: Size3(3, 4, 5), kernel: 3, padding: 1),
        ConvCase(name: "fd k3 s2 asym", cin: 2, cout: 2, size: Size3(5, 4, 5), kernel: 3, stride: [2, 1, 2],
                 padding: [1, 0, 2, 0, 1, 1]),
        ConvCase(name: "fd dil2 groups2", batch: 2, cin: 4, cout: 2, size: Size3(4, 5, 5), kernel: 2,
                 padding: 1, dilation: [2, 1, 2], groups: 2),
    ]

    /// loss(x, w, b) = <gy, conv(x, w, b)> in Double, straight from the definition.
    static func loss(_ c: ConvCase, x: [Double], w: [Double], b: [Double], gy: Tensor) -> Double {
        let oshape = gy.shape
        let (O, I, K) = (Size3(oshape[2], oshape[3], oshape[4]), c.size, c.kernel)
        let cinG = c.cin / c.groups, coutG = c.cout / c.groups
        var total = 0.0
        for n in 0..<c.batch { for co in 0..<c.cout { for od in 0..<O.d { for oh in 0..<O.h { for ow in 0..<O.w {
            var v = b[co]
            for cl in 0..<cinG { for kd in 0..<K.d { for kh in 0..<K.h { for kw in 0..<K.w {
                let id = od * c.stride.d + kd * c.dilation.d - c.padding.begin.d
                let ih = oh * c.stride.h + kh * c.dilation.h - c.padding.begin.h
                let iw = ow * c.stride.w + kw * c.dilation.w - c.padding.begin.w
                guard id >= 0, id < I.d, ih >= 0, ih < I.h, iw >= 0, iw < I.w else { continue }
                let ci = co / coutG * cinG + cl
                v += w[(((co * cinG + cl) * K.d + kd) * K.h + kh) * K.w + kw]
                    * x[(((n * c.cin + ci) * I.d + id) * I.h + ih) * I.w + iw]
            }}}}
            total += v * Double(gy[n, co, od, oh, ow])
        }}}}}
        return total
    }

    @Test(arguments: tiny)
    func gradientsMatchFiniteDifferences(_ c: ConvCase) throws {
        let (xt, wt, bt) = c.inputs(seed: 40)
        let y = try conv3dReference(xt, weight: wt, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups)
        let gy = Tensor.random(y.shape, seed: 41)
        let gx = try conv3dBackwardInput(gradOutput: gy, weight: wt, inputShape: xt.shape, stride: c.stride,
                                         padding: c.padding, dilation: c.dilation, groups: c.groups)
        let gw = try conv3dBackwardWeight(gradOutput: gy, input: xt, weightShape: wt.shape, stride: c.stride,
                                          padding: c.padding, dilation: c.dilation, groups: c.groups)
        let x = xt.scalars.map(Double.init), w = wt.scalars.map(Double.init)
        let b = (bt?.scalars ?? [Float](repeating: 0, count: c.cout)).map(Double.init)
        // Central differences in Double with h = 1e-3: the loss is linear in each variable, so the
        // difference is exact up to Double rounding (~1e-12); the 1e-4 tolerance covers the Float
        // rounding of the fast kernels (sums of at most a few hundred products of values in [-1, 1]).
        let h = 1e-3
        func check(_ analytic: [Float], _ count: Int, _ perturb: (Int, Double) -> Double, _ what: String) {
            for i in 0..<count {
                let fd = (perturb(i, h) - perturb(i, -h)) / (2 * h)
                #expect(abs(Double(analytic[i]) - fd) <= 1e-4 * max(1, abs(fd)), "\(what)[\(i)]: \(analytic[i]) vs \(fd)")
            }
        }
        check(gx.scalars, x.count, { i, d in var xp = x; xp[i] += d; return Self.loss(c, x: xp, w: w, b: b, gy: gy) }, "dx")
        check(gw.weight.scalars, w.count, { i, d in var wp = w; wp[i] += d; return Self.loss(c, x: x, w: wp, b: b, gy: gy) }, "dw")
        check(gw.bias.scalars, b.count, { i, d in var bp = b; bp[i] += d; return Self.loss(c, x: x, w: w, b: bp, gy: gy) }, "db")
    }
}

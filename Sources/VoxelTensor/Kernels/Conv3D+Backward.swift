import VoxelTensorAVX512

// Backward passes of conv3d, each parallel over what it writes (no locks):
//
// Input gradient (explanations need only this one): see Conv3D+InputGradient.swift; the free
// function below packs the weights and runs `PackedConv3DInputGradient`.
//
// Weight gradient:
//   gw[co, ci, k] = sum_{n, o} gy[n, co, o] * xpad[n, ci, o*s + k*dil],   gb[co] = sum_{n, o} gy[n, co, o]
// Tiles are (group, block of output channels, input channel): each owns gw[block, ci, :, :, :]. A
// tile holds the block's channels x 3 kw taps in accumulators that run along OW (AVX2: 4 channels,
// 12 SIMD8; AVX-512: 8 channels, 24 SIMD16; the input is de-interleaved by the W stride so those
// loads are contiguous), then reduces each across lanes.
// Batch items are added in order, so results do not depend on the thread count.

/// Gradient of conv3d with respect to its input.
///
/// - Parameters:
///   - gradOutput: `[N, Cout, OD, OH, OW]`, dLoss/dOutput of the convolution (apply the derivative of
///     any fused activation first).
///   - weight: `[Cout, Cin/groups, kD, kH, kW]`.
///   - inputShape: `[N, Cin, D, H, W]` of the forward input (needed because strides lose remainders).
/// - Returns: `[N, Cin, D, H, W]`, dLoss/dInput.
/// - Throws: `TensorError` naming the shapes when `gradOutput` is not the forward output's shape or
///   the input and weight shapes do not fit together.
public func conv3dBackwardInput(gradOutput: Tensor, weight: Tensor, inputShape: [Int], stride: Size3 = 1,
                                padding: Padding3 = 0, dilation: Size3 = 1, groups: Int = 1) throws -> Tensor {
    try conv3dBackwardInput(gradOutput: gradOutput, weight: weight, inputShape: inputShape, stride: stride,
                            padding: padding, dilation: dilation, groups: groups, isa: Conv3DEngine.isa)
}

/// `conv3dBackwardInput` on a given instruction set (AVX-512 falls back to AVX2 when the CPU lacks it).
func conv3dBackwardInput(gradOutput: Tensor, weight: Tensor, inputShape: [Int], stride: Size3,
                         padding: Padding3, dilation: Size3, groups: Int, isa: ConvISA) throws -> Tensor {
    // Validate with the input shape first so errors name the input and weight shapes together.
    _ = try Conv3DGeometry(op: "conv3dBackwardInput", inputShape: inputShape, weightShape: weight.shape,
                           stride: stride, padding: padding, dilation: dilation, groups: groups)
    let packed = try PackedConv3DInputGradient(weight: weight, stride: stride, padding: padding, dilation: dilation,
                                               groups: groups, isa: isa)
    return try packed.backward(gradOutput, inputShape: inputShape)
}

/// Gradients of conv3d with respect to its weight and bias.
///
/// - Parameters:
///   - gradOutput: `[N, Cout, OD, OH, OW]`, dLoss/dOutput of the convolution (before any activation).
///   - input: `[N, Cin, D, H, W]`, the forward input.
///   - weightShape: `[Cout, Cin/groups, kD, kH, kW]`.
/// - Returns: `weight`: `[Cout, Cin/groups, kD, kH, kW]`, dLoss/dWeight summed over the batch;
///   `bias`: `[Cout]`, dLoss/dBias (the sum of `gradOutput` over N, OD, OH, OW).
/// - Throws: `TensorError` naming the shapes when they do not fit together.
public func conv3dBackwardWeight(gradOutput: Tensor, input: Tensor, weightShape: [Int], stride: Size3 = 1,
                                 padding: Padding3 = 0, dilation: Size3 = 1,
                                 groups: Int = 1) throws -> (weight: Tensor, bias: Tensor) {
    try conv3dBackwardWeight(gradOutput: gradOutput, input: input, weightShape: weightShape, stride: stride,
                             padding: padding, dilation: dilation, groups: groups, isa: Conv3DEngine.isa)
}

/// `conv3dBackwardWeight` on a given instruction set (AVX-512 falls back to AVX2 when the CPU lacks
/// it). The two sum each weight's products in different lane groupings, so they agree to rounding,
/// not bit for bit; each is deterministic.
func conv3dBackwardWeight(gradOutput: Tensor, input: Tensor, weightShape: [Int], stride: Size3, padding: Padding3,
                          dilation: Size3, groups: Int, isa requested: ConvISA) throws -> (weight: Tensor, bias: Tensor) {
    let isa: ConvISA = requested == .avx512 && Conv3DEngine.cpuHasAVX512 ? .avx512 : .avx2
    let lanes = isa == .avx512 ? 16 : 8, coBlock = isa == .avx512 ? 8 : 4
    let op = "conv3dBackwardWeight"
    let geo = try Conv3DGeometry(op: op, inputShape: input.shape, weightShape: weightShape, stride: stride,
                                 padding: padding, dilation: dilation, groups: groups)
    guard gradOutput.shape == geo.outputShape else {
        throw TensorError.shapeMismatch(op, gradOutput.shape, geo.outputShape, "gradOutput must have the forward output's shape")
    }
    let I = geo.input, O = geo.output, K = geo.kernel, s = stride, dil = dilation, pb = padding.begin
    let coutG = geo.outPerGroup, cinG = geo.inPerGroup, Cout = geo.outChannels
    // Padded input, W de-interleaved by the W stride: xd[ci][pd][ph][r][q] = xpad[ci][pd][ph][q*sw + r].
    let owr = (O.w + lanes - 1) / lanes * lanes
    let qw = owr + (K.w - 1) * dil.w / s.w
    let P = Size3(I.d + pb.d + padding.end.d, I.h + pb.h + padding.end.h, 0)
    let rowX = s.w * qw, planeX = P.h * rowX, chanX = P.d * planeX
    // gy with OW rounded up to the lane count (zeros after), plus one zero channel for blocks past Cout.
    let rowG = owr, chanG = O.d * O.h * owr
    var xd = [Float](repeating: 0, count: geo.inChannels * chanX)
    var gp = [Float](repeating: 0, count: (Cout + 1) * chanG)
    var gw = [Float](repeating: 0, count: weightShape.product)
    let blocks = (coutG + coBlock - 1) / coBlock
    let tiles = groups * blocks * cinG
    var gb = [Double](repeating: 0, count: Cout)
    let x = input.scalars, gy = gradOutput.scalars
    for n in 0..<geo.batch {
        xd.withUnsafeMutableBufferPointer { xb in
            let xs = SharedPointer(xb.baseAddress!)
            x.withUnsafeBufferPointer { xbuf in
                let src = SharedConstPointer(xbuf.baseAddress! + n * geo.inChannels * I.product)
                Parallel.forEach(geo.inChannels) { ci in
                    for pd in 0..<P.d {
                        let id = pd - pb.d
                        if id < 0 || id >= I.d { continue }
                        for ph in 0..<P.h {
                            let ih = ph - pb.h
                            if ih < 0 || ih >= I.h { continue }
                            let row = (src + (ci * I.d + id) * I.h * I.w + ih * I.w)
                            let dst = xs + ci * chanX + pd * planeX + ph * rowX
                            for iw in 0..<I.w {
                                let t = iw + pb.w
                                let (q, r) = (t / s.w, t % s.w)
                                if q < qw { dst[r * qw + q] = row[iw] }
                            }
                        }
                    }
                }
            }
        }
        // Row-padded copy of gy and the bias gradient, parallel over output channels (each owns its
        // rows and its bias entry; the bias sum runs in a fixed order, in Double).
        gp.withUnsafeMutableBufferPointer { gbuf in gb.withUnsafeMutableBufferPointer { bbuf in
            gy.withUnsafeBufferPointer { gyb in
                let G = SharedPointer(gbuf.baseAddress!), B = SharedPointer(bbuf.baseAddress!)
                let Y = SharedConstPointer(gyb.baseAddress! + n * Cout * O.product)
                Parallel.forEach(Cout) { co in
                    var sum = 0.0
                    for r in 0..<(O.d * O.h) {
                        let src = Y + co * O.product + r * O.w
                        (G + co * chanG + r * rowG).update(from: src, count: O.w)
                        for ow in 0..<O.w { sum += Double(src[ow]) }
                    }
                    B[co] += sum
                }
            }
        }}
        xd.withUnsafeBufferPointer { xb in gp.withUnsafeBufferPointer { gbuf in gw.withUnsafeMutableBufferPointer { wb in
            let X = SharedConstPointer(xb.baseAddress!), Gy = SharedConstPointer(gbuf.baseAddress!)
            let W = SharedPointer(wb.baseAddress!)
            Parallel.forEach(tiles) { tile in
                let ci = tile % cinG
                let gblk = tile / cinG
                let g = gblk / blocks, co0 = (gblk % blocks) * coBlock
                func gRow(_ j: Int) -> UnsafePointer<Float> {
                    let co = co0 + j < coutG ? g * coutG + co0 + j : Cout
                    return Gy + co * chanG
                }
                let g0 = gRow(0), g1 = gRow(1), g2 = gRow(2), g3 = gRow(3)
                let xc = X + (g * cinG + ci) * chanX
                if isa == .avx512 {
                    let kvol = K.product
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * kvol) { out in
                        weightGrad512(WeightGrad512Tile(
                            gy: (g0, g1, g2, g3, gRow(4), gRow(5), gRow(6), gRow(7)), x: xc,
                            kernel: (K.d, K.h, K.w), dilation: (dil.d, dil.h, dil.w), stride: (s.d, s.h, s.w),
                            outD: O.d, outH: O.h, rowG: rowG, planeX: planeX, rowX: rowX, qw: qw, out: out.baseAddress!))
                        for j in 0..<8 where co0 + j < coutG {
                            let w = W + ((g * coutG + co0 + j) * cinG + ci) * kvol
                            for t in 0..<kvol { w[t] += out[j * kvol + t] }
                        }
                    }
                    return
                }
                for kd in 0..<K.d { for kh in 0..<K.h {
                    var kw0 = 0
                    while kw0 < K.w {
                        let nk = min(3, K.w - kw0)
                        // X offsets of the nk taps inside a row (clamped taps are computed, not stored).
                        func xoff(_ j: Int) -> Int {
                            let t = min(kw0 + j, K.w - 1) * dil.w
                            return (t % s.w) * qw + t / s.w
                        }
                        let (x0, x1, x2) = (xoff(0), xoff(1), xoff(2))
                        let z = SIMD8<Float>(repeating: 0)
                        var a00 = z, a01 = z, a02 = z, a10 = z, a11 = z, a12 = z
                        var a20 = z, a21 = z, a22 = z, a30 = z, a31 = z, a32 = z
                        for od in 0..<O.d {
                            let xplane = xc + (od * s.d + kd * dil.d) * planeX
                            for oh in 0..<O.h {
                                let xr = xplane + (oh * s.h + kh * dil.h) * rowX
                                let go = (od * O.h + oh) * rowG
                                var ow = 0
                                while ow < owr {
                                    let v0 = loadVector(g0 + go + ow), v1 = loadVector(g1 + go + ow)
                                    let v2 = loadVector(g2 + go + ow), v3 = loadVector(g3 + go + ow)
                                    let u0 = loadVector(xr + x0 + ow), u1 = loadVector(xr + x1 + ow)
                                    let u2 = loadVector(xr + x2 + ow)
                                    a00 = a00.addingProduct(v0, u0); a01 = a01.addingProduct(v0, u1); a02 = a02.addingProduct(v0, u2)
                                    a10 = a10.addingProduct(v1, u0); a11 = a11.addingProduct(v1, u1); a12 = a12.addingProduct(v1, u2)
                                    a20 = a20.addingProduct(v2, u0); a21 = a21.addingProduct(v2, u1); a22 = a22.addingProduct(v2, u2)
                                    a30 = a30.addingProduct(v3, u0); a31 = a31.addingProduct(v3, u1); a32 = a32.addingProduct(v3, u2)
                                    ow += 8
                                }
                            }
                        }
                        let acc = [[a00, a01, a02], [a10, a11, a12], [a20, a21, a22], [a30, a31, a32]]
                        for j in 0..<4 where co0 + j < coutG {
                            let co = g * coutG + co0 + j
                            for t in 0..<nk {
                                W[(((co * cinG + ci) * K.d + kd) * K.h + kh) * K.w + kw0 + t] += acc[j][t].sum()
                            }
                        }
                        kw0 += nk
                    }
                }}
            }
        }}}
    }
    return (try Tensor(shape: weightShape, scalars: gw), try Tensor(shape: [Cout], scalars: gb.map { Float($0) }))
}

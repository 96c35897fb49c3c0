// Naive 3D convolution: the oracle the fast kernels are tested against, written straight from the
// definition (PyTorch's cross-correlation convention):
//
//   out[n, co, o] = bias[co] + sum_{ci in group(co), k} w[co, ci - g*Cin/G, k] * x[n, ci, o*s + k*dil - pBegin]
//
// with x = 0 outside the input. Every sum is accumulated in Double, so the reference is the more
// accurate side of any comparison; tolerances in tests cover only the Float rounding of the fast path.
// Single-threaded and slow (a few MFLOP/s): use on small shapes only.

/// Calls `body(y, x, w)` with the flat indices of every output element, input element and weight that
/// meet in the convolution's sum, straight from the definition above (taps that fall in the padding
/// are skipped), in the order n, co, output voxel, input channel, kD, kH, kW. The three references
/// below are this one loop nest with a one-line body each.
private func forEachConvTap(_ g: Conv3DGeometry, _ body: (_ y: Int, _ x: Int, _ w: Int) -> Void) {
    let (I, O, K) = (g.input, g.output, g.kernel)
    let (stride, padding, dilation) = (g.stride, g.padding, g.dilation)
    for n in 0..<g.batch { for co in 0..<g.outChannels {
        let grp = co / g.outPerGroup
        for od in 0..<O.d { for oh in 0..<O.h { for ow in 0..<O.w {
            let y = (((n * g.outChannels + co) * O.d + od) * O.h + oh) * O.w + ow
            for cl in 0..<g.inPerGroup {
                let ci = grp * g.inPerGroup + cl
                for kd in 0..<K.d {
                    let id = od * stride.d + kd * dilation.d - padding.begin.d
                    if id < 0 || id >= I.d { continue }
                    for kh in 0..<K.h {
                        let ih = oh * stride.h + kh * dilation.h - padding.begin.h
                        if ih < 0 || ih >= I.h { continue }
                        for kw in 0..<K.w {
                            let iw = ow * stride.w + kw * dilation.w - padding.begin.w
                            if iw < 0 || iw >= I.w { continue }
                            body(y, (((n * g.inChannels + ci) * I.d + id) * I.h + ih) * I.w + iw,
                                 (((co * g.inPerGroup + cl) * K.d + kd) * K.h + kh) * K.w + kw)
                        }
                    }
                }
            }
        }}}
    }}
}

/// The naive 3D convolution forward pass (reference oracle; slow).
///
/// - Parameters:
///   - input: `[N, Cin, D, H, W]`.
///   - weight: `[Cout, Cin/groups, kD, kH, kW]`.
///   - bias: `[Cout]` or nil.
/// - Returns: `[N, Cout, OD, OH, OW]`, `O = (I + pBegin + pEnd - dil*(k-1) - 1) / s + 1`, with `activation` applied.
/// - Throws: `TensorError` naming both shapes when they do not fit together.
public func conv3dReference(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Size3 = 1,
                            padding: Padding3 = 0, dilation: Size3 = 1, groups: Int = 1,
                            activation: Activation = .identity) throws -> Tensor {
    let g = try Conv3DGeometry(op: "conv3dReference", inputShape: input.shape, weightShape: weight.shape,
                               stride: stride, padding: padding, dilation: dilation, groups: groups)
    try g.checkBias(bias, op: "conv3dReference")
    let x = input.scalars, w = weight.scalars
    let perChannel = g.output.product
    // Each sum starts from the bias, then adds the taps in the visitor's order.
    var acc = (0..<g.outputShape.product).map { Double(bias?.scalars[($0 / perChannel) % g.outChannels] ?? 0) }
    forEachConvTap(g) { y, xi, wi in acc[y] += Double(x[xi]) * Double(w[wi]) }
    return try Tensor(shape: g.outputShape, scalars: acc.map { activation.apply(Float($0)) })
}

/// The naive gradient of conv3d with respect to its input (reference oracle; slow).
///
/// - Parameters:
///   - gradOutput: `[N, Cout, OD, OH, OW]`, the gradient of the loss with respect to the conv output
///     (before any activation: fold the activation's derivative in first).
///   - weight: `[Cout, Cin/groups, kD, kH, kW]`.
///   - inputShape: `[N, Cin, D, H, W]` of the forward input.
/// - Returns: `[N, Cin, D, H, W]`, dLoss/dInput.
/// - Throws: `TensorError` when the shapes do not fit together.
public func conv3dBackwardInputReference(gradOutput: Tensor, weight: Tensor, inputShape: [Int],
                                         stride: Size3 = 1, padding: Padding3 = 0, dilation: Size3 = 1,
                                         groups: Int = 1) throws -> Tensor {
    let g = try Conv3DGeometry(op: "conv3dBackwardInputReference", inputShape: inputShape, weightShape: weight.shape,
                               stride: stride, padding: padding, dilation: dilation, groups: groups)
    guard gradOutput.shape == g.outputShape else {
        throw TensorError.shapeMismatch("conv3dBackwardInputReference", gradOutput.shape, g.outputShape,
                                        "gradOutput must have the forward output's shape")
    }
    var acc = [Double](repeating: 0, count: g.inputShape.product)
    let gy = gradOutput.scalars, w = weight.scalars
    // Scatter form: the exact transpose of the forward loop nest.
    forEachConvTap(g) { y, xi, wi in acc[xi] += Double(gy[y]) * Double(w[wi]) }
    return try Tensor(shape: g.inputShape, scalars: acc.map { Float($0) })
}

/// The naive gradients of conv3d with respect to its weight and bias (reference oracle; slow).
///
/// - Parameters:
///   - gradOutput: `[N, Cout, OD, OH, OW]`, dLoss/dOutput (before any activation).
///   - input: `[N, Cin, D, H, W]`, the forward input.
///   - weightShape: `[Cout, Cin/groups, kD, kH, kW]`.
/// - Returns: `weight`: `[Cout, Cin/groups, kD, kH, kW]`, dLoss/dWeight; `bias`: `[Cout]`, dLoss/dBias
///   (the sum of `gradOutput` over N, OD, OH, OW).
/// - Throws: `TensorError` when the shapes do not fit together.
public func conv3dBackwardWeightReference(gradOutput: Tensor, input: Tensor, weightShape: [Int],
                                          stride: Size3 = 1, padding: Padding3 = 0, dilation: Size3 = 1,
                                          groups: Int = 1) throws -> (weight: Tensor, bias: Tensor) {
    let g = try Conv3DGeometry(op: "conv3dBackwardWeightReference", inputShape: input.shape, weightShape: weightShape,
                               stride: stride, padding: padding, dilation: dilation, groups: groups)
    guard gradOutput.shape == g.outputShape else {
        throw TensorError.shapeMismatch("conv3dBackwardWeightReference", gradOutput.shape, g.outputShape,
                                        "gradOutput must have the forward output's shape")
    }
    var gw = [Double](repeating: 0, count: weightShape.product)
    var gb = [Double](repeating: 0, count: g.outChannels)
    let gy = gradOutput.scalars, x = input.scalars
    let perChannel = g.output.product
    for (y, v) in gy.enumerated() { gb[(y / perChannel) % g.outChannels] += Double(v) }
    forEachConvTap(g) { y, xi, wi in gw[wi] += Double(gy[y]) * Double(x[xi]) }
    return (try Tensor(shape: weightShape, scalars: gw.map { Float($0) }),
            try Tensor(shape: [g.outChannels], scalars: gb.map { Float($0) }))
}

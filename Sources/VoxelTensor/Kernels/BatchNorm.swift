// Batch normalisation at inference (running statistics), its backward pass, and folding a batch norm
// into the preceding convolution's weight and bias.
//
// y = (x - mean) / sqrt(var + eps) * scale + shift = a[c] * x + b[c], tiled over (n, c) planes.

/// Per-channel multiplier `a = scale / sqrt(var + eps)` and offset `b = shift - mean * a`, validated.
private func batchNormCoefficients(_ op: String, channels: Int, mean: Tensor, variance: Tensor,
                                   scale: Tensor, shift: Tensor, epsilon: Float) throws -> (a: [Float], b: [Float]) {
    for (name, t) in [("mean", mean), ("variance", variance), ("scale", scale), ("shift", shift)] where t.count != channels {
        throw TensorError("\(op): \(name) has shape \(t.shape), expected \(channels) values (one per channel)")
    }
    guard epsilon >= 0 else { throw TensorError("\(op): epsilon \(epsilon) is negative") }
    var a = [Float](repeating: 0, count: channels), b = a
    for c in 0..<channels {
        // Computed in Double so folding and the direct op agree to rounding.
        let inv = Double(scale.scalars[c]) / (Double(variance.scalars[c]) + Double(epsilon)).squareRoot()
        a[c] = Float(inv)
        b[c] = Float(Double(shift.scalars[c]) - Double(mean.scalars[c]) * inv)
    }
    return (a, b)
}

/// BatchNormalization at inference: `(x - mean) / sqrt(variance + epsilon) * scale + shift`.
///
/// - Parameters: x: `[N, C, ...]` (rank >= 2); mean, variance, scale, shift: `[C]` (running statistics
///   and the affine parameters; ONNX `input_mean`, `input_var`, `scale`, `B`); activation: applied to
///   each result in the same pass (a pre-activation block's BN -> ReLU).
/// - Returns: shape `x.shape`.
/// - Throws: `TensorError` when x has rank < 2 or a parameter does not hold C values.
public func batchNorm(_ x: Tensor, mean: Tensor, variance: Tensor, scale: Tensor, shift: Tensor,
                      epsilon: Float = 1e-5, activation: Activation = .identity) throws -> Tensor {
    guard x.rank >= 2 else { throw TensorError("batchNorm: expected [N, C, ...], got shape \(x.shape)") }
    let channels = x.shape[1]
    let (a, b) = try batchNormCoefficients("batchNorm", channels: channels, mean: mean, variance: variance,
                                           scale: scale, shift: shift, epsilon: epsilon)
    let plane = x.shape[2...].reduce(1, *)
    let planes = x.shape[0] * channels
    if x.count == 0 { return x }
    return Tensor(shape: x.shape) { out in
        let o = shared(out)
        x.withShared { src in
            Parallel.forRanges(planes, grain: max(1, elementwiseGrain / max(1, plane))) { range in
                for p in range {
                    let c = p % channels
                    activation.applyAffine(src + p * plane, into: o + p * plane, count: plane, a: a[c], b: b[c])
                }
            }
        }
    }
}

/// Backward of inference BatchNormalization, for the input and the affine parameters.
///
/// - Parameters: gradOutput, input: `[N, C, ...]`; mean, variance, scale: `[C]` as in the forward.
/// - Returns: `input`: `g * scale / sqrt(var + eps)` (shape `input.shape`); `scale`:
///   `sum(g * (x - mean) / sqrt(var + eps))` and `shift`: `sum(g)` over all axes but C (shape `[C]`).
/// - Throws: `TensorError` on mismatched shapes.
public func batchNormBackward(gradOutput: Tensor, input: Tensor, mean: Tensor, variance: Tensor, scale: Tensor,
                              epsilon: Float = 1e-5) throws -> (input: Tensor, scale: Tensor, shift: Tensor) {
    try requireSameShape("batchNormBackward", gradOutput, input)
    guard input.rank >= 2 else { throw TensorError("batchNormBackward: expected [N, C, ...], got shape \(input.shape)") }
    let channels = input.shape[1]
    let zero = Tensor.zeros([channels])
    let (a, _) = try batchNormCoefficients("batchNormBackward", channels: channels, mean: mean, variance: variance,
                                           scale: scale, shift: zero, epsilon: epsilon)
    let plane = input.shape[2...].reduce(1, *)
    let n = input.shape[0]
    var gx = Tensor.zeros(input.shape)
    var gScale = [Float](repeating: 0, count: channels), gShift = gScale
    if input.count == 0 { return (gx, Tensor.zeros([channels]), Tensor.zeros([channels])) }
    gx.scalars.withUnsafeMutableBufferPointer { gb in
        let o = shared(gb)
        gradOutput.withShared { g in input.withShared { x in
            Parallel.forRanges(n * channels, grain: max(1, elementwiseGrain / max(1, plane))) { range in
                for p in range {
                    let ac = a[p % channels]
                    for i in 0..<plane { o[p * plane + i] = g[p * plane + i] * ac }
                }
            }
            // Parameter gradients: one tile per channel, batches summed in order (Double).
            gScale.withUnsafeMutableBufferPointer { sb in gShift.withUnsafeMutableBufferPointer { hb in
                let sp = shared(sb), hp = shared(hb)
                let invStd = (0..<channels).map { c in
                    1 / (Double(variance.scalars[c]) + Double(epsilon)).squareRoot()
                }
                Parallel.forEach(channels) { c in
                    var sg = 0.0, sgx = 0.0
                    let mu = mean.scalars[c]
                    for b in 0..<n {
                        let base = (b * channels + c) * plane
                        var accG: Float = 0, accGX: Float = 0
                        for i in 0..<plane { accG += g[base + i]; accGX += g[base + i] * (x[base + i] - mu) }
                        sg += Double(accG)
                        sgx += Double(accGX)
                    }
                    sp[c] = Float(sgx * invStd[c])
                    hp[c] = Float(sg)
                }
            } }
        } }
    }
    return (gx, try Tensor(shape: [channels], scalars: gScale), try Tensor(shape: [channels], scalars: gShift))
}

/// Folds an inference batch norm into the preceding convolution (or linear) layer.
///
/// `bn(conv(x, weight) + bias) == conv(x, weight') + bias'` with `weight'[o] = weight[o] * a[o]` and
/// `bias' = (bias - mean) * a + shift`, `a = scale / sqrt(variance + epsilon)`.
/// - Parameters: weight: `[Cout, ...]` (conv `[Cout, Cin, kD, kH, kW]` or linear `[Cout, Cin]`);
///   bias: `[Cout]` or nil (zero); mean, variance, scale, shift: `[Cout]`.
/// - Returns: the folded weight (shape `weight.shape`) and bias (`[Cout]`).
/// - Throws: `TensorError` when a parameter does not hold Cout values.
public func foldBatchNorm(weight: Tensor, bias: Tensor?, mean: Tensor, variance: Tensor, scale: Tensor,
                          shift: Tensor, epsilon: Float = 1e-5) throws -> (weight: Tensor, bias: Tensor) {
    guard weight.rank >= 1 else { throw TensorError("foldBatchNorm: weight must be [Cout, ...], got shape \(weight.shape)") }
    let cout = weight.shape[0]
    if let bias, bias.count != cout {
        throw TensorError.shapeMismatch("foldBatchNorm", weight.shape, bias.shape, "bias must hold Cout values")
    }
    let (a, _) = try batchNormCoefficients("foldBatchNorm", channels: cout, mean: mean, variance: variance,
                                           scale: scale, shift: shift, epsilon: epsilon)
    let per = cout == 0 ? 0 : weight.count / cout
    var w = weight
    for o in 0..<cout { for i in 0..<per { w.scalars[o * per + i] *= a[o] } }
    var b = [Float](repeating: 0, count: cout)
    for o in 0..<cout {
        let inv = Double(scale.scalars[o]) / (Double(variance.scalars[o]) + Double(epsilon)).squareRoot()
        let b0 = Double(bias?.scalars[o] ?? 0)
        b[o] = Float((b0 - Double(mean.scalars[o])) * inv + Double(shift.scalars[o]))
    }
    return (w, try Tensor(shape: [cout], scalars: b))
}

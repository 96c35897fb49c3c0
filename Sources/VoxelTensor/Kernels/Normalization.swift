// Group and instance normalisation (statistics from the input itself, per sample), with backward
// passes. PyTorch nn.GroupNorm / nn.InstanceNorm3d, ONNX GroupNormalization (opset 21, per-channel
// scale) and InstanceNormalization. Variance is biased (divides by the group size), as both define.
//
// A group (n, g) is one contiguous block of C/G channels times the spatial size, so tiles are groups;
// statistics are accumulated in Double with two passes (mean, then squared deviations).

/// Mean and 1/sqrt(var + eps) of each (n, g) group, in group order.
private func groupStatistics(_ x: SharedConstPointer<Float>, groups: Int, groupSize: Int, epsilon: Float)
    -> (mean: [Double], rstd: [Double]) {
    var mean = [Double](repeating: 0, count: groups), rstd = mean
    mean.withUnsafeMutableBufferPointer { mb in rstd.withUnsafeMutableBufferPointer { rb in
        guard let mp = mb.baseAddress, let rp = rb.baseAddress else { return }
        let m = SharedPointer(mp), r = SharedPointer(rp)
        Parallel.forEach(groups) { g in
            let p = x + g * groupSize
            var s = 0.0
            for i in 0..<groupSize { s += Double(p[i]) }
            let mu = s / Double(max(1, groupSize))
            var v = 0.0
            for i in 0..<groupSize { let d = Double(p[i]) - mu; v += d * d }
            m[g] = mu
            r[g] = 1 / (v / Double(max(1, groupSize)) + Double(epsilon)).squareRoot()
        }
    } }
    return (mean, rstd)
}

/// Validates shapes; returns (N, C, spatial size, channels per group).
private func groupNormShape(_ op: String, _ x: Tensor, groups: Int, scale: Tensor, shift: Tensor?) throws -> (Int, Int, Int, Int) {
    guard x.rank >= 2 else { throw TensorError("\(op): expected [N, C, ...], got shape \(x.shape)") }
    let c = x.shape[1]
    guard groups >= 1, c % groups == 0 else { throw TensorError("\(op): \(groups) groups do not divide \(c) channels of shape \(x.shape)") }
    guard scale.count == c, shift.map({ $0.count == c }) ?? true else {
        throw TensorError.shapeMismatch(op, x.shape, scale.count == c ? (shift?.shape ?? []) : scale.shape, "scale and shift must hold C values")
    }
    return (x.shape[0], c, x.shape[2...].reduce(1, *), c / groups)
}

/// GroupNorm: normalises each sample's groups of C/G channels (over those channels and all positions),
/// then applies a per-channel scale and shift.
///
/// - Parameters: x: `[N, C, ...]`; groups: G dividing C (C gives InstanceNorm, 1 a LayerNorm over all
///   but N); scale, shift: `[C]`; epsilon: added to the variance.
/// - Returns: shape `x.shape`.
/// - Throws: `TensorError` when G does not divide C or scale/shift do not hold C values.
public func groupNorm(_ x: Tensor, groups: Int, scale: Tensor, shift: Tensor, epsilon: Float = 1e-5) throws -> Tensor {
    let (n, c, spatial, perGroup) = try groupNormShape("groupNorm", x, groups: groups, scale: scale, shift: shift)
    if x.count == 0 { return x }
    let groupSize = perGroup * spatial
    return Tensor(shape: x.shape) { out in
        let o = shared(out)
        x.withShared { src in
            let stats = groupStatistics(src, groups: n * groups, groupSize: groupSize, epsilon: epsilon)
            Parallel.forEach(n * c) { plane in
                let g = plane / perGroup, ch = plane % c
                let a = Float(stats.rstd[g]) * scale.scalars[ch]
                let b = shift.scalars[ch] - Float(stats.mean[g]) * a
                let s = src + plane * spatial, d = o + plane * spatial
                for i in 0..<spatial { d[i] = s[i] * a + b }
            }
        }
    }
}

/// Backward of GroupNorm, for the input, the scale and the shift.
///
/// With `xhat = (x - mean) * rstd` and `h = g * scale[c]`, the input gradient of a group is
/// `rstd * (h - mean(h) - xhat * mean(h * xhat))`.
/// - Parameters: gradOutput, input: `[N, C, ...]`; groups, scale, epsilon: as in the forward.
/// - Returns: gradients of shapes `input.shape`, `[C]` (`sum(g * xhat)`) and `[C]` (`sum(g)`).
/// - Throws: `TensorError` on mismatched shapes.
public func groupNormBackward(gradOutput: Tensor, input: Tensor, groups: Int, scale: Tensor,
                              epsilon: Float = 1e-5) throws -> (input: Tensor, scale: Tensor, shift: Tensor) {
    try requireSameShape("groupNormBackward", gradOutput, input)
    let (n, c, spatial, perGroup) = try groupNormShape("groupNormBackward", input, groups: groups, scale: scale, shift: nil)
    if input.count == 0 { return (input, Tensor.zeros([c]), Tensor.zeros([c])) }
    let groupSize = perGroup * spatial
    var gScale = [Float](repeating: 0, count: c), gShift = gScale
    let gx = Tensor(shape: input.shape) { out in
        let o = shared(out)
        input.withShared { x in gradOutput.withShared { g in
            let stats = groupStatistics(x, groups: n * groups, groupSize: groupSize, epsilon: epsilon)
            Parallel.forEach(n * groups) { grp in
                let mu = stats.mean[grp], rs = stats.rstd[grp]
                let c0 = (grp % groups) * perGroup
                var sumH = 0.0, sumHX = 0.0
                for k in 0..<perGroup {
                    let gamma = Double(scale.scalars[c0 + k])
                    let base = grp * groupSize + k * spatial
                    for i in 0..<spatial {
                        let h = Double(g[base + i]) * gamma
                        sumH += h
                        sumHX += h * (Double(x[base + i]) - mu) * rs
                    }
                }
                let meanH = sumH / Double(groupSize), meanHX = sumHX / Double(groupSize)
                for k in 0..<perGroup {
                    let gamma = Double(scale.scalars[c0 + k])
                    let base = grp * groupSize + k * spatial
                    for i in 0..<spatial {
                        let xhat = (Double(x[base + i]) - mu) * rs
                        o[base + i] = Float(rs * (Double(g[base + i]) * gamma - meanH - xhat * meanHX))
                    }
                }
            }
            // Parameter gradients: one tile per channel, samples summed in order.
            gScale.withUnsafeMutableBufferPointer { sb in gShift.withUnsafeMutableBufferPointer { hb in
                let sp = shared(sb), hp = shared(hb)
                Parallel.forEach(c) { ch in
                    var sg = 0.0, sgx = 0.0
                    for b in 0..<n {
                        let grp = b * groups + ch / perGroup
                        let mu = stats.mean[grp], rs = stats.rstd[grp]
                        let base = (b * c + ch) * spatial
                        for i in 0..<spatial {
                            sg += Double(g[base + i])
                            sgx += Double(g[base + i]) * (Double(x[base + i]) - mu) * rs
                        }
                    }
                    sp[ch] = Float(sgx)
                    hp[ch] = Float(sg)
                }
            } }
        } }
    }
    return (gx, try Tensor(shape: [c], scalars: gScale), try Tensor(shape: [c], scalars: gShift))
}

/// InstanceNorm (ONNX InstanceNormalization, PyTorch InstanceNorm3d): GroupNorm with one group per channel.
///
/// - Parameters: x: `[N, C, ...]`; scale, shift: `[C]` (ones and zeros for PyTorch's affine=False).
/// - Returns: shape `x.shape`.
/// - Throws: `TensorError` when scale/shift do not hold C values or x has rank < 2.
public func instanceNorm(_ x: Tensor, scale: Tensor, shift: Tensor, epsilon: Float = 1e-5) throws -> Tensor {
    guard x.rank >= 2 else { throw TensorError("instanceNorm: expected [N, C, ...], got shape \(x.shape)") }
    return try groupNorm(x, groups: x.shape[1], scale: scale, shift: shift, epsilon: epsilon)
}

/// Backward of InstanceNorm. See `groupNormBackward(gradOutput:input:groups:scale:epsilon:)`.
///
/// - Returns: gradients of shapes `input.shape`, `[C]` and `[C]`.
public func instanceNormBackward(gradOutput: Tensor, input: Tensor, scale: Tensor,
                                 epsilon: Float = 1e-5) throws -> (input: Tensor, scale: Tensor, shift: Tensor) {
    guard input.rank >= 2 else { throw TensorError("instanceNormBackward: expected [N, C, ...], got shape \(input.shape)") }
    return try groupNormBackward(gradOutput: gradOutput, input: input, groups: input.shape[1], scale: scale, epsilon: epsilon)
}

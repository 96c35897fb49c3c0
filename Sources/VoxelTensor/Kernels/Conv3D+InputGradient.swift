// Input gradient of conv3d, with the transposed weights packed once:
//   gx[n, ci, i] = sum_{co in group(ci), k : i = o*s + k*dil - pBegin} gy[n, co, o] * w[co, ci, k]
// Split by stride phase: for i = phi + s*m (per axis), the taps that reach i are those with
// (phi + pBegin - k*dil) divisible by s, and then o = m + c_k with c_k = (phi + pBegin - k*dil) / s.
// So each phase is a stride-1 correlation of the zero-bordered gy with a sub-kernel, run on the same
// register-blocked engine as the forward pass (Conv3D+Direct.swift) with Cin and Cout swapped. For
// stride 1 there is one phase: the convolution with flipped, transposed weights. No FLOP is spent on
// inserted zeros, so any stride costs about what the forward pass costs. A phase no tap reaches
// (stride > kernel) runs with zero taps and writes zeros.

/// The input gradient of a 3D convolution with its weights packed once (transposed and split by
/// stride phase), for backward passes run many times (Grad-CAM over many scans).
public struct PackedConv3DInputGradient: Sendable {
    /// `[Cout, Cin/groups, kD, kH, kW]` of the forward weight.
    public let weightShape: [Int]
    /// Stride, padding, dilation and channel groups of the forward convolution.
    public let stride: Size3, padding: Padding3, dilation: Size3, groups: Int
    /// The instruction set the weights are packed for.
    public let isa: ConvISA

    /// One stride phase: its offset, the (c_d, c_h, c_w) shift of each tap reaching it, and its
    /// weights packed for every kernel it may run with.
    struct Phase: Sendable {
        var phase: Size3
        var shifts: [Size3]
        /// The shifts are this grid of (d, h, w) taps, listed in `directTapOrder`.
        var tapShape: Size3
        var weights: DirectWeightSet
    }
    let phases: [Phase]
    /// For 3x3x3 layers with stride 1 (padding at most 2): the gradient is the forward convolution of
    /// the output gradient with the flipped, transposed kernel and padding `2 - p`, which runs on the
    /// Winograd path where rows are wide enough (as `PackedConv3D.usesWinograd`).
    let flipped: Lazy<WinogradWeights>?
    /// The padding of that convolution, `2 - p` on every side.
    let flippedPadding: Padding3

    /// For 3x3x3 layers with stride 2: the weights of the stride-2 Winograd kernel, transposed.
    let transposedStride2: Lazy<WinogradStride2Weights>?

    /// Whether gradients `width` columns wide (the forward input's width) run on a Winograd path. For
    /// stride 2 the rule is the forward's on its output width with padding 1, `(width + 1) / 2`: the
    /// gradient's tiles are 4 input columns wide, so as many per row as the forward's tiles.
    public func usesWinograd(width: Int) -> Bool {
        flipped != nil && WinogradWeights.prefers(width: width)
            || transposedStride2 != nil && WinogradStride2Weights.prefers(width: (width + 1) / 2)
    }

    /// Packs `weight: [Cout, Cin/groups, kD, kH, kW]` for input gradients.
    ///
    /// - Throws: `TensorError` when the weight is not 5D, groups do not divide Cout, or a parameter is
    ///   out of range.
    public init(weight: Tensor, stride: Size3 = 1, padding: Padding3 = 0, dilation: Size3 = 1, groups: Int = 1) throws {
        try self.init(weight: weight, stride: stride, padding: padding, dilation: dilation, groups: groups,
                      isa: Conv3DEngine.isa)
    }

    /// Packs for a given instruction set (AVX-512 falls back to AVX2 when the CPU lacks it).
    init(weight: Tensor, stride: Size3, padding: Padding3, dilation: Size3, groups: Int, isa requested: ConvISA) throws {
        let ws = weight.shape
        guard ws.count == 5, ws.allSatisfy({ $0 > 0 }) else {
            throw TensorError("conv3dBackwardInput: weight must be 5D [Cout, Cin/groups, kD, kH, kW] with positive extents, got \(ws)")
        }
        let probe = [1, ws[1] * groups, dilation.d * (ws[2] - 1) + 1, dilation.h * (ws[3] - 1) + 1,
                     dilation.w * (ws[4] - 1) + 1]
        _ = try Conv3DGeometry(op: "conv3dBackwardInput", inputShape: probe, weightShape: ws, stride: stride,
                               padding: padding, dilation: dilation, groups: groups)
        let isa: ConvISA = requested == .avx512 && Conv3DEngine.cpuHasAVX512 ? .avx512 : .avx2
        weightShape = ws
        self.stride = stride; self.padding = padding; self.dilation = dilation; self.groups = groups; self.isa = isa
        let K = Size3(ws[2], ws[3], ws[4]), s = stride, dil = dilation, pb = padding.begin
        let coutG = ws[0] / groups, cinG = ws[1], taps = K.product
        // Per axis and phase: the (k, c_k) pairs that reach that phase.
        func phaseTaps(_ phi: Int, _ k: Int, _ dl: Int, _ st: Int, _ p: Int) -> [(k: Int, c: Int)] {
            (0..<k).compactMap { kk in
                let r = phi + p - kk * dl
                let m = ((r % st) + st) % st
                return m == 0 ? (kk, (r - m) / st) : nil
            }
        }
        var phases: [Phase] = []
        weight.scalars.withUnsafeBufferPointer { wb in
            let w = SharedConstPointer(wb.baseAddress!)
            for pd in 0..<s.d { for ph in 0..<s.h { for pw in 0..<s.w {
                let td = phaseTaps(pd, K.d, dil.d, s.d, pb.d), th = phaseTaps(ph, K.h, dil.h, s.h, pb.h)
                let tw = phaseTaps(pw, K.w, dil.w, s.w, pb.w)
                var shifts: [Size3] = [], kidx: [Int] = []
                for t in directTapOrder(Size3(td.count, th.count, tw.count), outPerGroup: cinG) {
                    let a = td[t.d], b = th[t.h], c = tw[t.w]
                    shifts.append(Size3(a.c, b.c, c.c))
                    kidx.append((a.k * K.h + b.k) * K.w + c.k)
                }
                let kernelIndex = kidx
                let packed = DirectWeightSet(groups: groups, inPerGroup: coutG, outPerGroup: cinG, taps: shifts.count,
                                             isa: isa) { g, ci, co, t in
                    w[((g * coutG + co) * cinG + ci) * taps + kernelIndex[t]]
                }
                phases.append(Phase(phase: Size3(pd, ph, pw), shifts: shifts,
                                    tapShape: Size3(td.count, th.count, tw.count), weights: packed))
            }}}
        }
        self.phases = phases
        let p = padding
        flippedPadding = Padding3(begin: Size3(2 - p.begin.d, 2 - p.begin.h, 2 - p.begin.w),
                                  end: Size3(2 - p.end.d, 2 - p.end.h, 2 - p.end.w))
        flipped = WinogradWeights.applies(weightShape: [ws[1], ws[0], ws[2], ws[3], ws[4]], stride: stride,
                                          padding: flippedPadding, dilation: dilation, groups: groups, isa: isa)
            ? Lazy { WinogradWeights(weight: weight, flipped: true) } : nil
        transposedStride2 = WinogradStride2Weights.applies(weightShape: [ws[1], ws[0], ws[2], ws[3], ws[4]],
                                                           stride: stride, padding: padding, dilation: dilation,
                                                           groups: groups, isa: isa)
            ? Lazy { WinogradStride2Weights(weight: weight, transposed: true) } : nil
    }

    /// The gradient of the loss with respect to the convolution's input.
    ///
    /// - Parameters:
    ///   - gradOutput: `[N, Cout, OD, OH, OW]`, dLoss/dOutput of the convolution (apply the derivative
    ///     of any fused activation first).
    ///   - inputShape: `[N, Cin, D, H, W]` of the forward input (strides lose remainders).
    /// - Returns: `[N, Cin, D, H, W]`, dLoss/dInput.
    /// - Throws: `TensorError` naming the shapes when `gradOutput` is not the forward output's shape or
    ///   the input and weight shapes do not fit together.
    public func backward(_ gradOutput: Tensor, inputShape: [Int]) throws -> Tensor {
        try backward(gradOutput, inputShape: inputShape, depthChunk: nil)
    }

    /// `backward` with a given number of gradient planes per chunk, or per task and rows per block
    /// where it runs by rows (tests: every choice gives the same bits).
    func backward(_ gradOutput: Tensor, inputShape: [Int], depthChunk: Int?, rowsPerBlock: Int? = nil) throws -> Tensor {
        let op = "conv3dBackwardInput"
        let geo = try Conv3DGeometry(op: op, inputShape: inputShape, weightShape: weightShape, stride: stride,
                                     padding: padding, dilation: dilation, groups: groups)
        guard gradOutput.shape == geo.outputShape else {
            throw TensorError.shapeMismatch(op, gradOutput.shape, geo.outputShape, "gradOutput must have the forward output's shape")
        }
        let I = geo.input, O = geo.output, K = geo.kernel, s = stride, dil = dilation, pb = padding.begin
        if let flipped, usesWinograd(width: I.w) {
            let fgeo = try Conv3DGeometry(op: op, inputShape: gradOutput.shape,
                                          weightShape: [weightShape[1], weightShape[0], 3, 3, 3], stride: 1,
                                          padding: flippedPadding, dilation: 1, groups: 1)
            let weights = flipped.value
            return Tensor(shape: geo.inputShape) { gx in
                gradOutput.scalars.withUnsafeBufferPointer { gy in
                    winogradForward(gy.baseAddress!, geo: fgeo, weights: weights, bias: nil, activation: .identity,
                                    into: gx.baseAddress!, residual: nil, chunk: depthChunk ?? winogradDepthChunk(fgeo))
                }
            }
        }
        if let transposedStride2, usesWinograd(width: I.w) {
            let weights = transposedStride2.value
            return Tensor(shape: geo.inputShape) { gx in
                gradOutput.scalars.withUnsafeBufferPointer { gy in
                    winogradStride2BackwardInput(gy.baseAddress!, geo: geo, weights: weights, into: gx.baseAddress!,
                                                 chunk: depthChunk ?? 2 * winogradStride2DepthChunk(geo))
                }
            }
        }
        if runsByRows(inputWidth: I.w) {
            return Tensor(shape: geo.inputShape) { gx in
                gradOutput.scalars.withUnsafeBufferPointer { gy in
                    backwardRows(gy.baseAddress!, into: gx.baseAddress!, geo: geo, planesPerTask: depthChunk,
                                 rowsPerBlock: rowsPerBlock)
                }
            }
        }
        // Zero border around gy wide enough for every phase: m + c_k ranges over
        // [-ceil(dil*(K-1)/s), floor((I-1+pb)/s)].
        func before(_ k: Int, _ dl: Int, _ st: Int) -> Int { (dl * (k - 1) + st - 1) / st }
        func after(_ i: Int, _ p: Int, _ st: Int, _ o: Int) -> Int { max(0, (i - 1 + p) / st + 1 - o) }
        let qb = Size3(before(K.d, dil.d, s.d), before(K.h, dil.h, s.h), before(K.w, dil.w, s.w))
        let qe = Size3(after(I.d, pb.d, s.d, O.d), after(I.h, pb.h, s.h, O.h), after(I.w, pb.w, s.w, O.w))
        let st = interleavedStrides(channels: geo.outChannels, size: O, begin: qb, end: qe)
        // Depth chunks as in the forward pass (see `PackedConv3D.convForwardDirect`), over the phase
        // grids' depth index m (gx plane phi.d + s.d*m): position m of every phase reads padded gy
        // planes qb.d + m + shift.d, so a chunk [m0, m1) reads [m0 + qb.d + lowest shift, m1 + qb.d +
        // highest shift), and every phase runs on it while it is in cache (a stride-2 stem's 8 phases
        // otherwise stream the whole gradient from memory 8 times).
        let shiftD = phases.flatMap { $0.shifts.map(\.d) }
        let lowD = shiftD.min() ?? 0, highD = shiftD.max() ?? 0
        let mCount = (I.d + s.d - 1) / s.d
        let chunk = depthChunk.map { max(1, min(mCount, $0)) }
            ?? PackedConv3D.depthChunk(outputDepth: mCount, sourcePlaneFloats: st.plane,
                                       outputPlaneFloats: s.d * geo.inChannels * I.h * I.w, rowsPerPlane: I.h)
        let reach = highD - lowD + 1
        var scratch = makeSourceScratch(SourceStrides(channel: st.channel, row: st.row, plane: st.plane,
                                                      count: (chunk - 1 + reach) * st.plane,
                                                      phases: 1, phaseLength: st.phaseLength))
        return Tensor(shape: geo.inputShape) { gx in
            gradOutput.scalars.withUnsafeBufferPointer { gy in
                scratch.withUnsafeMutableBufferPointer { sBuf in
                    for n in 0..<geo.batch {
                        var m0 = 0
                        while m0 < mCount {
                            let m1 = min(mCount, m0 + chunk)
                            // Padded planes [p0, p1) of gy (padded plane p holds gy plane p - qb.d).
                            let p0 = m0 + qb.d + lowD, p1 = m1 - 1 + qb.d + highD + 1
                            padPlanes(gy.baseAddress! + n * geo.outChannels * O.product, channels: geo.outChannels,
                                      size: O, begin: qb, end: qe, planes: p0..<p1, into: sBuf.baseAddress!)
                            // Phases write disjoint positions; together they cover every input position.
                            for p in phases {
                                let phi = p.phase
                                let depth = min(m1, (I.d - phi.d + s.d - 1) / s.d) - m0
                                let count = Size3(max(0, depth), (I.h - phi.h + s.h - 1) / s.h, (I.w - phi.w + s.w - 1) / s.w)
                                if count.product == 0 { continue }
                                let taps = p.shifts.map { $0.d * st.plane + $0.h * st.row + $0.w }
                                let grid = DirectGrid(count: count,
                                                      srcOrigin: (qb.d + m0 - p0) * st.plane + qb.h * st.row + qb.w,
                                                      srcStep: Size3(st.plane, st.row, 1),
                                                      dstOrigin: ((phi.d + s.d * m0) * I.h + phi.h) * I.w + phi.w,
                                                      dstStep: Size3(s.d * I.h * I.w, s.h * I.w, s.w))
                                runDirect(src: UnsafePointer(sBuf.baseAddress!), srcChannelStride: st.channel, taps: taps,
                                          weights: p.weights.forWidth(count.w), grid: grid,
                                          dst: gx.baseAddress! + n * geo.inChannels * I.product, dstChannelStride: I.product,
                                          bias: nil, activation: .identity, isa: isa, tapShape: p.tapShape,
                                          stores: outputStores(bytes: 4 * geo.inChannels * I.product, callBytes: geo.bytesMoved))
                            }
                            m0 = m1
                        }
                    }
                }
            }
        }
    }
}

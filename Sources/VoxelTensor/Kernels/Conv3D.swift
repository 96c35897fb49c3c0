// Fast 3D convolution forward pass: direct, register-blocked (see Conv3D+Direct.swift for the engine
// and docs/engine.md for the design). Shapes:
//   input  [N, Cin, D, H, W]
//   weight [Cout, Cin/groups, kD, kH, kW]    packed once into [groups][Cout/block][Cin/groups][kD*kH*kW][block]
//   bias   [Cout]
//   output [N, Cout, OD, OH, OW]
// Padding is applied by copying each batch item once into a zero-bordered scratch volume, so the
// inner loop has no border branches. Every kernel size, stride, dilation and group count runs on the
// same engine (grouped convolutions with fewer than 16 outputs per group waste the unused lanes).

/// A 3D convolution with its weights packed once for the fast kernel, for models run many times.
///
/// Holds the parameters of the layer; `forward(_:)` runs it on inputs of any spatial size.
public struct PackedConv3D: Sendable {
    /// `[Cout, Cin/groups, kD, kH, kW]` of the original weight.
    public let weightShape: [Int]
    /// Stride, padding (before and after each axis), dilation and channel groups of the layer.
    public let stride: Size3, padding: Padding3, dilation: Size3, groups: Int
    /// Activation fused into the output store.
    public let activation: Activation
    @usableFromInline let bias: [Float]?
    /// Weights packed for output rows at least 12 wide, and (when the kernel choice differs) for
    /// narrower rows; see `DirectWeights.preferredBlock`.
    @usableFromInline let packed: DirectWeights
    @usableFromInline let packedNarrow: DirectWeights?
    /// The instruction set this layer's weights are packed for (`Conv3DEngine.isa` unless a test asks).
    public let isa: ConvISA

    /// Packs `weight: [Cout, Cin/groups, kD, kH, kW]` and `bias: [Cout]` (or nil).
    ///
    /// - Throws: `TensorError` when the weight is not 5D, groups do not divide Cout, a parameter is
    ///   out of range, or the bias is not `[Cout]`.
    public init(weight: Tensor, bias: Tensor? = nil, stride: Size3 = 1, padding: Padding3 = 0,
                dilation: Size3 = 1, groups: Int = 1, activation: Activation = .identity) throws {
        try self.init(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                      groups: groups, activation: activation, isa: Conv3DEngine.isa)
    }

    /// Packs for a given instruction set (AVX-512 falls back to AVX2 when the CPU lacks it).
    init(weight: Tensor, bias: Tensor?, stride: Size3, padding: Padding3, dilation: Size3, groups: Int,
         activation: Activation, isa requested: ConvISA) throws {
        let ws = weight.shape
        guard ws.count == 5, ws.allSatisfy({ $0 > 0 }) else {
            throw TensorError("conv3d: weight must be 5D [Cout, Cin/groups, kD, kH, kW] with positive extents, got \(ws)")
        }
        // Validate parameters against the smallest input this weight accepts.
        let probe = [1, ws[1] * groups, dilation.d * (ws[2] - 1) + 1, dilation.h * (ws[3] - 1) + 1,
                     dilation.w * (ws[4] - 1) + 1]
        let geo = try Conv3DGeometry(inputShape: probe, weightShape: ws, stride: stride, padding: padding,
                                     dilation: dilation, groups: groups)
        try geo.checkBias(bias)
        weightShape = ws
        self.stride = stride; self.padding = padding; self.dilation = dilation; self.groups = groups
        self.activation = activation
        self.bias = bias?.scalars
        let taps = ws[2] * ws[3] * ws[4], inPG = ws[1], outPG = ws[0] / groups
        let isa: ConvISA = requested == .avx512 && Conv3DEngine.cpuHasAVX512 ? .avx512 : .avx2
        self.isa = isa
        func pack(block: Int) -> DirectWeights {
            weight.scalars.withUnsafeBufferPointer { wb in
                let w = SharedConstPointer(wb.baseAddress!)
                return DirectWeights(groups: groups, inPerGroup: inPG, outPerGroup: outPG, taps: taps, block: block) { g, co, ci, t in
                    w[((g * outPG + co) * inPG + ci) * taps + t]
                }
            }
        }
        let wide = DirectWeights.preferredBlock(outPerGroup: outPG, inPerGroup: inPG, taps: taps, width: 12, isa: isa)
        let narrow = DirectWeights.preferredBlock(outPerGroup: outPG, inPerGroup: inPG, taps: taps, width: 1, isa: isa)
        packed = pack(block: wide)
        packedNarrow = narrow == wide ? nil : pack(block: narrow)
    }

    /// Runs the convolution.
    ///
    /// - Parameter input: `[N, Cin, D, H, W]` with `Cin = weightShape[1] * groups`.
    /// - Returns: `[N, Cout, OD, OH, OW]` with the bias added and the activation applied.
    /// - Throws: `TensorError` naming the input and weight shapes when they do not fit together.
    public func forward(_ input: Tensor) throws -> Tensor {
        let geo = try Conv3DGeometry(inputShape: input.shape, weightShape: weightShape, stride: stride,
                                     padding: padding, dilation: dilation, groups: groups)
        // Every output element is written by exactly one micro-tile.
        return Tensor(shape: geo.outputShape) { buffer in
            input.scalars.withUnsafeBufferPointer { x in
                convForwardDirect(x.baseAddress!, geo: geo, into: buffer.baseAddress!)
            }
        }
    }

    /// Forward over raw buffers (`x` holds `geo.inputShape`, `y` receives `geo.outputShape`).
    @usableFromInline func convForwardDirect(_ x: UnsafePointer<Float>, geo: Conv3DGeometry,
                                             into y: UnsafeMutablePointer<Float>) {
        let I = geo.input, O = geo.output, pb = geo.padding.begin, pe = geo.padding.end
        let K = geo.kernel, dil = dilation
        // W split by the stride, so output column ow reads columns ow + tap: step 1 for every kernel.
        let st = interleavedStrides(channels: geo.inChannels, size: I, begin: pb, end: pe, phases: stride.w)
        var taps: [Int] = []
        taps.reserveCapacity(K.product)
        for kd in 0..<K.d { for kh in 0..<K.h { for kw in 0..<K.w {
            taps.append(kd * dil.d * st.plane + kh * dil.h * st.row + st.column(kw * dil.w))
        }}}
        let grid = DirectGrid(count: O, srcOrigin: 0, srcStep: Size3(stride.d * st.plane, stride.h * st.row, 1),
                              dstOrigin: 0, dstStep: Size3(O.h * O.w, O.w, 1))
        // Always copied (even without padding): the kernels may read `directSourceSlack` past the end.
        var scratch = makeSourceScratch(st)
        scratch.withUnsafeMutableBufferPointer { sBuf in
            for n in 0..<geo.batch {
                padVolumeInterleaved(x + n * geo.inChannels * I.product, channels: geo.inChannels, size: I,
                                     begin: pb, end: pe, phases: stride.w, into: sBuf.baseAddress!)
                runDirect(src: UnsafePointer(sBuf.baseAddress!), srcChannelStride: st.channel, taps: taps,
                          weights: O.w >= 12 ? packed : packedNarrow ?? packed, grid: grid,
                          dst: y + n * geo.outChannels * O.product,
                          dstChannelStride: O.product, bias: bias, activation: activation, isa: isa)
            }
        }
    }
}

/// 3D convolution (cross-correlation, as PyTorch's `conv3d`), fast direct kernel.
///
/// - Parameters:
///   - input: `[N, Cin, D, H, W]`.
///   - weight: `[Cout, Cin/groups, kD, kH, kW]`.
///   - bias: `[Cout]` or nil.
///   - padding: zeros added before and after each axis (asymmetric allowed).
///   - activation: applied to every output element as it is stored.
/// - Returns: `[N, Cout, OD, OH, OW]` with `O = (I + pBegin + pEnd - dilation*(k-1) - 1) / stride + 1`.
/// - Throws: `TensorError` naming both shapes when channels, groups or sizes do not fit together.
public func conv3d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Size3 = 1,
                   padding: Padding3 = 0, dilation: Size3 = 1, groups: Int = 1,
                   activation: Activation = .identity) throws -> Tensor {
    // Validate with the input first so errors name the input and weight shapes together.
    let geo = try Conv3DGeometry(inputShape: input.shape, weightShape: weight.shape, stride: stride,
                                 padding: padding, dilation: dilation, groups: groups)
    try geo.checkBias(bias)
    let layer = try PackedConv3D(weight: weight, bias: bias, stride: stride, padding: padding,
                                 dilation: dilation, groups: groups, activation: activation)
    return try layer.forward(input)
}

// Fast 3D convolution forward pass: direct, register-blocked (see Conv3D+Direct.swift for the engine
// and docs/engine.md for the design). Shapes:
//   input  [N, Cin, D, H, W]
//   weight [Cout, Cin/groups, kD, kH, kW]    packed once into [groups][Cout/block][Cin/groups][kD*kH*kW][block]
//   bias   [Cout]
//   output [N, Cout, OD, OH, OW]
// Padding is applied by copying each batch item once into a zero-bordered scratch volume, so the
// inner loop has no border branches; layers run as packed patches (strided layers on AVX-512,
// Conv3D+Pointwise.swift) read the input in place instead, their pack writing the padding's zeros.
// Every kernel size, stride, dilation and group count runs on the same engine (grouped convolutions
// with fewer than 16 outputs per group waste the unused lanes).
// 3x3x3 stride-1 layers with wide rows run as Winograd F(2x2x2, 3x3x3) on AVX-512 (Conv3D+Winograd.swift).

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
    /// Weights packed for every kernel the layer may run with; the output width picks one
    /// (`DirectWeights.preferredBlock`).
    @usableFromInline let packed: DirectWeightSet
    /// The weights transformed for Winograd F(2x2x2, 3x3x3) on first use, for 3x3x3 stride-1 layers on AVX-512.
    @usableFromInline let winograd: Lazy<WinogradWeights>?
    /// The weights transformed for the stride-2 Winograd kernel on first use, for 3x3x3 stride-2 layers on AVX-512.
    @usableFromInline let winogradStride2: Lazy<WinogradStride2Weights>?
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
        winograd = WinogradWeights.applies(weightShape: ws, stride: stride, padding: padding, dilation: dilation,
                                           groups: groups, isa: isa)
            ? Lazy { WinogradWeights(weight: weight, flipped: false) } : nil
        winogradStride2 = WinogradStride2Weights.applies(weightShape: ws, stride: stride, padding: padding,
                                                         dilation: dilation, groups: groups, isa: isa)
            ? Lazy { WinogradStride2Weights(weight: weight) } : nil
        packed = weight.scalars.withUnsafeBufferPointer { wb in
            let w = SharedConstPointer(wb.baseAddress!)
            let order = directTapOrder(Size3(ws[2], ws[3], ws[4]), outPerGroup: outPG).map { ($0.d * ws[3] + $0.h) * ws[4] + $0.w }
            return DirectWeightSet(groups: groups, inPerGroup: inPG, outPerGroup: outPG, taps: taps, isa: isa) { g, co, ci, t in
                w[((g * outPG + co) * inPG + ci) * taps + order[t]]
            }
        }
    }

    /// Runs the convolution.
    ///
    /// - Parameter input: `[N, Cin, D, H, W]` with `Cin = weightShape[1] * groups`.
    /// - Returns: `[N, Cout, OD, OH, OW]` with the bias added and the activation applied.
    /// - Throws: `TensorError` naming the input and weight shapes when they do not fit together.
    public func forward(_ input: Tensor) throws -> Tensor { try forward(input, residual: nil, depthChunk: nil) }

    /// Runs the convolution with a residual connection fused into the store:
    /// `activation(conv(input) + bias + residual)`, as a ResNet block ends (`relu(bn(conv(x)) + x)`).
    ///
    /// - Throws: `TensorError` naming both shapes when `residual` is not the output's shape.
    public func forward(_ input: Tensor, residual: Tensor) throws -> Tensor {
        try forward(input, residual: residual, depthChunk: nil)
    }

    /// Runs the layer with other padding: for computing a box of the output from the input box it
    /// reads, with the layer's padding kept only where the box meets the volume's border.
    /// `wholeOutputWidth` is the width of the whole run's output, which picks the algorithm. When the
    /// box starts at a multiple of `outputTile(wholeOutputWidth:)` on every axis, each output is
    /// computed exactly as in the whole run, so the values are bit-identical.
    public func forward(_ input: Tensor, padding: Padding3, residual: Tensor?, wholeOutputWidth: Int) throws -> Tensor {
        try forward(input, residual: residual, depthChunk: nil, padding: padding, algorithmWidth: wholeOutputWidth)
    }

    /// The output tile of the algorithm a whole run with outputs `wholeOutputWidth` wide uses: 2 for
    /// Winograd F(2x2x2, 3x3x3) (outputs are computed in 2x2x2 tiles from even coordinates), else 1.
    public func outputTile(wholeOutputWidth: Int) -> Int { usesWinograd(width: wholeOutputWidth) ? 2 : 1 }

    /// Whether outputs `width` columns wide run on a Winograd path (3x3x3, one group, AVX-512; stride 1
    /// with at least 4 inputs and 8 outputs and rows of 7-16 or at least 24 columns, or stride 2 with
    /// at least 16 inputs and 8 outputs and rows of 9-16 or at least 24; docs/engine.md).
    public func usesWinograd(width: Int) -> Bool {
        winograd != nil && WinogradWeights.prefers(width: width)
            || winogradStride2 != nil && WinogradStride2Weights.prefers(width: width)
    }

    /// `forward` with a given number of output planes per chunk (tests: every chunking gives the same bits).
    func forward(_ input: Tensor, residual: Tensor? = nil, depthChunk: Int?, padding: Padding3? = nil,
                 algorithmWidth: Int? = nil) throws -> Tensor {
        let geo = try Conv3DGeometry(inputShape: input.shape, weightShape: weightShape, stride: stride,
                                     padding: padding ?? self.padding, dilation: dilation, groups: groups)
        if let residual, residual.shape != geo.outputShape {
            throw TensorError.shapeMismatch("conv3d", residual.shape, geo.outputShape, "the residual must have the output's shape")
        }
        // Every output element is written by exactly one micro-tile.
        return Tensor(shape: geo.outputShape) { buffer in
            input.scalars.withUnsafeBufferPointer { x in
                if let residual {
                    residual.scalars.withUnsafeBufferPointer { r in
                        convForwardDirect(x.baseAddress!, geo: geo, into: buffer.baseAddress!, residual: r.baseAddress!,
                                          depthChunk: depthChunk, algorithmWidth: algorithmWidth)
                    }
                } else {
                    convForwardDirect(x.baseAddress!, geo: geo, into: buffer.baseAddress!, depthChunk: depthChunk,
                                      algorithmWidth: algorithmWidth)
                }
            }
        }
    }

    /// Forward over raw buffers (`x` holds `geo.inputShape`, `y` receives `geo.outputShape`).
    ///
    /// Output planes run in chunks of a few megabytes: each chunk pads just the input planes it reads
    /// into a small scratch, then convolves them while they are still in cache. (Padding the whole
    /// volume first ran a 16->16 layer at 64^3, 35 MB of source and output, from DRAM: 372-404 GFLOP/s
    /// against 416-435 in 8 MB chunks.) Chunking changes no arithmetic: each output is the same sum.
    @usableFromInline func convForwardDirect(_ x: UnsafePointer<Float>, geo: Conv3DGeometry,
                                             into y: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>? = nil,
                                             depthChunk: Int? = nil, algorithmWidth: Int? = nil) {
        let I = geo.input, O = geo.output, pb = geo.padding.begin, pe = geo.padding.end
        let K = geo.kernel, dil = dilation
        if let lazy = winograd, usesWinograd(width: algorithmWidth ?? O.w) {
            let wg = lazy.value
            return winogradForward(x, geo: geo, weights: wg, bias: bias, activation: activation, into: y,
                                   residual: residual, chunk: depthChunk ?? winogradDepthChunk(geo))
        }
        if let lazy = winogradStride2, usesWinograd(width: algorithmWidth ?? O.w) {
            return winogradStride2Forward(x, geo: geo, weights: lazy.value, bias: bias, activation: activation, into: y,
                                          residual: residual, chunk: depthChunk ?? winogradStride2DepthChunk(geo))
        }
        if K.product == 1 && stride == Size3(1) && pb == Size3(0) && pe == Size3(0) {
            return pointwiseForward(x, geo: geo, into: y, residual: residual)
        }
        if K.product == 1 && pb == Size3(0) && pe == Size3(0),
           let compact = try? Conv3DGeometry(inputShape: [1, geo.inChannels, O.d, O.h, O.w], weightShape: weightShape,
                                             stride: 1, padding: 0, dilation: 1, groups: groups) {
            return stridedPointwiseForward(x, geo: geo, compact: compact, into: y, residual: residual)
        }
        let weights = packed.forWidth(O.w)
        // Patches where they measured faster than the direct kernel: strided layers of 16 or more
        // input channels, whose phase-split source the direct kernel reads in scattered runs
        // (`patchForward`, which reads the input in place: no padded copy). Not the 7x7x7 stem (one
        // channel: its taps reuse each loaded row) nor stride-1 layers (16->16 at 20^3 0.7-0.8 ms
        // direct, 1.0 with patches; 64->64 the same).
        if isa == .avx512 && groups == 1 && weights.block == 8
            && (Conv3DEngine.patches ?? (stride.w > 1 && geo.inChannels >= 16)) {
            let taps = directTapOrder(K, outPerGroup: geo.outChannels / groups).map {
                Size3($0.d * dil.d, $0.h * dil.h, $0.w * dil.w)
            }
            for n in 0..<geo.batch {
                patchForward(x + n * geo.inChannels * I.product, input: I, taps: taps, stride: stride, padBegin: pb,
                             output: O, weights: weights, into: y + n * geo.outChannels * O.product,
                             residual: residual.map { $0 + n * geo.outChannels * O.product })
            }
            return
        }
        // W split by the stride, so output column ow reads columns ow + tap: step 1 for every kernel.
        // Plane, row and channel strides do not depend on the depth, so one table serves every chunk.
        let st = interleavedStrides(channels: geo.inChannels, size: I, begin: pb, end: pe, phases: stride.w)
        let taps = directTapOrder(K, outPerGroup: geo.outChannels / groups).map {
            $0.d * dil.d * st.plane + $0.h * dil.h * st.row + st.column($0.w * dil.w)
        }
        let reach = dil.d * (K.d - 1) + 1
        let chunk = depthChunk.map { max(1, min(O.d, $0)) } ?? Self.depthChunk(outputDepth: O.d, sourcePlaneFloats: st.plane * stride.d,
                                    outputPlaneFloats: geo.outChannels * O.h * O.w, rowsPerPlane: O.h)
        let chunkPlanes = (chunk - 1) * stride.d + reach
        // Always copied (even without padding): the kernels may read `directSourceSlack` past the end.
        var scratch = makeSourceScratch(SourceStrides(channel: st.channel, row: st.row, plane: st.plane,
                                                      count: chunkPlanes * st.plane, phases: st.phases,
                                                      phaseLength: st.phaseLength))
        scratch.withUnsafeMutableBufferPointer { sBuf in
            for n in 0..<geo.batch {
                let xn = x + n * geo.inChannels * I.product
                var od0 = 0
                while od0 < O.d {
                    let od1 = min(O.d, od0 + chunk)
                    // Padded planes [p0, p1) feed output planes [od0, od1).
                    let p0 = od0 * stride.d, p1 = (od1 - 1) * stride.d + reach
                    padPlanes(xn, channels: geo.inChannels, size: I, begin: pb, end: pe, phases: stride.w,
                              planes: p0..<p1, into: sBuf.baseAddress!)
                    let grid = DirectGrid(count: Size3(od1 - od0, O.h, O.w), srcOrigin: 0,
                                          srcStep: Size3(stride.d * st.plane, stride.h * st.row, 1),
                                          dstOrigin: od0 * O.h * O.w, dstStep: Size3(O.h * O.w, O.w, 1))
                    let yn = y + n * geo.outChannels * O.product
                    let rn = residual.map { $0 + n * geo.outChannels * O.product }
                    runDirect(src: UnsafePointer(sBuf.baseAddress!), srcChannelStride: st.channel, taps: taps,
                              weights: weights, grid: grid, dst: yn, dstChannelStride: O.product, bias: bias,
                              activation: activation, isa: isa, residual: rn, tapShape: K,
                              stores: outputStores(bytes: 4 * geo.outChannels * O.product, callBytes: geo.bytesMoved))
                    od0 = od1
                }
            }
        }
    }

    /// A 1x1x1 convolution with stride 1 and no padding: on AVX-512 with 8-channel weight blocks (more
    /// than 4 outputs, one group) `packedPointwiseForward`. Otherwise it reads the input where it
    /// lies: a channel's positions are contiguous, so no padded copy is made (a 256->128 layer at 24^3
    /// spent 23% of its time in that copy), and the kernel's rows need not be the volume's: rows of
    /// `pointwiseRowLength` positions fill every vector, where 24-wide rows filled 75% of them (12:
    /// 75%, 6: 38%). Positions left over run as one short row; the last rows of each channel, where
    /// the kernel's reads past a row end would leave the tensor, run from a small copy with slack.
    func pointwiseForward(_ x: UnsafePointer<Float>, geo: Conv3DGeometry, into y: UnsafeMutablePointer<Float>,
                          residual: UnsafePointer<Float>?) {
        if isa == .avx512, groups == 1, Conv3DEngine.packedPointwise ?? true,
           let w8 = packed.packs.first(where: { $0.block == 8 }) {
            return packedPointwiseForward(x, geo: geo, weights: w8, into: y, residual: residual)
        }
        let P = geo.input.product
        let W = Self.pointwiseRowLength(positions: P), rows = P / W, rest = P % W
        let C = geo.inChannels, Cout = geo.outChannels
        let tailRows = min(rows, (directSourceSlack + W - 1) / W + 3)
        let headRows = rows - tailRows, tailFloats = tailRows * W + rest
        let weights = packed.forWidth(W)
        var tail = [Float](repeating: 0, count: C * tailFloats + directSourceSlack)
        for n in 0..<geo.batch {
            let xn = x + n * C * P, yn = y + n * Cout * P
            let rn = residual.map { $0 + n * Cout * P }
            if headRows > 0 {
                let grid = DirectGrid(count: Size3(1, headRows, W), srcOrigin: 0, srcStep: Size3(0, W, 1),
                                      dstOrigin: 0, dstStep: Size3(0, W, 1))
                runDirect(src: xn, srcChannelStride: P, taps: [0], weights: weights, grid: grid, dst: yn,
                          dstChannelStride: P, bias: bias, activation: activation, isa: isa, residual: rn)
            }
            tail.withUnsafeMutableBufferPointer { t in
                for c in 0..<C {
                    copyFloats(t.baseAddress! + c * tailFloats, xn + c * P + headRows * W, count: tailFloats)
                }
                if tailRows > 0 {
                    let grid = DirectGrid(count: Size3(1, tailRows, W), srcOrigin: 0, srcStep: Size3(0, W, 1),
                                          dstOrigin: headRows * W, dstStep: Size3(0, W, 1))
                    runDirect(src: UnsafePointer(t.baseAddress!), srcChannelStride: tailFloats, taps: [0],
                              weights: weights, grid: grid, dst: yn, dstChannelStride: P, bias: bias,
                              activation: activation, isa: isa, residual: rn)
                }
                if rest > 0 {
                    let grid = DirectGrid(count: Size3(1, 1, rest), srcOrigin: tailRows * W, srcStep: Size3(0, rest, 1),
                                          dstOrigin: rows * W, dstStep: Size3(0, rest, 1))
                    runDirect(src: UnsafePointer(t.baseAddress!), srcChannelStride: tailFloats, taps: [0],
                              weights: packed.forWidth(rest), grid: grid, dst: yn, dstChannelStride: P, bias: bias,
                              activation: activation, isa: isa, residual: rn)
                }
            }
        }
    }

    /// A 1x1x1 convolution with a stride (a ResNet's downsampling shortcut) reads one input position in
    /// `stride.product`: those positions are gathered into a compact volume, which then runs as a
    /// pointwise layer. (Padded and phase-split like any strided layer, it copied the whole input:
    /// 64 MB for a 64->128 shortcut at 64^3, of which it reads 8.) `compact` is the pointwise
    /// geometry of one batch item.
    func stridedPointwiseForward(_ x: UnsafePointer<Float>, geo: Conv3DGeometry, compact: Conv3DGeometry,
                                 into y: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?) {
        let I = geo.input, O = geo.output, s = stride, C = geo.inChannels
        // Every element is written by the gather before the pointwise pass reads it.
        var gathered = [Float](unsafeUninitializedCapacity: C * O.product) { _, count in count = C * O.product }
        for n in 0..<geo.batch {
            let xn = SharedConstPointer(x + n * C * I.product)
            gathered.withUnsafeMutableBufferPointer { g in
                let gP = SharedPointer(g.baseAddress!)
                Parallel.forEach(C) { c in
                    for od in 0..<O.d { for oh in 0..<O.h {
                        let src = xn + ((c * I.d + od * s.d) * I.h + oh * s.h) * I.w
                        let dst = gP + ((c * O.d + od) * O.h + oh) * O.w
                        var ow = 0
                        if s.w == 2 {
                            // 16 outputs are the even lanes of 32 input columns (whole loads inside the row).
                            while ow + 16 <= O.w && 2 * ow + 32 <= I.w {
                                let v = UnsafeRawPointer(src + 2 * ow).loadUnaligned(as: SIMD32<Float>.self)
                                UnsafeMutableRawPointer(dst + ow).storeBytes(of: v.evenHalf, as: SIMD16<Float>.self)
                                ow += 16
                            }
                        }
                        while ow < O.w { dst[ow] = src[ow * s.w]; ow += 1 }
                    }}
                }
            }
            gathered.withUnsafeBufferPointer { g in
                pointwiseForward(g.baseAddress!, geo: compact, into: y + n * geo.outChannels * O.product,
                                 residual: residual.map { $0 + n * geo.outChannels * O.product })
            }
        }
    }

    /// Positions per kernel row of a pointwise layer with `positions` per channel: a multiple of 16
    /// that divides them where one does (64, 48, 32, 16), else 64 and a shorter last row, or all of
    /// them in one row when there are fewer than 64.
    static func pointwiseRowLength(positions: Int) -> Int {
        for w in [64, 48, 32, 16] where positions % w == 0 { return w }
        return min(64, positions)
    }

    /// Output planes per chunk: about `chunkBytes` of source and output together, and at least 24 output
    /// rows per core so every core gets several tiles.
    @usableFromInline static func depthChunk(outputDepth: Int, sourcePlaneFloats: Int, outputPlaneFloats: Int, rowsPerPlane: Int) -> Int {
        let perPlane = 4 * (sourcePlaneFloats + outputPlaneFloats)
        let byBytes = chunkBytes / max(1, perPlane)
        let byCores = (24 * Parallel.threadCount + rowsPerPlane - 1) / max(1, rowsPerPlane)
        let largest = max(1, min(outputDepth, max(byBytes, byCores)))
        // Chunks of equal depth: 16 planes as 8 + 8, not 11 + 5 (a short last chunk has few tiles).
        let count = (outputDepth + largest - 1) / largest
        return (outputDepth + count - 1) / max(1, count)
    }

    /// Source plus output bytes of one chunk (see `convForwardDirect`). Measured on a 16->16 layer at
    /// 64^3 (Zen 5, 32 MB L3): 2 MB chunks 366 GFLOP/s, 4 MB 398, 6-16 MB 416-435, unchunked 372-404.
    @usableFromInline static let chunkBytes = 8 << 20
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

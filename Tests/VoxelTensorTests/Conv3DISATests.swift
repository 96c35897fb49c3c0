import Testing
@testable import VoxelTensor
import _TestSupport

/// The AVX2 and AVX-512 direct kernels sum every output in the same order with one FMA per product,
/// so they must agree bit for bit. (On a CPU without AVX-512 both runs take the AVX2 path and this is
/// trivial.) Layers the AVX-512 path runs as Winograd round differently: equal to the engine's tolerance.
@Suite struct Conv3DISATests {
    @Test(arguments: ConvCase.table)
    func avx2AndAVX512AreBitIdentical(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 50)
        func layer(_ isa: ConvISA) throws -> PackedConv3D {
            try PackedConv3D(weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation,
                             groups: c.groups, activation: c.activation, isa: isa)
        }
        let y2 = try layer(.avx2).forward(x), y5 = try layer(.avx512).forward(x)
        if try layer(.avx512).usesWinograd(width: y5.shape[4]) {
            #expect(convClose(y5, y2, terms: c.terms), "max diff \(maxAbsDifference(y2.scalars, y5.scalars))")
        } else {
            #expect(y2 == y5, "max diff \(maxAbsDifference(y2.scalars, y5.scalars))")
        }
        let gy = Tensor.random(y2.shape, seed: 51)
        func backward(_ isa: ConvISA) throws -> Tensor {
            try conv3dBackwardInput(gradOutput: gy, weight: w, inputShape: x.shape, stride: c.stride,
                                    padding: c.padding, dilation: c.dilation, groups: c.groups, isa: isa)
        }
        let g2 = try backward(.avx2), g5 = try backward(.avx512)
        let gradient = try PackedConv3DInputGradient(weight: w, stride: c.stride, padding: c.padding, dilation: c.dilation,
                                                     groups: c.groups, isa: .avx512)
        if gradient.usesWinograd(width: x.shape[4]) {
            #expect(convClose(g5, g2, terms: c.cout / c.groups * c.kernel.product))
        } else {
            #expect(g2 == g5, "max diff \(maxAbsDifference(g2.scalars, g5.scalars))")
        }
        // Weight gradients sum lanes in different groupings per ISA: equal to Float rounding.
        func weightGrad(_ isa: ConvISA) throws -> (weight: Tensor, bias: Tensor) {
            try conv3dBackwardWeight(gradOutput: gy, input: x, weightShape: w.shape, stride: c.stride,
                                     padding: c.padding, dilation: c.dilation, groups: c.groups, isa: isa)
        }
        let w2 = try weightGrad(.avx2), w5 = try weightGrad(.avx512)
        let close = convClose(w5.weight, w2.weight, terms: gy.count / c.cout)
        #expect(close && w2.bias == w5.bias)
    }

    /// Outputs of 8 MB and more per volume are written with streaming stores: the same values, so the
    /// same bits as the AVX2 kernel for direct layers (8-channel W-vectorised blocks; the one-channel
    /// kernel of an input gradient) and the engine's tolerance for a Winograd layer.
    @Test func streamingStoresGiveTheSameResults() throws {
        let pad = Padding3(integerLiteral: 1)
        // Forward 1->8: W-vectorised 8-blocks; 8 x 32x128x128 floats = 16 MB.
        let x1 = Tensor.random([1, 1, 32, 128, 128], seed: 70), w1 = Tensor.random([8, 1, 3, 3, 3], seed: 71)
        let b1 = Tensor.random([8], seed: 72)
        #expect(streamsOutput(bytes: 4 * 8 * 32 * 128 * 128))
        func forward(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ isa: ConvISA) throws -> Tensor {
            try PackedConv3D(weight: w, bias: b, stride: 1, padding: pad, dilation: 1, groups: 1,
                             activation: .relu, isa: isa).forward(x)
        }
        #expect(try forward(x1, w1, b1, .avx2) == forward(x1, w1, b1, .avx512))
        // Forward 8->8 on the Winograd path (on AVX-512): 8 x 16x128x128 floats = 8 MB.
        let x2 = Tensor.random([1, 8, 16, 128, 128], seed: 73), w2 = Tensor.random([8, 8, 3, 3, 3], seed: 74)
        #expect(streamsOutput(bytes: 4 * 8 * 16 * 128 * 128))
        #expect(convClose(try forward(x2, w2, nil, .avx512), try forward(x2, w2, nil, .avx2), terms: 8 * 27))
        // Input gradient of 4->8: 4 output channels, the one-channel kernel with row reuse; 4 x
        // 32x128x128 floats = 8 MB.
        let w3 = Tensor.random([8, 4, 3, 3, 3], seed: 75), gy = Tensor.random([1, 8, 32, 128, 128], seed: 76)
        #expect(streamsOutput(bytes: 4 * 4 * 32 * 128 * 128))
        func gradient(_ isa: ConvISA) throws -> Tensor {
            try conv3dBackwardInput(gradOutput: gy, weight: w3, inputShape: [1, 4, 32, 128, 128], stride: 1,
                                    padding: pad, dilation: 1, groups: 1, isa: isa)
        }
        #expect(try gradient(.avx2) == gradient(.avx512))
    }

    @Test func avx512PathIsExercisedWhenAvailable() throws {
        // AVX-512: a wide layer (> 16 outputs) gets W-vectorised 8-blocks and
        // channel-vectorised 32-blocks, and the output width picks the one filling more lanes; a narrow
        // layer (<= 16 outputs) has 8-blocks only.
        let avx512 = Conv3DEngine.cpuHasAVX512
        let wide = try PackedConv3D(weight: .random([20, 16, 3, 3, 3], seed: 1), bias: nil, stride: 1, padding: 1,
                                    dilation: 1, groups: 1, activation: .identity, isa: .avx512)
        #expect(wide.isa == (avx512 ? .avx512 : .avx2))
        #expect(wide.packed.packs.map(\.block) == (avx512 ? [8, 32] : [16]))
        #expect(wide.packed.forWidth(16).block == (avx512 ? 8 : 16))
        #expect(wide.packed.forWidth(8).block == (avx512 ? 32 : 16))
        #expect(wide.packed.forWidth(6).block == (avx512 ? 32 : 16))
        let narrow = try PackedConv3D(weight: .random([16, 16, 3, 3, 3], seed: 1), bias: nil, stride: 1, padding: 1,
                                      dilation: 1, groups: 1, activation: .identity, isa: .avx512)
        #expect(narrow.packed.packs.map(\.block) == (avx512 ? [8] : [16]))
    }

    /// Large layers run in chunks of output planes, each padding only the input planes it reads.
    /// Chunking changes no arithmetic, so every chunk size must give the same bits as one chunk.
    @Test(arguments: ConvCase.table)
    func depthChunksGiveIdenticalResults(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 60)
        let conv = try PackedConv3D(weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation,
                                    groups: c.groups, activation: c.activation)
        let whole = try conv.forward(x, depthChunk: Int.max)
        let grad = try PackedConv3DInputGradient(weight: w, stride: c.stride, padding: c.padding, dilation: c.dilation,
                                                 groups: c.groups)
        let gy = Tensor.random(whole.shape, seed: 61)
        let gxWhole = try grad.backward(gy, inputShape: x.shape, depthChunk: Int.max)
        for chunk in [1, 2, 3] {
            #expect(try conv.forward(x, depthChunk: chunk) == whole, "forward, chunks of \(chunk)")
            #expect(try grad.backward(gy, inputShape: x.shape, depthChunk: chunk) == gxWhole, "input gradient, chunks of \(chunk)")
        }
        // Gradients reaching at most 4 channels run by row blocks on AVX-512: blocks shorter than the
        // one-channel kernel's 6-row tile, one tile, and tiles that shift back at a block's end.
        if grad.runsByRows(inputWidth: x.shape[4]) {
            for rows in [1, 5, 6, 7, 13] {
                #expect(try grad.backward(gy, inputShape: x.shape, depthChunk: 2, rowsPerBlock: rows) == gxWhole,
                        "input gradient, blocks of \(rows) rows")
            }
        }
    }

    @Test func blockChoiceFillsTheLanes() {
        // 128 -> 32 at 24^3: a 24-wide row fills 75% of two 16-lane vectors, so 32-blocks (measured 422
        // against 364 GFLOP/s); 64 -> 64 at 16^3: full vectors, so 8-blocks (494 against 426).
        #expect(DirectWeights.preferredBlock(outPerGroup: 32, inPerGroup: 128, taps: 27, width: 24, isa: .avx512) == 32)
        #expect(DirectWeights.preferredBlock(outPerGroup: 64, inPerGroup: 64, taps: 27, width: 16, isa: .avx512) == 8)
        #expect(DirectWeights.preferredBlock(outPerGroup: 32, inPerGroup: 32, taps: 27, width: 32, isa: .avx512) == 8)
        #expect(DirectWeights.preferredBlock(outPerGroup: 128, inPerGroup: 128, taps: 27, width: 8, isa: .avx512) == 32)
        #expect(DirectWeights.preferredBlock(outPerGroup: 64, inPerGroup: 1, taps: 343, width: 64, isa: .avx512) == 8)
        // 1x1x1: few products per output, so block 32's scattered stores cost more than 75% lanes...
        #expect(DirectWeights.preferredBlock(outPerGroup: 128, inPerGroup: 64, taps: 1, width: 24, isa: .avx512) == 8)
        // ...but not more than 37.5% lanes (6-wide rows).
        #expect(DirectWeights.preferredBlock(outPerGroup: 128, inPerGroup: 256, taps: 1, width: 6, isa: .avx512) == 32)
        #expect(DirectWeights.preferredBlock(outPerGroup: 64, inPerGroup: 64, taps: 27, width: 8, isa: .avx2) == 16)
    }
}

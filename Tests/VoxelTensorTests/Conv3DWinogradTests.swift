import Testing
@testable import VoxelTensor
import _TestSupport

/// Winograd F(2x2x2, 3x3x3) (3x3x3, stride 1, one group, rows at least 24 wide, AVX-512): against the
/// Double reference at the engine's tolerance, on odd sizes (partial tiles), partial tile vectors,
/// asymmetric padding, residuals and activations; and the same bits for any chunking and for boxes
/// of the output recomputed from their input crops (incremental runs).
@Suite struct Conv3DWinogradTests {
    static let cases: [ConvCase] = [
        ConvCase(name: "16->16 W32", cin: 16, cout: 16, size: Size3(6, 8, 32), kernel: 3, padding: 1),
        ConvCase(name: "odd sizes 5->11 relu", cin: 5, cout: 11, size: Size3(5, 7, 27), kernel: 3, padding: 1,
                 activation: .relu),
        ConvCase(name: "4->8 W40 no bias", cin: 4, cout: 8, size: Size3(4, 3, 40), kernel: 3, padding: 1, bias: false),
        ConvCase(name: "no padding W34 leaky", cin: 7, cout: 9, size: Size3(6, 5, 34), kernel: 3,
                 activation: .leakyRelu(alpha: 0.1)),
        ConvCase(name: "asymmetric pad W30 clip", cin: 4, cout: 17, size: Size3(5, 6, 30), kernel: 3,
                 padding: [0, 1, 2, 2, 0, 1], activation: .clip(min: -0.5, max: 0.5)),
        ConvCase(name: "batch 2 W66", batch: 2, cin: 9, cout: 24, size: Size3(3, 4, 66), kernel: 3, padding: 1),
        ConvCase(name: "wide 40->33 W25", cin: 40, cout: 33, size: Size3(4, 3, 25), kernel: 3, padding: 1),
        // Over 85 input channels all output channels run in one pass over the positions, and the
        // transformed input comes in blocks of 64 channels (here 64 + 32 and 64 + 36).
        ConvCase(name: "96->40 W26 one pass", cin: 96, cout: 40, size: Size3(3, 4, 26), kernel: 3, padding: 1,
                 activation: .relu),
        ConvCase(name: "100->20 W24 channel blocks", cin: 100, cout: 20, size: Size3(4, 3, 24), kernel: 3, padding: 1),
        // Rows of 9-16 columns: split vectors, two rows of tiles each (odd counts of tile rows too).
        ConvCase(name: "split 16->16 W16 9 rows", cin: 16, cout: 16, size: Size3(4, 9, 16), kernel: 3, padding: 1,
                 activation: .relu),
        ConvCase(name: "split 6->12 W11", cin: 6, cout: 12, size: Size3(5, 6, 11), kernel: 3, padding: 1),
        ConvCase(name: "split batch 2 W9 no padding", batch: 2, cin: 8, cout: 9, size: Size3(5, 8, 11), kernel: 3),
        // Rows of 7-8 columns: four rows of tiles per vector (5 rows of tiles: a second vector with
        // one; 4 rows of tiles, the last half valid), many channels (blocks of V), residual, batch.
        ConvCase(name: "quad 16->16 W8 10 rows relu", cin: 16, cout: 16, size: Size3(5, 10, 8), kernel: 3, padding: 1,
                 activation: .relu),
        ConvCase(name: "quad 96->24 W7 no padding", cin: 96, cout: 24, size: Size3(6, 9, 9), kernel: 3),
        ConvCase(name: "quad batch 2 W7 asymmetric", batch: 2, cin: 12, cout: 8, size: Size3(4, 7, 8), kernel: 3,
                 padding: [1, 0, 0, 1, 1, 1]),
    ]

    @Test(arguments: cases)
    func matchesReference(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 80)
        let conv = try PackedConv3D(weight: w, bias: b, stride: c.stride, padding: c.padding, activation: c.activation)
        let O = Size3(c.size.d + c.padding.begin.d + c.padding.end.d - 2, c.size.h + c.padding.begin.h + c.padding.end.h - 2,
                      c.size.w + c.padding.begin.w + c.padding.end.w - 2)
        #expect(conv.usesWinograd(width: O.w) == (Conv3DEngine.isa == .avx512))
        let ref = try conv3dReference(x, weight: w, bias: b, padding: c.padding, activation: c.activation)
        let fast = try conv.forward(x)
        #expect(convClose(fast, ref, terms: c.terms), "max diff \(maxAbsDifference(fast.scalars, ref.scalars))")
        // Residual added before the activation.
        let plain = try conv3dReference(x, weight: w, bias: b, padding: c.padding)
        let r = Tensor.random(plain.shape, seed: 81)
        let withResidual = try conv.forward(x, residual: r)
        let refResidual = activate(try add(plain, r), c.activation)
        #expect(convClose(withResidual, refResidual, terms: c.terms + 1))
        // Any chunking, the same bits.
        for chunk in [1, 2, 3, 5] { #expect(try conv.forward(x, depthChunk: chunk) == fast, "chunks of \(chunk)") }
    }

    /// The input gradient of a stride-1 3x3x3 layer runs as the forward convolution of the output
    /// gradient with the flipped, transposed kernel (padding 2 - p), on the Winograd path.
    @Test(arguments: cases)
    func inputGradientMatchesReference(_ c: ConvCase) throws {
        let (x, w, _) = c.inputs(seed: 85)
        let grad = try PackedConv3DInputGradient(weight: w, stride: 1, padding: c.padding)
        #expect((grad.usesWinograd(width: c.size.w)) == ((Conv3DEngine.isa == .avx512) && c.cin >= 8))
        let y = try conv3dReference(x, weight: w, padding: c.padding)
        let gy = Tensor.random(y.shape, seed: 86)
        let gx = try grad.backward(gy, inputShape: x.shape)
        let ref = try conv3dBackwardInputReference(gradOutput: gy, weight: w, inputShape: x.shape, padding: c.padding)
        #expect(convClose(gx, ref, terms: c.cout * 27), "max diff \(maxAbsDifference(gx.scalars, ref.scalars))")
        for chunk in [1, 2, 3] { #expect(try grad.backward(gy, inputShape: x.shape, depthChunk: chunk) == gx) }
    }

    /// The transformed input in blocks of any number of input channels (accumulators stored between
    /// blocks and loaded back): the same bits as one block, forward (with a residual) and for the
    /// input gradient, which runs the same kernel.
    @Test(arguments: [cases[0], cases[1], cases[5], cases[8], cases[9], cases[12], cases[13]])
    func channelBlocksGiveTheSameBits(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 95)
        let conv = try PackedConv3D(weight: w, bias: b, stride: c.stride, padding: c.padding, activation: c.activation)
        let grad = try PackedConv3DInputGradient(weight: w, stride: 1, padding: c.padding)
        let r = Tensor.random(try conv.forward(x).shape, seed: 96)
        let whole = try Conv3DEngine.$winogradChannelBlock.withValue(c.cin) { try conv.forward(x, residual: r) }
        let gy = Tensor.random(whole.shape, seed: 97)
        let gxWhole = try Conv3DEngine.$winogradChannelBlock.withValue(c.cout) { try grad.backward(gy, inputShape: x.shape) }
        for block in [1, 3, 7] {
            let y = try Conv3DEngine.$winogradChannelBlock.withValue(block) { try conv.forward(x, residual: r) }
            let gx = try Conv3DEngine.$winogradChannelBlock.withValue(block) { try grad.backward(gy, inputShape: x.shape) }
            // Compared as Bools, so a failure prints the difference, not two whole tensors.
            let same = y == whole, sameGradient = gx == gxWhole
            #expect(same, "\(c.name): blocks of \(block), max diff \(maxAbsDifference(y.scalars, whole.scalars))")
            #expect(sameGradient, "\(c.name): input gradient in blocks of \(block), max diff \(maxAbsDifference(gx.scalars, gxWhole.scalars))")
        }
        let sameByDefault = try conv.forward(x, residual: r) == whole
        #expect(sameByDefault, "\(c.name): the default blocks")
    }

    /// A box of the output starting at even coordinates, recomputed from the input it reads with the
    /// padding kept only at the border, has the whole run's bits.
    @Test(arguments: [40, 16, 8])
    func boxesFromEvenStartsAreBitIdentical(width: Int) throws {
        let x = Tensor.random([1, 6, 9, 10, width], seed: 90)
        let w = Tensor.random([10, 6, 3, 3, 3], seed: 91)
        let conv = try PackedConv3D(weight: w, bias: Tensor.random([10], seed: 92), padding: 1)
        let whole = try conv.forward(x)
        #expect(conv.outputTile(wholeOutputWidth: width) == ((Conv3DEngine.isa == .avx512) ? 2 : 1))
        let boxes = width == 40
            ? [(Size3(0, 0, 0), Size3(3, 5, 7)), (Size3(2, 4, 10), Size3(9, 10, 37)), (Size3(4, 6, 30), Size3(7, 9, 40))]
            : width == 16
            ? [(Size3(0, 0, 0), Size3(3, 5, 7)), (Size3(2, 4, 6), Size3(9, 10, 13)), (Size3(4, 6, 2), Size3(7, 9, 16))]
            : [(Size3(0, 0, 0), Size3(3, 5, 7)), (Size3(2, 4, 2), Size3(9, 10, 8)), (Size3(4, 6, 4), Size3(7, 9, 8))]
        for (lo, hi) in boxes {
            // Inputs [o - 1, o + 2) of each axis, clamped; padding where the clamp cut.
            let start = Size3(lo.d - 1, lo.h - 1, lo.w - 1), end = Size3(hi.d + 1, hi.h + 1, hi.w + 1)
            let cl = Size3(max(0, start.d), max(0, start.h), max(0, start.w))
            let ch = Size3(min(9, end.d), min(10, end.h), min(width, end.w))
            let crop = try slice(x, starts: cl.array, ends: ch.array, axes: [2, 3, 4])
            let pad = Padding3(begin: Size3(cl.d - start.d, cl.h - start.h, cl.w - start.w),
                               end: Size3(end.d - ch.d, end.h - ch.h, end.w - ch.w))
            let part = try conv.forward(crop, padding: pad, residual: nil, wholeOutputWidth: width)
            let expected = try slice(whole, starts: lo.array, ends: hi.array, axes: [2, 3, 4])
            #expect(part == expected, "box \(lo)..<\(hi)")
        }
    }

    /// Rows of 17-23 or at most 8 columns leave many of a tile vector's 16 lanes idle, and layers with
    /// fewer than 4 input or 8 output channels save too few products: the direct engine runs them. So
    /// do stride-2 layers with fewer than 16 inputs, dilated, grouped and 5x5x5 layers. (Stride-2
    /// layers of 16 or more inputs run the stride-2 kernel: Conv3DWinogradStride2Tests.)
    @Test func narrowRowsAndOtherLayersRunDirect() throws {
        let k3 = try PackedConv3D(weight: .random([16, 16, 3, 3, 3], seed: 1), padding: 1)
        let avx512 = Conv3DEngine.isa == .avx512
        #expect(!k3.usesWinograd(width: 6) && !k3.usesWinograd(width: 20))
        #expect(k3.usesWinograd(width: 7) == avx512 && k3.usesWinograd(width: 8) == avx512)
        #expect(k3.usesWinograd(width: 9) == avx512 && k3.usesWinograd(width: 16) == avx512 && k3.usesWinograd(width: 24) == avx512)
        #expect(try PackedConv3D(weight: .random([16, 16, 3, 3, 3], seed: 1), stride: 2, padding: 1)
            .usesWinograd(width: 32) == avx512)
        for conv in [try PackedConv3D(weight: .random([16, 15, 3, 3, 3], seed: 1), stride: 2, padding: 1),
                     try PackedConv3D(weight: .random([16, 16, 3, 3, 3], seed: 1), stride: [1, 2, 2], padding: 1),
                     try PackedConv3D(weight: .random([16, 16, 3, 3, 3], seed: 1), padding: 2, dilation: 2),
                     try PackedConv3D(weight: .random([16, 8, 3, 3, 3], seed: 1), padding: 1, groups: 2),
                     try PackedConv3D(weight: .random([16, 16, 5, 5, 5], seed: 1), padding: 2),
                     try PackedConv3D(weight: .random([16, 3, 3, 3, 3], seed: 1), padding: 1),
                     try PackedConv3D(weight: .random([4, 16, 3, 3, 3], seed: 1), padding: 1)] {
            let winograd = conv.usesWinograd(width: 64)
            #expect(!winograd, "\(conv.weightShape), stride \(conv.stride)")
        }
    }
}

import Testing
@testable import VoxelTensor
import _TestSupport

/// Pointwise layers on AVX-512 run as a matrix product over packed panels of positions
/// (`packedPointwiseForward`): the same bits as the direct kernel, on panels of 192 and 48 positions
/// with partial micro-tiles and panels, output channels not a multiple of 8, block groups split across
/// tasks, batches, residuals and activations; and against the Double reference. Strided layers run
/// the same product over packed patches (`patchForward`): forced on every layer of the shared table,
/// the same bits as the direct kernel.
@Suite struct Conv3DPointwiseTests {
    static let cases: [ConvCase] = [
        ConvCase(name: "40->36 W24 batch 2 relu", batch: 2, cin: 40, cout: 36, size: Size3(6, 10, 24), kernel: 1,
                 activation: .relu),
        // 3016 positions: 15 panels of 192 and a last one of 136 (two whole micro-tiles and 40).
        ConvCase(name: "224->128 3016 positions", cin: 224, cout: 128, size: Size3(2, 29, 52), kernel: 1),
        // One panel of one partial micro-tile: 45 positions, its third vector 13 long.
        ConvCase(name: "20->17 45 positions", cin: 20, cout: 17, size: Size3(1, 5, 9), kernel: 1),
        // Over 1365 input channels a panel is one micro-tile of 48; 27 positions leave one partial.
        ConvCase(name: "1400->13 27 positions clip", cin: 1400, cout: 13, size: Size3(3, 3, 3), kernel: 1,
                 activation: .clip(min: -1, max: 2)),
        ConvCase(name: "7->9 one position no bias", cin: 7, cout: 9, size: Size3(1, 1, 1), kernel: 1, bias: false),
        ConvCase(name: "16->24 W50 leaky", cin: 16, cout: 24, size: Size3(2, 3, 50), kernel: 1,
                 activation: .leakyRelu(alpha: 0.2)),
    ]

    @Test(arguments: cases)
    func packedMatchesTheDirectKernelAndTheReference(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 120)
        let conv = try PackedConv3D(weight: w, bias: b, activation: c.activation)
        let r = Tensor.random([c.batch, c.cout, c.size.d, c.size.h, c.size.w], seed: 121)
        let packed = try conv.forward(x), packedResidual = try conv.forward(x, residual: r)
        let direct = try Conv3DEngine.$packedPointwise.withValue(false) { try conv.forward(x) }
        let directResidual = try Conv3DEngine.$packedPointwise.withValue(false) { try conv.forward(x, residual: r) }
        // Compared as Bools, so a failure prints the difference, not two whole tensors.
        let same = packed == direct, sameResidual = packedResidual == directResidual
        #expect(same, "max diff \(maxAbsDifference(packed.scalars, direct.scalars))")
        #expect(sameResidual, "with a residual: max diff \(maxAbsDifference(packedResidual.scalars, directResidual.scalars))")
        let ref = try conv3dReference(x, weight: w, bias: b, activation: c.activation)
        #expect(convClose(packed, ref, terms: c.terms), "max diff \(maxAbsDifference(packed.scalars, ref.scalars))")
    }

    /// Patches forced on (every layer the W-vectorised kernel would run) and off: the same bits, with
    /// a residual too; micro-tiles of 48 positions span rows and planes (rows of 3-24 columns).
    @Test(arguments: ConvCase.table + [
        ConvCase(name: "s2 24->20 W30 relu", cin: 24, cout: 20, size: Size3(5, 7, 30), kernel: 3, stride: 2, padding: 1,
                 activation: .relu),
        ConvCase(name: "s2 64->24 batch 2", batch: 2, cin: 64, cout: 24, size: Size3(4, 6, 8), kernel: 3, stride: 2,
                 padding: 1),
    ])
    func patchesGiveTheDirectKernelsBits(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 130)
        let conv = try PackedConv3D(weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation,
                                    groups: c.groups, activation: c.activation)
        let direct = try Conv3DEngine.$patches.withValue(false) { try conv.forward(x) }
        let patched = try Conv3DEngine.$patches.withValue(true) { try conv.forward(x) }
        let r = Tensor.random(direct.shape, seed: 131)
        let directResidual = try Conv3DEngine.$patches.withValue(false) { try conv.forward(x, residual: r) }
        let patchedResidual = try Conv3DEngine.$patches.withValue(true) { try conv.forward(x, residual: r) }
        let same = patched == direct, sameResidual = patchedResidual == directResidual
        #expect(same, "max diff \(maxAbsDifference(patched.scalars, direct.scalars))")
        #expect(sameResidual, "with a residual: max diff \(maxAbsDifference(patchedResidual.scalars, directResidual.scalars))")
        let byDefault = try conv.forward(x) == direct
        #expect(byDefault)
    }
}

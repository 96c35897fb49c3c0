import Testing
@testable import VoxelTensor
import _TestSupport

/// The AVX2 and AVX-512 kernels sum every output in the same order with one FMA per product, so they
/// must agree bit for bit. (On a CPU without AVX-512 both runs take the AVX2 path and this is trivial.)
@Suite struct Conv3DISATests {
    @Test(arguments: ConvCase.table)
    func avx2AndAVX512AreBitIdentical(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 50)
        func forward(_ isa: ConvISA) throws -> Tensor {
            try PackedConv3D(weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation,
                             groups: c.groups, activation: c.activation, isa: isa).forward(x)
        }
        let y2 = try forward(.avx2), y5 = try forward(.avx512)
        #expect(y2 == y5, "max diff \(maxAbsDifference(y2.scalars, y5.scalars))")
        let gy = Tensor.random(y2.shape, seed: 51)
        func backward(_ isa: ConvISA) throws -> Tensor {
            try conv3dBackwardInput(gradOutput: gy, weight: w, inputShape: x.shape, stride: c.stride,
                                    padding: c.padding, dilation: c.dilation, groups: c.groups, isa: isa)
        }
        let g2 = try backward(.avx2), g5 = try backward(.avx512)
        #expect(g2 == g5, "max diff \(maxAbsDifference(g2.scalars, g5.scalars))")
        // Weight gradients sum lanes in different groupings per ISA: equal to Float rounding.
        func weightGrad(_ isa: ConvISA) throws -> (weight: Tensor, bias: Tensor) {
            try conv3dBackwardWeight(gradOutput: gy, input: x, weightShape: w.shape, stride: c.stride,
                                     padding: c.padding, dilation: c.dilation, groups: c.groups, isa: isa)
        }
        let w2 = try weightGrad(.avx2), w5 = try weightGrad(.avx512)
        let close = convClose(w5.weight, w2.weight, terms: gy.count / c.cout)
        #expect(close && w2.bias == w5.bias)
    }

    @Test func avx512PathIsExercisedWhenAvailable() throws {
        // AVX-512: W-vectorised 8-blocks for rows >= 12 wide; a wide layer also gets channel-vectorised
        // 32-blocks for narrower rows; a narrow layer (<= 16 outputs) uses 8-blocks for all widths.
        let wide = try PackedConv3D(weight: .random([20, 16, 3, 3, 3], seed: 1), bias: nil, stride: 1, padding: 1,
                                    dilation: 1, groups: 1, activation: .identity, isa: .avx512)
        #expect(wide.isa == (Conv3DEngine.cpuHasAVX512 ? .avx512 : .avx2))
        #expect(wide.packed.block == (Conv3DEngine.cpuHasAVX512 ? 8 : 16))
        #expect(wide.packedNarrow?.block == (Conv3DEngine.cpuHasAVX512 ? 32 : nil))
        let narrow = try PackedConv3D(weight: .random([16, 16, 3, 3, 3], seed: 1), bias: nil, stride: 1, padding: 1,
                                      dilation: 1, groups: 1, activation: .identity, isa: .avx512)
        #expect(narrow.packed.block == (Conv3DEngine.cpuHasAVX512 ? 8 : 16) && narrow.packedNarrow == nil)
    }
}

import Testing
import VoxelTensor
import _TestSupport

/// conv3d forward and gradients against PyTorch (`Scripts/make_conv_fixtures.py`).
@Suite struct Conv3DGoldenTests {
    static let file = Result { try GoldenFile.load("torch/conv3d.json") }
    static var names: [String] { (try? file.get().cases.map(\.name)) ?? ["<fixture missing>"] }

    @Test func fixtureLoads() throws {
        #expect(try Self.file.get().cases.count >= 12)
    }

    @Test(arguments: names)
    func matchesPyTorch(_ name: String) throws {
        let c = try #require(try Self.file.get().cases.first { $0.name == name })
        let x = try c.tensor("input"), w = try c.tensor("weight")
        let b = c.tensors["bias"] == nil ? nil : try c.tensor("bias")
        let stride = try #require(Size3(c.ints("stride", [1])))
        let dilation = try #require(Size3(c.ints("dilation", [1])))
        let p = c.ints("pads", [0, 0, 0, 0, 0, 0])
        let padding = Padding3(begin: Size3(p[0], p[1], p[2]), end: Size3(p[3], p[4], p[5]))
        let groups = c.int("groups", 1)
        // PyTorch and these kernels both accumulate in Float but in different orders; with values
        // ~N(0, 1) and at most a few hundred products per sum, differences stay near 1e-6 * |sum|.
        // 1e-4 relative (plus 1e-4 absolute for values near zero) leaves a wide margin while any
        // indexing error (order 0.1-1) fails.
        func close(_ a: Tensor, _ key: String) throws -> Bool {
            let want = try c.tensor(key)
            return a.shape == want.shape && allClose(a.scalars, want.scalars, rtol: 1e-4, atol: 1e-4)
        }
        let y = try conv3d(x, weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups)
        #expect(try close(y, "output"), "\(name): output")
        let yRef = try conv3dReference(x, weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups)
        #expect(try close(yRef, "output"), "\(name): reference output")
        let gy = try c.tensor("grad_output")
        let gx = try conv3dBackwardInput(gradOutput: gy, weight: w, inputShape: x.shape, stride: stride,
                                         padding: padding, dilation: dilation, groups: groups)
        #expect(try close(gx, "grad_input"), "\(name): grad_input")
        let gw = try conv3dBackwardWeight(gradOutput: gy, input: x, weightShape: w.shape, stride: stride,
                                          padding: padding, dilation: dilation, groups: groups)
        #expect(try close(gw.weight, "grad_weight"), "\(name): grad_weight")
        if b != nil { #expect(try close(gw.bias, "grad_bias"), "\(name): grad_bias") }
    }
}

import Testing
@testable import VoxelTensor
import _TestSupport

@Suite struct Conv3DTests {
    @Test(arguments: ConvCase.table)
    func forwardMatchesReference(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 10)
        let fast = try conv3d(x, weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation,
                              groups: c.groups, activation: c.activation)
        let ref = try conv3dReference(x, weight: w, bias: b, stride: c.stride, padding: c.padding,
                                      dilation: c.dilation, groups: c.groups, activation: c.activation)
        let close = convClose(fast, ref, terms: c.terms)
        #expect(close, "max diff \(maxAbsDifference(fast.scalars, ref.scalars))")
    }

    /// A residual fused into the store: `act(conv(x) + bias + r)`, on every kernel (both ISAs).
    @Test(arguments: ConvCase.table)
    func residualIsAddedBeforeTheActivation(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 20)
        let plain = try conv3dReference(x, weight: w, bias: b, stride: c.stride, padding: c.padding,
                                        dilation: c.dilation, groups: c.groups)
        let r = Tensor.random(plain.shape, seed: 23)
        let ref = activate(try add(plain, r), c.activation)
        for isa in ConvISA.allCases {
            let conv = try PackedConv3D(weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation,
                                        groups: c.groups, activation: c.activation, isa: isa)
            let fast = try conv.forward(x, residual: r)
            #expect(convClose(fast, ref, terms: c.terms + 1), "\(isa): max diff \(maxAbsDifference(fast.scalars, ref.scalars))")
        }
        let conv = try PackedConv3D(weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation,
                                    groups: c.groups, activation: c.activation)
        #expect(throws: TensorError.self) { try conv.forward(x, residual: Tensor.zeros([1, 1, 1, 1, 1])) }
    }

    /// Volumes with many rows, so tiles split into several slabs of rows (the table's volumes fit in
    /// one): W-vectorised (W >= 12) and channel-vectorised (W < 12, wide layer) paths, forward and
    /// input gradient.
    @Test(arguments: [
        ConvCase(name: "many rows W13", cin: 3, cout: 20, size: Size3(36, 40, 13), kernel: 3, padding: 1),
        ConvCase(name: "many rows W6 wide", cin: 17, cout: 20, size: Size3(24, 30, 6), kernel: 3, padding: 1),
    ])
    func manySlabsMatchReference(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 70)
        let fast = try conv3d(x, weight: w, bias: b, padding: c.padding)
        let ref = try conv3dReference(x, weight: w, bias: b, padding: c.padding)
        let close = convClose(fast, ref, terms: c.terms)
        #expect(close, "max diff \(maxAbsDifference(fast.scalars, ref.scalars))")
        let gy = Tensor.random(ref.shape, seed: 71)
        let gx = try conv3dBackwardInput(gradOutput: gy, weight: w, inputShape: x.shape, padding: c.padding)
        let gxRef = try conv3dBackwardInputReference(gradOutput: gy, weight: w, inputShape: x.shape, padding: c.padding)
        let gradClose = convClose(gx, gxRef, terms: c.cout * c.kernel.product)
        #expect(gradClose, "max diff \(maxAbsDifference(gx.scalars, gxRef.scalars))")
    }

    @Test func referenceMatchesHandComputedValue() throws {
        // 1 channel, 3x3x3 input of 1s, 2x2x2 kernel of 1s, padding 1: a corner output sees 1 voxel,
        // an edge-centre output 4 (2 x 2 x 1), the centre output 8.
        let x = Tensor(shape: [1, 1, 3, 3, 3], repeating: 1)
        let w = Tensor(shape: [1, 1, 2, 2, 2], repeating: 1)
        let y = try conv3dReference(x, weight: w, padding: 1)
        #expect(y.shape == [1, 1, 4, 4, 4])
        #expect(y[0, 0, 0, 0, 0] == 1 && y[0, 0, 1, 1, 0] == 4 && y[0, 0, 1, 1, 1] == 8)
        #expect(try conv3d(x, weight: w, padding: 1) == y)
    }

    @Test func packedLayerMatchesFreeFunctionAndReusesWeights() throws {
        let c = ConvCase(name: "packed", cin: 5, cout: 19, size: Size3(4, 5, 9), kernel: 3, padding: 1, activation: .relu)
        let (x, w, b) = c.inputs(seed: 3)
        let layer = try PackedConv3D(weight: w, bias: b, padding: 1, activation: .relu)
        let y1 = try layer.forward(x)
        #expect(y1 == (try conv3d(x, weight: w, bias: b, padding: 1, activation: .relu)))
        // A different spatial size through the same packed layer.
        let x2 = Tensor.random([2, 5, 3, 7, 4], seed: 9)
        let ref = try conv3dReference(x2, weight: w, bias: b, padding: 1, activation: .relu)
        let close = convClose(try layer.forward(x2), ref, terms: c.terms)
        #expect(close)
    }

    @Test func resultsAreBitIdenticalAcrossRunsAndBatching() throws {
        // Tiles are fixed by shape and each element is summed in a fixed order, so repeated runs (with
        // whatever thread interleaving) and a batch item run alone give exactly the same bits.
        let x = Tensor.random([2, 16, 6, 7, 20], seed: 5)
        let w = Tensor.random([24, 16, 3, 3, 3], seed: 6)
        let y1 = try conv3d(x, weight: w, padding: 1)
        for _ in 0..<3 { #expect(try conv3d(x, weight: w, padding: 1) == y1) }
        let x1 = try Tensor(shape: [1, 16, 6, 7, 20], scalars: Array(x.scalars[(16 * 6 * 7 * 20)...]))
        let y1b = try conv3d(x1, weight: w, padding: 1)
        #expect(y1b.scalars == Array(y1.scalars[(24 * 6 * 7 * 20)...]))
        let gy = Tensor.random(y1.shape, seed: 7)
        let gx = try conv3dBackwardInput(gradOutput: gy, weight: w, inputShape: x.shape, padding: 1)
        let gw = try conv3dBackwardWeight(gradOutput: gy, input: x, weightShape: w.shape, padding: 1)
        for _ in 0..<2 {
            #expect(try conv3dBackwardInput(gradOutput: gy, weight: w, inputShape: x.shape, padding: 1) == gx)
            let again = try conv3dBackwardWeight(gradOutput: gy, input: x, weightShape: w.shape, padding: 1)
            #expect(again.weight == gw.weight && again.bias == gw.bias)
        }
    }

    @Test func errorsNameBothShapes() throws {
        let x = Tensor.zeros([1, 4, 5, 5, 5])
        func expectMessage(_ needles: [String], _ body: () throws -> Tensor) {
            do { _ = try body(); Issue.record("expected an error mentioning \(needles)") } catch let e as TensorError {
                for n in needles { #expect(e.message.contains(n), "\(e.message) lacks \(n)") }
            } catch { Issue.record("unexpected error \(error)") }
        }
        // Mismatched channels.
        expectMessage(["[1, 4, 5, 5, 5]", "[8, 3, 3, 3, 3]"]) { try conv3d(x, weight: .zeros([8, 3, 3, 3, 3])) }
        // Groups that do not divide the channels.
        expectMessage(["[1, 4, 5, 5, 5]", "[6, 1, 3, 3, 3]", "groups"]) {
            try conv3d(x, weight: .zeros([6, 1, 3, 3, 3]), groups: 4)
        }
        expectMessage(["[1, 4, 5, 5, 5]", "[8, 2, 3, 3, 3]"]) { try conv3d(x, weight: .zeros([8, 2, 3, 3, 3]), groups: 3) }
        // Kernel larger than the padded input.
        expectMessage(["[1, 4, 5, 5, 5]", "[2, 4, 7, 3, 3]"]) { try conv3d(x, weight: .zeros([2, 4, 7, 3, 3])) }
        expectMessage(["[1, 4, 5, 5, 5]", "[2, 4, 3, 3, 3]"]) { try conv3d(x, weight: .zeros([2, 4, 3, 3, 3]), dilation: 3) }
        // Not 5D, bad bias, bad stride, gradOutput of the wrong shape.
        expectMessage(["[4, 5, 5, 5]"]) { try conv3d(.zeros([4, 5, 5, 5]), weight: .zeros([2, 4, 3, 3, 3])) }
        expectMessage(["[3]", "[2]"]) { try conv3d(x, weight: .zeros([2, 4, 3, 3, 3]), bias: .zeros([3])) }
        expectMessage(["stride"]) { try conv3d(x, weight: .zeros([2, 4, 3, 3, 3]), stride: 0) }
        expectMessage(["[1, 2, 4, 4, 4]", "[1, 2, 3, 3, 3]"]) {
            try conv3dBackwardInput(gradOutput: .zeros([1, 2, 4, 4, 4]), weight: .zeros([2, 4, 3, 3, 3]),
                                    inputShape: x.shape)
        }
        expectMessage(["[1, 2, 4, 4, 4]", "[1, 2, 3, 3, 3]"]) {
            try conv3dBackwardWeight(gradOutput: .zeros([1, 2, 4, 4, 4]), input: x, weightShape: [2, 4, 3, 3, 3]).weight
        }
    }
}

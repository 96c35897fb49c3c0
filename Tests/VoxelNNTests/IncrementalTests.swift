import Foundation
import Testing
@testable import VoxelNN
import VoxelTensor
import _TestSupport

/// The incremental runner recomputes only the boxes a local change reaches; its outputs must equal a
/// whole run's bit for bit, on every fixture model (VGG, ResNet with fused residuals, DenseNet with
/// concatenations, and the model with padding, dilation, groups, PReLU, ceil-mode pooling and Resize).
@Suite struct IncrementalTests {
    @Test(arguments: ModelParityTests.models)
    func localChangesGiveTheWholeRunsBits(_ name: String) throws {
        let graph = try ModelParityTests.graph("\(name).onnx").fused()
        let shape = graph.values[graph.input].shape
        let runner = IncrementalRunner(graph: graph)
        var x = Tensor.random(shape, seed: 90)
        var rng = SplitMix64(seed: 91)
        let (D, H, W) = (shape[2], shape[3], shape[4])
        var fractions: [Double] = []
        for step in 0..<8 {
            if step > 0 {
                // A small cube (sometimes at a border) set to noise, as a perturbation step does.
                let e = 1 + Int(rng.next() % 3)
                let d0 = Int(rng.next() % UInt64(D)), h0 = Int(rng.next() % UInt64(H)), w0 = Int(rng.next() % UInt64(W))
                for c in 0..<shape[1] { for d in d0..<min(D, d0 + e) { for h in h0..<min(H, h0 + e) { for w in w0..<min(W, w0 + e) {
                    x[0, c, d, h, w] = Float(rng.uniform(-1, 1))
                }}}}
            }
            let ours = try runner.run(x)
            let whole = try graph.run(x).outputs
            #expect(ours.count == whole.count)
            for (a, b) in zip(ours, whole) {
                #expect(a.shape == b.shape && a.scalars.map(\.bitPattern) == b.scalars.map(\.bitPattern),
                        "\(name) step \(step): max difference \(maxAbsDifference(a.scalars, b.scalars))")
            }
            fractions.append(runner.lastRecomputedFraction)
        }
        #expect(fractions[0] == 1)
        // The odd-ops model pads and resamples early (operations recomputed whole), so it gains nothing.
        if name != "oddops" {
            #expect(fractions.dropFirst().contains { $0 < 0.9 }, "\(name): recomputed fractions \(fractions)")
        }
        // An unchanged input recomputes nothing spatial.
        _ = try runner.run(x)
        #expect(runner.lastRecomputedFraction == 0)
    }

    /// Convolutions on the Winograd path (rows of 26 and then 13 columns: wide and split tile vectors,
    /// one with a fused residual) compute 2x2x2 tiles from even coordinates; the runner starts its
    /// boxes there, so changes at odd coordinates still give the whole run's bits.
    @Test func winogradLayersGiveTheWholeRunsBits() throws {
        var g = try Graph(inputName: "x", inputShape: [1, 4, 10, 12, 26])
        let w1 = Tensor.random([8, 4, 3, 3, 3], seed: 1), w2 = Tensor.random([8, 8, 3, 3, 3], seed: 2)
        let w3 = Tensor.random([8, 8, 3, 3, 3], seed: 3)
        let c1 = try g.add(.conv(try ConvSpec(weight: w1, bias: Tensor.random([8], seed: 4), padding: 1, activation: .relu)),
                           inputs: [g.input], name: "c1")
        let c2 = try g.add(.conv(try ConvSpec(weight: w2, bias: nil, padding: 1, activation: .relu, addsResidual: true)),
                           inputs: [c1, c1], name: "c2")
        let pool = try g.add(.maxPool(PoolSpec(kernel: 2, stride: 2)), inputs: [c2], name: "pool")
        let c3 = try g.add(.conv(try ConvSpec(weight: w3, bias: nil, padding: 1)), inputs: [pool], name: "c3")
        let gp = try g.add(.globalAveragePool, inputs: [c3], name: "gap")
        try g.setOutputs([try g.add(.flatten(axis: 1), inputs: [gp], name: "flat")])
        for node in g.nodes {
            guard case .conv(let c) = node.op else { continue }
            #expect(c.packed.usesWinograd(width: g.values[node.output].shape[4]) == (Conv3DEngine.isa == .avx512), "\(node.name)")
        }
        let runner = IncrementalRunner(graph: g)
        var x = Tensor.random([1, 4, 10, 12, 26], seed: 5)
        for (step, at) in [(0, 0, 0), (3, 5, 7), (9, 11, 25), (4, 0, 13), (1, 7, 2)].enumerated() {
            if step > 0 { for c in 0..<4 { x[0, c, at.0, at.1, at.2] = Float(step) } }
            let ours = try runner.run(x)[0], whole = try g.run(x).outputs[0]
            #expect(ours.scalars.map(\.bitPattern) == whole.scalars.map(\.bitPattern), "step \(step) at \(at)")
            if step > 0 { #expect(runner.lastRecomputedFraction < 0.9) }
        }
    }

    @Test func boxesFollowTheWindows() {
        // k3 s1 p1: a change at [4, 6) reaches outputs [3, 7); k3 s2 p1: outputs [2, 3).
        let box = VoxelBox(lo: Size3(4), hi: Size3(6))
        #expect(box.union(VoxelBox(lo: Size3(0), hi: Size3(0))) == box)
        #expect(VoxelBox(lo: Size3(1, 2, 3), hi: Size3(2, 5, 4)).volume == 3)
    }

    @Test func batchesAreRefused() throws {
        let graph = try ModelParityTests.graph("vgg.onnx").fused()
        let shape = graph.values[graph.input].shape
        #expect(throws: GraphError.self) { try IncrementalRunner(graph: graph).run(Tensor.zeros([2] + shape.dropFirst())) }
    }
}

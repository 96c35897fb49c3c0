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

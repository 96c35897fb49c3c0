import Foundation
import Testing
import VoxelCAM
import VoxelEval
import VoxelNN
import VoxelTensor
import _TestSupport

/// Weight randomisation (VoxelNN) and the cascading randomisation check.
struct SanityTests {
    static func vgg() throws -> (Graph, Tensor) {
        let graph = try Graph(onnx: try ONNXModel(contentsOf: fixturesDirectory.appendingPathComponent("models/vgg.onnx")))
        let c = try GoldenFile.load("cam/vgg.json").cases[0]
        return (graph, try c.tensor("input"))
    }

    static func weights(_ g: Graph, _ i: Int) -> [Float] {
        if case .conv(let s) = g.nodes[i].op { return s.weight.scalars }
        return g.nodes[i].inputs.dropFirst().compactMap { g.constants[$0] }.flatMap(\.scalars)
    }

    static func std(_ x: [Float]) -> Double {
        let n = Double(x.count), m = x.reduce(0.0) { $0 + Double($1) } / n
        return (x.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / n).squareRoot()
    }

    @Test func randomizingWeightsKeepsScaleAndChangesOutputs() throws {
        let (graph, x) = try Self.vgg()
        let weighted = graph.weightedNodes
        #expect(weighted.count == 7)  // six convolutions and the linear head
        let top = Array(weighted.suffix(2))
        let a = try graph.randomizingWeights(ofNodes: top, seed: 1)
        let b = try graph.randomizingWeights(ofNodes: top, seed: 1)
        let c = try graph.randomizingWeights(ofNodes: top, seed: 2)
        for i in top {
            #expect(Self.weights(a, i) == Self.weights(b, i) && Self.weights(a, i) != Self.weights(c, i))
            #expect(Self.weights(a, i) != Self.weights(graph, i))
            let ratio = Self.std(Self.weights(a, i)) / Self.std(Self.weights(graph, i))
            #expect(ratio > 0.7 && ratio < 1.3, "node \(i): std ratio \(ratio)")  // same scale (sampling error on few weights)
        }
        for i in weighted.dropLast(2) { #expect(Self.weights(a, i) == Self.weights(graph, i)) }
        let before = try graph.run(x).outputs[0].scalars, after = try a.run(x).outputs[0].scalars
        #expect(maxAbsDifference(before, after) > 1e-3)
        #expect(throws: GraphError.self) { try graph.randomizingWeights(ofNodes: [graph.nodes.count], seed: 0) }
        let pool = graph.nodes.indices.first { if case .maxPool = graph.nodes[$0].op { return true } else { return false } }!
        #expect(throws: GraphError.self) { try graph.randomizingWeights(ofNodes: [pool], seed: 0) }
    }

    @Test func gradCAMLosesItsResemblanceWhenTheModelIsRandomised() throws {
        // EvalNet (conv, conv, pooling, linear head): the fixture VGG's Grad-CAM map is constant (zero),
        // which would make the check degenerate.
        let f = try EvalFixture.data()
        var o = SanityOptions()
        o.seed = 5
        let r = try cascadingRandomization(graph: f.graph, input: f.input, methods: [.gradcam], options: o)[0]
        #expect(!r.degenerate)
        #expect(r.steps.map(\.randomizedLayers) == [1, 2, 3])
        #expect(r.steps.map(\.lastLayer) == ["fc", "conv2", "conv1"])  // from the output down
        #expect(r.steps.last!.spearman < 0.5 && r.passed, "Spearman by step: \(r.steps.map(\.spearman))")
        // 12^3 maps hold the 11-voxel SSIM window; SSIM falls too.
        #expect(r.steps.allSatisfy { $0.ssim != nil })
        #expect(r.steps.last!.ssim! < 0.5, "SSIM by step: \(r.steps.map { $0.ssim! })")
    }

    @Test func checkpointsAreEvenlySpacedAndEndWithEveryLayer() throws {
        let (graph, x) = try Self.vgg()
        var o = SanityOptions()
        o.checkpoints = 3
        let r = try cascadingRandomization(graph: graph, input: x, methods: [.gradcam, .layercam], options: o)
        #expect(r.count == 2)
        #expect(r[0].steps.map(\.randomizedLayers) == [2, 5, 7])
        #expect(r[0].classIndex == r[1].classIndex)
    }

    @Test func aConstantOriginalMapIsDegenerateNotAPass() throws {
        // The mean model's single-channel "feature map" is x itself; a constant input gives a constant
        // Grad-CAM map, whose similarity cannot fall.
        var g = try Graph(inputName: "x", inputShape: [1, 1, 4, 4, 4])
        let conv = try g.add(.conv(try ConvSpec(weight: Tensor(shape: [1, 1, 1, 1, 1], repeating: 1), bias: nil, activation: .relu)),
                             inputs: [g.input], name: "conv")
        let pooled = try g.add(.globalAveragePool, inputs: [conv], name: "pool")
        let flat = try g.add(.flatten(axis: 1), inputs: [pooled], name: "flatten")
        let b = g.addConstant(try Tensor(shape: [1, 2], scalars: [1, 0]), name: "fc.weight")
        try g.setOutputs([try g.add(.gemm(GemmSpec()), inputs: [flat, b], name: "fc")])
        let r = try cascadingRandomization(graph: g, input: Tensor(shape: [1, 1, 4, 4, 4], repeating: 1), methods: [.gradcam])[0]
        #expect(r.degenerate && !r.passed)
        #expect(r.steps.count == 2)
    }
}

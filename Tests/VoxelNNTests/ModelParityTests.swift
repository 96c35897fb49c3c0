import Foundation
import Testing
import VoxelNN
import VoxelTensor
import _TestSupport

/// Whole-model parity with ONNX Runtime and PyTorch, on the models of Scripts/make_model_fixtures.py.
///
/// Tolerance: |ours - theirs| <= 1e-4 * max|theirs| + 1e-6 per element. Both sides compute in Float32
/// but sum in different orders (and we fold batch norm into convolutions), so agreement is limited by
/// Float32 rounding over a few hundred terms per output: about 1e-6 relative per layer, far below 1e-4.
@Suite struct ModelParityTests {
    static let models = ["vgg", "resnet", "densenet", "oddops"]

    static func close(_ ours: Tensor, _ theirs: Tensor, _ what: String) {
        #expect(ours.shape == theirs.shape, "\(what): shape \(ours.shape) vs \(theirs.shape)")
        guard ours.shape == theirs.shape else { return }
        let scale = theirs.scalars.map(abs).max() ?? 0
        let diff = maxAbsDifference(ours.scalars, theirs.scalars)
        #expect(diff <= 1e-4 * scale + 1e-6, "\(what): max difference \(diff) (scale \(scale))")
    }

    static func graph(_ file: String) throws -> Graph {
        let model = try ONNXModel(contentsOf: fixturesDirectory.appendingPathComponent("models/\(file)"))
        return try Graph(onnx: model)
    }

    @Test(arguments: models)
    func logitsAndActivationsMatchONNXRuntime(_ name: String) throws {
        let file = try GoldenFile.load("models/\(name).json")
        for c in file.cases where c.op == "model" {
            let plain = try Self.graph(c.strings["file"]!)
            let x = try c.tensor("input")
            let names = c.strings["values"]!.split(separator: "\n").map(String.init)
            let ids = try names.map { try plain.value(named: $0) }
            for (label, g) in [("unfused", plain), ("fused", try plain.fused(keeping: Set(ids)))] {
                let r = try g.run(x, capture: Set(ids))
                Self.close(r.outputs[0], try c.tensor("logits"), "\(c.name) \(label) logits")
                for (i, id) in ids.enumerated() {
                    Self.close(r.captured[id]!, try c.tensor("value\(i)"), "\(c.name) \(label) \(names[i])")
                }
            }
        }
    }

    @Test(arguments: models)
    func layerGradientMatchesPyTorch(_ name: String) throws {
        let file = try GoldenFile.load("models/\(name).json")
        let c = try #require(file.cases.first { $0.op == "layer-gradient" })
        let plain = try Self.graph(c.strings["file"]!)
        let layer = try plain.value(named: c.strings["layer"]!)
        let cls = c.int("class", 0)
        for (label, g) in [("unfused", plain), ("fused", try plain.fused(keeping: [layer]))] {
            let r = try g.gradients(try c.tensor("input"), at: [layer]) { logits in
                var seed = Tensor.zeros(logits.shape)
                seed[[0, cls]] = 1
                return seed
            }
            Self.close(r.outputs[0], try c.tensor("logits"), "\(name) \(label) logits")
            Self.close(r.activations[layer]!, try c.tensor("activation"), "\(name) \(label) activation")
            Self.close(r.gradients[layer]!, try c.tensor("gradient"), "\(name) \(label) gradient")
        }
    }

    /// ResNet blocks end in `relu(bn(conv(x)) + identity)`; fusion makes each one convolution that adds
    /// the identity in its store. Its logits and its input gradients (through every fused block) must
    /// match the unfused graph's.
    /// DenseNet layers start with BN -> ReLU after a concatenation (no convolution to fold into): fusion
    /// makes each one pass (`BatchNormSpec.activation`).
    @Test(arguments: ["resnet", "densenet"])
    func residualAndBatchNormFusionMatchUnfusedGraph(_ name: String) throws {
        let plain = try Self.graph("\(name).onnx")
        let output = plain.outputs[0]
        let early = plain.stageEnds(toward: output)[0]
        let fused = try plain.fused(keeping: [early])
        if name == "resnet" {
            let residualConvs = fused.nodes.filter { if case .conv(let c) = $0.op { return c.addsResidual } else { return false } }
            #expect(residualConvs.count >= 3, "fused residual convolutions: \(residualConvs.count)")
            #expect(!fused.nodes.contains { if case .binary(.add) = $0.op { return true } else { return false } })
        } else {
            let bnAct = fused.nodes.filter { if case .batchNorm(let b) = $0.op { return b.activation == .relu } else { return false } }
            #expect(bnAct.count >= 2, "batch norms with a fused ReLU: \(bnAct.count)")
        }
        let x = Tensor.random([2, 1, 12, 12, 12], seed: 5)
        func run(_ g: Graph) throws -> GradientResult {
            try g.gradients(x, at: [early]) { logits in
                var seed = Tensor.zeros(logits.shape)
                seed[[0, 1]] = 1
                seed[[1, 0]] = 1
                return seed
            }
        }
        let a = try run(plain), b = try run(fused)
        Self.close(b.outputs[0], a.outputs[0], "fused logits")
        Self.close(b.gradients[early]!, a.gradients[early]!, "fused gradient at \(plain.values[early].name)")
    }

    @Test func batchedRunEqualsSingleRuns() throws {
        let g = try Self.graph("resnet.onnx").fused()
        let a = Tensor.random([1, 1, 12, 12, 12], seed: 1), b = Tensor.random([1, 1, 12, 12, 12], seed: 2)
        let both = try Tensor(shape: [2, 1, 12, 12, 12], scalars: a.scalars + b.scalars)
        let batched = try g.run(both).outputs[0]
        let single = try g.run(a).outputs[0].scalars + g.run(b).outputs[0].scalars
        #expect(maxAbsDifference(batched.scalars, single) <= 1e-5)
    }
}

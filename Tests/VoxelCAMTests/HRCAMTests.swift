import Foundation
import Testing
import VoxelCAM
import VoxelNN
import VoxelTensor
import _TestSupport

/// HR-CAM on the sample model, whose head is HR-CAM's classifier (pooled features of four levels
/// concatenated before one linear layer): the exact form must read that layer's weights.
@Suite struct HRCAMTests {
    static let modelURL = fixturesDirectory.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Volumes/sample-model.onnx")

    static func sample() throws -> (Graph, weight: Tensor, bias: Tensor) {
        let graph = try Graph(onnx: try ONNXModel(contentsOf: modelURL))
        let gemm = try #require(graph.nodes.first { if case .gemm = $0.op { return true }; return false })
        return (graph, try #require(graph.constants[gemm.inputs[1]]), try #require(graph.constants[gemm.inputs[2]]))
    }

    @Test func exactFormReadsTheHeadWeights() throws {
        let (graph, w, b) = try Self.sample()  // w: [2, 120] (transB), b: [2]
        let x = Tensor.random([1, 1, 32, 32, 32], in: 0...1, seed: 3)
        let e = try CAMExplainer(graph: graph).explain(x, methods: [.hrcam, .cam], classIndex: 1)
        let hr = e[0]
        #expect(hr.form == "exact")
        #expect(hr.layerMaps.map { $0.map.shape[0] } == [32, 16, 8, 4])
        let read = hr.layerMaps.flatMap { $0.weights! }
        let truth = Array(w.scalars[120..<240])
        // Gradients through flatten, concat and gemm are exact up to Float32 rounding of a product by 1.
        #expect(maxAbsDifference(read, truth) <= 1e-6 * (truth.map(abs).max() ?? 1))
        // CAM at the default (last) layer: the last 64 weights.
        #expect(maxAbsDifference(e[1].layerMaps[0].weights!, Array(truth[56...])) <= 1e-6)
        // The map's mean over the input equals the logit: mean(U(M_l)) = Σ_k w_lk mean(A_lk) for
        // half-pixel trilinear upsampling by whole factors, and the bias is added once.
        let mean = hr.map.scalars.reduce(0.0) { $0 + Double($1) } / Double(hr.map.count)
        #expect(abs(mean - Double(hr.score)) <= 1e-3 * max(1, abs(Double(hr.score))), "mean \(mean) vs logit \(hr.score)")
        _ = b
    }

    @Test func fittedHeadWithTheModelsWeightsReproducesTheExactMap() throws {
        let (graph, w, b) = try Self.sample()
        let x = Tensor.random([1, 1, 32, 32, 32], in: 0...1, seed: 4)
        let explainer = CAMExplainer(graph: graph)
        let exact = try explainer.explain(x, methods: [.hrcam], classIndex: 1)[0]
        let head = HRCAMHead(levels: exact.layerMaps.map(\.name), channels: [8, 16, 32, 64],
                             weights: [Array(w.scalars[0..<120]), Array(w.scalars[120..<240])], bias: b.scalars,
                             l2: 0, trainingAccuracy: 1, scans: 0)
        let fitted = try explainer.explain(x, methods: [.hrcam], hrcamHead: head, classIndex: 1)[0]
        #expect(fitted.form == "fitted")
        let scale = exact.map.scalars.map(abs).max() ?? 1
        #expect(maxAbsDifference(fitted.map.scalars, exact.map.scalars) <= 1e-4 * scale)
    }

    @Test func logisticRegressionSeparatesSeparableFeatures() throws {
        var rng = SplitMix64(seed: 9)
        var features: [[Float]] = [], labels: [Int] = []
        for i in 0..<60 {
            let c = i % 3
            features.append((0..<5).map { j in Float(rng.uniform(-1, 1)) + (j == c ? 4 : 0) })
            labels.append(c)
        }
        let fit = try HRCAMHead.fit(features: features, labels: labels, classes: 3, l2: 1e-3)
        #expect(fit.accuracy == 1)
        #expect(throws: CAMError.self) { try HRCAMHead.fit(features: features, labels: labels.map { _ in 0 }, classes: 3) }
    }

    @Test func gradientFormOnAModelWithoutSuchAHead() throws {
        let graph = try Graph(onnx: try ONNXModel(contentsOf: fixturesDirectory.appendingPathComponent("models/oddops.onnx")))
        let e = try CAMExplainer(graph: graph).explain(Tensor.random([1, 1, 11, 11, 11], seed: 1), methods: [.hrcam])[0]
        #expect(e.form == "gradient")
        #expect(e.layerMaps.count >= 2)
    }
}

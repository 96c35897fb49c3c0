import Foundation
import VoxelNN
import VoxelTensor

/// Options of the explanation methods.
public struct CAMOptions: Sendable {
    /// Peak memory for batched forward passes (Score-CAM, occlusion), in bytes.
    public var memoryBudget: Int = 2 << 30
    /// Faster Score-CAM: keep only the `k` channels of highest variance.
    public var scoreCAMTopK: Int?
    /// Occlusion cube edge and stride in input voxels (default: a quarter of the smallest edge, and half
    /// that: 7^3 = 343 positions on any cube-shaped input).
    public var occlusionSize: Int?
    public var occlusionStride: Int?
    /// The value occluded voxels take (model units).
    public var occlusionValue: Float = 0
    /// Called with (what, done, total) as batched work proceeds.
    public var progress: (@Sendable (String, Int, Int) -> Void)?

    public init() {}
}

/// Explains a model's class score with the CAM family, from one capture of activations and gradients.
public struct CAMExplainer: Sendable {
    /// The model as imported (unfused, so every layer is addressable).
    public let graph: Graph
    /// The output holding the class scores (logits).
    public let output: Int

    /// Fused graphs by the layers they keep, so explaining scan after scan folds and packs the
    /// weights once (on VGG-style at 64^3 that was 4 of Grad-CAM's 23 ms).
    private let fusedGraphs = FusedGraphCache()

    public init(graph: Graph, output: Int = 0) { self.graph = graph; self.output = output }

    /// The default target layer: the last 3D feature map on the way to the output.
    public var defaultLayer: ValueID? {
        graph.stageEnds(toward: graph.outputs[output]).last
    }

    /// Explains `classIndex` (nil: the predicted class) with each method.
    ///
    /// - Parameters:
    ///   - x: the model input `[1, C, D, H, W]`.
    ///   - layers: target layers for the single-layer methods (the first is used; default: `defaultLayer`).
    ///   - hrcamLayers: HR-CAM's levels (default: the layers pooled into a linear head, else the last
    ///     layer of every resolution stage).
    /// - Returns: one explanation per method, in order.
    ///   - hrcamHead: a fitted HR-CAM head (`voxplain hrcam-fit`); its levels replace `hrcamLayers`.
    public func explain(_ x: Tensor, methods: [CAMMethod], layers: [ValueID] = [], hrcamLayers: [ValueID]? = nil,
                        hrcamHead: HRCAMHead? = nil, classIndex: Int? = nil,
                        options: CAMOptions = CAMOptions()) throws -> [Explanation] {
        guard x.rank == 5, x.shape[0] == 1 else { throw CAMError("explanations take one input [1, C, D, H, W], got \(x.shape)") }
        let out = graph.outputs[output]
        guard let layer = layers.first ?? defaultLayer else { throw CAMError("the model has no 3D feature map to explain") }
        // HR-CAM's exact form needs a head that pools several levels; one pooled level is plain CAM.
        let pooledAll = LinearHead.pooledLayers(graph, output: out)
        let pooled = pooledAll.count >= 2 ? pooledAll : []
        let levels = try hrcamHead.map { try $0.levels.map { try graph.value(named: $0) } }
            ?? hrcamLayers ?? (pooled.isEmpty ? graph.stageEnds(toward: out) : pooled)
        // Linear heads: CAM at the target layer, exact HR-CAM at the pooled levels. Their weights are the
        // gradient at the pooled features, so those values are captured too.
        let camHead = methods.contains(.cam) ? try LinearHead(graph, targets: [layer], output: out, method: "CAM") : nil
        let exactHR = methods.contains(.hrcam) && hrcamHead == nil && !pooled.isEmpty
            && (hrcamLayers.map { Set($0).isSubset(of: Set(pooled)) } ?? true)
        let hrHead = exactHR ? try LinearHead(graph, targets: levels, output: out, method: "HR-CAM") : nil
        var captureSet = Set([layer] + (methods.contains(.hrcam) ? levels : []))
        captureSet.formUnion(camHead?.pooled ?? [])
        captureSet.formUnion(hrHead?.pooled ?? [])
        let captureLayers = Array(captureSet)

        // One forward and one backward pass for every method that reads gradients or head weights, on
        // the graph with batch norms folded and activations fused everywhere but at the target layers.
        let fused = try fusedGraphs.graph(keeping: Set(captureLayers)) { try graph.fused(keeping: $0) }
        var chosen = classIndex ?? -1
        var scoreValue: Float = 0
        let capture = try fused.gradients(x, at: captureLayers, output: output) { logits in
            guard logits.rank == 2, logits.shape[0] == 1 else {
                throw CAMError("output '\(graph.values[out].name)' has shape \(logits.shape); CAM methods explain a classifier's [1, classes] logits")
            }
            if chosen < 0 { chosen = logits.scalars.indices.max { logits.scalars[$0] < logits.scalars[$1] } ?? 0 }
            guard chosen < logits.count else { throw CAMError("class \(chosen) is out of range: the model has \(logits.count) classes") }
            scoreValue = logits.scalars[chosen]
            var seed = Tensor.zeros(logits.shape)
            seed.scalars[chosen] = 1
            return seed
        }
        for v in Set([layer] + (methods.contains(.hrcam) ? levels : [])) {
            try CAMBase.requireFeatureMap(capture.activations[v]!, graph.values[v].name)
        }
        let inputSize = Array(x.shape[2...])
        var results: [Explanation] = []
        for method in methods {
            var e = Explanation(method: method, classIndex: chosen, score: scoreValue, layerMaps: [],
                                map: Tensor.zeros(inputSize), form: nil, forwardPasses: 1)
            switch method {
            case .gradcam, .gradcampp, .xgradcam, .layercam, .hirescam:
                let r = method.gradientMap(activation: capture.activations[layer]!, gradient: capture.gradients[layer]!, score: scoreValue)
                e.layerMaps = [LayerMap(layer: layer, name: graph.values[layer].name, map: r.map, weights: r.weights)]
                e.map = try upsampleMap(r.map, to: inputSize)
            case .cam:
                let head = headMaps(capture, levels: [layer], pooled: camHead!.pooled, score: scoreValue)
                e.layerMaps = head.maps
                e.map = try upsampleMap(head.maps[0].map, to: inputSize)
                e.map.scalars = e.map.scalars.map { $0 + head.bias }
            case .hrcam:
                e = try hrcam(capture, levels: levels, exactPooled: hrHead?.pooled, fitted: hrcamHead, score: scoreValue,
                              classIndex: chosen, inputSize: inputSize)
            case .scorecam:
                e = try scoreCAM(x, layer: layer, activation: capture.activations[layer]!, classIndex: chosen,
                                 score: scoreValue, fused: fused, options: options)
            case .occlusion:
                e = try occlusion(x, classIndex: chosen, score: scoreValue, fused: fused, options: options)
            }
            results.append(e)
        }
        return results
    }

    /// Class maps of layers pooled into a linear head: `M_l = Σ_k w_lk A_lk` with the head's weights
    /// read as the gradient of `y_c` at the pooled features (`∂y_c/∂mean(A_lk) = w_lk` exactly), and the
    /// bias `b = y_c − Σ_l Σ_k w_lk mean(A_lk)`. As MONAI's CAM: no ReLU.
    func headMaps(_ capture: GradientResult, levels: [ValueID], pooled: [ValueID], score: Float) -> (maps: [LayerMap], bias: Float) {
        var bias = Double(score)
        var maps: [LayerMap] = []
        for (v, p) in zip(levels, pooled) {
            let a = capture.activations[v]!
            let n = Double(a.shape[2...].product)
            let w = capture.gradients[p]!.scalars
            let means = CAMBase.channelSums(a).map { $0 / n }
            for k in w.indices { bias -= Double(w[k]) * means[k] }
            maps.append(LayerMap(layer: v, name: graph.values[v].name, map: CAMBase.weightedSum(a, weights: w, relu: false), weights: w))
        }
        return (maps, Float(bias))
    }

    /// How many inputs one batched forward pass may hold within `budget` bytes: each sample costs the
    /// graph's peak live activations plus three input-sized buffers (the mask or occluded copy, the
    /// masked input, and the batch being assembled), and 15% of the budget is kept for the rest of
    /// the process (weights, the capture, maps).
    static func batchSize(_ count: Int, fused: Graph, input: Tensor, budget: Int) -> Int {
        let perSample = fused.peakActivationBytes + 3 * 4 * input.count
        // Within the budget, and small (see `Graph.batchActivationBytes`).
        return max(1, min(count, fused.cacheFriendlyBatch(limit: 8), (budget / 100 * 85) / max(perSample, 1)))
    }
}

/// The last two fused graphs an explainer made, by the layers they keep (each holds packed weights as
/// large as the model's, so no more are kept).
final class FusedGraphCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(keeping: Set<ValueID>, graph: Graph)] = []

    func graph(keeping: Set<ValueID>, make: (Set<ValueID>) throws -> Graph) throws -> Graph {
        lock.lock()
        defer { lock.unlock() }
        if let i = entries.firstIndex(where: { $0.keeping == keeping }) {
            let e = entries.remove(at: i)
            entries.append(e)
            return e.graph
        }
        let g = try make(keeping)
        entries.append((keeping, g))
        if entries.count > 2 { entries.removeFirst() }
        return g
    }
}

import VoxelNN
import VoxelTensor

// HR-CAM, high-resolution class activation mapping (Shinde, Chougule, Saini, Kamat, "HR-CAM: Precise
// localization of pathology using multi-level learning in CNNs", MICCAI 2019; PeerJ CS 2021).
//
// A linear classifier fuses globally pooled features of the last layer of every resolution level l:
//   y_c = Σ_l Σ_k w^c_lk · mean(A_lk) + b_c,
// and the map is that classifier applied to every level's feature maps upsampled to the input:
//   HR-CAM_c = Σ_l U(Σ_k w^c_lk A_lk) + b_c,   U = trilinear upsampling to the input grid.
// Fine levels keep small lesions that the last layer's coarse grid blurs away.
//
// Forms (the report records which ran):
//   exact     the model's own head is such a classifier (pooled levels concatenated before a linear layer);
//   fitted    a head fitted by `voxplain hrcam-fit` on labelled scans with the model frozen (HRCAMHead);
//   gradient  any other model: Grad-CAM of the last layer of every resolution stage, each upsampled, summed.

extension CAMExplainer {
    func hrcam(_ capture: GradientResult, levels: [ValueID], exactPooled: [ValueID]?, fitted: HRCAMHead?, score: Float,
               classIndex: Int, inputSize: [Int]) throws -> Explanation {
        guard !levels.isEmpty else { throw CAMError("HR-CAM found no resolution levels in the model") }
        var maps: [LayerMap]
        var total = Tensor.zeros(inputSize)
        var form: String
        if let head = fitted {
            guard classIndex < head.weights.count else {
                throw CAMError("the fitted HR-CAM head has \(head.weights.count) classes; class \(classIndex) is out of range")
            }
            maps = []
            for (l, v) in levels.enumerated() {
                let a = capture.activations[v]!
                guard a.shape[1] == head.channels[l] else {
                    throw CAMError("the fitted HR-CAM head expects \(head.channels[l]) channels at '\(head.levels[l])', the model has \(a.shape[1]); refit it")
                }
                let w = head.weights(class: classIndex, level: l)
                maps.append(LayerMap(layer: v, name: graph.values[v].name, map: CAMBase.weightedSum(a, weights: w, relu: false), weights: w))
            }
            total.scalars = [Float](repeating: head.bias[classIndex], count: total.count)
            form = "fitted"
        } else if let pooled = exactPooled {
            let head = headMaps(capture, levels: levels, pooled: pooled, score: score)
            maps = head.maps
            total.scalars = [Float](repeating: head.bias, count: total.count)
            form = "exact"
        } else {
            maps = levels.map { v in
                let r = CAMMethod.gradcam.gradientMap(activation: capture.activations[v]!, gradient: capture.gradients[v]!, score: score)
                return LayerMap(layer: v, name: graph.values[v].name, map: r.map, weights: r.weights)
            }
            form = "gradient"
        }
        for m in maps {
            total = try VoxelTensor.add(total, try upsampleMap(m.map, to: inputSize))
        }
        return Explanation(method: .hrcam, classIndex: classIndex, score: score, layerMaps: maps, map: total,
                           form: form, forwardPasses: 1)
    }
}

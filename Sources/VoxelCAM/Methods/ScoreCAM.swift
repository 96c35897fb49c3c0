import Foundation
import VoxelNN
import VoxelTensor

// Score-CAM (Wang et al., "Score-CAM: Score-Weighted Visual Explanations for CNNs", CVPR-W 2020), as
// torch-cam's ScoreCAM computes it in 3D:
//   M_k = U((A_k − min A_k) / (max A_k − min A_k + 1e-8))       mask of channel k, U trilinear to the input
//   s_k = y_c(x ⊙ M_k) − y_c(x)                                 class logit gained with the masked input
//   w = softmax_k(s_k);  map = ReLU(Σ_k w_k A_k).
// The masked inputs run in batches sized so the batch's activations fit the memory budget.
// Faster Score-CAM (Wang et al. 2020, "SS-CAM"/"Faster Score-CAM" variants): only the top-k channels by
// variance are scored; the others get weight 0.

extension CAMExplainer {
    func scoreCAM(_ x: Tensor, layer: ValueID, activation a: Tensor, classIndex: Int, score: Float,
                  fused: Graph, options: CAMOptions) throws -> Explanation {
        let k = a.shape[1], n = a.shape[2...].product
        let layerSize = Array(a.shape[2...]), inputSize = Array(x.shape[2...])
        // Channel masks at layer resolution, normalised to [0, 1].
        var normalized = a.scalars
        var variances = [Double](repeating: 0, count: k)
        for c in 0..<k {
            let row = Array(a.scalars[(c * n)..<((c + 1) * n)])
            let lo: Float = row.min() ?? 0, hi: Float = row.max() ?? 0
            var sum = 0.0, sumSq = 0.0
            for v in row { sum += Double(v); sumSq += Double(v) * Double(v) }
            let mean = sum / Double(n)
            variances[c] = sumSq / Double(n) - mean * mean
            for i in 0..<n { normalized[c * n + i] = (row[i] - lo) / (hi - lo + 1e-8) }
        }
        var channels = Array(0..<k)
        if let top = options.scoreCAMTopK {
            guard top > 0 else { throw CAMError("--topk must be positive, got \(top)") }
            channels = Array(channels.sorted { variances[$0] > variances[$1] }.prefix(top)).sorted()
        }
        let batch = CAMExplainer.batchSize(channels.count, fused: fused, input: x, budget: options.memoryBudget)
        var gains = [Float](repeating: -.infinity, count: k)
        var done = 0
        for start in stride(from: 0, to: channels.count, by: batch) {
            let chunk = Array(channels[start..<min(start + batch, channels.count)])
            var masks = [Float](repeating: 0, count: chunk.count * n)
            for (j, c) in chunk.enumerated() { masks[(j * n)..<((j + 1) * n)] = normalized[(c * n)..<((c + 1) * n)] }
            let up = try resize3d(try Tensor(shape: [1, chunk.count] + layerSize, scalars: masks),
                                  size: Size3(inputSize[0], inputSize[1], inputSize[2]), mode: .trilinear, alignCorners: false)
            // x ⊙ M_k for each channel of the chunk: [B, C, D, H, W].
            let masked = try VoxelTensor.mul(try up.reshaped([chunk.count, 1] + inputSize), x)
            let logits = try fused.run(masked).outputs[output]
            let classes = logits.shape[1]
            for (j, c) in chunk.enumerated() { gains[c] = logits.scalars[j * classes + classIndex] - score }
            done += chunk.count
            options.progress?("Score-CAM", done, channels.count)
        }
        // softmax over the scored channels; unscored channels (Faster Score-CAM) get weight 0.
        let m = channels.map { gains[$0] }.max() ?? 0
        var w = [Float](repeating: 0, count: k)
        var sum = 0.0
        for c in channels { sum += Foundation.exp(Double(gains[c] - m)) }
        for c in channels { w[c] = Float(Foundation.exp(Double(gains[c] - m)) / sum) }
        let map = CAMBase.weightedSum(a, weights: w)
        return Explanation(method: .scorecam, classIndex: classIndex, score: score,
                           layerMaps: [LayerMap(layer: layer, name: graph.values[layer].name, map: map, weights: w)],
                           map: try upsampleMap(map, to: inputSize), form: options.scoreCAMTopK.map { "top \($0) channels" },
                           forwardPasses: channels.count + 1)
    }
}

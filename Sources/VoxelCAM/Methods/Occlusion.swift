import VoxelNN
import VoxelTensor

// Occlusion sensitivity in 3D (Zeiler and Fergus, ECCV 2014): a cube of edge s slides over the input
// with stride t; each position's input, with the cube set to a constant, runs through the model, and
// every voxel of the cube gets the drop of the class logit y_c(x) − y_c(x_occluded). The map is the
// mean drop over the positions covering each voxel. Positions run one by one, each recomputing only the
// boxes its cube reaches.

extension CAMExplainer {
    func occlusion(_ x: Tensor, classIndex: Int, score: Float, fused: Graph, options: CAMOptions) throws -> Explanation {
        let size = Array(x.shape[2...]), channels = x.shape[1]
        let edge = options.occlusionSize ?? max(2, (size.min() ?? 8) / 4)
        let step = options.occlusionStride ?? max(1, edge / 2)
        guard edge > 0, step > 0 else { throw CAMError("occlusion cube size and stride must be positive (got \(edge), \(step))") }
        func starts(_ n: Int) -> [Int] {
            var s = Array(stride(from: 0, to: max(1, n - edge + 1), by: step))
            if let last = s.last, last + edge < n { s.append(n - edge) }
            return s.isEmpty ? [0] : s
        }
        var positions: [[Int]] = []
        for d in starts(size[0]) { for h in starts(size[1]) { for w in starts(size[2]) { positions.append([d, h, w]) } } }
        // One position at a time through an incremental runner: consecutive inputs differ in two
        // cubes, so each pass recomputes only what those cubes reach (see VoxelNN/Graph/Incremental.swift).
        // The runner keeps every activation; beyond the memory budget each position runs whole.
        let runner = fused.totalActivationBytes <= options.memoryBudget ? IncrementalRunner(graph: fused) : nil
        _ = try runner?.run(x)
        var sum = [Float](repeating: 0, count: size.product), count = [Float](repeating: 0, count: size.product)
        let plane = size.product
        var current = x.scalars
        func fillCube(_ p: [Int], from source: [Float]?) {
            for c in 0..<channels {
                for d in p[0]..<min(p[0] + edge, size[0]) {
                    for h in p[1]..<min(p[1] + edge, size[1]) {
                        let row = c * plane + (d * size[1] + h) * size[2]
                        for w in p[2]..<min(p[2] + edge, size[2]) { current[row + w] = source?[row + w] ?? options.occlusionValue }
                    }
                }
            }
        }
        var previous: [Int]?
        for (i, p) in positions.enumerated() {
            if let q = previous { fillCube(q, from: x.scalars) }
            fillCube(p, from: nil)
            previous = p
            let input = try Tensor(shape: x.shape, scalars: current)
            let logits = try runner?.run(input)[output] ?? fused.run(input).outputs[output]
            let drop = score - logits.scalars[classIndex]
            for d in p[0]..<min(p[0] + edge, size[0]) {
                for h in p[1]..<min(p[1] + edge, size[1]) {
                    let row = (d * size[1] + h) * size[2]
                    for w in p[2]..<min(p[2] + edge, size[2]) { sum[row + w] += drop; count[row + w] += 1 }
                }
            }
            if (i + 1) % 16 == 0 || i + 1 == positions.count { options.progress?("occlusion", i + 1, positions.count) }
        }
        let map = try Tensor(shape: size, scalars: zip(sum, count).map { $1 > 0 ? $0 / $1 : 0 })
        return Explanation(method: .occlusion, classIndex: classIndex, score: score, layerMaps: [], map: map,
                           form: "cube \(edge), stride \(step)", forwardPasses: positions.count + 1)
    }
}

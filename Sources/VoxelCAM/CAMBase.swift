import VoxelNN
import VoxelTensor

/// The shared core of the CAM family: the weighted channel sum with ReLU, and element-wise maps.
///
/// Activations and gradients are `[1, K, d, h, w]`; maps are `[d, h, w]`.
enum CAMBase {
    /// `ReLU(Σ_k w_k A_k)` (or without the ReLU), `[d, h, w]`.
    static func weightedSum(_ a: Tensor, weights w: [Float], relu: Bool = true, bias: Float = 0) -> Tensor {
        let k = a.shape[1], n = a.shape[2...].product
        var out = [Float](repeating: bias, count: n)
        a.scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<k where w[c] != 0 {
                    let row = src.baseAddress! + c * n, wc = w[c]
                    for i in 0..<n { dst[i] += wc * row[i] }
                }
                if relu { for i in 0..<n where !(dst[i] > 0) { dst[i] = 0 } }
            }
        }
        return try! Tensor(shape: Array(a.shape[2...]), scalars: out)
    }

    /// `ReLU(Σ_k f(G_k, A_k))` element-wise, `[d, h, w]`.
    static func elementwise(_ a: Tensor, _ g: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        let k = a.shape[1], n = a.shape[2...].product
        var out = [Float](repeating: 0, count: n)
        for c in 0..<k {
            for i in 0..<n { out[i] += f(g.scalars[c * n + i], a.scalars[c * n + i]) }
        }
        for i in 0..<n where !(out[i] > 0) { out[i] = 0 }
        return try! Tensor(shape: Array(a.shape[2...]), scalars: out)
    }

    /// Per-channel spatial sums of `x`, `[K]`, in Double.
    static func channelSums(_ x: Tensor, _ f: (Double) -> Double = { $0 }) -> [Double] {
        let k = x.shape[1], n = x.shape[2...].product
        return (0..<k).map { c in
            var s = 0.0
            for i in 0..<n { s += f(Double(x.scalars[c * n + i])) }
            return s
        }
    }

    /// Checks an activation is a usable CAM target: `[1, K, d, h, w]`.
    static func requireFeatureMap(_ a: Tensor, _ name: String) throws {
        guard a.rank == 5, a.shape[0] == 1 else {
            throw CAMError("layer '\(name)' has shape \(a.shape); CAM methods need a 3D feature map [1, C, D, H, W] (see `voxplain layers`)")
        }
    }
}

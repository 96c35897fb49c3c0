import Foundation
import VoxelNN
import VoxelTensor

// The gradient methods: each reads the activation A and the gradient G = ∂y_c/∂A of the class logit
// y_c at the target layer (one forward and one backward pass shared by all of them).
// A, G: [1, K, d, h, w]; N = d·h·w; every map gets a final ReLU.

extension CAMMethod {
    /// The map of a gradient method at one layer, with its channel weights where it has them.
    func gradientMap(activation a: Tensor, gradient g: Tensor, score: Float) -> (map: Tensor, weights: [Float]?) {
        let n = Double(a.shape[2...].product)
        switch self {
        case .gradcam:
            // Grad-CAM (Selvaraju et al., ICCV 2017): w_k = (1/N) Σ_ij G_k,ij; map = ReLU(Σ_k w_k A_k).
            // Same as MONAI GradCAM and pytorch-grad-cam.
            let w = CAMBase.channelSums(g).map { Float($0 / n) }
            return (CAMBase.weightedSum(a, weights: w), w)
        case .gradcampp:
            // Grad-CAM++ (Chattopadhay et al., WACV 2018), as MONAI's GradCAMpp computes it:
            //   α_k,ij = G²_k,ij / (2G²_k,ij + Σ_ab A_k,ab G³_k,ab)   (denominator 1 where it is 0, plus 1e-7)
            //   w_k = Σ_ij α_k,ij · ReLU(exp(y_c) · G_k,ij);  map = ReLU(Σ_k w_k A_k).
            // pytorch-grad-cam drops the exp(y_c) factor (a positive constant per class, so the normalised
            // maps agree) and zeroes α where G = 0; we pin MONAI's form, raw values included.
            let k = a.shape[1], count = a.shape[2...].product
            let expScore = Foundation.exp(Double(score))
            var w = [Float](repeating: 0, count: k)
            for c in 0..<k {
                var sumAG3 = 0.0
                for i in 0..<count {
                    let gv = Double(g.scalars[c * count + i])
                    sumAG3 += Double(a.scalars[c * count + i]) * gv * gv * gv
                }
                var wc = 0.0
                for i in 0..<count {
                    let gv = Double(g.scalars[c * count + i])
                    let nr = gv * gv
                    var dr = 2 * nr + sumAG3
                    if dr == 0 { dr = 1 }
                    wc += nr / (dr + 1e-7) * max(expScore * gv, 0)
                }
                w[c] = Float(wc)
            }
            return (CAMBase.weightedSum(a, weights: w), w)
        case .xgradcam:
            // XGrad-CAM (Fu et al., BMVC 2020): w_k = Σ_ij G_k,ij A_k,ij / (Σ_ij A_k,ij + 1e-7), as
            // pytorch-grad-cam computes it.
            let k = a.shape[1], count = a.shape[2...].product
            let sumA = CAMBase.channelSums(a)
            let w: [Float] = (0..<k).map { c in
                var s = 0.0
                for i in 0..<count { s += Double(g.scalars[c * count + i]) * Double(a.scalars[c * count + i]) }
                return Float(s / (sumA[c] + 1e-7))
            }
            return (CAMBase.weightedSum(a, weights: w), w)
        case .layercam:
            // LayerCAM (Jiang et al., IEEE TIP 2021): map = ReLU(Σ_k ReLU(G_k) ⊙ A_k), element-wise.
            return (CAMBase.elementwise(a, g) { gv, av in max(gv, 0) * av }, nil)
        case .hirescam:
            // HiResCAM (Draelos and Carin 2020): map = ReLU(Σ_k G_k ⊙ A_k), element-wise: faithful to the
            // score for models whose head is a linear layer on the flattened or pooled features.
            return (CAMBase.elementwise(a, g) { gv, av in gv * av }, nil)
        default:
            preconditionFailure("\(self) is not a gradient method")
        }
    }
}

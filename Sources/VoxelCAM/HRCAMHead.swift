import Foundation
import VoxelNN
import VoxelTensor

/// A fitted HR-CAM head: a linear classifier on the globally pooled features of several layers
/// (one per resolution level), `y_c = Σ_l Σ_k w_c,lk · mean(A_lk) + b_c`. Saved as `MODEL.hrcam.json`.
public struct HRCAMHead: Codable, Sendable, Equatable {
    /// The levels' layer names, finest first, and each level's channel count.
    public var levels: [String]
    public var channels: [Int]
    /// `weights[c]` holds the features of every level in order; `bias[c]` per class.
    public var weights: [[Float]]
    public var bias: [Float]
    /// The L2 penalty and the training facts, for the report.
    public var l2: Float
    public var trainingAccuracy: Float
    public var scans: Int

    public init(levels: [String], channels: [Int], weights: [[Float]], bias: [Float], l2: Float,
                trainingAccuracy: Float, scans: Int) {
        self.levels = levels; self.channels = channels; self.weights = weights; self.bias = bias
        self.l2 = l2; self.trainingAccuracy = trainingAccuracy; self.scans = scans
    }

    /// The weights of class `c` for level `l`.
    public func weights(class c: Int, level l: Int) -> [Float] {
        let start = channels[..<l].reduce(0, +)
        return Array(weights[c][start..<(start + channels[l])])
    }

    /// Fits a multinomial logistic regression with an L2 penalty on the weights (not the bias).
    ///
    /// Features are standardised internally (mean 0, variance 1 per feature) for conditioning, and the
    /// weights are mapped back to raw features, so `weights · x + bias` applies to raw pooled features.
    /// Full-batch gradient descent with a backtracking (Armijo) step: deterministic, and the penalised
    /// loss is convex, so it converges to the unique optimum.
    /// - Parameters:
    ///   - features: one row of pooled features per scan.
    ///   - labels: class index per scan, in `0..<classes`.
    public static func fit(features: [[Float]], labels: [Int], classes: Int, l2: Float = 1e-2,
                           iterations: Int = 2000) throws -> (weights: [[Float]], bias: [Float], accuracy: Float) {
        let n = features.count
        guard n > 0, let d = features.first?.count, d > 0, features.allSatisfy({ $0.count == d }) else {
            throw CAMError("hrcam-fit needs at least one scan with features")
        }
        guard labels.count == n, labels.allSatisfy({ $0 >= 0 && $0 < classes }), classes >= 2 else {
            throw CAMError("hrcam-fit labels must be class indices in 0..<\(classes)")
        }
        guard Set(labels).count >= 2 else { throw CAMError("hrcam-fit needs scans of at least two classes, got only class \(labels[0])") }
        var mean = [Double](repeating: 0, count: d), sd = [Double](repeating: 0, count: d)
        for row in features { for j in 0..<d { mean[j] += Double(row[j]) } }
        for j in 0..<d { mean[j] /= Double(n) }
        for row in features { for j in 0..<d { sd[j] += (Double(row[j]) - mean[j]) * (Double(row[j]) - mean[j]) } }
        for j in 0..<d { sd[j] = max((sd[j] / Double(n)).squareRoot(), 1e-8) }
        let x = features.map { row in (0..<d).map { (Double(row[$0]) - mean[$0]) / sd[$0] } }
        var w = [[Double]](repeating: [Double](repeating: 0, count: d), count: classes)
        var b = [Double](repeating: 0, count: classes)
        let lambda = Double(l2)
        /// The class scores `w·row + b` of one (standardised) row.
        func scores(_ w: [[Double]], _ b: [Double], _ row: [Double]) -> [Double] {
            (0..<classes).map { c in
                var s = b[c]
                for j in 0..<d { s += w[c][j] * row[j] }
                return s
            }
        }
        func lossAndGradient(_ w: [[Double]], _ b: [Double]) -> (Double, [[Double]], [Double]) {
            var loss = 0.0
            var gw = [[Double]](repeating: [Double](repeating: 0, count: d), count: classes)
            var gb = [Double](repeating: 0, count: classes)
            for i in 0..<n {
                var z = scores(w, b, x[i])
                let m = z.max()!
                z = z.map { Foundation.exp($0 - m) }
                let s = z.reduce(0, +)
                loss -= Foundation.log(z[labels[i]] / s)
                for c in 0..<classes {
                    let g = z[c] / s - (c == labels[i] ? 1 : 0)
                    gb[c] += g / Double(n)
                    for j in 0..<d { gw[c][j] += g * x[i][j] / Double(n) }
                }
            }
            loss /= Double(n)
            for c in 0..<classes { for j in 0..<d { loss += 0.5 * lambda * w[c][j] * w[c][j]; gw[c][j] += lambda * w[c][j] } }
            return (loss, gw, gb)
        }
        var step = 1.0
        var (loss, gw, gb) = lossAndGradient(w, b)
        for _ in 0..<iterations {
            let norm2 = gw.joined().reduce(0) { $0 + $1 * $1 } + gb.reduce(0) { $0 + $1 * $1 }
            if norm2 < 1e-14 { break }
            while true {
                let w2 = (0..<classes).map { c in (0..<d).map { w[c][$0] - step * gw[c][$0] } }
                let b2 = (0..<classes).map { b[$0] - step * gb[$0] }
                let next = lossAndGradient(w2, b2)
                if next.0 <= loss - 0.5 * step * norm2 || step < 1e-10 {
                    (w, b, loss, gw, gb) = (w2, b2, next.0, next.1, next.2)
                    step = min(step * 2, 64)
                    break
                }
                step /= 2
            }
        }
        // Back to raw features: w·(x - μ)/σ + b = (w/σ)·x + (b - Σ w μ/σ).
        let rawW = w.map { wc in (0..<d).map { Float(wc[$0] / sd[$0]) } }
        var rawB = [Float](repeating: 0, count: classes)
        for c in 0..<classes {
            var shift = 0.0
            for j in 0..<d { shift += w[c][j] * mean[j] / sd[j] }
            rawB[c] = Float(b[c] - shift)
        }
        // Training accuracy, scored in the standardised space (the same scores as the raw weights give).
        var correct = 0
        for i in 0..<n {
            let z = scores(w, b, x[i])
            if z.indices.max(by: { z[$0] < z[$1] }) == labels[i] { correct += 1 }
        }
        return (rawW, rawB, Float(correct) / Float(n))
    }
}

/// Global average pooling of a feature map `[1, K, d, h, w]` to `[K]`.
public func pooledFeatures(_ a: Tensor) -> [Float] {
    CAMBase.channelSums(a).map { Float($0 / Double(a.shape[2...].product)) }
}

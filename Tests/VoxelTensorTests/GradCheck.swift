import Testing
import VoxelTensor
import _TestSupport

/// Checks an analytic gradient against central differences of the scalar L(x) = sum(g * f(x)), with
/// the products and sums taken in Double.
///
/// - Parameters: x: the point; g: the upstream gradient (shape of f(x)); eps: the step (Float, since
///   the ops are Float32); tolerance: |numeric - analytic| <= atol + rtol * max|analytic|.
/// - Returns: the largest absolute difference (for messages).
///
/// Why these tolerances work: the forward runs in Float32, so each L evaluation carries a rounding
/// error near 1e-7 * sum|g * f|; divided by 2 * eps (1e-2 by default) that is ~1e-5 relative. Smooth
/// ops add a truncation error eps² * f''' / 6 (~1e-5 for tanh, sigmoid, softmax at eps = 1e-2).
/// Piecewise-linear ops are exact up to rounding as long as no kink or tie lies within eps, which the
/// tests arrange by construction.
@discardableResult
func checkGradient(_ name: String, at x: Tensor, upstream g: Tensor, eps: Float = 1e-2,
                   rtol: Double = 2e-3, atol: Double = 2e-4,
                   forward: (Tensor) throws -> Tensor, analytic: Tensor) throws -> Double {
    #expect(analytic.shape == x.shape, "\(name): gradient shape \(analytic.shape) vs input \(x.shape)")
    func loss(_ t: Tensor) throws -> Double {
        let y = try forward(t)
        precondition(y.shape == g.shape, "\(name): upstream shape \(g.shape) vs output \(y.shape)")
        var s = 0.0
        for i in y.scalars.indices { s += Double(y.scalars[i]) * Double(g.scalars[i]) }
        return s
    }
    let scale = analytic.scalars.map { abs(Double($0)) }.max() ?? 0
    var worst = 0.0
    for i in x.scalars.indices {
        var plus = x, minus = x
        plus.scalars[i] += eps
        minus.scalars[i] -= eps
        // The actual step after Float rounding of x ± eps.
        let h = Double(plus.scalars[i]) - Double(minus.scalars[i])
        let numeric = (try loss(plus) - loss(minus)) / h
        let diff = abs(numeric - Double(analytic.scalars[i]))
        worst = max(worst, diff)
        if diff > atol + rtol * scale {
            Issue.record("\(name): d/dx[\(i)] numeric \(numeric) vs analytic \(analytic.scalars[i]) (scale \(scale))")
            return worst
        }
    }
    return worst
}

/// Values that are pairwise at least `gap` apart, shuffled (so max pooling and ReLU have no ties or
/// kinks within a finite-difference step).
func distinctValues(_ shape: [Int], gap: Float = 0.05, seed: UInt64) -> Tensor {
    var g = SeededGenerator(seed: seed)
    let n = shape.product
    var values = (0..<n).map { Float($0 - n / 2) * gap + gap / 2 }
    values.shuffle(using: &g)
    return try! Tensor(shape: shape, scalars: values)
}

/// The message of the TensorError thrown by `body`, or nil when it does not throw one.
func errorMessage(_ body: () throws -> Void) -> String? {
    do { try body() } catch let e as TensorError { return e.message } catch { return "\(error)" }
    return nil
}

/// An element-wise activation that kernels can fuse into their store (conv3d, batch-norm-folded conv,
/// linear), so the activation costs no extra pass over memory.
public enum Activation: Hashable, Sendable, CustomStringConvertible {
    case identity
    case relu
    case leakyRelu(alpha: Float)
    case clip(min: Float, max: Float)

    /// The activation of one value.
    @inlinable public func apply(_ x: Float) -> Float {
        switch self {
        case .identity: return x
        case .relu: return x < 0 ? 0 : x  // NaN stays NaN, as in PyTorch and the vector form
        case .leakyRelu(let a): return x >= 0 ? x : a * x
        case .clip(let lo, let hi): return Swift.min(Swift.max(x, lo), hi)
        }
    }

    /// The activation of eight values at once.
    @inlinable public func apply(_ x: SIMD8<Float>) -> SIMD8<Float> {
        switch self {
        case .identity: return x
        case .relu: return x.replacing(with: 0, where: x .< 0)
        case .leakyRelu(let a): return x.replacing(with: x * a, where: x .< 0)
        // Not `clamped`: its IEEE min/max would turn NaN into a bound; NaN stays NaN, as in the scalar form.
        case .clip(let lo, let hi): return x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
        }
    }

    /// `d[i] = apply(s[i])` for `count` values: one loop per case, so each vectorises (`apply` inside
    /// the loop kept its switch per value).
    @inlinable public func apply(_ s: UnsafePointer<Float>, into d: UnsafeMutablePointer<Float>, count n: Int) {
        switch self {
        case .identity: for i in 0..<n { d[i] = s[i] }
        case .relu: for i in 0..<n { let x = s[i]; d[i] = x < 0 ? 0 : x }
        case .leakyRelu(let a): for i in 0..<n { let x = s[i]; d[i] = x >= 0 ? x : a * x }
        case .clip(let lo, let hi): for i in 0..<n { d[i] = Swift.min(Swift.max(s[i], lo), hi) }
        }
    }

    /// `d[i] = apply(s[i] * a + b)` (a product, then a sum: no fused multiply-add) for `count` values,
    /// one loop per case (a batch norm and its activation in one pass).
    @inlinable public func applyAffine(_ s: UnsafePointer<Float>, into d: UnsafeMutablePointer<Float>, count n: Int,
                                       a: Float, b: Float) {
        switch self {
        case .identity: for i in 0..<n { d[i] = s[i] * a + b }
        case .relu: for i in 0..<n { let x = s[i] * a + b; d[i] = x < 0 ? 0 : x }
        case .leakyRelu(let k): for i in 0..<n { let x = s[i] * a + b; d[i] = x >= 0 ? x : k * x }
        case .clip(let lo, let hi): for i in 0..<n { d[i] = Swift.min(Swift.max(s[i] * a + b, lo), hi) }
        }
    }

    public var description: String {
        switch self {
        case .identity: return "identity"
        case .relu: return "relu"
        case .leakyRelu(let a): return "leakyRelu(\(a))"
        case .clip(let lo, let hi): return "clip(\(lo), \(hi))"
        }
    }
}

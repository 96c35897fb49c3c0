/// SplitMix64: a small seeded generator that gives the same sequence on every platform, for
/// reproducible phantoms, test data and sampling.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// The SplitMix64 finaliser: a well-mixed 64-bit hash of `x`.
    @inlinable public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
    /// Uniform in [a, b).
    public mutating func uniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * unit() }
}

extension Tensor {
    /// A tensor of uniform random values in `range`, reproducible from `seed` (SplitMix64).
    public static func random(_ shape: [Int], in range: ClosedRange<Float> = -1...1, seed: UInt64) -> Tensor {
        var g = SplitMix64(seed: seed)
        return Tensor(shape: shape) { buffer in
            for i in buffer.indices { buffer[i] = Float.random(in: range, using: &g) }
        }
    }
}

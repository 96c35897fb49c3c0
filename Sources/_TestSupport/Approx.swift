import VoxelTensor

/// Largest absolute difference between two equally long arrays.
public func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "compared arrays differ in length: \(a.count) and \(b.count)")
    var m: Float = 0
    for i in a.indices { m = Swift.max(m, abs(a[i] - b[i])) }
    return m
}

/// True when every element satisfies |a - b| <= atol + rtol * |b|. NaNs never match.
public func allClose(_ a: [Float], _ b: [Float], rtol: Float = 1e-4, atol: Float = 1e-5) -> Bool {
    guard a.count == b.count else { return false }
    for i in a.indices where !(abs(a[i] - b[i]) <= atol + rtol * abs(b[i])) { return false }
    return true
}

/// A small seeded generator (SplitMix64) so tests are reproducible.
public typealias SeededGenerator = SplitMix64


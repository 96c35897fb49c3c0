// Internal helpers shared by the non-convolution kernels: axis normalisation, pointer access and
// element-wise parallel maps. Tiles are fixed-size chunks, so results never depend on thread count.

/// Elements per tile for element-wise kernels (fixed, so tiling never depends on the thread count).
@usableFromInline let elementwiseGrain = 1 << 15

/// Storage for pointers to empty tensors (never read: every kernel returns early on empty input).
nonisolated(unsafe) private let emptyStorage = UnsafeMutablePointer<Float>.allocate(capacity: 1)

extension Tensor {
    /// Runs `body` with a read-only pointer to the elements that may cross into parallel tiles.
    @inlinable func withShared<R>(_ body: (SharedConstPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer { b in try body(SharedConstPointer(b.baseAddress ?? UnsafePointer(emptyPointer))) }
    }
}

@usableFromInline var emptyPointer: UnsafeMutablePointer<Float> { emptyStorage }

/// A pointer to the uninitialised output buffer that tiles may write.
@inlinable func shared(_ b: UnsafeMutableBufferPointer<Float>) -> SharedPointer<Float> {
    SharedPointer(b.baseAddress ?? emptyPointer)
}

/// Normalises an ONNX-style axis (negative counts from the end) for rank `rank`; throws when out of range.
func normalizedAxis(_ axis: Int, rank: Int, op: String) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < rank else { throw TensorError("\(op): axis \(axis) is out of range for rank \(rank)") }
    return a
}

/// Normalises a list of axes, sorted ascending; throws on out-of-range or repeated axes.
func normalizedAxes(_ axes: [Int], rank: Int, op: String) throws -> [Int] {
    let n = try axes.map { try normalizedAxis($0, rank: rank, op: op) }.sorted()
    for i in n.indices.dropFirst() where n[i] == n[i - 1] {
        throw TensorError("\(op): axis \(n[i]) is repeated in \(axes)")
    }
    return n
}

/// A tensor of `x.shape` whose elements are `body` applied over fixed-size chunks, in parallel.
/// `body(src, dst, n)` maps `n` elements.
func mapElements(_ x: Tensor, _ body: @escaping @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
    Tensor(shape: x.shape) { out in
        let o = shared(out)
        x.withShared { src in
            Parallel.forRanges(x.count, grain: elementwiseGrain) { r in
                body(src + r.lowerBound, o + r.lowerBound, r.count)
            }
        }
    }
}

/// A tensor of `a.shape` whose elements are `body` applied to matching chunks of `a` and `b` (same
/// element count; the caller checks shapes), in parallel.
func zipElements(_ a: Tensor, _ b: Tensor,
                 _ body: @escaping @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
    precondition(a.count == b.count, "zipElements: internal caller passed \(a.shape) and \(b.shape)")
    return Tensor(shape: a.shape) { out in
        let o = shared(out)
        a.withShared { pa in
            b.withShared { pb in
                Parallel.forRanges(a.count, grain: elementwiseGrain) { r in
                    body(pa + r.lowerBound, pb + r.lowerBound, o + r.lowerBound, r.count)
                }
            }
        }
    }
}

/// Throws unless `a` and `b` have the same shape (for backward passes that pair a gradient with a
/// saved tensor).
func requireSameShape(_ op: String, _ a: Tensor, _ b: Tensor) throws {
    guard a.shape == b.shape else { throw TensorError.shapeMismatch(op, a.shape, b.shape) }
}

/// Offsets of every multi-index over `extents` with `strides`, in row-major order.
func offsets(extents: [Int], strides: [Int]) -> [Int] {
    var result = [0]
    for (e, s) in zip(extents, strides) {
        var next = [Int]()
        next.reserveCapacity(result.count * e)
        for base in result { for i in 0..<e { next.append(base + i * s) } }
        result = next
    }
    return result
}

/// `count` items split into about `wanted` parts of equal size, the last maybe shorter: the part size
/// and how many parts that size fills, so no part is empty (5 blocks, 4 parts wanted: 2 + 2 + 1).
/// Tasks over output-channel blocks split them this way (the patch kernel, the stride-2 Winograd
/// kernel, whose parts past the last block trapped until stop 20).
func evenParts(_ count: Int, wanted: Int) -> (size: Int, parts: Int) {
    let size = max(1, (count + max(1, wanted) - 1) / max(1, wanted))
    return (size, (count + size - 1) / size)
}

/// Tasks `0..<count` split among `workers`, each list in increasing order: task by task, each goes to
/// the worker with the least `work` so far (the lowest-numbered on ties), so equal tasks go round-robin.
func balancedTasks(_ count: Int, workers: Int, work: (Int) -> Int) -> [[Int]] {
    var owned = [[Int]](repeating: [], count: max(1, workers)), load = [Int](repeating: 0, count: max(1, workers))
    for task in 0..<count {
        let w = load.indices.min { load[$0] < load[$1] }!
        owned[w].append(task)
        load[w] += work(task)
    }
    return owned
}

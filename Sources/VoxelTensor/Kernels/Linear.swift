// Gemm (ONNX semantics, 2D) and MatMul (numpy/ONNX batch broadcasting), their backward passes, the
// blocked SIMD core, and a naive reference.
//
// Core: C[M, N] = alpha * A[M, K] B[K, N] with A, B row-major. B is packed once into panels of 16
// columns (zero padded), [panel][k][16], so the micro-kernel reads 16 contiguous floats per k. The
// micro-kernel keeps a 4 x 16 block of C in eight SIMD8 accumulators over the whole K loop (4 rows
// broadcast from A), then stores. Tiles are (batch, 64-row block, 4-panel group): fixed sizes, each
// C element summed by one micro-kernel in k order, so results do not depend on the thread count.

private let panelWidth = 16
private let rowBlock = 64
private let panelsPerTile = 4

/// One product of a batched MatMul: offsets of A and C, and which packed B it uses.
private struct GemmBatch { var a: Int, packedB: Int, c: Int }

/// Packs row-major B [K, N] into zero-padded 16-column panels: `[ceil(N/16)][K][16]`.
private func packB(_ b: UnsafePointer<Float>, k: Int, n: Int, into dst: UnsafeMutablePointer<Float>) {
    let panels = (n + panelWidth - 1) / panelWidth
    for p in 0..<panels {
        let j0 = p * panelWidth, width = min(panelWidth, n - j0)
        let panel = dst + p * k * panelWidth
        for kk in 0..<k {
            let src = b + kk * n + j0, row = panel + kk * panelWidth
            for j in 0..<width { row[j] = src[j] }
            for j in width..<panelWidth { row[j] = 0 }
        }
    }
}

/// `out[batch] = alpha * A[batch] @ B[batch]` for row-major A [M, K] and packed B panels.
private func gemmPacked(batches: [GemmBatch], m: Int, n: Int, k: Int, alpha: Float,
                        a: SharedConstPointer<Float>, packed: SharedConstPointer<Float>, out: SharedPointer<Float>) {
    let panels = (n + panelWidth - 1) / panelWidth
    let rowBlocks = (m + rowBlock - 1) / rowBlock
    let groups = (panels + panelsPerTile - 1) / panelsPerTile
    let packedSize = panels * k * panelWidth
    Parallel.forEach(batches.count * rowBlocks * groups) { t in
        let batch = batches[t / (rowBlocks * groups)]
        let rb = (t / groups) % rowBlocks, g = t % groups
        let aBase = a + batch.a, cBase = out + batch.c
        for p in (g * panelsPerTile) ..< min(panels, (g + 1) * panelsPerTile) {
            let bp = packed + (batch.packedB * packedSize + p * k * panelWidth)
            let j0 = p * panelWidth, width = min(panelWidth, n - j0)
            var i = rb * rowBlock
            let iEnd = min(m, i + rowBlock)
            while i < iEnd {
                let rows = min(4, iEnd - i)
                var acc = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(),
                           SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
                let a0 = aBase + i * k
                if rows == 4 {
                    let a1 = a0 + k, a2 = a1 + k, a3 = a2 + k
                    for kk in 0..<k {
                        let b = UnsafeRawPointer(bp + kk * panelWidth)
                        let lo = b.loadUnaligned(as: SIMD8<Float>.self)
                        let hi = b.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                        let x0 = SIMD8(repeating: a0[kk]), x1 = SIMD8(repeating: a1[kk])
                        let x2 = SIMD8(repeating: a2[kk]), x3 = SIMD8(repeating: a3[kk])
                        acc.0.addProduct(x0, lo); acc.1.addProduct(x0, hi)
                        acc.2.addProduct(x1, lo); acc.3.addProduct(x1, hi)
                        acc.4.addProduct(x2, lo); acc.5.addProduct(x2, hi)
                        acc.6.addProduct(x3, lo); acc.7.addProduct(x3, hi)
                    }
                } else {
                    // Remainder rows one at a time (same k order as the 4-row kernel).
                    for r in 0..<rows {
                        let ar = a0 + r * k
                        var lo = SIMD8<Float>(), hi = SIMD8<Float>()
                        for kk in 0..<k {
                            let b = UnsafeRawPointer(bp + kk * panelWidth)
                            let x = SIMD8(repeating: ar[kk])
                            lo.addProduct(x, b.loadUnaligned(as: SIMD8<Float>.self))
                            hi.addProduct(x, b.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
                        }
                        switch r {
                        case 0: acc.0 = lo; acc.1 = hi
                        case 1: acc.2 = lo; acc.3 = hi
                        default: acc.4 = lo; acc.5 = hi
                        }
                    }
                }
                let c = cBase + (i * n + j0)
                storeRow(acc.0, acc.1, c, width, alpha)
                if rows > 1 { storeRow(acc.2, acc.3, c + n, width, alpha) }
                if rows > 2 { storeRow(acc.4, acc.5, c + 2 * n, width, alpha) }
                if rows > 3 { storeRow(acc.6, acc.7, c + 3 * n, width, alpha) }
                i += rows
            }
        }
    }
}

/// Stores `alpha * [lo, hi]` into the first `width` (<= 16) floats at `c`.
@inline(__always)
private func storeRow(_ lo: SIMD8<Float>, _ hi: SIMD8<Float>, _ c: UnsafeMutablePointer<Float>, _ width: Int, _ alpha: Float) {
    let l = lo * alpha, h = hi * alpha
    if width == panelWidth {
        UnsafeMutableRawPointer(c).storeBytes(of: l, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(c).storeBytes(of: h, toByteOffset: 32, as: SIMD8<Float>.self)
    } else {
        for j in 0..<width { c[j] = j < 8 ? l[j] : h[j - 8] }
    }
}

/// Row-major transpose of a 2D tensor [R, C] -> [C, R] (blocked for cache locality).
private func transpose2D(_ x: Tensor) -> Tensor {
    let r = x.shape[0], c = x.shape[1]
    if x.count == 0 { return Tensor.zeros([c, r]) }
    return Tensor(shape: [c, r]) { out in
        let o = shared(out)
        x.withShared { src in
            let block = 32
            Parallel.forEach((c + block - 1) / block) { cb in
                for i0 in stride(from: 0, to: r, by: block) {
                    for j in (cb * block) ..< min(c, (cb + 1) * block) {
                        for i in i0 ..< min(r, i0 + block) { o[j * r + i] = src[i * c + j] }
                    }
                }
            }
        }
    }
}

/// Gemm (ONNX): `alpha * op(A) @ op(B) + beta * C`, with `op` transposing when asked.
///
/// - Parameters: a: `[M, K]` (`[K, M]` when transA); b: `[K, N]` (`[N, K]` when transB); c: nil or
///   a shape that broadcasts to `[M, N]` (e.g. a bias `[N]`).
/// - Returns: `[M, N]`.
/// - Throws: `TensorError` naming the shapes when a or b is not 2D, the inner dimensions differ, or C
///   does not broadcast to `[M, N]`.
public func gemm(_ a: Tensor, _ b: Tensor, c: Tensor? = nil, alpha: Float = 1, beta: Float = 1,
                 transA: Bool = false, transB: Bool = false) throws -> Tensor {
    guard a.rank == 2, b.rank == 2 else { throw TensorError.shapeMismatch("gemm", a.shape, b.shape, "both must be 2D") }
    let aa = transA ? transpose2D(a) : a, bb = transB ? transpose2D(b) : b
    let m = aa.shape[0], k = aa.shape[1], n = bb.shape[1]
    guard bb.shape[0] == k else {
        throw TensorError.shapeMismatch("gemm", a.shape, b.shape,
                                        "inner dimensions \(k) and \(bb.shape[0]) differ (transA \(transA), transB \(transB))")
    }
    if let c {
        guard c.rank <= 2, (try? broadcastShapes(c.shape, [m, n])) == [m, n] else {
            throw TensorError.shapeMismatch("gemm", c.shape, [m, n], "C must broadcast to [M, N]")
        }
    }
    var y = matmulCore(aa, bb, batches: [GemmBatch(a: 0, packedB: 0, c: 0)], bCount: 1, m: m, n: n, k: k,
                       alpha: alpha, outShape: [m, n])
    if let c, beta != 0 {
        let scaledC = beta == 1 ? c : mapElements(c) { s, d, cnt in for i in 0..<cnt { d[i] = s[i] * beta } }
        y = broadcastBinary(y, scaledC, .add, outShape: [m, n])
    }
    return y
}

/// Runs the packed core over `batches` (A offsets into `a`, B index among `bCount` [K, N] matrices).
private func matmulCore(_ a: Tensor, _ b: Tensor, batches: [GemmBatch], bCount: Int, m: Int, n: Int, k: Int,
                        alpha: Float, outShape: [Int]) -> Tensor {
    if outShape.product == 0 { return Tensor.zeros(outShape) }
    if k == 0 { return Tensor.zeros(outShape) }
    let panels = (n + panelWidth - 1) / panelWidth
    let packedSize = panels * k * panelWidth
    var packed = [Float](repeating: 0, count: packedSize * bCount)
    packed.withUnsafeMutableBufferPointer { pb in
        let dst = shared(pb)
        b.withShared { src in
            Parallel.forEach(bCount) { i in packB(src + i * k * n, k: k, n: n, into: dst + i * packedSize) }
        }
    }
    return Tensor(shape: outShape) { out in
        a.withShared { pa in
            packed.withUnsafeBufferPointer { pb in
                gemmPacked(batches: batches, m: m, n: n, k: k, alpha: alpha, a: pa,
                           packed: SharedConstPointer(pb.baseAddress ?? UnsafePointer(emptyPointer)), out: shared(out))
            }
        }
    }
}

/// Backward of Gemm, for A, B and C.
///
/// - Parameters: gradOutput: `[M, N]`; a, b: the forward inputs; cShape: the forward C's shape (nil
///   when there was none); alpha, beta, transA, transB: as in the forward.
/// - Returns: gradients of shapes `a.shape`, `b.shape` and `cShape` (`beta * g` summed over broadcast
///   axes; nil when cShape is nil).
/// - Throws: `TensorError` when the shapes do not match the forward's.
public func gemmBackward(gradOutput: Tensor, a: Tensor, b: Tensor, cShape: [Int]?, alpha: Float = 1, beta: Float = 1,
                         transA: Bool = false, transB: Bool = false) throws -> (a: Tensor, b: Tensor, c: Tensor?) {
    guard a.rank == 2, b.rank == 2 else { throw TensorError.shapeMismatch("gemmBackward", a.shape, b.shape, "both must be 2D") }
    let m = transA ? a.shape[1] : a.shape[0], n = transB ? b.shape[0] : b.shape[1]
    guard gradOutput.shape == [m, n] else {
        throw TensorError.shapeMismatch("gemmBackward", gradOutput.shape, [m, n], "gradient vs forward output")
    }
    // d op(A) = alpha * G op(B)^T; d op(B) = alpha * op(A)^T G; transposed back when the forward transposed.
    let ga = transA ? try gemm(b, gradOutput, alpha: alpha, transA: transB, transB: true)
                    : try gemm(gradOutput, b, alpha: alpha, transB: !transB)
    let gb = transB ? try gemm(gradOutput, a, alpha: alpha, transA: true, transB: transA)
                    : try gemm(a, gradOutput, alpha: alpha, transA: !transA)
    var gc: Tensor? = nil
    if let cShape {
        let summed = try sumToShape(gradOutput, cShape)
        gc = beta == 1 ? summed : mapElements(summed) { s, d, cnt in for i in 0..<cnt { d[i] = s[i] * beta } }
    }
    return (ga, gb, gc)
}

/// Shapes of a MatMul after numpy's promotion of 1D operands.
private struct MatMulPlan {
    var a2: [Int], b2: [Int], batch: [Int], out: [Int], m: Int, n: Int, k: Int

    init(_ a: [Int], _ b: [Int], op: String) throws {
        guard a.count >= 1, b.count >= 1 else { throw TensorError.shapeMismatch(op, a, b, "operands must have rank >= 1") }
        a2 = a.count == 1 ? [1, a[0]] : a
        b2 = b.count == 1 ? [b[0], 1] : b
        m = a2[a2.count - 2]; k = a2[a2.count - 1]; n = b2[b2.count - 1]
        guard b2[b2.count - 2] == k else {
            throw TensorError.shapeMismatch(op, a, b, "inner dimensions \(k) and \(b2[b2.count - 2]) differ")
        }
        do { batch = try broadcastShapes(Array(a2.dropLast(2)), Array(b2.dropLast(2)), op: op) } catch {
            throw TensorError.shapeMismatch(op, a, b, "batch dimensions do not broadcast")
        }
        out = batch + (a.count == 1 ? [] : [m]) + (b.count == 1 ? [] : [n])
    }
}

/// MatMul (numpy/ONNX): matrix product over the last two axes, batch axes broadcast.
///
/// - Parameters: a: `[..., M, K]` (1D `[K]` acts as `[1, K]`); b: `[..., K, N]` (1D `[K]` acts as
///   `[K, 1]`).
/// - Returns: `[broadcast batch..., M, N]`, without the axes added for 1D operands.
/// - Throws: `TensorError` naming both shapes when the inner dimensions differ or batches do not broadcast.
public func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    let p = try MatMulPlan(a.shape, b.shape, op: "matmul")
    let aBatch = Array(p.a2.dropLast(2)), bBatch = Array(p.b2.dropLast(2))
    let batchCount = p.batch.product
    let aStr = batchStrides(aBatch, p.batch), bStr = batchStrides(bBatch, p.batch)
    let outStr = Tensor.strides(for: p.batch)
    var batches: [GemmBatch] = []
    batches.reserveCapacity(batchCount)
    for i in 0..<batchCount {
        var ia = 0, ib = 0
        for ax in p.batch.indices {
            let idx = (i / outStr[ax]) % p.batch[ax]
            ia += idx * aStr[ax]
            ib += idx * bStr[ax]
        }
        batches.append(GemmBatch(a: ia * p.m * p.k, packedB: ib, c: i * p.m * p.n))
    }
    return matmulCore(a, b, batches: batches, bCount: bBatch.product, m: p.m, n: p.n, k: p.k, alpha: 1,
                      outShape: p.out)
}

/// Batch-index strides of `shape` (in matrices) within the broadcast batch shape `out` (0 on broadcast axes).
private func batchStrides(_ shape: [Int], _ out: [Int]) -> [Int] {
    let own = Tensor.strides(for: shape), lead = out.count - shape.count
    return (0..<out.count).map { i in i < lead || shape[i - lead] == 1 ? 0 : own[i - lead] }
}

/// Swaps the last two axes (rank >= 2).
private func transposeLast2(_ x: Tensor) throws -> Tensor {
    var perm = Array(0..<x.rank)
    perm.swapAt(x.rank - 1, x.rank - 2)
    return try transpose(x, permutation: perm)
}

/// Backward of MatMul: `g @ b^T` and `a^T @ g`, summed over broadcast batch axes.
///
/// - Parameters: gradOutput: the forward output's shape; a, b: the forward inputs.
/// - Returns: gradients of shapes `a.shape` and `b.shape`.
/// - Throws: `TensorError` when the shapes do not match the forward's.
public func matmulBackward(gradOutput: Tensor, a: Tensor, b: Tensor) throws -> (a: Tensor, b: Tensor) {
    let p = try MatMulPlan(a.shape, b.shape, op: "matmulBackward")
    guard gradOutput.shape == p.out else {
        throw TensorError.shapeMismatch("matmulBackward", gradOutput.shape, p.out, "gradient vs forward output")
    }
    let g = try gradOutput.reshaped(p.batch + [p.m, p.n])
    let a2 = try a.reshaped(p.a2), b2 = try b.reshaped(p.b2)
    let ga = try sumToShape(try matmul(g, try transposeLast2(b2)), p.a2).reshaped(a.shape)
    let gb = try sumToShape(try matmul(try transposeLast2(a2), g), p.b2).reshaped(b.shape)
    return (ga, gb)
}

/// Naive Gemm (triple loop, Double sums): the oracle for tests. Same contract as `gemm`.
public func gemmReference(_ a: Tensor, _ b: Tensor, c: Tensor? = nil, alpha: Float = 1, beta: Float = 1,
                          transA: Bool = false, transB: Bool = false) throws -> Tensor {
    guard a.rank == 2, b.rank == 2 else { throw TensorError.shapeMismatch("gemmReference", a.shape, b.shape, "both must be 2D") }
    let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
    let n = transB ? b.shape[0] : b.shape[1], k2 = transB ? b.shape[1] : b.shape[0]
    guard k == k2 else { throw TensorError.shapeMismatch("gemmReference", a.shape, b.shape, "inner dimensions differ") }
    let cFull = try c.map { try broadcast($0, to: [m, n]) }
    var out = Tensor.zeros([m, n])
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for kk in 0..<k {
                s += Double(transA ? a[[kk, i]] : a[[i, kk]]) * Double(transB ? b[[j, kk]] : b[[kk, j]])
            }
            out[[i, j]] = Float(Double(alpha) * s + (cFull.map { Double(beta) * Double($0[[i, j]]) } ?? 0))
        }
    }
    return out
}

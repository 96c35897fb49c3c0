// MaxPool3d and AvgPool3d on [N, C, D, H, W] with kernel, stride, symmetric or asymmetric padding,
// dilation (max), ceil mode and count_include_pad (avg), with backward passes; PyTorch semantics.
//
// Output extent per axis: floor or ceil of (in + padBegin + padEnd - dilation*(k-1) - 1) / stride, + 1;
// in ceil mode the last window must start inside the input or the begin padding (PyTorch and
// onnxruntime drop it otherwise). Avg divisor (PyTorch): with count_include_pad, the window clipped to
// the padded extent [-padBegin, in + padEnd); without, the number of input voxels in the window.
// Forward tiles: one (n, c, od) output slab each. Backward tiles: one (n, c) input volume each (windows
// overlap, so a volume's gradient is accumulated by one tile in a fixed order).

/// Window geometry along one axis: for output index o the taps k in kLo[o]..<kHi[o] fall inside the
/// input at index start[o] + k * dilation; `span[o]` is the count_include_pad divisor factor.
private struct PoolAxis {
    var inSize: Int, outSize: Int, dilation: Int
    var start: [Int], kLo: [Int], kHi: [Int], span: [Int]

    init(op: String, axis: String, inSize: Int, kernel: Int, stride: Int, padBegin: Int, padEnd: Int,
         dilation: Int, ceilMode: Bool) throws {
        guard kernel >= 1, stride >= 1, dilation >= 1, padBegin >= 0, padEnd >= 0 else {
            throw TensorError("\(op): \(axis) needs kernel, stride, dilation >= 1 and padding >= 0; got kernel \(kernel), stride \(stride), dilation \(dilation), padding \(padBegin)/\(padEnd)")
        }
        let effective = dilation * (kernel - 1) + 1
        let room = inSize + padBegin + padEnd - effective
        guard room >= 0 else {
            throw TensorError("\(op): \(axis) window \(effective) (kernel \(kernel), dilation \(dilation)) exceeds the padded input \(inSize + padBegin + padEnd)")
        }
        var out = (ceilMode ? (room + stride - 1) / stride : room / stride) + 1
        if ceilMode && (out - 1) * stride >= inSize + padBegin { out -= 1 }
        self.inSize = inSize
        self.outSize = out
        self.dilation = dilation
        start = (0..<out).map { $0 * stride - padBegin }
        kLo = start.map { s in s >= 0 ? 0 : min(kernel, (-s + dilation - 1) / dilation) }
        kHi = start.map { s in s >= inSize ? 0 : min(kernel, (inSize - 1 - s) / dilation + 1) }
        span = start.map { s in min(s + effective, inSize + padEnd) - s }
    }
}

private struct PoolPlan {
    var d: PoolAxis, h: PoolAxis, w: PoolAxis
    var n: Int, c: Int
    var outShape: [Int] { [n, c, d.outSize, h.outSize, w.outSize] }
    var inPlane: Int { d.inSize * h.inSize * w.inSize }
    var outPlane: Int { d.outSize * h.outSize * w.outSize }

    init(op: String, shape: [Int], kernel: Size3, stride: Size3?, padding: Padding3, dilation: Size3, ceilMode: Bool) throws {
        guard shape.count == 5 else { throw TensorError("\(op): expected a 5D tensor [N, C, D, H, W], got shape \(shape)") }
        let s = stride ?? kernel
        n = shape[0]; c = shape[1]
        d = try PoolAxis(op: op, axis: "D", inSize: shape[2], kernel: kernel.d, stride: s.d, padBegin: padding.begin.d,
                         padEnd: padding.end.d, dilation: dilation.d, ceilMode: ceilMode)
        h = try PoolAxis(op: op, axis: "H", inSize: shape[3], kernel: kernel.h, stride: s.h, padBegin: padding.begin.h,
                         padEnd: padding.end.h, dilation: dilation.h, ceilMode: ceilMode)
        w = try PoolAxis(op: op, axis: "W", inSize: shape[4], kernel: kernel.w, stride: s.w, padBegin: padding.begin.w,
                         padEnd: padding.end.w, dilation: dilation.w, ceilMode: ceilMode)
    }

    /// Input offset (within one plane) of the first maximum of output (od, oh, ow), or -1 when the
    /// window holds no input voxel. Scan order d, h, w; a NaN wins (PyTorch).
    @inline(__always) func argmax(_ x: UnsafePointer<Float>, _ od: Int, _ oh: Int, _ ow: Int) -> Int {
        let H = h.inSize, W = w.inSize
        var best = -Float.infinity, bestAt = -1
        for kd in d.kLo[od]..<max(d.kLo[od], d.kHi[od]) {
            let id = d.start[od] + kd * d.dilation
            for kh in h.kLo[oh]..<max(h.kLo[oh], h.kHi[oh]) {
                let rowBase = (id * H + h.start[oh] + kh * h.dilation) * W + w.start[ow]
                for kw in w.kLo[ow]..<max(w.kLo[ow], w.kHi[ow]) {
                    let at = rowBase + kw * w.dilation
                    let v = x[at]
                    if bestAt < 0 || v > best || v.isNaN { best = v; bestAt = at }
                }
            }
        }
        return bestAt
    }
}

/// MaxPool3d (PyTorch `F.max_pool3d`, ONNX MaxPool): the maximum over each window; padding never wins.
///
/// - Parameters: x: `[N, C, D, H, W]`; kernel; stride (nil: the kernel); padding: symmetric or
///   asymmetric (begin/end); dilation; ceilMode.
/// - Returns: `[N, C, Do, Ho, Wo]` (see the file comment); a window with no input voxel gives -inf.
/// - Throws: `TensorError` when x is not 5D or the window parameters are invalid.
public func maxPool3d(_ x: Tensor, kernel: Size3, stride: Size3? = nil, padding: Padding3 = 0,
                      dilation: Size3 = 1, ceilMode: Bool = false) throws -> Tensor {
    let p = try PoolPlan(op: "maxPool3d", shape: x.shape, kernel: kernel, stride: stride, padding: padding,
                         dilation: dilation, ceilMode: ceilMode)
    if p.outShape.product == 0 { return Tensor.zeros(p.outShape) }
    let Ho = p.h.outSize, Wo = p.w.outSize, H = p.h.inSize, W = p.w.inSize
    // Max is separable: per output slab, max over the D taps (rows of W), then over the H taps, then
    // over the W taps. Exact, so equal to the window scan; NaN propagates at every stage. A tile takes
    // up to 8 consecutive slabs of one channel, so input planes shared by neighbouring windows are
    // read from memory once and then from cache (64x128^3 -> 64^3: 105 ms with one slab per tile).
    let Do = p.d.outSize
    let slabsPerTile = 8
    let chunks = (Do + slabsPerTile - 1) / slabsPerTile
    return Tensor(shape: p.outShape) { out in
        let o = shared(out)
        x.withShared { src in
            Parallel.forEach(p.n * p.c * chunks) { tile in
                let plane = tile / chunks, od0 = (tile % chunks) * slabsPerTile
                let xin = src + plane * p.inPlane
                let a = UnsafeMutablePointer<Float>.allocate(capacity: H * W)
                let b = UnsafeMutablePointer<Float>.allocate(capacity: Ho * W)
                defer { a.deallocate(); b.deallocate() }
                for od in od0..<min(Do, od0 + slabsPerTile) {
                    let dst = o + (plane * Do + od) * Ho * Wo
                    a.initialize(repeating: -.infinity, count: H * W)
                    b.initialize(repeating: -.infinity, count: Ho * W)
                    for kd in p.d.kLo[od]..<max(p.d.kLo[od], p.d.kHi[od]) {
                        maxAccumulate(a, xin + (p.d.start[od] + kd * p.d.dilation) * H * W, count: H * W)
                    }
                    for oh in 0..<Ho {
                        let row = b + oh * W
                        for kh in p.h.kLo[oh]..<max(p.h.kLo[oh], p.h.kHi[oh]) {
                            maxAccumulate(row, a + (p.h.start[oh] + kh * p.h.dilation) * W, count: W)
                        }
                        let q = dst + oh * Wo
                        for ow in 0..<Wo {
                            // Branch-free (`v > m ? v : m` is one max instruction; a data-dependent
                            // branch here mispredicted on about half the voxels and took 70% of the pool).
                            var m = -Float.infinity
                            var nan = false
                            let base = p.w.start[ow]
                            for kw in p.w.kLo[ow]..<max(p.w.kLo[ow], p.w.kHi[ow]) {
                                let v = row[base &+ kw &* p.w.dilation]
                                m = v > m ? v : m
                                nan = nan || v.isNaN
                            }
                            q[ow] = nan ? .nan : m
                        }
                    }
                }
            }
        }
    }
}

/// `a[i] = x[i]` where `x[i] > a[i]` or `x[i]` is NaN (so NaN propagates), 16 lanes at a time.
@inline(__always) func maxAccumulate(_ a: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        let m = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(a + i).storeBytes(of: m.replacing(with: v, where: (v .> m) .| (v .!= v)),
                                                  as: SIMD16<Float>.self)
        i += 16
    }
    while i < count {
        let v = x[i]
        if v > a[i] || v.isNaN { a[i] = v }
        i += 1
    }
}

/// Backward of MaxPool3d: each output's gradient goes to its window's first maximum (scan order d, h,
/// w, as PyTorch), accumulated where windows overlap.
///
/// - Parameters: gradOutput: `[N, C, Do, Ho, Wo]`; input: the forward input `[N, C, D, H, W]`; the
///   forward's window parameters.
/// - Returns: gradient w.r.t. the input, shape `input.shape`.
/// - Throws: `TensorError` when shapes do not match the forward's.
public func maxPool3dBackward(gradOutput: Tensor, input: Tensor, kernel: Size3, stride: Size3? = nil,
                              padding: Padding3 = 0, dilation: Size3 = 1, ceilMode: Bool = false) throws -> Tensor {
    let p = try PoolPlan(op: "maxPool3dBackward", shape: input.shape, kernel: kernel, stride: stride,
                         padding: padding, dilation: dilation, ceilMode: ceilMode)
    guard gradOutput.shape == p.outShape else {
        throw TensorError.shapeMismatch("maxPool3dBackward", gradOutput.shape, p.outShape, "gradient vs forward output")
    }
    var result = Tensor.zeros(input.shape)
    if input.count == 0 || gradOutput.count == 0 { return result }
    result.scalars.withUnsafeMutableBufferPointer { rb in
        let r = shared(rb)
        input.withShared { src in gradOutput.withShared { g in
            Parallel.forEach(p.n * p.c) { plane in
                let xin = src + plane * p.inPlane, gin = r + plane * p.inPlane
                var k = plane * p.outPlane
                for od in 0..<p.d.outSize {
                    for oh in 0..<p.h.outSize {
                        for ow in 0..<p.w.outSize {
                            let at = p.argmax(xin, od, oh, ow)
                            if at >= 0 { gin[at] += g[k] }
                            k += 1
                        }
                    }
                }
            }
        } }
    }
    return result
}

/// The divisor of output (od, oh, ow) and its input ranges, for average pooling.
@inline(__always)
private func avgWindow(_ p: PoolPlan, _ od: Int, _ oh: Int, _ ow: Int, countIncludePad: Bool)
    -> (d: Range<Int>, h: Range<Int>, w: Range<Int>, divisor: Float) {
    func range(_ a: PoolAxis, _ o: Int) -> Range<Int> {
        a.kHi[o] > a.kLo[o] ? (a.start[o] + a.kLo[o]) ..< (a.start[o] + a.kHi[o]) : 0..<0
    }
    let rd = range(p.d, od), rh = range(p.h, oh), rw = range(p.w, ow)
    let divisor = countIncludePad ? p.d.span[od] * p.h.span[oh] * p.w.span[ow] : rd.count * rh.count * rw.count
    return (rd, rh, rw, Float(divisor))
}

/// AvgPool3d (PyTorch `F.avg_pool3d`, ONNX AveragePool; dilation 1): the mean over each window.
///
/// - Parameters: x: `[N, C, D, H, W]`; kernel; stride (nil: the kernel); padding: symmetric or
///   asymmetric; ceilMode; countIncludePad: count zero padding in the divisor (PyTorch default true;
///   ONNX default 0 means pass false).
/// - Returns: `[N, C, Do, Ho, Wo]`; a window with nothing to count gives 0.
/// - Throws: `TensorError` when x is not 5D or the window parameters are invalid.
public func avgPool3d(_ x: Tensor, kernel: Size3, stride: Size3? = nil, padding: Padding3 = 0,
                      ceilMode: Bool = false, countIncludePad: Bool = true) throws -> Tensor {
    let p = try PoolPlan(op: "avgPool3d", shape: x.shape, kernel: kernel, stride: stride, padding: padding,
                         dilation: 1, ceilMode: ceilMode)
    if p.outShape.product == 0 { return Tensor.zeros(p.outShape) }
    let Ho = p.h.outSize, Wo = p.w.outSize, H = p.h.inSize, W = p.w.inSize
    return Tensor(shape: p.outShape) { out in
        let o = shared(out)
        x.withShared { src in
            Parallel.forEach(p.n * p.c * p.d.outSize) { s in
                let plane = s / p.d.outSize, od = s % p.d.outSize
                let xin = src + plane * p.inPlane
                let dst = o + s * Ho * Wo
                for oh in 0..<Ho {
                    for ow in 0..<Wo {
                        let win = avgWindow(p, od, oh, ow, countIncludePad: countIncludePad)
                        var sum: Float = 0
                        for id in win.d { for ih in win.h {
                            let row = xin + (id * H + ih) * W
                            for iw in win.w { sum += row[iw] }
                        } }
                        dst[oh * Wo + ow] = win.divisor > 0 ? sum / win.divisor : 0
                    }
                }
            }
        }
    }
}

/// Backward of AvgPool3d: each output's gradient divided by its divisor, spread over its window.
///
/// - Parameters: gradOutput: `[N, C, Do, Ho, Wo]`; inputShape: `[N, C, D, H, W]`; the forward's
///   window parameters.
/// - Returns: gradient w.r.t. the input, shape `inputShape`.
/// - Throws: `TensorError` when shapes do not match the forward's.
public func avgPool3dBackward(gradOutput: Tensor, inputShape: [Int], kernel: Size3, stride: Size3? = nil,
                              padding: Padding3 = 0, ceilMode: Bool = false, countIncludePad: Bool = true) throws -> Tensor {
    let p = try PoolPlan(op: "avgPool3dBackward", shape: inputShape, kernel: kernel, stride: stride,
                         padding: padding, dilation: 1, ceilMode: ceilMode)
    guard gradOutput.shape == p.outShape else {
        throw TensorError.shapeMismatch("avgPool3dBackward", gradOutput.shape, p.outShape, "gradient vs forward output")
    }
    var result = Tensor.zeros(inputShape)
    if result.count == 0 || gradOutput.count == 0 { return result }
    let H = p.h.inSize, W = p.w.inSize
    result.scalars.withUnsafeMutableBufferPointer { rb in
        let r = shared(rb)
        gradOutput.withShared { g in
            Parallel.forEach(p.n * p.c) { plane in
                let gin = r + plane * p.inPlane
                var k = plane * p.outPlane
                for od in 0..<p.d.outSize { for oh in 0..<p.h.outSize { for ow in 0..<p.w.outSize {
                    let win = avgWindow(p, od, oh, ow, countIncludePad: countIncludePad)
                    let v = win.divisor > 0 ? g[k] / win.divisor : 0
                    k += 1
                    for id in win.d { for ih in win.h {
                        let row = gin + (id * H + ih) * W
                        for iw in win.w { row[iw] += v }
                    } }
                } } }
            }
        }
    }
    return result
}

/// Slow reference pooling straight from the definitions (every tap bounds-checked, PyTorch's divisor
/// formula): the oracle for tests. `max == true` is MaxPool3d, else AvgPool3d.
///
/// - Parameters and returns: as `maxPool3d` / `avgPool3d`.
public func pool3dReference(_ x: Tensor, max: Bool, kernel: Size3, stride: Size3? = nil, padding: Padding3 = 0,
                            dilation: Size3 = 1, ceilMode: Bool = false, countIncludePad: Bool = true) throws -> Tensor {
    let p = try PoolPlan(op: "pool3dReference", shape: x.shape, kernel: kernel, stride: stride, padding: padding,
                         dilation: max ? dilation : 1, ceilMode: ceilMode)
    let s = stride ?? kernel, dil = max ? dilation : Size3(1)
    let inS = [x.shape[2], x.shape[3], x.shape[4]], k = kernel.array, st = s.array, dl = dil.array
    let pb = padding.begin.array, pe = padding.end.array
    var out = Tensor.zeros(p.outShape)
    for n in 0..<p.n { for c in 0..<p.c {
        for od in 0..<p.d.outSize { for oh in 0..<p.h.outSize { for ow in 0..<p.w.outSize {
            let o = [od, oh, ow]
            var best = -Float.infinity, found = false, sum = 0.0, count = 0
            var span = 1
            for a in 0..<3 {
                let start = o[a] * st[a] - pb[a]
                span *= Swift.min(start + k[a], inS[a] + pe[a]) - start
            }
            for kd in 0..<k[0] { for kh in 0..<k[1] { for kw in 0..<k[2] {
                let i = [o[0] * st[0] - pb[0] + kd * dl[0], o[1] * st[1] - pb[1] + kh * dl[1], o[2] * st[2] - pb[2] + kw * dl[2]]
                guard (0..<3).allSatisfy({ i[$0] >= 0 && i[$0] < inS[$0] }) else { continue }
                let v = x[n, c, i[0], i[1], i[2]]
                if !found || v > best || v.isNaN { best = v; found = true }
                sum += Double(v)
                count += 1
            } } }
            let divisor = countIncludePad ? span : count
            out[n, c, od, oh, ow] = max ? (found ? best : -.infinity) : (divisor > 0 ? Float(sum / Double(divisor)) : 0)
        } } }
    } }
    return out
}

/// The output shape of `maxPool3d`/`avgPool3d` with these parameters, without computing them.
/// - Throws: `TensorError` when the window does not fit the (padded) input.
public func pool3dOutputShape(inputShape: [Int], kernel: Size3, stride: Size3? = nil, padding: Padding3 = 0,
                              dilation: Size3 = 1, ceilMode: Bool = false) throws -> [Int] {
    try PoolPlan(op: "pool3d", shape: inputShape, kernel: kernel, stride: stride, padding: padding,
                 dilation: dilation, ceilMode: ceilMode).outShape
}

// Trilinear and nearest resampling of [N, C, D, H, W] to any output size (PyTorch F.interpolate
// semantics; ONNX Resize conventions in Resample+ONNX.swift), with the adjoint (backward) pass and a
// naive reference.
//
// Coordinates per axis (PyTorch upsample kernels, computed in Float as PyTorch does for Float input):
//   scale = alignCorners ? (in - 1) / (out - 1) (0 when out == 1) : (explicit scale ? 1 / s : in / out)
//   trilinear: src = alignCorners ? dst * scale : max(0, (dst + 0.5) * scale - 0.5);
//              i0 = floor(src), i1 = min(i0 + 1, in - 1), weight of i1 = src - i0; an axis with
//              out == in is copied (PyTorch does so even when an explicit scale differs from 1)
//   nearest:   src = min(floor(dst * scale), in - 1)   ('nearest', not 'nearest-exact')
// Forward tiles: one (n, c, od) output slab; per output row the four input rows are blended along W
// into a row buffer, then interpolated along W. Backward tiles: one (n, c, id) input slab, which sums
// the contributions of the output slabs that read it in a fixed order.

/// How `resize3d` interpolates.
public enum ResampleMode: String, Sendable, Hashable, CaseIterable {
    /// PyTorch 'nearest': src = floor(dst * scale).
    case nearest
    /// Trilinear interpolation (PyTorch 'trilinear'; ONNX 'linear' on three axes).
    case trilinear
}

/// Which convention maps output coordinates to input coordinates.
enum ResampleRule: Sendable {
    /// PyTorch `F.interpolate` (see the file comment).
    case pytorch(alignCorners: Bool)
    /// ONNX Resize `coordinate_transformation_mode` and `nearest_mode` (see Resample+ONNX.swift).
    case onnx(ResizeCoordinateTransform, NearestRounding)
}

/// Source taps along one axis: output o reads i0[o] with weight 1 - w1[o] and i1[o] with weight w1[o].
struct ResampleAxis: Sendable {
    var inSize: Int, outSize: Int
    var i0: [Int], i1: [Int], w1: [Float]

    init(inSize: Int, outSize: Int, mode: ResampleMode, rule: ResampleRule, scale explicit: Double?) {
        self.inSize = inSize
        self.outSize = outSize
        var i0 = [Int](repeating: 0, count: outSize), i1 = i0, w1 = [Float](repeating: 0, count: outSize)
        switch rule {
        case .onnx(let transform, let rounding):
            for o in 0..<outSize {
                let src = onnxSourceCoordinate(o, inSize: inSize, outSize: outSize, transform: transform, scale: explicit)
                switch mode {
                case .nearest:
                    let s = min(max(rounding.apply(src), 0), inSize - 1)
                    i0[o] = s; i1[o] = s
                case .trilinear:
                    // onnxruntime clamps the source coordinate into the input before interpolating.
                    let c = min(max(src, 0), Float(inSize - 1))
                    let lo = min(Int(c), inSize - 1)
                    i0[o] = lo
                    i1[o] = lo < inSize - 1 ? lo + 1 : lo
                    w1[o] = lo < inSize - 1 ? c - Float(lo) : 0
                }
            }
        case .pytorch(let alignCorners):
            let scale: Float
            if alignCorners && mode == .trilinear {
                scale = outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : 0
            } else if let s = explicit, s > 0 {
                scale = Float(1.0 / s)
            } else {
                scale = Float(inSize) / Float(outSize)
            }
            for o in 0..<outSize {
                switch mode {
                case .nearest:
                    let s = min(Int((Float(o) * scale).rounded(.down)), inSize - 1)
                    i0[o] = s; i1[o] = s; w1[o] = 0
                case .trilinear where outSize == inSize:
                    // PyTorch's linear kernels leave an axis whose size does not change untouched, even
                    // when an explicit scale factor says otherwise.
                    i0[o] = o; i1[o] = o; w1[o] = 0
                case .trilinear:
                    let src = alignCorners ? scale * Float(o) : max(0, scale * (Float(o) + 0.5) - 0.5)
                    let lo = min(Int(src), inSize - 1)
                    i0[o] = lo
                    i1[o] = lo < inSize - 1 ? lo + 1 : lo
                    w1[o] = lo < inSize - 1 ? src - Float(lo) : 0
                }
            }
        }
        self.i0 = i0; self.i1 = i1; self.w1 = w1
    }
}

struct ResamplePlan: Sendable {
    var n: Int, c: Int, d: ResampleAxis, h: ResampleAxis, w: ResampleAxis
    var outShape: [Int] { [n, c, d.outSize, h.outSize, w.outSize] }

    init(op: String, shape: [Int], size: Size3, mode: ResampleMode, rule: ResampleRule, scales: [Double]?) throws {
        guard shape.count == 5 else { throw TensorError("\(op): expected a 5D tensor [N, C, D, H, W], got shape \(shape)") }
        guard size.d >= 1, size.h >= 1, size.w >= 1 else { throw TensorError("\(op): output size \(size) must be positive") }
        guard shape[2] >= 1, shape[3] >= 1, shape[4] >= 1 else { throw TensorError("\(op): cannot resample the empty grid \(shape)") }
        if let scales, scales.count != 3 || scales.contains(where: { !($0 > 0) || !$0.isFinite }) {
            throw TensorError("\(op): scales \(scales) must be three positive numbers (D, H, W)")
        }
        n = shape[0]; c = shape[1]
        d = ResampleAxis(inSize: shape[2], outSize: size.d, mode: mode, rule: rule, scale: scales?[0])
        h = ResampleAxis(inSize: shape[3], outSize: size.h, mode: mode, rule: rule, scale: scales?[1])
        w = ResampleAxis(inSize: shape[4], outSize: size.w, mode: mode, rule: rule, scale: scales?[2])
    }
}

/// Resamples a volume to `size` (PyTorch `F.interpolate(x, size=...)`).
///
/// - Parameters: x: `[N, C, D, H, W]`; size: output (D, H, W); mode: trilinear or nearest;
///   alignCorners: trilinear only (PyTorch default false); scales: when given (D, H, W factors, as
///   PyTorch `scale_factor` or ONNX Resize `scales`), source coordinates use `1 / scale` instead of
///   `in / out`.
/// - Returns: `[N, C, size.d, size.h, size.w]`.
/// - Throws: `TensorError` when x is not 5D with a non-empty grid, or size/scales are not positive.
public func resize3d(_ x: Tensor, size: Size3, mode: ResampleMode = .trilinear, alignCorners: Bool = false,
                     scales: [Double]? = nil) throws -> Tensor {
    let p = try ResamplePlan(op: "resize3d", shape: x.shape, size: size, mode: mode,
                             rule: .pytorch(alignCorners: alignCorners), scales: scales)
    return resampleForward(x, p, mode)
}

/// The resampling kernel for a validated plan.
func resampleForward(_ x: Tensor, _ p: ResamplePlan, _ mode: ResampleMode) -> Tensor {
    if p.outShape.product == 0 { return Tensor.zeros(p.outShape) }
    let Di = p.d.inSize, Hi = p.h.inSize, Wi = p.w.inSize
    let Do = p.d.outSize, Ho = p.h.outSize, Wo = p.w.outSize
    return Tensor(shape: p.outShape) { out in
        let o = shared(out)
        x.withShared { src in
            Parallel.forEach(p.n * p.c * Do) { s in
                let nc = s / Do, od = s % Do
                let vol = src + nc * Di * Hi * Wi
                let dst = o + s * Ho * Wo
                let plane0 = vol + p.d.i0[od] * Hi * Wi, plane1 = vol + p.d.i1[od] * Hi * Wi
                if mode == .nearest {
                    for oh in 0..<Ho {
                        let row = plane0 + p.h.i0[oh] * Wi, q = dst + oh * Wo
                        for ow in 0..<Wo { q[ow] = row[p.w.i0[ow]] }
                    }
                    return
                }
                let wd1 = p.d.w1[od], wd0 = 1 - wd1
                var tmp = [Float](repeating: 0, count: Wi)
                tmp.withUnsafeMutableBufferPointer { tb in
                    guard let t = tb.baseAddress else { return }
                    for oh in 0..<Ho {
                        let wh1 = p.h.w1[oh], wh0 = 1 - wh1
                        let c00 = wd0 * wh0, c01 = wd0 * wh1, c10 = wd1 * wh0, c11 = wd1 * wh1
                        let r00 = plane0 + p.h.i0[oh] * Wi, r01 = plane0 + p.h.i1[oh] * Wi
                        let r10 = plane1 + p.h.i0[oh] * Wi, r11 = plane1 + p.h.i1[oh] * Wi
                        for iw in 0..<Wi { t[iw] = c00 * r00[iw] + c01 * r01[iw] + c10 * r10[iw] + c11 * r11[iw] }
                        let q = dst + oh * Wo
                        for ow in 0..<Wo {
                            let ww1 = p.w.w1[ow]
                            q[ow] = (1 - ww1) * t[p.w.i0[ow]] + ww1 * t[p.w.i1[ow]]
                        }
                    }
                }
            }
        }
    }
}

/// Resamples a volume by scale factors: output extent `floor(in * scale)` per axis, coordinates from
/// `1 / scale` (PyTorch `scale_factor` without recompute, ONNX Resize `scales`).
///
/// - Parameters: x: `[N, C, D, H, W]`; scales: three positive (D, H, W) factors; mode; alignCorners.
/// - Returns: `[N, C, floor(D * sd), floor(H * sh), floor(W * sw)]`.
/// - Throws: `TensorError` when scales are not three positive numbers or an output extent is 0.
public func resize3d(_ x: Tensor, scales: [Double], mode: ResampleMode = .trilinear, alignCorners: Bool = false) throws -> Tensor {
    try x.requireSpatial("resize3d")
    guard scales.count == 3, scales.allSatisfy({ $0 > 0 && $0.isFinite }) else {
        throw TensorError("resize3d: scales \(scales) must be three positive numbers (D, H, W)")
    }
    let size = Size3(Int((Double(x.shape[2]) * scales[0]).rounded(.down)), Int((Double(x.shape[3]) * scales[1]).rounded(.down)),
                     Int((Double(x.shape[4]) * scales[2]).rounded(.down)))
    return try resize3d(x, size: size, mode: mode, alignCorners: alignCorners, scales: scales)
}

/// Backward (adjoint) of `resize3d`: each output gradient spread onto the taps it read, with the same
/// weights.
///
/// - Parameters: gradOutput: `[N, C, size.d, size.h, size.w]`; inputShape: `[N, C, D, H, W]`; the
///   forward's size, mode, alignCorners and scales.
/// - Returns: gradient w.r.t. the input, shape `inputShape`.
/// - Throws: `TensorError` when the shapes do not match the forward's.
public func resize3dBackward(gradOutput: Tensor, inputShape: [Int], mode: ResampleMode = .trilinear,
                             alignCorners: Bool = false, scales: [Double]? = nil) throws -> Tensor {
    guard gradOutput.rank == 5 else {
        throw TensorError.shapeMismatch("resize3dBackward", gradOutput.shape, inputShape, "gradient must be 5D")
    }
    let size = Size3(gradOutput.shape[2], gradOutput.shape[3], gradOutput.shape[4])
    let p = try ResamplePlan(op: "resize3dBackward", shape: inputShape, size: size, mode: mode,
                             rule: .pytorch(alignCorners: alignCorners), scales: scales)
    return try resampleBackward(gradOutput, p, inputShape: inputShape)
}

/// The adjoint kernel for a validated plan; throws when the gradient does not fit it.
func resampleBackward(_ gradOutput: Tensor, _ p: ResamplePlan, inputShape: [Int]) throws -> Tensor {
    guard gradOutput.shape == p.outShape else {
        throw TensorError.shapeMismatch("resize3dBackward", gradOutput.shape, p.outShape, "gradient vs forward output")
    }
    var result = Tensor.zeros(inputShape)
    if result.count == 0 { return result }
    let Di = p.d.inSize, Hi = p.h.inSize, Wi = p.w.inSize
    let Do = p.d.outSize, Ho = p.h.outSize, Wo = p.w.outSize
    // For each input slab, the output slabs that read it and with what weight (in od order).
    var lists = [[(od: Int, weight: Float)]](repeating: [], count: Di)
    for od in 0..<Do {
        lists[p.d.i0[od]].append((od, 1 - p.d.w1[od]))
        if p.d.w1[od] != 0 { lists[p.d.i1[od]].append((od, p.d.w1[od])) }
    }
    let readers = lists
    result.scalars.withUnsafeMutableBufferPointer { rb in
        let r = shared(rb)
        gradOutput.withShared { g in
            Parallel.forEach(p.n * p.c * Di) { s in
                let nc = s / Di, id = s % Di
                let gin = r + s * Hi * Wi
                var tmp = [Float](repeating: 0, count: Wi)
                tmp.withUnsafeMutableBufferPointer { tb in
                    guard let t = tb.baseAddress else { return }
                    for (od, wd) in readers[id] {
                        for oh in 0..<Ho {
                            let gRow = g + ((nc * Do + od) * Ho + oh) * Wo
                            for iw in 0..<Wi { t[iw] = 0 }
                            for ow in 0..<Wo {
                                let ww1 = p.w.w1[ow]
                                t[p.w.i0[ow]] += (1 - ww1) * gRow[ow]
                                if ww1 != 0 { t[p.w.i1[ow]] += ww1 * gRow[ow] }
                            }
                            let wh1 = p.h.w1[oh]
                            let a0 = wd * (1 - wh1), a1 = wd * wh1
                            let row0 = gin + p.h.i0[oh] * Wi
                            for iw in 0..<Wi { row0[iw] += a0 * t[iw] }
                            if wh1 != 0 {
                                let row1 = gin + p.h.i1[oh] * Wi
                                for iw in 0..<Wi { row1[iw] += a1 * t[iw] }
                            }
                        }
                    }
                }
            }
        }
    }
    return result
}

/// Naive resampling (eight taps per output voxel, Double arithmetic): the oracle for the kernels'
/// arithmetic (coordinates are pinned by PyTorch and onnxruntime golden cases). Same contract as
/// `resize3d(_:size:mode:alignCorners:scales:)`.
public func resize3dReference(_ x: Tensor, size: Size3, mode: ResampleMode = .trilinear, alignCorners: Bool = false,
                              scales: [Double]? = nil) throws -> Tensor {
    let p = try ResamplePlan(op: "resize3dReference", shape: x.shape, size: size, mode: mode,
                             rule: .pytorch(alignCorners: alignCorners), scales: scales)
    return resampleReference(x, p)
}

/// The naive kernel for a validated plan.
func resampleReference(_ x: Tensor, _ p: ResamplePlan) -> Tensor {
    var out = Tensor.zeros(p.outShape)
    for n in 0..<p.n { for c in 0..<p.c {
        for od in 0..<p.d.outSize { for oh in 0..<p.h.outSize { for ow in 0..<p.w.outSize {
            var v = 0.0
            for (id, wd) in [(p.d.i0[od], 1 - p.d.w1[od]), (p.d.i1[od], p.d.w1[od])] {
                for (ih, wh) in [(p.h.i0[oh], 1 - p.h.w1[oh]), (p.h.i1[oh], p.h.w1[oh])] {
                    for (iw, ww) in [(p.w.i0[ow], 1 - p.w.w1[ow]), (p.w.i1[ow], p.w.w1[ow])] where wd * wh * ww != 0 {
                        v += Double(wd) * Double(wh) * Double(ww) * Double(x[n, c, id, ih, iw])
                    }
                }
            }
            out[n, c, od, oh, ow] = Float(v)
        } } }
    } }
    return out
}

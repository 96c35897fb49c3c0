import NIfTI
import VoxelTensor

/// How a scan's intensities become the model's: clip, linear scaling, or z-scoring.
public struct IntensityTransform: Sendable, Equatable, Codable {
    /// Clip to `[clip[0], clip[1]]` first (in the scan's units, e.g. HU).
    public var clip: [Float]?
    /// Map `clip` (or, without clip, the scan's min and max) linearly onto `[scale[0], scale[1]]`.
    public var scale: [Float]?
    /// Subtract the mean and divide by the standard deviation of the (clipped) scan.
    public var zscore: Bool

    public init(clip: [Float]? = nil, scale: [Float]? = nil, zscore: Bool = false) {
        self.clip = clip; self.scale = scale; self.zscore = zscore
    }

    enum CodingKeys: String, CodingKey { case clip, scale, zscore }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        clip = try c.decodeIfPresent([Float].self, forKey: .clip)
        scale = try c.decodeIfPresent([Float].self, forKey: .scale)
        zscore = try c.decodeIfPresent(Bool.self, forKey: .zscore) ?? false
    }

    /// Checks the parameters; `source` names where they came from (a model card or an option).
    public func validate(_ source: String) throws {
        if let clip, clip.count != 2 || !(clip[0] < clip[1]) {
            throw VoxplainError("\(source): clip needs two increasing values, got \(clip)")
        }
        if let scale, scale.count != 2 || !(scale[0] < scale[1]) {
            throw VoxplainError("\(source): scale needs two increasing values, got \(scale)")
        }
        if zscore && scale != nil { throw VoxplainError("\(source): choose scale or zscore, not both") }
    }

    /// Applies the transform to voxel values.
    public func apply(_ values: [Float]) -> [Float] {
        var v = values
        if let clip { for i in v.indices { v[i] = min(max(v[i], clip[0]), clip[1]) } }
        if let scale {
            let lo = clip?[0] ?? v.min() ?? 0, hi = clip?[1] ?? v.max() ?? 1
            let k = hi > lo ? (scale[1] - scale[0]) / (hi - lo) : 0
            for i in v.indices { v[i] = (v[i] - lo) * k + scale[0] }
        } else if zscore {
            var sum = 0.0, sq = 0.0
            for x in v { sum += Double(x); sq += Double(x) * Double(x) }
            let n = Double(max(v.count, 1)), mean = sum / n
            let sd = max((sq / n - mean * mean).squareRoot(), 1e-8)
            for i in v.indices { v[i] = Float((Double(v[i]) - mean) / sd) }
        }
        return v
    }
}

/// The per-axis map from a model-input voxel `(d, h, w)` to a continuous scan voxel `(i, j, k)`:
/// `scan = model * scale + offset`. Resampling and cropping along the scan's own axes keep it diagonal.
public struct AxisMapping: Sendable, Equatable {
    public var scale: SIMD3<Double>
    public var offset: SIMD3<Double>

    /// The scan voxel of a model voxel.
    public func scanVoxel(_ model: SIMD3<Double>) -> SIMD3<Double> { model * scale + offset }
    /// The model voxel of a scan voxel.
    public func modelVoxel(_ scan: SIMD3<Double>) -> SIMD3<Double> { (scan - offset) / scale }
}

/// Preprocessing from a scan to the model's input grid, and back.
public struct Preprocessing: Sendable, Equatable {
    public var intensity: IntensityTransform
    /// The model's voxel size in mm along (i, j, k); nil keeps the scan's.
    public var spacing: SIMD3<Double>?
    /// The model's input size `(D, H, W)`; nil keeps the (resampled) scan's.
    public var size: [Int]?
    /// A scan voxel to centre the crop on (a patch around a point); nil centres on the grid.
    public var center: SIMD3<Double>?
    /// The value of padded voxels, in model units (after the intensity transform).
    public var padValue: Float

    public init(intensity: IntensityTransform = IntensityTransform(), spacing: SIMD3<Double>? = nil,
                size: [Int]? = nil, center: SIMD3<Double>? = nil, padValue: Float = 0) {
        self.intensity = intensity; self.spacing = spacing; self.size = size; self.center = center
        self.padValue = padValue
    }
}

/// A model input made from a scan, with the map back to the scan's grid.
public struct ModelInput: Sendable {
    /// `[1, 1, D, H, W]`.
    public var tensor: Tensor
    /// Model voxel to scan voxel.
    public var mapping: AxisMapping
    /// The scan's grid.
    public var scanDims: VoxelDims
}

/// A scan on the model's resampled grid, before the crop: what `Preprocessing.apply` computes once
/// for every patch of a scan (`Preprocessing.apply(to:scanName:centers:)`).
public struct ResampledScan: Sendable {
    /// `[1, 1, D, H, W]` on the resampled grid, intensities transformed.
    public var tensor: Tensor
    /// Scan voxels per resampled voxel, per axis.
    public var factor: SIMD3<Double>
    /// The scan's grid.
    public var scanDims: VoxelDims
}

extension Preprocessing {
    /// Builds the model input from `scan`.
    /// - Throws: `VoxplainError` naming `scanName` when the scan has NaN or infinite voxels or the
    ///   sizes are impossible.
    public func apply(to scan: Volume, scanName: String) throws -> ModelInput {
        try crop(try resample(scan, scanName: scanName))
    }

    /// The model inputs of several patches of one scan, `centers[n]` in place of `center` for the
    /// n-th: the same as `apply` for each, with the scan checked, transformed and resampled once
    /// rather than once per patch (for a 512x512x240 CT about a second each).
    /// - Throws: as `apply`.
    public func apply(to scan: Volume, scanName: String, centers: [SIMD3<Double>?]) throws -> [ModelInput] {
        let resampled = try resample(scan, scanName: scanName)
        return try centers.map { c in
            var one = self
            one.center = c
            return try one.crop(resampled)
        }
    }

    /// Steps 0-1 of `apply`: the checks, the intensity transform and the resampling to the model's
    /// spacing, which do not depend on the centre.
    public func resample(_ scan: Volume, scanName: String) throws -> ResampledScan {
        try intensity.validate(scanName)
        let bad = scan.voxels.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        if bad > 0 {
            throw VoxplainError("\(scanName): \(bad) voxels are NaN or infinite; the model cannot take them")
        }
        let n = scan.dims.array
        // 1. Resample to the model's spacing: n' = round(n * s / s'), half-pixel centres.
        var resampled = n
        if let spacing {
            guard (0..<3).allSatisfy({ spacing[$0] > 0 && spacing[$0].isFinite }) else {
                throw VoxplainError("model spacing \(spacing) must be positive")
            }
            let s = scan.spacing
            resampled = (0..<3).map { max(1, Int((Double(n[$0]) * s[$0] / spacing[$0]).rounded())) }
        }
        let f = SIMD3<Double>((0..<3).map { Double(n[$0]) / Double(resampled[$0]) })
        var transformed = scan
        transformed.voxels = intensity.apply(scan.voxels)
        var x = try Tensor(shape: [1, 1] + n, scalars: transformed.dhwScalars())
        if resampled != n {
            x = try resize3d(x, size: Size3(resampled[0], resampled[1], resampled[2]), mode: .trilinear, alignCorners: false)
        }
        return ResampledScan(tensor: x, factor: f, scanDims: scan.dims)
    }

    /// Step 2 of `apply`: the crop or pad to the model's size, centred on the grid or on `center`.
    /// - Throws: `VoxplainError` when the size is not three positive integers.
    public func crop(_ scan: ResampledScan) throws -> ModelInput {
        var x = scan.tensor
        let resampled = Array(x.shape[2...]), f = scan.factor
        let target = size ?? resampled
        guard target.count == 3, target.allSatisfy({ $0 > 0 }) else {
            throw VoxplainError("model input size \(target) must be three positive integers")
        }
        let start: [Int] = (0..<3).map { a in
            if let center {
                let r = (center[a] + 0.5) / f[a] - 0.5
                return Int((r - Double(target[a] - 1) / 2).rounded())
            }
            return resampled[a] >= target[a] ? (resampled[a] - target[a]) / 2 : -((target[a] - resampled[a]) / 2)
        }
        if start != [0, 0, 0] || target != resampled {
            x = try window(x, start: start, size: target, fill: padValue)
        }
        let startD = SIMD3<Double>(start.map(Double.init))
        return ModelInput(tensor: x, mapping: AxisMapping(scale: f, offset: (startD + 0.5) * f - 0.5), scanDims: scan.scanDims)
    }
}

/// The `size` window of `x` (`[N, C, D, H, W]`) starting at `start` (may be negative or run past the
/// end), with `fill` outside the input.
public func window(_ x: Tensor, start: [Int], size: [Int], fill: Float) throws -> Tensor {
    try x.requireSpatial("window")
    let (n, c) = (x.shape[0], x.shape[1])
    let inD = x.shape[2], inH = x.shape[3], inW = x.shape[4]
    var out = Tensor(shape: [n, c] + size, repeating: fill)
    x.scalars.withUnsafeBufferPointer { src in
        out.scalars.withUnsafeMutableBufferPointer { dst in
            for b in 0..<(n * c) {
                for d in 0..<size[0] {
                    let sd = d + start[0]
                    guard sd >= 0 && sd < inD else { continue }
                    for h in 0..<size[1] {
                        let sh = h + start[1]
                        guard sh >= 0 && sh < inH else { continue }
                        let w0 = max(0, -start[2]), w1 = min(size[2], inW - start[2])
                        guard w0 < w1 else { continue }
                        let srcRow = ((b * inD + sd) * inH + sh) * inW + start[2]
                        let dstRow = ((b * size[0] + d) * size[1] + h) * size[2]
                        for w in w0..<w1 { dst[dstRow + w] = src[srcRow + w] }
                    }
                }
            }
        }
    }
    return out
}

extension ModelInput {
    /// A map over the model input's extent, carried back onto the scan's grid.
    ///
    /// The map may be at any resolution covering the model input (a layer's map `[L_d, L_h, L_w]`, or
    /// the input's own `[D, H, W]`). Each scan voxel is mapped to its continuous model voxel, then to
    /// the map's grid with half-pixel centres (`l = (m + 0.5) * L / M - 0.5`), and sampled trilinearly
    /// (one interpolation, not two). Scan voxels outside the model's field of view get `outside`.
    /// - Parameter map: `[D', H', W']` scalars, W' fastest, with `mapSize = [D', H', W']`.
    /// - Returns: scan voxels in NIfTI order (i fastest).
    public func toScan(_ map: [Float], mapSize: [Int], outside: Float = 0) -> [Float] {
        var out = [Float](repeating: outside, count: scanDims.count)
        sampleOntoScan(map, mapSize: mapSize, into: &out, keepingLarger: false)
        return out
    }

    /// `toScan` combined into `scanMap` by the maximum: each scan voxel in the model's field of view
    /// takes the larger of its value and the map's (`Swift.max`), or the map's when `replacing` (the
    /// first patch, so a NaN in it stays NaN, as `toScan` gives); the others keep theirs. The same
    /// as `zip(scanMap, toScan(map, mapSize: mapSize, outside: -.infinity)).map(max)`, without a
    /// whole scan's array per patch, and touching only the patch's voxels.
    public func maxIntoScan(_ scanMap: inout [Float], _ map: [Float], mapSize: [Int], replacing: Bool = false) {
        precondition(scanMap.count == scanDims.count, "maxIntoScan: a map of \(scanMap.count) voxels on a \(scanDims) grid")
        sampleOntoScan(map, mapSize: mapSize, into: &scanMap, keepingLarger: !replacing)
    }

    /// The scan voxels that may lie in the model input's extent, as ranges of i, j and k: the extent's
    /// ends carried onto the scan (`mapping.scanVoxel` of -0.5 and size - 0.5), one voxel more on each
    /// side; `sampleOntoScan` still tests each voxel exactly. A patch of a CT is a few thousand voxels
    /// of tens of millions: at stop 20, explaining four 32 mm patches of a 512x512x240 CT went over the
    /// whole scan for every patch and method.
    func fieldOfView() -> [Range<Int>] {
        let modelSize = [tensor.shape[2], tensor.shape[3], tensor.shape[4]]
        let dims = [scanDims.i, scanDims.j, scanDims.k]
        return (0..<3).map { a in
            let s = mapping.scale[a], o = mapping.offset[a]
            let ends = [o - 0.5 * s, o + (Double(modelSize[a]) - 0.5) * s]
            guard ends.allSatisfy(\.isFinite) else { return 0..<dims[a] }
            // Clamped before converting, so no mapping can overflow an Int.
            let lo = min(max(ends.min()!, -2), Double(dims[a]) + 1), hi = min(max(ends.max()!, -2), Double(dims[a]) + 1)
            let first = max(0, Int(lo.rounded(.down)) - 1), end = min(dims[a], Int(hi.rounded(.up)) + 2)
            return first < end ? first..<end : 0..<0
        }
    }

    /// Samples `map` at every scan voxel in the model's field of view (within `fieldOfView()`), into
    /// `out` (scan order, i fastest): stored, or kept where larger.
    private func sampleOntoScan(_ map: [Float], mapSize: [Int], into out: inout [Float], keepingLarger: Bool) {
        let modelSize = SIMD3<Int>(tensor.shape[2], tensor.shape[3], tensor.shape[4])
        let grid = SIMD3<Int>(mapSize[0], mapSize[1], mapSize[2])
        let ratio = SIMD3<Double>(grid) / SIMD3<Double>(modelSize)
        let lo = SIMD3<Double>(repeating: -0.5), hi = SIMD3<Double>(modelSize) - 0.5
        let dims = scanDims
        let box = fieldOfView()
        guard !box.contains(where: \.isEmpty) else { return }
        let mapping = self.mapping
        out.withUnsafeMutableBufferPointer { o in
            let dst = SharedPointer(o.baseAddress!)
            map.withUnsafeBufferPointer { m in
                let src = SharedConstPointer(m.baseAddress!)
                Parallel.forEach(box[2].count) { kk in
                    let k = box[2].lowerBound + kk
                    for j in box[1] {
                        for i in box[0] {
                            let mv = mapping.modelVoxel(SIMD3(Double(i), Double(j), Double(k)))
                            guard all(mv .>= lo) && all(mv .<= hi) else { continue }
                            let v = trilinear(src, grid, (mv + 0.5) * ratio - 0.5)
                            let n = i + dims.i * (j + dims.j * k)
                            dst[n] = keepingLarger ? Swift.max(dst[n], v) : v
                        }
                    }
                }
            }
        }
    }
}

/// Trilinear sample of a `[D, H, W]` grid (W fastest) at a continuous voxel, clamped to the grid.
@inline(__always)
func trilinear(_ src: SharedConstPointer<Float>, _ size: SIMD3<Int>, _ p: SIMD3<Double>) -> Float {
    let hi = SIMD3<Double>(size &- 1)
    let c = p.clamped(lowerBound: .zero, upperBound: hi)
    let f = c.rounded(.down)
    let i0 = SIMD3<Int>(f), t = c - f
    let i1 = (i0 &+ 1).clamped(lowerBound: .zero, upperBound: size &- 1)
    func at(_ d: Int, _ h: Int, _ w: Int) -> Double { Double(src[(d * size[1] + h) * size[2] + w]) }
    let c00 = at(i0.x, i0.y, i0.z) * (1 - t.z) + at(i0.x, i0.y, i1.z) * t.z
    let c01 = at(i0.x, i1.y, i0.z) * (1 - t.z) + at(i0.x, i1.y, i1.z) * t.z
    let c10 = at(i1.x, i0.y, i0.z) * (1 - t.z) + at(i1.x, i0.y, i1.z) * t.z
    let c11 = at(i1.x, i1.y, i0.z) * (1 - t.z) + at(i1.x, i1.y, i1.z) * t.z
    let c0 = c00 * (1 - t.y) + c01 * t.y, c1 = c10 * (1 - t.y) + c11 * t.y
    return Float(c0 * (1 - t.x) + c1 * t.x)
}

extension ModelInput {
    /// A label volume on the scan's grid (a lesion, body or lung mask) carried onto the model input's
    /// grid by nearest neighbour, through the same resampling and crop as the scan: each model voxel
    /// takes the label of the scan voxel nearest its centre (`mapping.scanVoxel`, half-pixel centres),
    /// and 0 outside the scan.
    /// - Parameter volume: on the scan's grid (same dims); `name` names it in errors.
    /// - Returns: `[D, H, W]` labels on the model input's grid.
    /// - Throws: `VoxplainError` when the grids differ.
    public func labelsOnModelGrid(_ volume: Volume, name: String) throws -> Tensor {
        guard volume.dims == scanDims else {
            throw VoxplainError("\(name): the mask's grid \(volume.dims) differs from the scan's \(scanDims)")
        }
        let size = Array(tensor.shape[2...])
        let dims = scanDims, mapping = self.mapping
        return Tensor(shape: size) { out in
            var o = 0
            for d in 0..<size[0] { for h in 0..<size[1] { for w in 0..<size[2] {
                let s = mapping.scanVoxel(SIMD3(Double(d), Double(h), Double(w)))
                let i = Int(s.x.rounded()), j = Int(s.y.rounded()), k = Int(s.z.rounded())
                let inside = i >= 0 && i < dims.i && j >= 0 && j < dims.j && k >= 0 && k < dims.k
                out[o] = inside ? volume.voxels[i + dims.i * (j + dims.j * k)] : 0
                o += 1
            } } }
        }
    }

    /// The model grid's voxel size in mm along (D, H, W), from the scan's spacing and the resampling.
    public func modelSpacing(scanSpacing: SIMD3<Double>) -> SIMD3<Double> { scanSpacing * mapping.scale }
}

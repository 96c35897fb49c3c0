/// How values between voxel centres are read.
public enum Interpolation: Sendable {
    /// Bilinear within the slice (intensities, heat).
    case linear
    /// The nearest voxel (labels).
    case nearest
}

/// One slice of a volume resampled to square pixels: values, row by row from the top.
///
/// Pixel `(x, y)` covers `[x, x + 1) * pixelMM` from the plane's left edge (the outer edge of the
/// first voxel) and `[y, y + 1) * pixelMM` from its top edge, and shows the value at its centre, so
/// anisotropic voxels keep their physical aspect ratio.
public struct SliceRaster: Sendable {
    /// Size in pixels.
    public let width: Int, height: Int
    /// `width * height` values, row-major from the top-left.
    public var values: [Float]
    /// Pixel size in mm.
    public let pixelMM: Double
    /// The layout and slice index it was taken from.
    public let layout: PlaneLayout
    /// The slice index along `layout.normal`.
    public let slice: Int

    /// Resamples slice `slice` of `values` (on `grid`, i fastest) across `layout` to pixels of
    /// `pixelMM` mm. Positions beyond the outermost voxel centres take the edge value.
    /// - Throws: `RenderError` when the counts disagree, the slice is outside the grid or the
    ///   picture would exceed `Image.maxSide`.
    public init(_ values: [Float], grid: VoxelGrid, layout: PlaneLayout, slice: Int, pixelMM: Double,
                interpolation: Interpolation = .linear) throws {
        guard values.count == grid.count else {
            throw RenderError("\(values.count) values do not fill the grid \(grid.dims) (\(grid.count) voxels)")
        }
        guard (0..<layout.sliceCount).contains(slice) else {
            throw RenderError("slice \(slice) is outside the \(layout.axis.rawValue) range 0...\(layout.sliceCount - 1)")
        }
        guard pixelMM > 0, pixelMM.isFinite else { throw RenderError("pixel size \(pixelMM) mm must be positive") }
        let (wmm, hmm) = layout.extentMM
        let w = max(1, Int((wmm / pixelMM).rounded())), h = max(1, Int((hmm / pixelMM).rounded()))
        guard w <= Image.maxSide, h <= Image.maxSide else {
            throw RenderError("a \(layout.axis.rawValue) slice at \(pixelMM) mm per pixel would be \(w)x\(h) pixels (at most \(Image.maxSide))")
        }
        width = w
        height = h
        self.pixelMM = pixelMM
        self.layout = layout
        self.slice = slice
        // Fractional plane positions of the pixel centres.
        let us = (0..<w).map { x in min(Double(layout.width - 1), max(0, (Double(x) + 0.5) * pixelMM / layout.acrossMM - 0.5)) }
        let vs = (0..<h).map { y in min(Double(layout.height - 1), max(0, (Double(y) + 0.5) * pixelMM / layout.downMM - 0.5)) }
        // Strides of the plane's u and v axes in the value array, and the voxel of (u, v) = (0, 0).
        let strides = [1, grid.dims[0], grid.dims[0] * grid.dims[1]]
        let origin = layout.voxel(u: 0, v: 0, slice: Double(slice))
        let base = Int(origin.x) * strides[0] + Int(origin.y) * strides[1] + Int(origin.z) * strides[2]
        let su = strides[layout.across] * layout.acrossSign, sv = strides[layout.down] * layout.downSign
        var out = [Float](repeating: 0, count: w * h)
        values.withUnsafeBufferPointer { src in
            for y in 0..<h {
                let v = vs[y]
                for x in 0..<w {
                    let u = us[x]
                    switch interpolation {
                    case .nearest:
                        out[y * w + x] = src[base + Int(u.rounded()) * su + Int(v.rounded()) * sv]
                    case .linear:
                        let u0 = Int(u), v0 = Int(v)
                        let u1 = min(u0 + 1, layout.width - 1), v1 = min(v0 + 1, layout.height - 1)
                        let fu = Float(u - Double(u0)), fv = Float(v - Double(v0))
                        let a = src[base + u0 * su + v0 * sv], b = src[base + u1 * su + v0 * sv]
                        let c = src[base + u0 * su + v1 * sv], d = src[base + u1 * su + v1 * sv]
                        // Weights of zero skip their term, so an edge pixel never mixes in a NaN neighbour it does not touch.
                        let top = fu == 0 ? a : a + fu * (b - a), bottom = fu == 0 ? c : c + fu * (d - c)
                        out[y * w + x] = fv == 0 ? top : top + fv * (bottom - top)
                    }
                }
            }
        }
        self.values = out
    }

    /// The pixel that shows fractional voxel `voxel` of this slice's plane (may be outside the picture).
    public func pixel(of voxel: SIMD3<Double>) -> (x: Int, y: Int) {
        let (u, v) = layout.planePosition(voxel)
        return (Int(((u + 0.5) * layout.acrossMM / pixelMM).rounded(.down)), Int(((v + 0.5) * layout.downMM / pixelMM).rounded(.down)))
    }
}

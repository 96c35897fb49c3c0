import Foundation
import NIfTI
import VoxelRender

/// Which pictures `voxplain montage` draws.
public enum MontageView: String, CaseIterable, Sendable {
    case axial, coronal, sagittal
    /// Axial, coronal and sagittal through the hottest voxel.
    case triplanar
}

/// Settings of a montage, as on the command line.
public struct MontageOptions: Sendable {
    /// The plane, or tri-planar.
    public var view: MontageView = .axial
    /// Slice indices along the plane's normal voxel axis, or nil to choose them (see `Montage.autoSlices`).
    public var slices: [Int]? = nil
    /// Number of slices chosen automatically.
    public var count: Int = 8
    /// The grey window; nil chooses lung for CT-like scans (1st percentile below -500) and the 1-99 %
    /// percentile window otherwise.
    public var window: WindowSpec? = nil
    /// Colormap, opacity and threshold of the heat; its scale is set from the maps.
    public var colormap: Colormap = .inferno
    /// Opacity of the heat colour (0...1).
    public var alpha: Float = 0.4
    /// Heat below this fraction of the scale gets no colour (0...1).
    public var threshold: Float = 0.2
    /// Pixels on the longer side of each tile.
    public var tilePixels: Int = 256
    /// Tiles per row (default: about square).
    public var columns: Int? = nil

    /// The defaults above.
    public init() {}
}

/// NIfTI-aware montages: checks grids, picks windows and slices, and draws through `VoxelRender`.
public enum Montage {
    /// The render grid of a volume (its dims and nibabel-precedence affine).
    public static func grid(of volume: Volume) throws -> VoxelGrid {
        try VoxelGrid(dims: volume.dims.array, affine: volume.affine.rows.flatMap { $0 })
    }

    /// Throws unless `other` lies on `scan`'s grid: same dims and affines within 1e-3 mm.
    /// - Throws: `VoxplainError` naming both files and both grids.
    public static func checkSameGrid(_ other: Volume, _ otherPath: String, as scan: Volume, _ scanPath: String, role: String) throws {
        guard other.dims == scan.dims else {
            throw VoxplainError("\(role) \(otherPath) (\(other.dims)) is not on the grid of the scan \(scanPath) (\(scan.dims))")
        }
        let d = other.affine.maxAbsDifference(scan.affine)
        guard d <= 1e-3 else {
            throw VoxplainError("\(role) \(otherPath) has a different affine from the scan \(scanPath) (up to \(formatNumber(d, decimals: 3)) mm apart; both \(scan.dims))")
        }
    }

    /// The window for `scan`: the given one, or lung for CT-like scans and p1-99 otherwise.
    public static func window(for scan: Volume, _ spec: WindowSpec?) throws -> Window {
        if let spec { return try spec.resolve(scan.voxels) }
        let p1 = try Window.percentile(1, 2, of: scan.voxels).lower
        return p1 < -500 ? .lung : try Window.percentile(1, 99, of: scan.voxels)
    }

    /// The heat scale of some maps: their smallest and largest finite values, or 0...1 when constant.
    public static func scale(of maps: [Volume]) -> (low: Float, high: Float) {
        var lo = Float.infinity, hi = -Float.infinity
        for m in maps {
            guard let r = finiteRange(m.voxels) else { continue }
            lo = min(lo, r.low); hi = max(hi, r.high)
        }
        return lo < hi ? (lo, hi) : (0, 1)
    }

    /// Centroids (fractional voxels) of each non-zero label of a mask, by label.
    public static func lesionCentres(_ mask: Volume) -> [SIMD3<Double>] {
        var sums: [Int: (SIMD3<Double>, Int)] = [:]
        let d = mask.dims
        for k in 0..<d.k { for j in 0..<d.j { for i in 0..<d.i {
            let l = mask.voxels[i + d.i * (j + d.j * k)]
            guard l != 0, l.isFinite else { continue }
            let key = Int(l.rounded())
            let s = sums[key] ?? (.zero, 0)
            sums[key] = (s.0 + SIMD3(Double(i), Double(j), Double(k)), s.1 + 1)
        } } }
        return sums.keys.sorted().compactMap { k in sums[k].map { $0.0 / Double($0.1) } }
    }

    /// Slices through lesions of `truth` first, then heat peaks of `heat` (local maxima above the
    /// threshold of the scale), then evenly spaced; `count` of them, sorted.
    public static func autoSlices(grid: VoxelGrid, axis: ViewAxis, heat: [Float]?, style: OverlayStyle,
                                  truth: Volume?, count: Int) -> [Int] {
        let layout = PlaneLayout(grid: grid, axis: axis)
        let minimum = style.low + style.threshold * (style.high - style.low)
        let peaks = heat.map { HeatPeaks.localMaxima($0, dims: grid.dims, minimum: minimum, limit: 4 * count).map(\.voxel) } ?? []
        return HeatPeaks.chooseSlices(layout: layout, lesions: truth.map(lesionCentres) ?? [], peaks: peaks, count: count)
    }

    /// A montage of `scan` with an optional heatmap and truth mask (all on the scan's grid).
    /// - Throws: `VoxplainError`/`RenderError` for bad options, slices outside the grid, mismatched grids.
    public static func render(scan: Volume, overlay: Volume?, truth: Volume? = nil, options: MontageOptions,
                              names: (scan: String, overlay: String, truth: String) = ("scan", "overlay", "truth")) throws -> Image {
        if let overlay { try checkSameGrid(overlay, names.overlay, as: scan, names.scan, role: "overlay") }
        if let truth { try checkSameGrid(truth, names.truth, as: scan, names.scan, role: "truth mask") }
        let g = try grid(of: scan)
        let s: (low: Float, high: Float) = overlay.map { scale(of: [$0]) } ?? (0, 1)
        let style = try OverlayStyle(colormap: options.colormap, alpha: options.alpha, threshold: options.threshold, low: s.low, high: s.high)
        let renderer = try SliceRenderer(grid: g, scan: scan.voxels, window: try window(for: scan, options.window),
                                         overlay: overlay?.voxels, style: style, truth: truth?.voxels)
        let title = "\((names.scan as NSString).lastPathComponent)" + (overlay == nil ? "" : "  +  \((names.overlay as NSString).lastPathComponent)")
            + "  \(renderer.window)"
        switch options.view {
        case .triplanar:
            let point = focus(grid: g, heat: overlay?.voxels, truth: truth)
            return try renderer.triplanar(at: point, tilePixels: options.tilePixels, title: title)
        case .axial, .coronal, .sagittal:
            let axis = ViewAxis(rawValue: options.view.rawValue) ?? .axial
            let slices = options.slices ?? autoSlices(grid: g, axis: axis, heat: overlay?.voxels, style: style, truth: truth, count: options.count)
            return try renderer.montage(axis: axis, slices: slices, columns: options.columns, tilePixels: options.tilePixels, title: title)
        }
    }

    /// A comparison sheet: several methods' maps on the same slices (rows = maps with their names,
    /// columns = slices) with one shared heat scale (the smallest to the largest value over all maps).
    /// Automatic slices go through the peaks of the maps' mean. Tri-planar is not a comparison view:
    /// it uses axial.
    /// - Throws: `VoxplainError` naming the map whose grid differs from the scan's, `RenderError` for bad options.
    public static func comparison(scan: Volume, maps: [(name: String, volume: Volume)], truth: Volume? = nil,
                                  options: MontageOptions, scanName: String = "scan") throws -> Image {
        guard !maps.isEmpty else { throw VoxplainError("comparison: give at least one map") }
        for m in maps { try checkSameGrid(m.volume, m.name, as: scan, scanName, role: "overlay") }
        if let truth { try checkSameGrid(truth, "truth", as: scan, scanName, role: "truth mask") }
        let g = try grid(of: scan)
        let s = scale(of: maps.map(\.volume))
        let style = try OverlayStyle(colormap: options.colormap, alpha: options.alpha, threshold: options.threshold, low: s.low, high: s.high)
        let renderer = try SliceRenderer(grid: g, scan: scan.voxels, window: try window(for: scan, options.window),
                                         style: style, truth: truth?.voxels)
        let axis = ViewAxis(rawValue: options.view.rawValue) ?? .axial
        var mean = [Float](repeating: 0, count: g.count)
        for m in maps {
            // The voxels taken out once: indexing `m.volume.voxels` per voxel copied the volume (with
            // its retains) for every voxel, a tenth of `voxplain demo`'s samples.
            let voxels = m.volume.voxels
            for n in mean.indices { mean[n] += voxels[n] / Float(maps.count) }
        }
        let slices = options.slices ?? autoSlices(grid: g, axis: axis, heat: mean, style: style, truth: truth, count: options.count)
        let title = "\((scanName as NSString).lastPathComponent)  \(renderer.window)  shared scale"
        return try renderer.comparison(maps: maps.map { ($0.name, $0.volume.voxels) }, axis: axis, slices: slices,
                                       tilePixels: min(options.tilePixels, 192), title: title)
    }

    /// The voxel to centre views on: the hottest voxel, else the first lesion's centre, else the grid centre.
    public static func focus(grid: VoxelGrid, heat: [Float]?, truth: Volume?) -> [Int] {
        if let heat, let p = HeatPeaks.argmax(heat, dims: grid.dims) { return p }
        if let truth, let c = lesionCentres(truth).first { return (0..<3).map { Int(c[$0].rounded()) } }
        return grid.dims.map { $0 / 2 }
    }

    /// The name of a map file for a row label: the file name without `.nii`/`.nii.gz`.
    public static func mapName(_ path: String) -> String {
        var name = (path as NSString).lastPathComponent
        for ext in [".nii.gz", ".nii"] where name.hasSuffix(ext) { name = String(name.dropLast(ext.count)); break }
        return name
    }

    /// `voxplain montage`: reads the files, draws a montage (one overlay or none) or a comparison
    /// sheet (several overlays) and writes the PNG atomically.
    /// - Throws: one-line errors naming the file or option at fault; nothing is written on error.
    public static func run(scanPath: String, overlayPaths: [String], truthPath: String?, outPath: String,
                           options: MontageOptions) throws {
        guard outPath.lowercased().hasSuffix(".png") else { throw VoxplainError("\(outPath): the output name must end in .png") }
        let inputs = [scanPath] + overlayPaths + (truthPath.map { [$0] } ?? [])
        try NIfTIFile.checkOutputPath(outPath, protecting: inputs)
        guard (16...4096).contains(options.tilePixels) else { throw VoxplainError("--tile \(options.tilePixels): must be 16 to 4096 pixels") }
        guard (1...256).contains(options.count) else { throw VoxplainError("--count \(options.count): must be 1 to 256") }
        let scan = try NIfTIFile.read(scanPath)
        let truth = try truthPath.map { try NIfTIFile.read($0) }
        let image: Image
        if overlayPaths.count > 1 {
            let maps = try overlayPaths.map { (name: mapName($0), volume: try NIfTIFile.read($0), path: $0) }
            for m in maps { try checkSameGrid(m.volume, m.path, as: scan, scanPath, role: "overlay") }
            if let truth, let truthPath { try checkSameGrid(truth, truthPath, as: scan, scanPath, role: "truth mask") }
            image = try comparison(scan: scan, maps: maps.map { ($0.name, $0.volume) }, truth: truth, options: options, scanName: scanPath)
        } else {
            let overlay = try overlayPaths.first.map { try NIfTIFile.read($0) }
            image = try render(scan: scan, overlay: overlay, truth: truth, options: options,
                               names: (scanPath, overlayPaths.first ?? "overlay", truthPath ?? "truth"))
        }
        try image.writePNG(to: outPath)
    }
}

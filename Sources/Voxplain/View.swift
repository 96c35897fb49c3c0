import Foundation
import NIfTI
import VoxelRender

/// Settings of `voxplain view`.
public struct ViewOptions: Sendable {
    /// The plane shown first.
    public var axis: ViewAxis = .axial
    /// The slice along the axis's normal voxel axis; nil for the slice through the hottest voxel (or the middle).
    public var slice: Int? = nil
    /// nil: lung for CT-like scans, p1-99 otherwise (as `montage`).
    public var window: WindowSpec? = nil
    /// Colormap, opacity (0...1) and threshold (fraction of the scale) of the heat.
    public var colormap: Colormap = .inferno
    /// Opacity of the heat colour.
    public var alpha: Float = 0.4
    /// Heat below this fraction of the scale gets no colour.
    public var threshold: Float = 0.2
    /// The defaults above.
    public init() {}
}

/// `voxplain view`: a terminal viewer of a scan and an optional heatmap.
public enum SliceView {
    /// Reads the files and makes the viewer (starting on the slice through the hottest voxel).
    /// - Throws: one-line errors naming the file or option (grids that differ name both files).
    public static func viewer(scanPath: String, overlayPath: String?, options: ViewOptions) throws -> TerminalViewer {
        let style0 = try OverlayStyle(colormap: options.colormap, alpha: options.alpha, threshold: options.threshold)
        let scan = try NIfTIFile.read(scanPath)
        let overlay = try overlayPath.map { try NIfTIFile.read($0) }
        if let overlay, let overlayPath { try Montage.checkSameGrid(overlay, overlayPath, as: scan, scanPath, role: "overlay") }
        let grid = try Montage.grid(of: scan)
        let s: (low: Float, high: Float) = overlay.map { Montage.scale(of: [$0]) } ?? (0, 1)
        let style = try OverlayStyle(colormap: style0.colormap, alpha: style0.alpha, threshold: style0.threshold, low: s.low, high: s.high)
        let renderer = try SliceRenderer(grid: grid, scan: scan.voxels, window: try Montage.window(for: scan, options.window),
                                         overlay: overlay?.voxels, style: style)
        let focus = Montage.focus(grid: grid, heat: overlay?.voxels, truth: nil)
        return try TerminalViewer(renderer: renderer, axis: options.axis, slice: options.slice, focus: focus)
    }
}

/// One slice of a scan (with its heatmap) in the terminal, printed once or browsed with keys.
public struct TerminalViewer {
    /// What draws the slices.
    public var renderer: SliceRenderer
    /// The current axis.
    public var axis: ViewAxis
    /// The current slice along each axis.
    public var slices: [ViewAxis: Int]

    /// A viewer starting on `axis` at `slice` (default: through `focus`, a voxel such as the heat
    /// peak, else the middle slice).
    /// - Throws: `RenderError` naming `--slice` when it is outside the grid.
    public init(renderer: SliceRenderer, axis: ViewAxis, slice: Int?, focus: [Int]?) throws {
        self.renderer = renderer
        self.axis = axis
        var s: [ViewAxis: Int] = [:]
        for a in ViewAxis.allCases {
            let l = PlaneLayout(grid: renderer.grid, axis: a)
            s[a] = focus.map { $0[l.normal] } ?? l.sliceCount / 2
        }
        if let slice {
            let l = PlaneLayout(grid: renderer.grid, axis: axis)
            guard (0..<l.sliceCount).contains(slice) else {
                throw RenderError("--slice \(slice): outside the \(axis.rawValue) range 0...\(l.sliceCount - 1)")
            }
            s[axis] = slice
        }
        slices = s
    }

    /// The current slice along the current axis.
    public var slice: Int { slices[axis] ?? 0 }

    /// The status line: axis, slice label and range, the four orientation letters, the window.
    public func status() -> String {
        let l = PlaneLayout(grid: renderer.grid, axis: axis)
        let t = l.letters
        return "\(axis.rawValue) \(renderer.sliceLabel(l, slice: slice)) (0-\(l.sliceCount - 1))  "
            + "left \(t.left) right \(t.right) top \(t.top) bottom \(t.bottom)  window \(renderer.window)"
    }

    /// The current slice as half-block text `columns` characters wide (height from the physical
    /// aspect, at most `rows` text rows when given), followed by the status line.
    /// - Throws: `RenderError` when the picture cannot be made.
    public func frame(columns: Int, rows: Int?) throws -> String {
        let layout = PlaneLayout(grid: renderer.grid, axis: axis)
        let px = TerminalView.pixelMM(layout: layout, columns: columns, rows: rows)
        let image = try renderer.picture(axis: axis, slice: slice, pixelMM: px)
        return TerminalView.halfBlocks(image) + status() + "\n"
    }

    /// Applies a key; returns false for a key that quits (q, Q, Ctrl-C, ESC).
    public mutating func handle(_ key: TerminalKey) -> Bool {
        let count = PlaneLayout(grid: renderer.grid, axis: axis).sliceCount
        switch key {
        case .up, .character("k"): slices[axis] = min(count - 1, slice + 1)
        case .down, .character("j"): slices[axis] = max(0, slice - 1)
        case .character("a"): axis = .axial
        case .character("c"): axis = .coronal
        case .character("s"): axis = .sagittal
        case .character("q"), .character("Q"), .interrupt, .escape: return false
        default: break
        }
        return true
    }

    /// Browses slices until a quit key or end of input, in raw mode on the alternate screen; the
    /// terminal is restored on return and on SIGINT/SIGTERM. Redraws fit the terminal's current size.
    /// - Throws: `RenderError` when standard input is not a terminal.
    public mutating func runInteractive(columns: Int?) throws {
        let terminal = try RawTerminal()
        defer { terminal.restore() }
        let help = "j/k or arrows: slice   a/c/s: axial/coronal/sagittal   q: quit"
        while true {
            let size = TerminalView.windowSize()
            let cols = columns ?? size?.columns ?? 80
            let rows = max(2, (size?.rows ?? 24) - 3)
            let text = try frame(columns: cols, rows: rows)
            terminal.write("\u{1B}[H\u{1B}[2J" + text.replacingNewlines() + help)
            guard let keys = terminal.readKeys() else { return }
            for k in keys where !handle(k) { return }
        }
    }
}

extension String {
    /// Newlines as CR LF (raw mode turns off the terminal's own translation).
    func replacingNewlines() -> String {
        var out = ""
        out.reserveCapacity(utf8.count + 64)
        for c in self { if c == "\n" { out += "\r\n" } else { out.append(c) } }
        return out
    }
}

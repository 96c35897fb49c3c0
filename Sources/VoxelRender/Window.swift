import Foundation

/// A display window: intensities from `level - width/2` (black) to `level + width/2` (white).
///
/// Grey is linear in between, `255 * (v - lower) / width` rounded to nearest, clamped outside; NaN
/// shows black. (DICOM's VOI LUT formula shifts by half a unit; on HU ranges of 80 and more the
/// difference is below one grey level.)
public struct Window: Equatable, Sendable, CustomStringConvertible {
    /// Width W (> 0), in scan units (HU for CT).
    public var width: Double
    /// Level (centre) L, in scan units.
    public var level: Double

    /// A window of width `width` (> 0) centred on `level`.
    /// - Throws: `RenderError` naming `--window` when the width is not positive and finite.
    public init(width: Double, level: Double) throws {
        guard width > 0, width.isFinite, level.isFinite else {
            throw RenderError("--window \(width),\(level): width must be positive and both finite")
        }
        self.width = width
        self.level = level
    }

    init(uncheckedWidth width: Double, level: Double) { self.width = width; self.level = level }

    /// CT lung window W1500 / L-600.
    public static let lung = Window(uncheckedWidth: 1500, level: -600)
    /// CT mediastinum (soft tissue) window W350 / L50.
    public static let mediastinum = Window(uncheckedWidth: 350, level: 50)
    /// CT bone window W2000 / L500.
    public static let bone = Window(uncheckedWidth: 2000, level: 500)
    /// CT brain window W80 / L40.
    public static let brain = Window(uncheckedWidth: 80, level: 40)
    /// The presets by name.
    public static let presets: [(name: String, window: Window)] = [
        ("lung", .lung), ("mediastinum", .mediastinum), ("bone", .bone), ("brain", .brain),
    ]

    /// The value shown black.
    public var lower: Double { level - width / 2 }
    /// The value shown white.
    public var upper: Double { level + width / 2 }

    /// The grey level of `value`.
    @inlinable public func grey(_ value: Float) -> UInt8 {
        let t = (Double(value) - (level - width / 2)) / width * 255
        guard t > 0 else { return 0 }   // also NaN
        guard t < 255 else { return 255 }
        return UInt8(t.rounded())
    }

    /// "W1500 L-600".
    public var description: String { "W\(Window.format(width)) L\(Window.format(level))" }

    /// Whole numbers as integers, others with about four significant digits ("0.9862", "-600", "12.35").
    static func format(_ v: Double) -> String {
        guard v.isFinite else { return String(v) }
        if v == v.rounded() && abs(v) < 1e9 { return String(Int(v)) }
        let magnitude = abs(v) > 0 ? Int(log10(abs(v)).rounded(.down)) : 0
        return formatNumber(v, decimals: min(8, max(0, 3 - magnitude)))
    }

    /// The window spanning the `lo`-th to the `hi`-th percentile (0...100) of the finite `values`
    /// (numpy's linear interpolation). Volumes over 4 Mi values are sampled at a regular stride, so
    /// the percentiles of large volumes are estimates (the sample still holds 4 Mi values).
    /// A constant image gives a window of width 1 centred on its value.
    /// - Throws: `RenderError` when `lo < hi` fails, or no value is finite.
    public static func percentile(_ lo: Double, _ hi: Double, of values: [Float]) throws -> Window {
        guard lo >= 0, hi <= 100, lo < hi else {
            throw RenderError("--window p\(format(lo)),\(format(hi)): percentiles must satisfy 0 <= lo < hi <= 100")
        }
        let stride = max(1, values.count / (1 << 22))
        var sample: [Float] = []
        sample.reserveCapacity(values.count / stride + 1)
        var n = 0
        while n < values.count {
            if values[n].isFinite { sample.append(values[n]) }
            n += stride
        }
        guard !sample.isEmpty else { throw RenderError("--window p\(format(lo)),\(format(hi)): the scan has no finite value") }
        // The two order statistics around each percentile, by selection rather than a sort: the
        // k-th smallest, then the smallest of those after it. (Sorting 1.6 M voxels took about 0.1 s,
        // once for every montage of `voxplain demo`.)
        func q(_ p: Double) -> Double {
            let pos = p / 100 * Double(sample.count - 1)
            let a = Int(pos.rounded(.down))
            let va = selectOrderStatistic(&sample, a)
            let vb = a + 1 < sample.count ? sample[(a + 1)...].min()! : va
            return Double(va) + (pos - Double(a)) * (Double(vb) - Double(va))
        }
        let a = q(lo), b = q(hi)
        return b > a ? Window(uncheckedWidth: b - a, level: (a + b) / 2) : Window(uncheckedWidth: 1, level: a)
    }
}

/// The `k`-th smallest (from 0) of `values`, which holds no NaN, reordered so that nothing before
/// index `k` is larger and nothing after it smaller: Hoare's selection with a median-of-three pivot
/// (runs of equal values, such as a CT's air, split evenly), sorting what is left after about
/// 2 log2(n) rounds (so never quadratic).
func selectOrderStatistic(_ values: inout [Float], _ k: Int) -> Float {
    precondition(k >= 0 && k < values.count, "selectOrderStatistic: rank \(k) of \(values.count)")
    var rounds = 2 * (Int.bitWidth - values.count.leadingZeroBitCount) + 4
    values.withUnsafeMutableBufferPointer { v in
        var lo = 0, hi = v.count - 1
        while lo < hi {
            if rounds == 0 { v[lo...hi].sort(); return }
            rounds -= 1
            let mid = lo + (hi - lo) / 2
            if v[mid] < v[lo] { v.swapAt(mid, lo) }
            if v[hi] < v[lo] { v.swapAt(hi, lo) }
            if v[hi] < v[mid] { v.swapAt(hi, mid) }
            let pivot = v[mid]
            var i = lo, j = hi
            while i <= j {
                while v[i] < pivot { i += 1 }
                while v[j] > pivot { j -= 1 }
                if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
            }
            // [lo, j] <= pivot, (j, i) == pivot, [i, hi] >= pivot.
            if k <= j { hi = j } else if k >= i { lo = i } else { return }
        }
    }
    return values[k]
}

/// A window as asked for on the command line: a preset, an explicit width and level, or percentiles.
public enum WindowSpec: Equatable, Sendable, CustomStringConvertible {
    case fixed(Window)
    /// Percentiles (0...100) of the scan's finite values (for MR, where units are arbitrary).
    case percentile(Double, Double)

    /// Parses `lung`, `mediastinum`, `bone`, `brain`, `W,L` (e.g. `400,40`) or `pLO,HI` (e.g. `p1,99`).
    /// - Throws: `RenderError` naming `--window` and showing the forms.
    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if let p = Window.presets.first(where: { $0.name == t }) { self = .fixed(p.window); return }
        let help = "use lung, mediastinum, bone, brain, W,L (as 400,40) or pLO,HI (as p1,99)"
        let isPercentile = t.hasPrefix("p")
        let parts = (isPercentile ? String(t.dropFirst()) : t).split(separator: ",", omittingEmptySubsequences: false)
            .map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let a = parts[0], let b = parts[1], a.isFinite, b.isFinite else {
            throw RenderError("--window \(text): \(help)")
        }
        if isPercentile {
            guard a >= 0, b <= 100, a < b else {
                throw RenderError("--window \(text): percentiles must satisfy 0 <= lo < hi <= 100")
            }
            self = .percentile(a, b)
        } else {
            guard a > 0 else { throw RenderError("--window \(text): width must be positive (W,L as 400,40)") }
            self = .fixed(try Window(width: a, level: b))
        }
    }

    /// The window for a scan with these voxel values.
    /// - Throws: `RenderError` for percentiles of a scan without finite values.
    public func resolve(_ values: [Float]) throws -> Window {
        switch self {
        case .fixed(let w): return w
        case .percentile(let lo, let hi): return try Window.percentile(lo, hi, of: values)
        }
    }

    /// "W1500 L-600" or "p1-99".
    public var description: String {
        switch self {
        case .fixed(let w): return w.description
        case .percentile(let a, let b): return "p\(Window.format(a))-\(Window.format(b))"
        }
    }
}

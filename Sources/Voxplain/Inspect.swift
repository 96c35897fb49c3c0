import Foundation
import NIfTI

/// A voxel axis of a volume: i, j or k (NIfTI order).
public enum VolumeAxis: String, CaseIterable, Sendable, Codable {
    case i, j, k
}

/// Intensity statistics over the finite voxels of a set, with counts of NaN and Inf.
///
/// Standard deviation is the population one (numpy's default, ddof 0); percentiles interpolate
/// linearly between order statistics (numpy's default `linear` method). Sums are in Double.
public struct IntensityStats: Codable, Equatable, Sendable {
    /// Number of finite voxels.
    public var count: Int
    /// Number of NaN voxels.
    public var nan: Int
    /// Number of +Inf and -Inf voxels.
    public var inf: Int
    /// Smallest finite value (nil when no voxel is finite, as for the others).
    public var min: Double?
    /// Largest finite value.
    public var max: Double?
    /// Mean of the finite values.
    public var mean: Double?
    /// Population standard deviation of the finite values.
    public var std: Double?
    /// Percentiles by name ("p1", "p5", "p25", "p50", "p75", "p95", "p99"); empty for slice stats.
    public var percentiles: [String: Double]

    /// The percentiles `inspect` reports.
    public static let reportedPercentiles: [Double] = [1, 5, 25, 50, 75, 95, 99]

    /// Statistics of `values`, with the given percentiles (0...100).
    public init<C: Collection>(_ values: C, percentiles: [Double] = []) where C.Element == Float {
        var finite: [Float] = []
        finite.reserveCapacity(values.count)
        var nan = 0, inf = 0
        for v in values {
            if v.isNaN { nan += 1 } else if v.isInfinite { inf += 1 } else { finite.append(v) }
        }
        self.nan = nan
        self.inf = inf
        count = finite.count
        self.percentiles = [:]
        guard !finite.isEmpty else { return }
        var sum = 0.0, lo = Double(finite[0]), hi = Double(finite[0])
        for v in finite {
            let d = Double(v)
            sum += d
            lo = Swift.min(lo, d)
            hi = Swift.max(hi, d)
        }
        let mean = sum / Double(finite.count)
        var ss = 0.0
        for v in finite { ss += (Double(v) - mean) * (Double(v) - mean) }
        self.min = lo
        self.max = hi
        self.mean = mean
        std = (ss / Double(finite.count)).squareRoot()
        if !percentiles.isEmpty {
            finite.sort()
            for p in percentiles {
                self.percentiles[IntensityStats.key(p)] = IntensityStats.percentile(sorted: finite, p)
            }
        }
    }

    /// "p1", "p50", "p2.5".
    public static func key(_ p: Double) -> String { p == p.rounded() ? "p\(Int(p))" : "p\(p)" }

    /// numpy's linear percentile of sorted values.
    public static func percentile(sorted a: [Float], _ p: Double) -> Double {
        let pos = p / 100 * Double(a.count - 1)
        let lo = Int(pos.rounded(.down)), hi = Swift.min(lo + 1, a.count - 1)
        let f = pos - Double(lo)
        return Double(a[lo]) + (Double(a[hi]) - Double(a[lo])) * f
    }

    enum CodingKeys: String, CodingKey { case count, nan, inf, min, max, mean, std, percentiles }
    /// Encodes every key, with null for missing numbers, so the JSON keys are stable.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        try c.encode(nan, forKey: .nan)
        try c.encode(inf, forKey: .inf)
        try c.encode(min, forKey: .min)
        try c.encode(max, forKey: .max)
        try c.encode(mean, forKey: .mean)
        try c.encode(std, forKey: .std)
        try c.encode(percentiles, forKey: .percentiles)
    }
}

/// Statistics of one slice.
public struct SliceStats: Codable, Equatable, Sendable {
    /// Index along the axis.
    public var index: Int
    /// Statistics of the slice's voxels (no percentiles).
    public var stats: IntensityStats
}

/// What `voxplain inspect` reports about a scan; `json()` and `text()` render it.
///
/// JSON keys (stable): file, format, compressed, big_endian, dims, volumes, volume, spacing,
/// spatial_units, datatype, bitpix, vox_offset, scaling ({slope, intercept} or null), affine,
/// affine_source ("sform", "qform" or "pixdim"), sform, sform_code, qform, qform_code, orientation,
/// description, intent_code, cal_min, cal_max, intensity ({count, nan, inf, min, max, mean, std,
/// percentiles {p1, p5, p25, p50, p75, p95, p99}}), slices (null, or {axis, stats: [{index, stats}]}).
public struct InspectReport: Encodable, Sendable {
    /// The file as given.
    public var file: String
    /// Header facts (format, compression, shape, datatype, volume count).
    public var header: NIfTIHeader
    /// The volume reported (0-based).
    public var volumeIndex: Int
    /// Geometry and header facts of that volume.
    public var volume: VolumeSummary
    /// Statistics of all its voxels, with percentiles.
    public var intensity: IntensityStats
    /// The axis of `slices`, when asked for.
    public var slicesAxis: VolumeAxis?
    /// Per-slice statistics along `slicesAxis` (empty when not asked for).
    public var slices: [SliceStats]

    /// Geometry and header facts of the volume (voxels are not kept).
    public struct VolumeSummary: Sendable {
        /// Grid extent.
        public var dims: VoxelDims
        /// Voxel size.
        public var spacing: SIMD3<Double>
        /// Datatype on disk.
        public var datatype: NIfTIDataType
        /// Scaling applied on read, if any.
        public var scaling: Scaling?
        /// The affine by nibabel's precedence, and its source ("sform", "qform", "pixdim").
        public var affine: Affine
        /// Where `affine` comes from.
        public var affineSource: String
        /// sform and its code.
        public var sform: Affine, sformCode: Int
        /// qform and its code.
        public var qform: Affine, qformCode: Int
        /// Spatial units name ("mm").
        public var units: String
        /// The `descrip` field.
        public var description: String
        /// Intent code.
        public var intentCode: Int
        /// Display range hints.
        public var calMin: Double, calMax: Double
    }

    /// Reads `path` and computes the report.
    /// - Parameters:
    ///   - volume: the 3D volume of a 4D file (0-based); required when it holds several.
    ///   - slices: when given, statistics of each slice along this axis.
    /// - Throws: `NIfTIError` naming the file.
    public static func make(path: String, volume: Int? = nil, slices: VolumeAxis? = nil) throws -> InspectReport {
        let (header, v) = try NIfTIFile.load(path, volume: volume)
        return make(file: path, header: header, volume: v, volumeIndex: volume ?? 0, slices: slices)
    }

    /// The report of an already loaded volume.
    public static func make(file: String, header: NIfTIHeader, volume v: Volume, volumeIndex: Int,
                            slices: VolumeAxis?) -> InspectReport {
        let summary = VolumeSummary(
            dims: v.dims, spacing: v.spacing, datatype: v.datatype, scaling: v.scaling, affine: v.affine,
            affineSource: v.affineSource, sform: v.sform, sformCode: v.sformCode, qform: v.qform, qformCode: v.qformCode,
            units: v.spatialUnitsName, description: v.description, intentCode: v.intentCode, calMin: v.calMin, calMax: v.calMax)
        var sliceStats: [SliceStats] = []
        if let axis = slices {
            let d = v.dims
            let n = axis == .i ? d.i : axis == .j ? d.j : d.k
            sliceStats = (0..<n).map { s in
                var values: [Float] = []
                switch axis {
                case .i: for k in 0..<d.k { for j in 0..<d.j { values.append(v[s, j, k]) } }
                case .j: for k in 0..<d.k { for i in 0..<d.i { values.append(v[i, s, k]) } }
                case .k: values = Array(v.voxels[(s * d.i * d.j)..<((s + 1) * d.i * d.j)])
                }
                return SliceStats(index: s, stats: IntensityStats(values))
            }
        }
        return InspectReport(file: file, header: header, volumeIndex: volumeIndex, volume: summary,
                             intensity: IntensityStats(v.voxels, percentiles: IntensityStats.reportedPercentiles),
                             slicesAxis: slices, slices: sliceStats)
    }

    /// Axis codes of the affine, as nibabel's `aff2axcodes` ("RAS", "LPS", ...).
    public var orientation: String { volume.affine.orientationCode }

    enum Keys: String, CodingKey {
        case file, format, compressed, big_endian, dims, volumes, volume, spacing, spatial_units, datatype, bitpix
        case vox_offset, scaling, affine, affine_source, sform, sform_code, qform, qform_code, orientation
        case description, intent_code, cal_min, cal_max, intensity, slices
    }
    enum ScalingKeys: String, CodingKey { case slope, intercept }
    enum SliceKeys: String, CodingKey { case axis, stats }

    /// Encodes the documented keys (null where absent).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        let v = volume
        try c.encode(file, forKey: .file)
        try c.encode(header.format.description, forKey: .format)
        try c.encode(header.compressed, forKey: .compressed)
        try c.encode(header.bigEndian, forKey: .big_endian)
        try c.encode(v.dims.array, forKey: .dims)
        try c.encode(header.volumeCount, forKey: .volumes)
        try c.encode(volumeIndex, forKey: .volume)
        try c.encode([v.spacing.x, v.spacing.y, v.spacing.z], forKey: .spacing)
        try c.encode(v.units, forKey: .spatial_units)
        try c.encode(v.datatype.description, forKey: .datatype)
        try c.encode(header.bitpix, forKey: .bitpix)
        try c.encode(header.voxOffset, forKey: .vox_offset)
        if let s = v.scaling {
            var sc = c.nestedContainer(keyedBy: ScalingKeys.self, forKey: .scaling)
            try sc.encode(s.slope, forKey: .slope)
            try sc.encode(s.intercept, forKey: .intercept)
        } else {
            try c.encodeNil(forKey: .scaling)
        }
        try c.encode(v.affine.rows, forKey: .affine)
        try c.encode(v.affineSource, forKey: .affine_source)
        try c.encode(v.sform.rows, forKey: .sform)
        try c.encode(v.sformCode, forKey: .sform_code)
        try c.encode(v.qform.rows, forKey: .qform)
        try c.encode(v.qformCode, forKey: .qform_code)
        try c.encode(orientation, forKey: .orientation)
        try c.encode(v.description, forKey: .description)
        try c.encode(v.intentCode, forKey: .intent_code)
        try c.encode(v.calMin, forKey: .cal_min)
        try c.encode(v.calMax, forKey: .cal_max)
        try c.encode(intensity, forKey: .intensity)
        if let axis = slicesAxis {
            var sc = c.nestedContainer(keyedBy: SliceKeys.self, forKey: .slices)
            try sc.encode(axis.rawValue, forKey: .axis)
            try sc.encode(slices, forKey: .stats)
        } else {
            try c.encodeNil(forKey: .slices)
        }
    }

    /// The report as pretty-printed JSON with sorted keys (non-finite header numbers as strings).
    public func json() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return String(decoding: try e.encode(self), as: UTF8.self) + "\n"
    }

    /// The report as aligned text for a terminal.
    public func text() -> String {
        let v = volume
        func f(_ x: Double?) -> String {
            guard let x else { return "-" }
            return x == x.rounded() && abs(x) < 1e9 ? String(Int(x)) : String(format: "%.6g", x)
        }
        func row(_ name: String, _ value: String) -> String { name.padding(toLength: 13, withPad: " ", startingAt: 0) + value }
        var lines: [String] = []
        lines.append(row("file", file))
        lines.append(row("format", "\(header.format), \(header.compressed ? "gzip" : "uncompressed"), "
            + (header.bigEndian ? "big-endian" : "little-endian")))
        let vols = header.volumeCount == 1 ? "1 volume" : "volume \(volumeIndex) of \(header.volumeCount)"
        lines.append(row("dims", "\(v.dims.i) x \(v.dims.j) x \(v.dims.k) (\(vols))"))
        lines.append(row("spacing", "\(f(v.spacing.x)) x \(f(v.spacing.y)) x \(f(v.spacing.z)) \(v.units)"))
        lines.append(row("datatype", "\(v.datatype) (bitpix \(header.bitpix))"))
        lines.append(row("scaling", v.scaling.map { "slope \(f($0.slope)), intercept \(f($0.intercept))" } ?? "none"))
        lines.append(row("orientation", orientation))
        lines.append(row("affine", "from \(v.affineSource) (sform_code \(v.sformCode), qform_code \(v.qformCode))"))
        for r in v.affine.rows.prefix(3) {
            lines.append(row("", r.map { String(format: "%10.4f", $0) }.joined(separator: " ")))
        }
        if !v.description.isEmpty { lines.append(row("description", v.description)) }
        let s = intensity
        lines.append(row("intensity", "min \(f(s.min))  max \(f(s.max))  mean \(f(s.mean))  std \(f(s.std))"))
        lines.append(row("percentiles", IntensityStats.reportedPercentiles.map { p in
            "\(IntensityStats.key(p)) \(f(s.percentiles[IntensityStats.key(p)]))" }.joined(separator: "  ")))
        lines.append(row("non-finite", "\(s.nan) NaN, \(s.inf) Inf (of \(v.dims.count) voxels)"))
        if let axis = slicesAxis {
            lines.append("")
            lines.append([axis.rawValue, "min", "max", "mean", "std", "nan", "inf"]
                .map { $0.padding(toLength: 12, withPad: " ", startingAt: 0) }.joined())
            for sl in slices {
                let t = sl.stats
                lines.append([String(sl.index), f(t.min), f(t.max), f(t.mean), f(t.std), String(t.nan), String(t.inf)]
                    .map { $0.padding(toLength: 12, withPad: " ", startingAt: 0) }.joined())
            }
        }
        return lines.map { String($0.reversed().drop(while: { $0 == " " }).reversed()) }.joined(separator: "\n") + "\n"
    }
}

import Foundation
import NIfTI
import VoxelIO

/// A true lesion label that a component overlaps, and by how many voxels.
public struct TruthOverlap: Codable, Equatable, Sendable {
    /// The true lesion label.
    public var label: Int
    /// Voxels of the component carrying that label.
    public var voxels: Int
    /// An overlap.
    public init(label: Int, voxels: Int) { self.label = label; self.voxels = voxels }
}

/// One connected component of a thresholded heatmap.
public struct LesionComponent: Codable, Equatable, Sendable {
    /// 1...n, hottest component first (by peak heat; ties by first voxel in voxel order).
    public var id: Int
    /// Number of voxels.
    public var voxels: Int
    /// Volume in mm^3: voxels times the voxel volume (|det| of the affine's 3x3 block).
    public var volumeMM3: Double
    /// Mean voxel index (i, j, k), unweighted.
    public var centroidVoxel: [Double]
    /// The centroid in world coordinates (RAS+ mm, through the affine).
    public var centroidWorldMM: [Double]
    /// Smallest and largest voxel index along i, j, k (inclusive).
    public var bboxMin: [Int], bboxMax: [Int]
    /// Largest heat, its voxel, and the mean heat.
    public var peak: Float, peakVoxel: [Int], mean: Float
    /// With a truth mask: the true labels it overlaps, by label.
    public var truth: [TruthOverlap]?

    enum CodingKeys: String, CodingKey {
        case id, voxels, peak, mean, truth
        case volumeMM3 = "volume_mm3", centroidVoxel = "centroid_voxel", centroidWorldMM = "centroid_world_mm"
        case bboxMin = "bbox_min", bboxMax = "bbox_max", peakVoxel = "peak_voxel"
    }
}

/// The lesion table of a heatmap: its components above a threshold, matched to true lesions.
public struct LesionTable: Codable, Equatable, Sendable {
    /// The map file (as given).
    public var map: String
    /// Heat at or above this is foreground.
    public var threshold: Float
    /// 6 or 26.
    public var connectivity: Int
    /// The grid (i, j, k).
    public var dims: [Int]
    /// The components, hottest first.
    public var components: [LesionComponent]
    /// The truth mask, its labels (non-zero values, rounded) and those no component overlaps.
    public var truthMask: String?
    /// The labels present in the truth mask.
    public var truthLabels: [Int]?
    /// The labels no component overlaps.
    public var missedLabels: [Int]?

    enum CodingKeys: String, CodingKey {
        case map, threshold, connectivity, dims, components
        case truthMask = "truth_mask", truthLabels = "truth_labels", missedLabels = "missed_labels"
    }

    /// Components of `map` at or above `threshold`, with overlaps against `truth` (a label mask on
    /// the same grid) when given.
    /// - Throws: `VoxplainError` naming both files when the grids differ, or for a bad threshold.
    public static func make(map: Volume, mapName: String = "map", threshold: Float = 0.5, truth: Volume? = nil,
                            truthName: String = "truth", connectivity: Connectivity = .twentySix) throws -> LesionTable {
        guard threshold.isFinite else { throw VoxplainError("--threshold \(threshold): must be a finite number") }
        if let truth { try Montage.checkSameGrid(truth, truthName, as: map, mapName, role: "truth mask") }
        let cc = try ComponentLabels(values: map.voxels, dims: map.dims, threshold: threshold, connectivity: connectivity)
        let d = map.dims
        struct Acc {
            var n = 0, sum = SIMD3<Double>.zero, lo = [Int.max, Int.max, Int.max], hi = [Int.min, Int.min, Int.min]
            var heat = 0.0, peak = -Float.infinity, peakIndex = 0, overlap: [Int: Int] = [:]
        }
        var acc = [Acc](repeating: Acc(), count: cc.count + 1)
        var truthLabels = Set<Int>()
        // The arrays taken out once: unwrapping `truth` and reading `map.voxels` per voxel copied the
        // volumes (with their retains) for every voxel, 0.15 s a map of a 63 M-voxel CT.
        let truthVoxels = truth?.voxels, mapVoxels = map.voxels, componentOf = cc.labels
        for k in 0..<d.k {
            for j in 0..<d.j {
                for i in 0..<d.i {
                    let n = i + d.i * (j + d.j * k)
                    var t: Int? = nil
                    if let truthVoxels {
                        let x = truthVoxels[n]
                        if x.isFinite && x != 0 { t = Int(x.rounded()); truthLabels.insert(Int(x.rounded())) }
                    }
                    let c = Int(componentOf[n])
                    guard c > 0 else { continue }
                    let v = mapVoxels[n]
                    acc[c].n += 1
                    acc[c].sum += SIMD3(Double(i), Double(j), Double(k))
                    acc[c].lo[0] = min(acc[c].lo[0], i); acc[c].hi[0] = max(acc[c].hi[0], i)
                    acc[c].lo[1] = min(acc[c].lo[1], j); acc[c].hi[1] = max(acc[c].hi[1], j)
                    acc[c].lo[2] = min(acc[c].lo[2], k); acc[c].hi[2] = max(acc[c].hi[2], k)
                    acc[c].heat += Double(v)
                    if v > acc[c].peak { acc[c].peak = v; acc[c].peakIndex = n }
                    if let t { acc[c].overlap[t, default: 0] += 1 }
                }
            }
        }
        let affine = map.affine
        let voxelVolume = abs(affine.determinant3)
        var comps: [(first: Int, comp: LesionComponent)] = []
        for c in 1..<(cc.count + 1) {
            let a = acc[c]
            let centroid = a.sum / Double(a.n)
            let w = affine.apply(centroid)
            let p = a.peakIndex
            let overlaps = truth == nil ? nil : a.overlap.keys.sorted().map { TruthOverlap(label: $0, voxels: a.overlap[$0] ?? 0) }
            comps.append((c, LesionComponent(id: 0, voxels: a.n, volumeMM3: Double(a.n) * voxelVolume,
                                             centroidVoxel: [centroid.x, centroid.y, centroid.z], centroidWorldMM: [w.x, w.y, w.z],
                                             bboxMin: a.lo, bboxMax: a.hi, peak: a.peak,
                                             peakVoxel: [p % d.i, (p / d.i) % d.j, p / (d.i * d.j)],
                                             mean: Float(a.heat / Double(a.n)), truth: overlaps)))
        }
        comps.sort { $0.comp.peak > $1.comp.peak || ($0.comp.peak == $1.comp.peak && $0.first < $1.first) }
        let components = comps.enumerated().map { n, c -> LesionComponent in var x = c.comp; x.id = n + 1; return x }
        let labels = truth == nil ? nil : truthLabels.sorted()
        let hit = Set(components.flatMap { ($0.truth ?? []).map(\.label) })
        return LesionTable(map: mapName, threshold: threshold, connectivity: connectivity.rawValue, dims: d.array,
                           components: components, truthMask: truth == nil ? nil : truthName, truthLabels: labels,
                           missedLabels: labels.map { $0.filter { !hit.contains($0) } })
    }

    /// Pretty JSON with stable keys.
    public func json() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try e.encode(self), as: UTF8.self) + "\n"
    }

    /// CSV: one header row, one row per component; truth columns list labels and overlap counts
    /// separated by ";" (empty without a truth mask).
    public func csv() -> String {
        var lines = ["id,voxels,volume_mm3,centroid_i,centroid_j,centroid_k,centroid_x_mm,centroid_y_mm,centroid_z_mm,"
            + "bbox_min_i,bbox_min_j,bbox_min_k,bbox_max_i,bbox_max_j,bbox_max_k,peak,mean,peak_i,peak_j,peak_k,truth_labels,truth_overlap_voxels"]
        for c in components {
            var f: [String] = [String(c.id), String(c.voxels), formatNumber(c.volumeMM3, decimals: 3)]
            f += c.centroidVoxel.map { formatNumber($0, decimals: 3) } + c.centroidWorldMM.map { formatNumber($0, decimals: 3) }
            f += (c.bboxMin + c.bboxMax).map(String.init)
            f += [formatNumber(Double(c.peak), decimals: 6), formatNumber(Double(c.mean), decimals: 6)] + c.peakVoxel.map(String.init)
            f += [(c.truth ?? []).map { String($0.label) }.joined(separator: ";"), (c.truth ?? []).map { String($0.voxels) }.joined(separator: ";")]
            lines.append(f.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A text table for people.
    public func text() -> String {
        func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
        func triple(_ v: [Double], _ d: Int) -> String { "(" + v.map { formatNumber($0, decimals: d) }.joined(separator: ", ") + ")" }
        var out = "map \(map)  threshold \(formatNumber(Double(threshold), decimals: 3))  \(connectivity)-connected  "
            + "\(components.count) component\(components.count == 1 ? "" : "s")\n"
        let header = [pad("id", 4), pad("voxels", 8), pad("mm3", 11), pad("centroid voxel (i, j, k)", 26),
                      pad("centroid RAS mm (x, y, z)", 28), pad("bbox i,j,k min - max", 28), pad("peak", 7), pad("mean", 7)]
            + (truthMask == nil ? [] : ["  truth label (overlap voxels)"])
        out += header.joined(separator: " ") + "\n"
        for c in components {
            let bbox = c.bboxMin.map(String.init).joined(separator: ",") + " - " + c.bboxMax.map(String.init).joined(separator: ",")
            var row = [pad(String(c.id), 4), pad(String(c.voxels), 8), pad(formatNumber(c.volumeMM3, decimals: 1), 11),
                       pad(triple(c.centroidVoxel, 1), 26), pad(triple(c.centroidWorldMM, 1), 28), pad(bbox, 28),
                       pad(formatNumber(Double(c.peak), decimals: 3), 7), pad(formatNumber(Double(c.mean), decimals: 3), 7)]
            if let t = c.truth {
                row.append("  " + (t.isEmpty ? "none (false positive)" : t.map { "\($0.label) (\($0.voxels))" }.joined(separator: ", ")))
            }
            out += row.joined(separator: " ") + "\n"
        }
        if let truthLabels, let missedLabels {
            out += "truth \(truthMask ?? ""): \(truthLabels.count) lesion\(truthLabels.count == 1 ? "" : "s"); missed (no component): "
                + (missedLabels.isEmpty ? "none" : missedLabels.map(String.init).joined(separator: ", ")) + "\n"
        }
        return out
    }

    /// `voxplain lesions`: reads the map (and truth), returns the table.
    /// - Throws: one-line errors naming the file or option.
    public static func run(mapPath: String, threshold: Float, truthPath: String?, connectivity: Connectivity = .twentySix) throws -> LesionTable {
        let map = try NIfTIFile.read(mapPath)
        let truth = try truthPath.map { try NIfTIFile.read($0) }
        return try make(map: map, mapName: mapPath, threshold: threshold, truth: truth, truthName: truthPath ?? "truth", connectivity: connectivity)
    }

    /// Writes the CSV to `path` atomically, refusing to overwrite `inputs`.
    /// - Throws: `VoxplainError` naming `path`.
    public func writeCSV(to path: String, protecting inputs: [String]) throws {
        try NIfTIFile.checkOutputPath(path, protecting: inputs)
        do { try AtomicFile.write(Data(csv().utf8), to: URL(fileURLWithPath: path)) } catch {
            throw VoxplainError("\(path): \(error)")
        }
    }
}

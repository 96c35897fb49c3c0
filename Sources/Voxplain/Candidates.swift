import Foundation

/// A point to centre a model input on: world mm (RAS+, or LPS when the list says so) or a scan voxel.
public struct Candidate: Sendable, Equatable, Codable {
    public var world: [Double]?
    public var voxel: [Double]?
    /// An identifier from the list (LUNA16 `seriesuid`, a row number...).
    public var id: String

    public init(world: [Double]? = nil, voxel: [Double]? = nil, id: String) {
        self.world = world; self.voxel = voxel; self.id = id
    }

    /// Reads a candidates CSV: a header with `coordX,coordY,coordZ` (world mm, as LUNA16's
    /// candidates.csv) or `i,j,k` (voxels); other columns are ignored. With `seriesuid` and `series`
    /// given, only that series' rows are kept.
    /// - Throws: `VoxplainError` naming the file and line.
    public static func read(_ path: String, series: String? = nil) throws -> [Candidate] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw VoxplainError("\(path): cannot read the candidates list")
        }
        let lines = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard let header = lines.first.map(DatasetList.fields) else { throw VoxplainError("\(path): the list is empty") }
        let world = ["coordX", "coordY", "coordZ"].compactMap { header.firstIndex(of: $0) }
        let voxel = ["i", "j", "k"].compactMap { header.firstIndex(of: $0) }
        guard world.count == 3 || voxel.count == 3 else {
            throw VoxplainError("\(path): the header needs coordX,coordY,coordZ (world mm) or i,j,k (voxels), got \(header)")
        }
        let seriesColumn = header.firstIndex(of: "seriesuid")
        var out: [Candidate] = []
        for (n, line) in lines.dropFirst().enumerated() {
            let f = DatasetList.fields(line)
            guard f.count == header.count else { throw VoxplainError("\(path): line \(n + 2) has \(f.count) fields, the header has \(header.count)") }
            if let series, let c = seriesColumn, f[c] != series { continue }
            let cols = world.count == 3 ? world : voxel
            let values = cols.map { Double(f[$0]) }
            guard let v = values as? [Double], v.allSatisfy(\.isFinite) else {
                throw VoxplainError("\(path): line \(n + 2): coordinates \(cols.map { f[$0] }) are not numbers")
            }
            let id = seriesColumn.map { "\(f[$0]) #\(n + 1)" } ?? "#\(n + 1)"
            out.append(world.count == 3 ? Candidate(world: v, id: id) : Candidate(voxel: v, id: id))
        }
        guard !out.isEmpty else { throw VoxplainError("\(path): no candidates\(series.map { " for series \($0)" } ?? "")") }
        return out
    }
}

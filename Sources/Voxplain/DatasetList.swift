import Foundation

/// A CSV list of scans for dataset commands (`hrcam-fit`, `evaluate`): a header row naming the columns
/// (`scan` required; `mask`, `label` and others optional), then one row per scan. Relative paths are
/// resolved against the CSV's folder. Fields may be quoted with `"`.
public struct DatasetList: Sendable {
    public struct Row: Sendable {
        public var scan: String
        public var mask: String?
        public var label: String?
        /// Every column by header name, as written.
        public var fields: [String: String]
    }
    public var path: String
    public var rows: [Row]

    /// Reads and checks a list.
    /// - Throws: `VoxplainError` naming the file and line for a missing file, a header without `scan`,
    ///   a row with the wrong number of fields, or an empty list.
    public init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw VoxplainError("\(path): cannot read the list")
        }
        let lines = text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline)
            .map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.hasPrefix("#") }
        guard let header = lines.first.map({ DatasetList.fields($0).map { $0.lowercased() } }) else {
            throw VoxplainError("\(path): the list is empty (expected a header such as scan,mask,label)")
        }
        guard let scanColumn = header.firstIndex(of: "scan") else {
            throw VoxplainError("\(path): the header \(header) has no 'scan' column")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : base.appendingPathComponent(p).path }
        rows = try lines.dropFirst().enumerated().map { n, line in
            let f = DatasetList.fields(line)
            guard f.count == header.count else {
                throw VoxplainError("\(path): line \(n + 2) has \(f.count) fields, the header has \(header.count)")
            }
            guard let scan = Optional(f[scanColumn]), !scan.isEmpty else {
                throw VoxplainError("\(path): line \(n + 2) has no scan")
            }
            let byName = Dictionary(zip(header, f), uniquingKeysWith: { a, _ in a })
            let mask = byName["mask"].flatMap { $0.isEmpty ? nil : resolve($0) }
            let label = byName["label"].flatMap { $0.isEmpty ? nil : $0 }
            return Row(scan: resolve(scan), mask: mask, label: label, fields: byName)
        }
        guard !rows.isEmpty else { throw VoxplainError("\(path): the list has a header but no scans") }
    }

    /// The fields of one CSV line (commas inside double quotes kept; `""` is a quote).
    static func fields(_ line: String) -> [String] {
        var out: [String] = [], cur = "", quoted = false
        var chars = Array(line).makeIterator()
        while let ch = chars.next() {
            if quoted {
                if ch == "\"" {
                    if let next = chars.next() {
                        if next == "\"" { cur.append("\"") } else { quoted = false; if next == "," { out.append(cur); cur = "" } else { cur.append(next) } }
                    } else { quoted = false }
                } else { cur.append(ch) }
            } else if ch == "\"" { quoted = true }
            else if ch == "," { out.append(cur); cur = "" }
            else { cur.append(ch) }
        }
        out.append(cur)
        return out.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}

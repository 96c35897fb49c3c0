import Foundation
import VoxelIO
import VoxelTensor

extension SafetensorsFile {
    /// The bytes of a safetensors file holding `tensors` as F32, named by their keys, with `metadata`.
    ///
    /// Tensors are stored in name order; the header is padded with spaces to a multiple of 8 bytes
    /// (as the reference writer does) so the data section is aligned.
    /// Throws `ModelError` of kind `.invalid` for an empty name or the reserved name `__metadata__`.
    public static func serialize(_ tensors: [String: Tensor], metadata: [String: String] = [:],
                                 fileName: String = "<memory>") throws -> [UInt8] {
        let names = tensors.keys.sorted()
        var header = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0] ?? ""))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for name in names {
            guard !name.isEmpty, name != "__metadata__" else {
                throw ModelError(fileName, .invalid, "cannot write a tensor named '\(name)' (empty or reserved)")
            }
            let t = tensors[name] ?? Tensor(scalar: 0)
            let bytes = t.count * 4
            fields.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],"
                          + "\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += fields.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }

        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for name in names {
            guard let t = tensors[name] else { continue }
            #if _endian(little)
            t.scalars.withUnsafeBytes { out.append(contentsOf: $0) }
            #else
            for v in t.scalars { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            #endif
        }
        return out
    }

    /// Writes `tensors` (as F32) and `metadata` to a safetensors file at `url`, atomically: the bytes
    /// go to a temporary file in the same folder, which is then renamed over `url`, so readers never
    /// see a partial file.
    ///
    /// Throws `ModelError` of kind `.io` when the folder is not writable, `.invalid` for bad names.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        let name = url.lastPathComponent
        let bytes = try serialize(tensors, metadata: metadata, fileName: name)
        try writeModelFile(Data(bytes), to: url)
    }
}

/// `s` as a JSON string literal (quotes, backslashes and control characters escaped).
func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where u.value < 0x20:
            let hex = String(u.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}

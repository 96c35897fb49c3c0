import Foundation
import VoxelTensor

// The safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes   little-endian UInt64 N, the header length
//   N bytes   a UTF-8 JSON object: {"__metadata__": {str: str}?, name: {"dtype", "shape", "data_offsets"}}
//   rest      the tensors' bytes, little-endian, row-major; data_offsets [begin, end) are relative to
//             the start of this section and must tile it exactly (contiguous, no gaps, no overlap).
// The checks below follow the reference implementation's: a header of at most 100 MB that starts
// with '{', every tensor's byte count equal to its shape's element count times its dtype size.

/// A tensor read from a safetensors file.
public struct SafetensorsTensor: Sendable {
    /// The tensor's name (its key in the header).
    public var name: String
    /// The stored element type, as the header names it (`F32`, `F16`, `BF16`, `F64`, `I64`, `I32`).
    public var dtype: String
    /// The values converted to Float32, shaped as stored: `[d0, d1, ...]`.
    public var value: Tensor
    /// The exact values of an integer tensor (`I64`, `I32`), row-major; nil for floating-point ones.
    public var integers: [Int64]?
}

/// A safetensors file: named tensors and string metadata.
public struct SafetensorsFile: Sendable {
    /// The file name (used in error messages).
    public var fileName: String
    /// The tensors, in the order of their data in the file.
    public var tensors: [SafetensorsTensor]
    /// The `__metadata__` string map (empty when absent).
    public var metadata: [String: String]

    /// The tensor named `name`, if present.
    public subscript(name: String) -> SafetensorsTensor? { tensors.first { $0.name == name } }

    /// Bytes per element of every dtype the format defines (needed to validate offsets even for
    /// tensors whose type is not read).
    static let dtypeSizes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
    ]
    /// The dtypes this reader converts; others are rejected by name.
    public static let readableDTypes = ["F32", "F16", "BF16", "F64", "I64", "I32"]
    /// The largest header accepted, as in the reference implementation.
    static let maxHeaderLength = 100_000_000

    /// Reads the safetensors file at `url`.
    ///
    /// Throws `ModelError` when the file cannot be read, its header is malformed, offsets are out of
    /// bounds, overlap or leave gaps, or a tensor has a dtype that is not read.
    public init(contentsOf url: URL) throws {
        self = try withModelFileBytes(url) { try SafetensorsFile(buffer: $0, fileName: $1) }
    }

    /// Decodes safetensors bytes; `fileName` names them in errors. Throws as `init(contentsOf:)`.
    public init(bytes: [UInt8], fileName: String) throws {
        self = try bytes.withUnsafeBytes { try SafetensorsFile(buffer: $0, fileName: fileName) }
    }

    private struct Entry: Decodable {
        var dtype: String
        var shape: [Int]
        var data_offsets: [Int]
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// The header: tensor entries by name and the optional metadata.
    private struct Header: Decodable {
        var entries: [(String, Entry)] = []
        var metadata: [String: String] = [:]
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: AnyKey.self)
            for key in c.allKeys {
                if key.stringValue == "__metadata__" {
                    metadata = try c.decode([String: String].self, forKey: key)
                } else {
                    entries.append((key.stringValue, try c.decode(Entry.self, forKey: key)))
                }
            }
        }
    }

    /// Decodes safetensors bytes from a borrowed buffer. Throws as `init(contentsOf:)`.
    public init(buffer: UnsafeRawBufferPointer, fileName: String) throws {
        func fail(_ kind: ModelError.Kind, _ message: String) -> ModelError { ModelError(fileName, kind, message) }
        guard buffer.count >= 8 else {
            throw fail(.corrupt, "not a safetensors file: \(buffer.count) bytes, too short for the 8-byte header length")
        }
        let n = UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard n <= UInt64(SafetensorsFile.maxHeaderLength) else {
            throw fail(.corrupt, "not a safetensors file: header length \(n) exceeds the 100 MB limit")
        }
        let headerLength = Int(n)
        guard headerLength <= buffer.count - 8 else {
            throw fail(.corrupt, "truncated safetensors file: header length \(headerLength) runs past the end of the file (\(buffer.count) bytes)")
        }
        guard headerLength >= 2, buffer[8] == UInt8(ascii: "{") else {
            throw fail(.corrupt, "not a safetensors file: the header does not start with a JSON object")
        }
        let headerBytes = Data(UnsafeRawBufferPointer(rebasing: buffer[8..<(8 + headerLength)]))
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: headerBytes)
        } catch {
            throw fail(.corrupt, "the safetensors header is not valid JSON of the expected form (\(Self.describe(error)))")
        }
        let dataStart = 8 + headerLength
        let dataSize = buffer.count - dataStart

        // Validate every entry, then the tiling of the data section.
        var entries: [(name: String, entry: Entry, begin: Int, end: Int)] = []
        for (name, e) in header.entries {
            guard let size = SafetensorsFile.dtypeSizes[e.dtype] else {
                throw fail(.unsupportedDataType, "tensor '\(name)' has unknown dtype '\(e.dtype)'")
            }
            guard e.data_offsets.count == 2 else {
                throw fail(.invalid, "tensor '\(name)' has data_offsets \(e.data_offsets); expected [begin, end]")
            }
            let (begin, end) = (e.data_offsets[0], e.data_offsets[1])
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw fail(.invalid, "tensor '\(name)' has data_offsets [\(begin), \(end)] outside the data section (\(dataSize) bytes)")
            }
            var count = 1
            for d in e.shape {
                guard d >= 0 else { throw fail(.invalid, "tensor '\(name)' has a negative extent in shape \(e.shape)") }
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw fail(.invalid, "tensor '\(name)' has shape \(e.shape) whose product overflows") }
                count = p
            }
            let (bytes, o) = count.multipliedReportingOverflow(by: size)
            guard !o, bytes == end - begin else {
                throw fail(.invalid, "tensor '\(name)' has \(end - begin) bytes, but shape \(e.shape) of \(e.dtype) needs \(o ? "more than Int.max" : "\(bytes)")")
            }
            entries.append((name, e, begin, end))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for e in entries {
            guard e.begin == expected else {
                throw fail(.invalid, e.begin < expected
                           ? "tensor '\(e.name)' at bytes [\(e.begin), \(e.end)) overlaps the previous tensor (which ends at \(expected))"
                           : "a gap of \(e.begin - expected) bytes before tensor '\(e.name)' (data must be contiguous)")
            }
            expected = e.end
        }
        guard expected == dataSize else {
            throw fail(.invalid, "the tensors cover \(expected) bytes but the data section has \(dataSize)")
        }

        self.fileName = fileName
        self.metadata = header.metadata
        self.tensors = try entries.map { e in
            guard SafetensorsFile.readableDTypes.contains(e.entry.dtype) else {
                throw fail(.unsupportedDataType, "tensor '\(e.name)' has dtype \(e.entry.dtype), which Voxplain does not read"
                           + " (supported: \(SafetensorsFile.readableDTypes.joined(separator: ", ")))")
            }
            let src = UnsafeRawBufferPointer(rebasing: buffer[(dataStart + e.begin)..<(dataStart + e.end)])
            return try SafetensorsFile.convert(src, name: e.name, dtype: e.entry.dtype, shape: e.entry.shape)
        }
    }

    /// Converts one tensor's little-endian bytes (validated to fit `shape`) to a `SafetensorsTensor`.
    private static func convert(_ src: UnsafeRawBufferPointer, name: String, dtype: String,
                                shape: [Int]) throws -> SafetensorsTensor {
        func load<T: FixedWidthInteger>(_ i: Int, _: T.Type) -> T {
            T(littleEndian: src.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
        }
        let count = shape.product
        func floats(_ convert: (Int) -> Float) -> Tensor {
            Tensor(shape: shape) { dst in for i in 0..<count { dst[i] = convert(i) } }
        }
        switch dtype {
        case "F32":
            let value = Tensor(shape: shape) { dst in
                copyLittleEndian(from: src, to: UnsafeMutableRawBufferPointer(dst), as: UInt32.self)
            }
            return SafetensorsTensor(name: name, dtype: dtype, value: value, integers: nil)
        case "F16":
            return SafetensorsTensor(name: name, dtype: dtype, value: floats { floatFromHalfBits(load($0, UInt16.self)) },
                                     integers: nil)
        case "BF16":
            return SafetensorsTensor(name: name, dtype: dtype, value: floats { floatFromBFloat16Bits(load($0, UInt16.self)) },
                                     integers: nil)
        case "F64":
            return SafetensorsTensor(name: name, dtype: dtype,
                                     value: floats { Float(Double(bitPattern: load($0, UInt64.self))) }, integers: nil)
        default:  // I64, I32
            let ints: [Int64] = (0..<count).map { dtype == "I64" ? load($0, Int64.self) : Int64(load($0, Int32.self)) }
            return SafetensorsTensor(name: name, dtype: dtype, value: try Tensor(shape: shape, scalars: ints.map { Float($0) }),
                                     integers: ints)
        }
    }

    /// A one-line description of a JSON decoding error.
    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c),
             DecodingError.keyNotFound(_, let c), DecodingError.dataCorrupted(let c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return (path.isEmpty ? "" : "at \(path): ") + c.debugDescription
        default:
            return "\(error)"
        }
    }
}

// A small protobuf wire-format reader for the ONNX subset (see docs/onnx.md for why it is hand-written).
//
// The reader walks a borrowed byte buffer (the whole model file) by offsets, so length-delimited
// fields such as a large initializer's `raw_data` are returned as byte ranges and copied once, by the
// caller, straight into their destination. Every read is bounds-checked and throws `ProtobufError` on
// truncated or corrupt input; nothing traps on user data (no force unwraps, no arithmetic overflow).

/// A malformed protobuf message: what is wrong and the byte offset where it was found.
struct ProtobufError: Error, CustomStringConvertible {
    var message: String
    var offset: Int
    /// True when a read needed bytes beyond the end of the whole buffer (a file cut short), rather
    /// than beyond the end of an embedded message (a corrupt one).
    var pastEndOfBuffer = false
    var description: String { "\(message) at byte \(offset)" }
}

/// The wire type in the low three bits of a field tag.
enum WireType: UInt8 {
    case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
}

/// A cursor over the bytes of one protobuf message (a sub-range of a borrowed buffer).
///
/// The buffer must outlive the reader; readers are only used inside `withUnsafeBytes` closures.
struct ProtobufReader {
    let buffer: UnsafeRawBufferPointer
    private(set) var position: Int
    let end: Int

    /// A reader over `range` of `buffer`. The range must lie inside the buffer (checked by callers
    /// that obtained it from `readLengthDelimited`, which validates it).
    init(_ buffer: UnsafeRawBufferPointer, range: Range<Int>) {
        self.buffer = buffer
        self.position = range.lowerBound
        self.end = range.upperBound
    }

    /// A reader over the whole buffer.
    init(_ buffer: UnsafeRawBufferPointer) { self.init(buffer, range: 0..<buffer.count) }

    var isAtEnd: Bool { position >= end }

    /// The next field's number and wire type, or nil at the end of the message.
    mutating func nextField() throws -> (number: Int, wire: WireType)? {
        guard position < end else { return nil }
        let start = position
        let tag = try readVarint()
        guard tag <= UInt64(UInt32.max) else {
            throw ProtobufError(message: "field tag \(tag) is larger than 32 bits", offset: start)
        }
        let number = Int(tag >> 3)
        guard number > 0 else { throw ProtobufError(message: "field number 0 is invalid", offset: start) }
        guard let wire = WireType(rawValue: UInt8(tag & 7)) else {
            throw ProtobufError(message: "unknown wire type \(tag & 7) for field \(number)", offset: start)
        }
        return (number, wire)
    }

    /// A base-128 varint of at most 10 bytes whose value fits 64 bits.
    mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = position
        while true {
            guard position < end else {
                throw ProtobufError(message: "truncated varint", offset: start, pastEndOfBuffer: end == buffer.count)
            }
            let byte = buffer[position]
            position += 1
            if shift == 63 && byte > 1 {
                // The tenth byte may only carry the top bit of a 64-bit value.
                throw ProtobufError(message: "varint overflows 64 bits", offset: start)
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 {
                throw ProtobufError(message: "varint longer than 10 bytes", offset: start)
            }
        }
    }

    /// A little-endian 32-bit value.
    mutating func readFixed32() throws -> UInt32 {
        guard end - position >= 4 else {
            throw ProtobufError(message: "truncated 32-bit field", offset: position, pastEndOfBuffer: end == buffer.count)
        }
        let v = buffer.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position += 4
        return UInt32(littleEndian: v)
    }

    /// A little-endian 64-bit value.
    mutating func readFixed64() throws -> UInt64 {
        guard end - position >= 8 else {
            throw ProtobufError(message: "truncated 64-bit field", offset: position, pastEndOfBuffer: end == buffer.count)
        }
        let v = buffer.loadUnaligned(fromByteOffset: position, as: UInt64.self)
        position += 8
        return UInt64(littleEndian: v)
    }

    /// The byte range of a length-delimited field's payload, validated against the message end.
    mutating func readLengthDelimited() throws -> Range<Int> {
        let start = position
        let length = try readVarint()
        guard length <= UInt64(Int.max) else {
            throw ProtobufError(message: "negative or huge length \(length)", offset: start)
        }
        let n = Int(length)
        guard n <= end - position else {
            throw ProtobufError(message: "length \(n) runs past the end of the message (\(end - position) bytes left)",
                                offset: start, pastEndOfBuffer: end == buffer.count)
        }
        let range = position..<(position + n)
        position += n
        return range
    }

    /// A reader over an embedded message (a length-delimited field).
    mutating func readMessage() throws -> ProtobufReader {
        ProtobufReader(buffer, range: try readLengthDelimited())
    }

    /// A UTF-8 string field; invalid UTF-8 is replaced by U+FFFD rather than rejected.
    mutating func readString() throws -> String {
        let range = try readLengthDelimited()
        return String(decoding: UnsafeRawBufferPointer(rebasing: buffer[range]), as: UTF8.self)
    }

    /// Checks that a field has the wire type the schema expects.
    func expect(_ wire: WireType, _ expected: WireType, field: Int, in message: String) throws {
        guard wire == expected else {
            throw ProtobufError(message: "\(message) field \(field) has wire type \(wire.rawValue), expected \(expected.rawValue)",
                                offset: position)
        }
    }

    /// Skips a field of any wire type. Groups are skipped up to their matching end tag, to a nesting
    /// depth of 64.
    mutating func skip(_ wire: WireType, field: Int) throws {
        switch wire {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        case .endGroup: throw ProtobufError(message: "unexpected end-group tag for field \(field)", offset: position)
        case .startGroup:
            var open: [Int] = [field]
            while let last = open.last {
                guard let (number, w) = try nextField() else {
                    throw ProtobufError(message: "truncated group (field \(last))", offset: position,
                                        pastEndOfBuffer: end == buffer.count)
                }
                switch w {
                case .startGroup:
                    guard open.count < 64 else { throw ProtobufError(message: "groups nested too deeply", offset: position) }
                    open.append(number)
                case .endGroup:
                    guard number == last else {
                        throw ProtobufError(message: "end-group tag \(number) does not close group \(last)", offset: position)
                    }
                    open.removeLast()
                default: try skip(w, field: number)
                }
            }
        }
    }

    // MARK: Repeated scalar fields (packed or not)

    /// Appends a repeated varint field's values: one value (unpacked) or a packed run.
    mutating func appendVarints(_ wire: WireType, field: Int, to values: inout [Int64]) throws {
        switch wire {
        case .varint: values.append(Int64(bitPattern: try readVarint()))
        case .lengthDelimited:
            var packed = try readMessage()
            while !packed.isAtEnd { values.append(Int64(bitPattern: try packed.readVarint())) }
            position = packed.end
        default: throw ProtobufError(message: "repeated varint field \(field) has wire type \(wire.rawValue)", offset: position)
        }
    }

    /// Appends a repeated 32-bit field's raw bit patterns: one value (unpacked) or a packed run
    /// copied in one pass.
    mutating func appendFixed32s(_ wire: WireType, field: Int, to values: inout [UInt32]) throws {
        switch wire {
        case .fixed32: values.append(try readFixed32())
        case .lengthDelimited:
            let range = try readLengthDelimited()
            guard range.count % 4 == 0 else {
                throw ProtobufError(message: "packed 32-bit field \(field) has \(range.count) bytes, not a multiple of 4",
                                    offset: range.lowerBound)
            }
            appendLittleEndian(range, count: range.count / 4, to: &values)
        default: throw ProtobufError(message: "repeated 32-bit field \(field) has wire type \(wire.rawValue)", offset: position)
        }
    }

    /// Appends a repeated 64-bit field's raw bit patterns: one value (unpacked) or a packed run.
    mutating func appendFixed64s(_ wire: WireType, field: Int, to values: inout [UInt64]) throws {
        switch wire {
        case .fixed64: values.append(try readFixed64())
        case .lengthDelimited:
            let range = try readLengthDelimited()
            guard range.count % 8 == 0 else {
                throw ProtobufError(message: "packed 64-bit field \(field) has \(range.count) bytes, not a multiple of 8",
                                    offset: range.lowerBound)
            }
            appendLittleEndian(range, count: range.count / 8, to: &values)
        default: throw ProtobufError(message: "repeated 64-bit field \(field) has wire type \(wire.rawValue)", offset: position)
        }
    }

    /// Appends `count` little-endian integers stored in `range` (validated by the caller).
    private func appendLittleEndian<T: FixedWidthInteger>(_ range: Range<Int>, count: Int, to values: inout [T]) {
        let old = values.count
        values.append(contentsOf: repeatElement(0, count: count))
        values.withUnsafeMutableBytes { dst in
            copyLittleEndian(from: UnsafeRawBufferPointer(rebasing: buffer[range]),
                             to: UnsafeMutableRawBufferPointer(rebasing: dst[(old * MemoryLayout<T>.size)...]),
                             as: T.self)
        }
    }
}

/// Copies little-endian integers of type `T` from `source` to native-endian `destination` (equal
/// sizes, a multiple of `T`'s size): one memcpy on little-endian hosts.
func copyLittleEndian<T: FixedWidthInteger>(from source: UnsafeRawBufferPointer,
                                            to destination: UnsafeMutableRawBufferPointer, as: T.Type) {
    let n = min(source.count, destination.count)
    guard n > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return }
    #if _endian(little)
    dst.copyMemory(from: src, byteCount: n)
    #else
    let size = MemoryLayout<T>.size
    for i in 0..<(n / size) {
        let v = source.loadUnaligned(fromByteOffset: i * size, as: T.self)
        destination.storeBytes(of: T(littleEndian: v), toByteOffset: i * size, as: T.self)
    }
    #endif
}

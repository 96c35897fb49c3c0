// A minimal protobuf writer for tests: builds messages field by field, including encodings the
// Python `onnx` package never writes (unpacked repeated fields, groups, absent attribute types).

struct ProtobufWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func tag(_ field: Int, _ wire: UInt8) { varint(UInt64(field) << 3 | UInt64(wire)) }

    mutating func int(_ field: Int, _ value: Int64) { tag(field, 0); varint(UInt64(bitPattern: value)) }
    mutating func fixed32(_ field: Int, _ value: UInt32) {
        tag(field, 5)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func fixed64(_ field: Int, _ value: UInt64) {
        tag(field, 1)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func float(_ field: Int, _ value: Float) { fixed32(field, value.bitPattern) }
    mutating func data(_ field: Int, _ payload: [UInt8]) {
        tag(field, 2)
        varint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }
    mutating func string(_ field: Int, _ s: String) { data(field, Array(s.utf8)) }
    mutating func message(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
        var w = ProtobufWriter()
        build(&w)
        data(field, w.bytes)
    }
    mutating func packedVarints(_ field: Int, _ values: [Int64]) {
        var w = ProtobufWriter()
        for v in values { w.varint(UInt64(bitPattern: v)) }
        data(field, w.bytes)
    }
    mutating func packedFloats(_ field: Int, _ values: [Float]) {
        var payload: [UInt8] = []
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { payload.append(contentsOf: $0) } }
        data(field, payload)
    }
}

/// Hand-built ONNX messages (field numbers from onnx.proto3).
enum ONNXBuilder {
    /// A model with one graph, the given opset imports, and a graph built by `graph`.
    static func model(opsets: [(String, Int64)] = [("", 17)], graph: (inout ProtobufWriter) -> Void) -> [UInt8] {
        var m = ProtobufWriter()
        m.int(1, 8)
        m.string(2, "builder")
        m.message(7, graph)
        for (domain, version) in opsets {
            m.message(8) { o in
                o.string(1, domain)
                o.int(2, version)
            }
        }
        return m.bytes
    }

    /// A NodeProto.
    static func node(_ g: inout ProtobufWriter, op: String, name: String, inputs: [String], outputs: [String],
                     domain: String = "", attributes: (inout ProtobufWriter) -> Void = { _ in }) {
        g.message(1) { n in
            for i in inputs { n.string(1, i) }
            for o in outputs { n.string(2, o) }
            n.string(3, name)
            n.string(4, op)
            if !domain.isEmpty { n.string(7, domain) }
            attributes(&n)
        }
    }
}

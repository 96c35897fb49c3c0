import Foundation
import VoxelTensor

// Decoding of the ONNX protobuf messages into the structs of ONNXModel.swift.
// Field numbers follow onnx/onnx.proto3 (ONNX 1.17); unknown fields are skipped.

extension ONNXModel {
    /// Reads and decodes the ONNX model at `url`.
    ///
    /// Throws `ModelError` when the file cannot be read, is not a well-formed ONNX protobuf, stores
    /// tensors in external files, uses unsupported element types, imports a default-domain opset
    /// outside `supportedOpsets`, or has nodes of another operator domain.
    public init(contentsOf url: URL) throws {
        self = try withModelFileBytes(url) { try ONNXModel(buffer: $0, fileName: $1) }
    }

    /// Decodes an ONNX model from its serialized bytes; `fileName` names it in errors.
    ///
    /// Throws `ModelError` as `init(contentsOf:)` does.
    public init(bytes: [UInt8], fileName: String) throws {
        self = try bytes.withUnsafeBytes { try ONNXModel(buffer: $0, fileName: fileName) }
    }

    /// Decodes an ONNX model from a borrowed buffer; `fileName` names it in errors.
    ///
    /// Throws `ModelError` as `init(contentsOf:)` does.
    public init(buffer: UnsafeRawBufferPointer, fileName: String) throws {
        if buffer.count >= 4, buffer[0] == 0x50, buffer[1] == 0x4B, buffer[2] == 3, buffer[3] == 4 {
            throw ModelError(fileName, .corrupt, "this is a zip archive (a PyTorch .pt/.pth checkpoint?), not an ONNX model;"
                             + " export the model with torch.onnx.export")
        }
        let decoder = ONNXDecoder(file: fileName, buffer: buffer)
        do {
            self = try decoder.model()
        } catch let e as ProtobufError {
            if e.pastEndOfBuffer {
                throw ModelError(fileName, .corrupt, "the file is truncated (\(buffer.count) bytes; \(e)); copy or export it again")
            }
            throw ModelError(fileName, .corrupt, "not an ONNX model, or a corrupt one: malformed protobuf (\(e))")
        }
        try checkOpsetsAndDomains()
    }

    /// Checks the default-domain opset range and that every node is in the default domain.
    private func checkOpsetsAndDomains() throws {
        guard let version = opsetVersion else {
            throw ModelError(fileName, .unsupportedOpset, "the model imports no default ONNX operator set (opset_import)")
        }
        guard ONNXModel.supportedOpsets.contains(version) else {
            throw ModelError(fileName, .unsupportedOpset,
                             "opset \(version) is not supported (supported: \(ONNXModel.supportedOpsets.lowerBound)..."
                             + "\(ONNXModel.supportedOpsets.upperBound)); re-export with e.g. opset_version=17")
        }
        if let node = graph.nodes.first(where: { !ONNXModel.isDefaultDomain($0.domain) }) {
            throw ModelError(fileName, .unsupportedDomain,
                             "node \(node.displayName) is from operator domain '\(node.domain)'; only the default ONNX domain is supported")
        }
    }
}

/// Decodes ONNX messages from one file's bytes.
struct ONNXDecoder {
    let file: String
    let buffer: UnsafeRawBufferPointer

    func error(_ kind: ModelError.Kind, _ message: String) -> ModelError { ModelError(file, kind, message) }

    // MARK: ModelProto

    func model() throws -> ONNXModel {
        var r = ProtobufReader(buffer)
        var irVersion: Int64 = 0, modelVersion: Int64 = 0
        var opsets: [ONNXOpsetImport] = []
        var producerName = "", producerVersion = "", domain = "", doc = ""
        var metadata: [ONNXStringEntry] = []
        var graph: ONNXGraph?
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: try r.expect(wire, .varint, field: field, in: "ModelProto"); irVersion = Int64(bitPattern: try r.readVarint())
            case 2: try r.expect(wire, .lengthDelimited, field: field, in: "ModelProto"); producerName = try r.readString()
            case 3: try r.expect(wire, .lengthDelimited, field: field, in: "ModelProto"); producerVersion = try r.readString()
            case 4: try r.expect(wire, .lengthDelimited, field: field, in: "ModelProto"); domain = try r.readString()
            case 5: try r.expect(wire, .varint, field: field, in: "ModelProto"); modelVersion = Int64(bitPattern: try r.readVarint())
            case 6: try r.expect(wire, .lengthDelimited, field: field, in: "ModelProto"); doc = try r.readString()
            case 7: try r.expect(wire, .lengthDelimited, field: field, in: "ModelProto"); graph = try self.graph(try r.readMessage())
            case 8: try r.expect(wire, .lengthDelimited, field: field, in: "ModelProto"); opsets.append(try opset(try r.readMessage()))
            case 14: try r.expect(wire, .lengthDelimited, field: field, in: "ModelProto"); metadata.append(try entry(try r.readMessage()))
            default: try r.skip(wire, field: field)
            }
        }
        guard let graph else {
            throw error(.corrupt, "not an ONNX model: no graph found (is this an ONNX file?)")
        }
        return ONNXModel(fileName: file, irVersion: irVersion, opsetImports: opsets, producerName: producerName,
                         producerVersion: producerVersion, domain: domain, modelVersion: modelVersion,
                         docString: doc, metadataProps: metadata, graph: graph)
    }

    func opset(_ reader: ProtobufReader) throws -> ONNXOpsetImport {
        var r = reader
        var result = ONNXOpsetImport(domain: "", version: 0)
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: try r.expect(wire, .lengthDelimited, field: field, in: "OperatorSetIdProto"); result.domain = try r.readString()
            case 2: try r.expect(wire, .varint, field: field, in: "OperatorSetIdProto"); result.version = Int64(bitPattern: try r.readVarint())
            default: try r.skip(wire, field: field)
            }
        }
        return result
    }

    func entry(_ reader: ProtobufReader) throws -> ONNXStringEntry {
        var r = reader
        var result = ONNXStringEntry(key: "", value: "")
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: try r.expect(wire, .lengthDelimited, field: field, in: "StringStringEntryProto"); result.key = try r.readString()
            case 2: try r.expect(wire, .lengthDelimited, field: field, in: "StringStringEntryProto"); result.value = try r.readString()
            default: try r.skip(wire, field: field)
            }
        }
        return result
    }

    // MARK: GraphProto

    func graph(_ reader: ProtobufReader) throws -> ONNXGraph {
        var r = reader
        var g = ONNXGraph(name: "", nodes: [], initializers: [], inputs: [], outputs: [], valueInfo: [], docString: "")
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: try r.expect(wire, .lengthDelimited, field: field, in: "GraphProto"); g.nodes.append(try node(try r.readMessage()))
            case 2: try r.expect(wire, .lengthDelimited, field: field, in: "GraphProto"); g.name = try r.readString()
            case 5:
                try r.expect(wire, .lengthDelimited, field: field, in: "GraphProto")
                g.initializers.append(try tensor(try r.readMessage(), role: "initializer"))
            case 10: try r.expect(wire, .lengthDelimited, field: field, in: "GraphProto"); g.docString = try r.readString()
            case 11: try r.expect(wire, .lengthDelimited, field: field, in: "GraphProto"); g.inputs.append(try valueInfo(try r.readMessage()))
            case 12: try r.expect(wire, .lengthDelimited, field: field, in: "GraphProto"); g.outputs.append(try valueInfo(try r.readMessage()))
            case 13: try r.expect(wire, .lengthDelimited, field: field, in: "GraphProto"); g.valueInfo.append(try valueInfo(try r.readMessage()))
            case 15:
                throw error(.unsupportedFeature, "the graph has sparse initializers, which Voxplain does not read; store them dense")
            default: try r.skip(wire, field: field)
            }
        }
        return g
    }

    // MARK: NodeProto and AttributeProto

    func node(_ reader: ProtobufReader) throws -> ONNXNode {
        var r = reader
        var n = ONNXNode(name: "", opType: "", domain: "", inputs: [], outputs: [], attributes: [], docString: "")
        // Attributes are decoded after the node's name and op type are known, for error messages.
        var attributeReaders: [ProtobufReader] = []
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: try r.expect(wire, .lengthDelimited, field: field, in: "NodeProto"); n.inputs.append(try r.readString())
            case 2: try r.expect(wire, .lengthDelimited, field: field, in: "NodeProto"); n.outputs.append(try r.readString())
            case 3: try r.expect(wire, .lengthDelimited, field: field, in: "NodeProto"); n.name = try r.readString()
            case 4: try r.expect(wire, .lengthDelimited, field: field, in: "NodeProto"); n.opType = try r.readString()
            case 5: try r.expect(wire, .lengthDelimited, field: field, in: "NodeProto"); attributeReaders.append(try r.readMessage())
            case 6: try r.expect(wire, .lengthDelimited, field: field, in: "NodeProto"); n.docString = try r.readString()
            case 7: try r.expect(wire, .lengthDelimited, field: field, in: "NodeProto"); n.domain = try r.readString()
            case 9: try r.expect(wire, .lengthDelimited, field: field, in: "NodeProto"); n.metadataProps.append(try entry(try r.readMessage()))
            default: try r.skip(wire, field: field)
            }
        }
        n.attributes = try attributeReaders.map { try attribute($0, of: n) }
        return n
    }

    /// AttributeProto.AttributeType codes.
    private enum AttributeType: Int64 {
        case undefined = 0, float = 1, int = 2, string = 3, tensor = 4, graph = 5, floats = 6, ints = 7, strings = 8
        case tensors = 9, graphs = 10, sparseTensor = 11, sparseTensors = 12, typeProto = 13, typeProtos = 14
    }

    func attribute(_ reader: ProtobufReader, of node: ONNXNode) throws -> ONNXAttribute {
        var r = reader
        var name = "", doc = ""
        var declared: Int64 = 0
        var f: Float = 0, i: Int64 = 0, s = ""
        var t: ProtobufReader?
        var floats: [UInt32] = [], ints: [Int64] = [], strings: [String] = []
        var tensors: [ProtobufReader] = []
        var seen: [AttributeType] = []  // kinds whose fields appear, in order, for files without `type`
        var unsupported: String?
        while let (field, wire) = try r.nextField() {
            let m = "AttributeProto"
            switch field {
            case 1: try r.expect(wire, .lengthDelimited, field: field, in: m); name = try r.readString()
            case 13: try r.expect(wire, .lengthDelimited, field: field, in: m); doc = try r.readString()
            case 20: try r.expect(wire, .varint, field: field, in: m); declared = Int64(bitPattern: try r.readVarint())
            case 2:
                try r.expect(wire, .fixed32, field: field, in: m); f = Float(bitPattern: try r.readFixed32()); seen.append(.float)
            case 3: try r.expect(wire, .varint, field: field, in: m); i = Int64(bitPattern: try r.readVarint()); seen.append(.int)
            case 4: try r.expect(wire, .lengthDelimited, field: field, in: m); s = try r.readString(); seen.append(.string)
            case 5: try r.expect(wire, .lengthDelimited, field: field, in: m); t = try r.readMessage(); seen.append(.tensor)
            case 7: try r.appendFixed32s(wire, field: field, to: &floats); seen.append(.floats)
            case 8: try r.appendVarints(wire, field: field, to: &ints); seen.append(.ints)
            case 9: try r.expect(wire, .lengthDelimited, field: field, in: m); strings.append(try r.readString()); seen.append(.strings)
            case 10: try r.expect(wire, .lengthDelimited, field: field, in: m); tensors.append(try r.readMessage()); seen.append(.tensors)
            case 6, 11: unsupported = "a graph (subgraph)"; try r.skip(wire, field: field)
            case 22, 23: unsupported = "a sparse tensor"; try r.skip(wire, field: field)
            case 14, 15: unsupported = "a type"; try r.skip(wire, field: field)
            default: try r.skip(wire, field: field)
            }
        }
        let kind: AttributeType
        if declared != 0 {
            guard let k = AttributeType(rawValue: declared) else {
                throw error(.corrupt, "node \(node.displayName) attribute '\(name)' has unknown attribute type \(declared)")
            }
            kind = k
        } else if let first = seen.first {
            kind = first
        } else if unsupported != nil {
            kind = .graph
        } else {
            throw error(.invalid, "node \(node.displayName) attribute '\(name)' has no value")
        }
        let role = "node \(node.displayName) attribute '\(name)'"
        let value: ONNXAttributeValue
        switch kind {
        case .float: value = .float(f)
        case .int: value = .int(i)
        case .string: value = .string(s)
        case .tensor:
            guard let t else { throw error(.invalid, "\(role) is declared TENSOR but holds no tensor") }
            value = .tensor(try tensor(t, role: "\(role): tensor"))
        case .floats: value = .floats(floats.map { Float(bitPattern: $0) })
        case .ints: value = .ints(ints)
        case .strings: value = .strings(strings)
        case .tensors: value = .tensors(try tensors.map { try tensor($0, role: "\(role): tensor") })
        case .graph, .graphs, .sparseTensor, .sparseTensors, .typeProto, .typeProtos, .undefined:
            throw error(.unsupportedFeature,
                        "\(role) holds \(unsupported ?? "a value of kind \(kind)"), which Voxplain does not support"
                        + " (control flow such as If, Loop and Scan cannot be imported)")
        }
        return ONNXAttribute(name: name, value: value, docString: doc)
    }

    // MARK: ValueInfoProto and TypeProto

    func valueInfo(_ reader: ProtobufReader) throws -> ONNXValueInfo {
        var r = reader
        var v = ONNXValueInfo(name: "", type: nil, docString: "")
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: try r.expect(wire, .lengthDelimited, field: field, in: "ValueInfoProto"); v.name = try r.readString()
            case 2: try r.expect(wire, .lengthDelimited, field: field, in: "ValueInfoProto"); v.type = try type(try r.readMessage())
            case 3: try r.expect(wire, .lengthDelimited, field: field, in: "ValueInfoProto"); v.docString = try r.readString()
            default: try r.skip(wire, field: field)
            }
        }
        return v
    }

    func type(_ reader: ProtobufReader) throws -> ONNXValueType? {
        var r = reader
        var result: ONNXValueType?
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: try r.expect(wire, .lengthDelimited, field: field, in: "TypeProto"); result = try tensorType(try r.readMessage())
            case 4: result = .other("sequence"); try r.skip(wire, field: field)
            case 5: result = .other("map"); try r.skip(wire, field: field)
            case 8: result = .other("sparse tensor"); try r.skip(wire, field: field)
            case 9: result = .other("optional"); try r.skip(wire, field: field)
            default: try r.skip(wire, field: field)
            }
        }
        return result
    }

    func tensorType(_ reader: ProtobufReader) throws -> ONNXValueType {
        var r = reader
        var elem: Int32 = 0
        var shape: [ONNXDimension]?
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1:
                try r.expect(wire, .varint, field: field, in: "TypeProto.Tensor")
                elem = Int32(truncatingIfNeeded: try r.readVarint())
            case 2:
                try r.expect(wire, .lengthDelimited, field: field, in: "TypeProto.Tensor")
                var s = try r.readMessage()
                var dims: [ONNXDimension] = []
                while let (f, w) = try s.nextField() {
                    if f == 1 {
                        try s.expect(w, .lengthDelimited, field: f, in: "TensorShapeProto")
                        dims.append(try dimension(try s.readMessage()))
                    } else {
                        try s.skip(w, field: f)
                    }
                }
                shape = dims
            default: try r.skip(wire, field: field)
            }
        }
        return .tensor(elementType: ONNXDataType(rawValue: elem), shape: shape)
    }

    func dimension(_ reader: ProtobufReader) throws -> ONNXDimension {
        var r = reader
        var d = ONNXDimension.unknown
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: try r.expect(wire, .varint, field: field, in: "Dimension"); d = .value(Int64(bitPattern: try r.readVarint()))
            case 2: try r.expect(wire, .lengthDelimited, field: field, in: "Dimension"); d = .param(try r.readString())
            default: try r.skip(wire, field: field)
            }
        }
        return d
    }
}

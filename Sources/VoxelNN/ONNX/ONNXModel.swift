import VoxelTensor

/// A decoded ONNX model: its header facts and its graph, with initializers converted to Float32.
///
/// Read one with `ONNXModel(contentsOf:)` or `ONNXModel(bytes:fileName:)`; see docs/onnx.md for the
/// subset of the format that is read and the errors raised.
public struct ONNXModel: Sendable {
    /// The file name the model was read from (used in error messages).
    public var fileName: String
    /// The ONNX IR version (`ir_version`).
    public var irVersion: Int64
    /// The operator sets the model imports, in file order.
    public var opsetImports: [ONNXOpsetImport]
    /// The exporting tool's name, e.g. `pytorch`.
    public var producerName: String
    /// The exporting tool's version.
    public var producerVersion: String
    /// The model's domain (reverse-DNS name), often empty.
    public var domain: String
    /// The model's own version number.
    public var modelVersion: Int64
    /// The model's documentation string.
    public var docString: String
    /// Free-form key/value metadata (`metadata_props`), in file order.
    public var metadataProps: [ONNXStringEntry]
    /// The computation graph.
    public var graph: ONNXGraph

    /// The version of the default (`ai.onnx`) operator set, or nil when the model imports none.
    public var opsetVersion: Int64? {
        opsetImports.first(where: { ONNXModel.isDefaultDomain($0.domain) })?.version
    }

    /// True for the names of the default ONNX operator domain (`""` and `"ai.onnx"`).
    public static func isDefaultDomain(_ domain: String) -> Bool { domain.isEmpty || domain == "ai.onnx" }

    /// The default-domain operator set versions the importer accepts. 11 is the oldest opset current
    /// PyTorch exporters can still write with the semantics the ops here assume (Resize, Clip with
    /// inputs, Pad with inputs); 21 is the newest the op list has been checked against.
    public static let supportedOpsets: ClosedRange<Int64> = 11...21
}

/// One operator set a model imports: a domain and its version.
public struct ONNXOpsetImport: Sendable, Equatable {
    /// The operator domain; `""` (or `"ai.onnx"`) is the default ONNX domain.
    public var domain: String
    /// The operator set version.
    public var version: Int64
    /// An opset import.
    public init(domain: String, version: Int64) { self.domain = domain; self.version = version }
}

/// A key/value string pair (`StringStringEntryProto`).
public struct ONNXStringEntry: Sendable, Equatable {
    /// The key.
    public var key: String
    /// The value.
    public var value: String
    /// A key/value pair.
    public init(key: String, value: String) { self.key = key; self.value = value }
}

/// An ONNX computation graph: nodes in topological order, initializers, inputs, outputs.
public struct ONNXGraph: Sendable {
    /// The graph's name.
    public var name: String
    /// The nodes, in file order (ONNX requires topological order).
    public var nodes: [ONNXNode]
    /// Named constant tensors (weights), in file order.
    public var initializers: [ONNXTensor]
    /// The declared graph inputs; with older exporters these include the initializers too.
    public var inputs: [ONNXValueInfo]
    /// The declared graph outputs.
    public var outputs: [ONNXValueInfo]
    /// Type and shape facts about intermediate values, as the exporter recorded them.
    public var valueInfo: [ONNXValueInfo]
    /// The graph's documentation string.
    public var docString: String

    /// The graph inputs a caller must feed: the declared inputs that are not initializers.
    public var runtimeInputs: [ONNXValueInfo] {
        let constant = Set(initializers.map(\.name))
        return inputs.filter { !constant.contains($0.name) }
    }

    /// The initializer named `name`, if any.
    public func initializer(named name: String) -> ONNXTensor? { initializers.first { $0.name == name } }
}

/// One node (operator application) of a graph.
public struct ONNXNode: Sendable {
    /// The node's name (may be empty).
    public var name: String
    /// The operator type, e.g. `Conv`.
    public var opType: String
    /// The operator domain; empty for the default ONNX domain.
    public var domain: String
    /// Names of the input values; an empty name marks an omitted optional input.
    public var inputs: [String]
    /// Names of the output values.
    public var outputs: [String]
    /// The attributes, in file order.
    public var attributes: [ONNXAttribute]
    /// The node's documentation string.
    public var docString: String
    /// The node's metadata (`metadata_props`, IR 10): the dynamo exporter records the PyTorch module
    /// scopes here under `pkg.torch.onnx.name_scopes`.
    public var metadataProps: [ONNXStringEntry] = []

    /// The attribute named `name`, if present.
    public func attribute(_ name: String) -> ONNXAttribute? { attributes.first { $0.name == name } }

    /// The node as users see it in messages: `'conv1' (Conv)`, or the first output when unnamed.
    public var displayName: String {
        "'\(name.isEmpty ? (outputs.first ?? "") : name)' (\(opType))"
    }
}

/// A named attribute of a node.
public struct ONNXAttribute: Sendable {
    /// The attribute's name, e.g. `kernel_shape`.
    public var name: String
    /// The attribute's value.
    public var value: ONNXAttributeValue
    /// The attribute's documentation string.
    public var docString: String
}

/// The value of a node attribute. Graph, sparse-tensor and type attributes are rejected when read.
public enum ONNXAttributeValue: Sendable {
    /// A single float (`f`).
    case float(Float)
    /// A single integer (`i`).
    case int(Int64)
    /// A single string (`s`), decoded as UTF-8.
    case string(String)
    /// A single tensor (`t`), e.g. a `Constant`'s value.
    case tensor(ONNXTensor)
    /// A list of floats.
    case floats([Float])
    /// A list of integers, e.g. `kernel_shape`.
    case ints([Int64])
    /// A list of strings.
    case strings([String])
    /// A list of tensors.
    case tensors([ONNXTensor])

    /// The ONNX name of the value's kind (`FLOAT`, `INTS`...).
    public var kindName: String {
        switch self {
        case .float: "FLOAT"
        case .int: "INT"
        case .string: "STRING"
        case .tensor: "TENSOR"
        case .floats: "FLOATS"
        case .ints: "INTS"
        case .strings: "STRINGS"
        case .tensors: "TENSORS"
        }
    }
}

/// The declared name, element type and shape of a graph input, output or intermediate value.
public struct ONNXValueInfo: Sendable, Equatable {
    /// The value's name.
    public var name: String
    /// The value's type, when declared.
    public var type: ONNXValueType?
    /// The value's documentation string.
    public var docString: String
}

/// The type of a value: a tensor with element type and (possibly unknown) shape, or another kind.
public enum ONNXValueType: Sendable, Equatable {
    /// A dense tensor; `shape` is nil when even the rank is unknown.
    case tensor(elementType: ONNXDataType, shape: [ONNXDimension]?)
    /// A kind of value Voxplain does not run (sequence, map, optional, sparse tensor), by name.
    case other(String)
}

/// One axis of a declared tensor shape.
public enum ONNXDimension: Sendable, Equatable, CustomStringConvertible {
    /// A fixed extent (`dim_value`).
    case value(Int64)
    /// A named symbolic extent (`dim_param`), e.g. `batch`.
    case param(String)
    /// An axis with neither a value nor a name.
    case unknown

    /// `3`, `batch` or `?`.
    public var description: String {
        switch self {
        case .value(let v): "\(v)"
        case .param(let p): p
        case .unknown: "?"
        }
    }
}

/// An ONNX tensor element type (`TensorProto.DataType`), kept as its code so unknown codes survive.
public struct ONNXDataType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `TensorProto.DataType` code.
    public var rawValue: Int32
    /// The type with code `rawValue`.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Code 0: UNDEFINED (no type set).
    public static let undefined = ONNXDataType(rawValue: 0)
    /// Code 1: FLOAT (Float32).
    public static let float = ONNXDataType(rawValue: 1)
    /// Code 2: UINT8.
    public static let uint8 = ONNXDataType(rawValue: 2)
    /// Code 3: INT8.
    public static let int8 = ONNXDataType(rawValue: 3)
    /// Code 4: UINT16.
    public static let uint16 = ONNXDataType(rawValue: 4)
    /// Code 5: INT16.
    public static let int16 = ONNXDataType(rawValue: 5)
    /// Code 6: INT32.
    public static let int32 = ONNXDataType(rawValue: 6)
    /// Code 7: INT64.
    public static let int64 = ONNXDataType(rawValue: 7)
    /// Code 8: STRING (not read).
    public static let string = ONNXDataType(rawValue: 8)
    /// Code 9: BOOL.
    public static let bool = ONNXDataType(rawValue: 9)
    /// Code 10: FLOAT16 (IEEE half).
    public static let float16 = ONNXDataType(rawValue: 10)
    /// Code 11: DOUBLE (Float64).
    public static let double = ONNXDataType(rawValue: 11)
    /// Code 12: UINT32.
    public static let uint32 = ONNXDataType(rawValue: 12)
    /// Code 13: UINT64 (not read).
    public static let uint64 = ONNXDataType(rawValue: 13)
    /// Code 14: COMPLEX64 (not read).
    public static let complex64 = ONNXDataType(rawValue: 14)
    /// Code 15: COMPLEX128 (not read).
    public static let complex128 = ONNXDataType(rawValue: 15)
    /// Code 16: BFLOAT16.
    public static let bfloat16 = ONNXDataType(rawValue: 16)

    private static let names: [Int32: String] = [
        0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
        8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
        15: "COMPLEX128", 16: "BFLOAT16", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2",
        20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1", 24: "FLOAT8E8M0",
        25: "UINT2", 26: "INT2",
    ]

    /// The ONNX name, e.g. `FLOAT16`, or `type code N` for codes this reader does not know.
    public var description: String { ONNXDataType.names[rawValue] ?? "type code \(rawValue)" }

    /// Bytes per element in `raw_data`, for the types the importer reads; nil for the others.
    public var byteSize: Int? {
        switch self {
        case .float, .int32, .uint32: 4
        case .double, .int64: 8
        case .float16, .bfloat16, .int16, .uint16: 2
        case .int8, .uint8, .bool: 1
        default: nil
        }
    }

    /// True for the integer and boolean types, whose values are also kept exactly as `Int64`.
    public var isInteger: Bool {
        switch self {
        case .int64, .int32, .int16, .int8, .uint32, .uint16, .uint8, .bool: true
        default: false
        }
    }

    /// The element types the importer reads (others are rejected with their name).
    public static let supported: [ONNXDataType] = [
        .float, .double, .float16, .bfloat16, .int64, .int32, .int16, .int8, .uint32, .uint16, .uint8, .bool,
    ]
}

/// A constant tensor from a model file (an initializer or a tensor attribute).
///
/// Every supported element type is converted to Float32 in `value`; integer and boolean tensors also
/// keep their exact values in `integers`, because shape tensors (Reshape's shape, Slice's starts) are
/// int64 and may not fit Float32 exactly.
public struct ONNXTensor: Sendable {
    /// The tensor's name (empty for some attribute tensors).
    public var name: String
    /// The element type stored in the file.
    public var dataType: ONNXDataType
    /// The values converted to Float32, with the tensor's dims as shape: `[d0, d1, ...]`.
    public var value: Tensor
    /// The exact values of an integer or boolean tensor, row-major; nil for floating-point tensors.
    public var integers: [Int64]?
    /// The tensor's documentation string.
    public var docString: String

    /// The tensor's dimensions (`dims`).
    public var dims: [Int] { value.shape }
}

import Foundation
import Testing
import VoxelNN
import VoxelTensor
import _TestSupport

// Facts written by Scripts/make_onnx_fixtures.py with the `onnx` package; see Tests/Fixtures/onnx/facts.json.

struct FactsFile: Decodable {
    var models: [String: ModelFacts]
    var errors: [String: String]

    static func load() throws -> FactsFile {
        let data = try Data(contentsOf: fixturesDirectory.appendingPathComponent("onnx/facts.json"))
        return try JSONDecoder().decode(FactsFile.self, from: data)
    }
}

struct ModelFacts: Decodable {
    var ir_version: Int64
    var opset: Int64?
    var opset_imports: [OpsetFact]
    var producer_name: String
    var producer_version: String
    var doc_string: String
    var graph_name: String
    var graph_doc_string: String
    var metadata: [[String]]
    var nodes: [NodeFacts]
    var initializers: [TensorFacts]
    var inputs: [ValueFacts]
    var outputs: [ValueFacts]
    var value_info: [ValueFacts]
}

struct OpsetFact: Decodable {
    var domain: String
    var version: Int64
    init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        domain = try c.decode(String.self)
        version = try c.decode(Int64.self)
    }
}

struct NodeFacts: Decodable {
    var name: String
    var op_type: String
    var domain: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [AttributeFacts]
}

struct TensorFacts: Decodable {
    var name: String
    var dims: [Int]
    var data_type: String
    var sum: Double
    var sumsq: Double
    var first: [Double]
    var ints: [Int64]?
}

struct AttributeFacts: Decodable {
    enum Value {
        case float(Double), int(Int64), string(String), tensor(TensorFacts)
        case floats([Double]), ints([Int64]), strings([String]), tensors([TensorFacts])
    }
    var name: String
    var type: String
    var value: Value

    enum CodingKeys: String, CodingKey { case name, type, value }
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        type = try c.decode(String.self, forKey: .type)
        switch type {
        case "FLOAT": value = .float(try c.decode(Double.self, forKey: .value))
        case "INT": value = .int(try c.decode(Int64.self, forKey: .value))
        case "STRING": value = .string(try c.decode(String.self, forKey: .value))
        case "TENSOR": value = .tensor(try c.decode(TensorFacts.self, forKey: .value))
        case "FLOATS": value = .floats(try c.decode([Double].self, forKey: .value))
        case "INTS": value = .ints(try c.decode([Int64].self, forKey: .value))
        case "STRINGS": value = .strings(try c.decode([String].self, forKey: .value))
        case "TENSORS": value = .tensors(try c.decode([TensorFacts].self, forKey: .value))
        default: throw TensorError("facts.json: attribute \(name) has kind \(type), not expected in fixtures")
        }
    }
}

struct ValueFacts: Decodable {
    enum Dim: Decodable, Equatable {
        case value(Int64), param(String), unknown
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .unknown } else if let v = try? c.decode(Int64.self) { self = .value(v) } else {
                self = .param(try c.decode(String.self))
            }
        }
    }
    var name: String
    var elem_type: String
    var shape: [Dim]?
}

/// Checks a decoded tensor against its facts. Sums are compared in Double over the Float32 values:
/// both sides convert each element to Float32 exactly the same way and sum in Double, so only the
/// summation order differs (numpy sums pairwise): relative 1e-12 covers that for these small tensors.
func checkTensor(_ t: ONNXTensor, _ f: TensorFacts, _ context: String) {
    #expect(t.name == f.name, "\(context)")
    #expect(t.dims == f.dims, "\(context) \(f.name)")
    #expect(t.dataType.description == f.data_type, "\(context) \(f.name)")
    let values = t.value.scalars.map(Double.init)
    let sum = values.reduce(0, +), sumsq = values.reduce(0) { $0 + $1 * $1 }
    #expect(abs(sum - f.sum) <= 1e-12 * max(1, abs(f.sum)), "\(context) \(f.name) sum \(sum) vs \(f.sum)")
    #expect(abs(sumsq - f.sumsq) <= 1e-12 * max(1, f.sumsq), "\(context) \(f.name) sumsq \(sumsq) vs \(f.sumsq)")
    #expect(Array(values.prefix(4)) == f.first, "\(context) \(f.name) first values")
    #expect(t.integers == f.ints, "\(context) \(f.name) integers")
}

func checkValueInfo(_ v: ONNXValueInfo, _ f: ValueFacts, _ context: String) {
    #expect(v.name == f.name, "\(context)")
    guard case .tensor(let elem, let shape)? = v.type else {
        Issue.record("\(context) \(f.name): expected a tensor type, got \(String(describing: v.type))")
        return
    }
    #expect(elem.description == f.elem_type, "\(context) \(f.name)")
    let expected: [ONNXDimension]? = f.shape.map { dims in
        dims.map { d in
            switch d {
            case .value(let v): .value(v)
            case .param(let p): .param(p)
            case .unknown: .unknown
            }
        }
    }
    #expect(shape == expected, "\(context) \(f.name)")
}

@Suite struct ONNXFixtureTests {
    static let modelFiles = ["cnn3d_opset17.onnx", "cnn3d_dynamo.onnx", "typed_fields.onnx"]

    @Test(arguments: modelFiles)
    func everyFactMatches(file: String) throws {
        let facts = try #require(try FactsFile.load().models[file], "facts.json has no entry for \(file)")
        let model = try ONNXModel(contentsOf: fixturesDirectory.appendingPathComponent("onnx/\(file)"))
        #expect(model.fileName == file)
        #expect(model.irVersion == facts.ir_version)
        #expect(model.opsetVersion == facts.opset)
        #expect(model.opsetImports.map(\.domain) == facts.opset_imports.map(\.domain))
        #expect(model.opsetImports.map(\.version) == facts.opset_imports.map(\.version))
        #expect(model.producerName == facts.producer_name)
        #expect(model.producerVersion == facts.producer_version)
        #expect(model.docString == facts.doc_string)
        #expect(model.graph.name == facts.graph_name)
        #expect(model.graph.docString == facts.graph_doc_string)
        #expect(model.metadataProps.map { [$0.key, $0.value] } == facts.metadata)

        let g = model.graph
        #expect(g.nodes.map(\.opType) == facts.nodes.map(\.op_type))
        for (n, f) in zip(g.nodes, facts.nodes) {
            #expect(n.name == f.name && n.domain == f.domain)
            #expect(n.inputs == f.inputs && n.outputs == f.outputs, "node \(f.name)")
            #expect(n.attributes.map(\.name) == f.attributes.map(\.name), "node \(f.name)")
            for (a, fa) in zip(n.attributes, f.attributes) { checkAttribute(a, fa, "\(file) node \(f.name)") }
        }
        #expect(g.initializers.map(\.name) == facts.initializers.map(\.name))
        for (t, f) in zip(g.initializers, facts.initializers) { checkTensor(t, f, "\(file) initializer") }
        #expect(g.inputs.count == facts.inputs.count && g.outputs.count == facts.outputs.count)
        for (v, f) in zip(g.inputs, facts.inputs) { checkValueInfo(v, f, "\(file) input") }
        for (v, f) in zip(g.outputs, facts.outputs) { checkValueInfo(v, f, "\(file) output") }
        #expect(g.valueInfo.count == facts.value_info.count)
        for (v, f) in zip(g.valueInfo, facts.value_info) { checkValueInfo(v, f, "\(file) value_info") }
    }

    func checkAttribute(_ a: ONNXAttribute, _ f: AttributeFacts, _ context: String) {
        #expect(a.value.kindName == f.type, "\(context) attribute \(f.name)")
        switch (a.value, f.value) {
        case (.float(let x), .float(let y)): #expect(Double(x) == y, "\(context) \(f.name)")
        case (.int(let x), .int(let y)): #expect(x == y, "\(context) \(f.name)")
        case (.string(let x), .string(let y)): #expect(x == y, "\(context) \(f.name)")
        case (.floats(let x), .floats(let y)): #expect(x.map(Double.init) == y, "\(context) \(f.name)")
        case (.ints(let x), .ints(let y)): #expect(x == y, "\(context) \(f.name)")
        case (.strings(let x), .strings(let y)): #expect(x == y, "\(context) \(f.name)")
        case (.tensor(let x), .tensor(let y)): checkTensor(x, y, "\(context) \(f.name)")
        case (.tensors(let x), .tensors(let y)):
            #expect(x.count == y.count, "\(context) \(f.name)")
            for (t, tf) in zip(x, y) { checkTensor(t, tf, "\(context) \(f.name)") }
        default: Issue.record("\(context): attribute \(f.name) decoded as \(a.value.kindName), expected \(f.type)")
        }
    }

    @Test func typedFieldsHaveExactValues() throws {
        let model = try ONNXModel(contentsOf: fixturesDirectory.appendingPathComponent("onnx/typed_fields.onnx"))
        let g = model.graph
        func values(_ name: String) throws -> [Float] { try #require(g.initializer(named: name)).value.scalars }
        // Float16 (raw and int32_data) and bfloat16 convert exactly.
        #expect(try values("h_f16_raw") == [1.0, -2.5, 65504.0, 6.103515625e-05])
        #expect(try values("h_f16_int32_data") == [1.0, -2.5, 65504.0, 6.103515625e-05])
        #expect(try values("bf16_raw") == [1.5, -3.0, 0.15625])
        #expect(try values("d_double_data") == [Float(1.0 / 3.0), -2, 1e10, Float(0.1)])
        // Int64 shape tensors keep exact values, including one Float32 cannot hold.
        #expect(g.initializer(named: "shape_int64")?.integers == [1, -1, 6])
        #expect(g.initializer(named: "i64_raw")?.integers == [-(1 << 40), (1 << 53) + 1])
        #expect(g.initializer(named: "scalar_float")?.value.shape == [])
        #expect(try values("scalar_float") == [42])
        #expect(g.initializer(named: "empty_float")?.value.shape == [0, 3])
        #expect(g.runtimeInputs.map(\.name) == ["x"])
    }

    @Test func legacyExportedCNNHasTheExpectedStructure() throws {
        let model = try ONNXModel(contentsOf: fixturesDirectory.appendingPathComponent("onnx/cnn3d_opset17.onnx"))
        try model.validateOperators()
        let conv = try #require(model.graph.nodes.first)
        guard case .ints(let kernel)? = conv.attribute("kernel_shape")?.value else {
            Issue.record("Conv has no kernel_shape INTS attribute"); return
        }
        #expect(kernel == [3, 3, 3])
        #expect(model.graph.initializer(named: "0.weight")?.value.shape == [4, 1, 3, 3, 3])
    }

    @Test func dynamoExportedCNNPassesTheOperatorCheck() throws {
        let model = try ONNXModel(contentsOf: fixturesDirectory.appendingPathComponent("onnx/cnn3d_dynamo.onnx"))
        try model.validateOperators()
    }
}

import Foundation
import VoxelTensor

/// A constant known at load time: an initializer, a `Constant`, or the folded result of shape arithmetic.
struct ONNXConstant {
    /// The values as Float32, shaped.
    var tensor: Tensor
    /// Exact integer values, for integer tensors (shapes, axes, indices).
    var integers: [Int64]?

    init(_ tensor: Tensor, integers: [Int64]? = nil) { self.tensor = tensor; self.integers = integers }
    init(_ t: ONNXTensor) { tensor = t.value; integers = t.integers }
    /// A 1D or scalar integer constant.
    init(ints: [Int64], shape: [Int]? = nil) {
        integers = ints
        tensor = try! Tensor(shape: shape ?? [ints.count], scalars: ints.map(Float.init))
    }
    var ints: [Int] { (integers ?? tensor.scalars.map { Int64($0) }).map { Int($0) } }
}

/// What an ONNX value name stands for during import.
enum ONNXBinding {
    case value(ValueID)
    case constant(ONNXConstant)
}

extension Graph {
    /// Builds a graph from an ONNX model.
    ///
    /// Shape arithmetic (Shape, Gather, Slice, Cast, Concat, Unsqueeze... on shapes) is folded away at
    /// load time, since every shape is known once the input size is. Layer names keep the ONNX node and
    /// value names, and the PyTorch module path where the exporter recorded it in the node name
    /// (`/layer4/layer4.1/conv2/Conv` gives `layer4.1.conv2`).
    ///
    /// - Parameters:
    ///   - model: the decoded model.
    ///   - inputShape: `[N, C, D, H, W]` to use where the model declares symbolic sizes (the batch is
    ///     always run as given at run time).
    /// - Throws: `ModelError` naming the file, the node and the problem.
    public init(onnx model: ONNXModel, inputShape: [Int]? = nil) throws {
        try model.validateOperators()
        var importer = try ONNXImporter(model: model, inputShape: inputShape)
        try importer.importNodes()
        self = importer.graph
    }
}

struct ONNXImporter {
    let model: ONNXModel
    var graph: Graph
    var bindings: [String: ONNXBinding] = [:]
    let opset: Int

    init(model: ONNXModel, inputShape: [Int]?) throws {
        self.model = model
        opset = Int(model.opsetVersion ?? 17)
        let file = model.fileName
        let runtime = model.graph.runtimeInputs
        guard runtime.count == 1, let input = runtime.first else {
            throw ModelError(file, .invalid, "the model has \(runtime.count) runtime inputs (\(runtime.map(\.name).joined(separator: ", "))); Voxplain explains models with exactly one 5D image input")
        }
        guard case .tensor(let type, let dims)? = input.type else {
            throw ModelError(file, .invalid, "model input '\(input.name)' is not a tensor")
        }
        guard type == .float else {
            throw ModelError(file, .invalid, "model input '\(input.name)' has element type \(type); Voxplain feeds FLOAT images")
        }
        guard let dims, dims.count == 5 else {
            throw ModelError(file, .invalid, "model input '\(input.name)' has shape [\((dims ?? []).map(\.description).joined(separator: ", "))]; Voxplain explains 3D models with a 5D input [N, C, D, H, W]")
        }
        var shape = [Int](repeating: 0, count: 5)
        for (axis, d) in dims.enumerated() {
            if case .value(let v) = d, v > 0 { shape[axis] = Int(v) }
            else if let given = inputShape, given.count == 5, given[axis] > 0 { shape[axis] = given[axis] }
            else if axis == 0 { shape[axis] = 1 }
            else {
                throw ModelError(file, .invalid, "model input '\(input.name)' has a symbolic size on axis \(axis) ([\(dims.map(\.description).joined(separator: ", "))]); give the input size (--size or the model card)")
            }
        }
        if let given = inputShape, given.count == 5 {
            for axis in 1..<5 where given[axis] > 0 && given[axis] != shape[axis] {
                throw ModelError(file, .invalid, "model input '\(input.name)' is declared as [\(dims.map(\.description).joined(separator: ", "))], which does not fit the requested size \(given)")
            }
        }
        graph = try Graph(inputName: input.name, inputShape: shape)
        bindings[input.name] = .value(graph.input)
        for t in model.graph.initializers { bindings[t.name] = .constant(ONNXConstant(t)) }
    }

    func error(_ node: ONNXNode, _ message: String) -> ModelError {
        ModelError(model.fileName, .invalid, "node \(node.displayName): \(message)")
    }

    /// The node's name, or its first output's name when it has none.
    static func plainName(_ node: ONNXNode) -> String { node.name.isEmpty ? (node.outputs.first ?? "") : node.name }

    mutating func importNodes() throws {
        for node in model.graph.nodes {
            do {
                try importNode(node)
            } catch let e as ModelError {
                throw e
            } catch let e as GraphError {
                throw ModelError(model.fileName, .invalid, e.message)
            } catch let e as TensorError {
                throw error(node, e.message)
            }
        }
        var outs: [ValueID] = []
        for o in model.graph.outputs {
            switch bindings[o.name] {
            case .value(let v)?: outs.append(v)
            case .constant?: throw ModelError(model.fileName, .invalid, "model output '\(o.name)' does not depend on the input")
            case nil: throw ModelError(model.fileName, .invalid, "model output '\(o.name)' is produced by no node")
            }
        }
        try graph.setOutputs(outs)
    }

    // MARK: Reading inputs and attributes

    func binding(_ node: ONNXNode, _ i: Int) throws -> ONNXBinding? {
        guard i < node.inputs.count, !node.inputs[i].isEmpty else { return nil }
        guard let b = bindings[node.inputs[i]] else { throw error(node, "input '\(node.inputs[i])' is produced by no earlier node") }
        return b
    }
    func value(_ node: ONNXNode, _ i: Int) throws -> ValueID {
        switch try binding(node, i) {
        case .value(let v)?: return v
        case .constant?: throw error(node, "input \(i) is a constant where an activation is expected")
        case nil: throw error(node, "input \(i) is missing")
        }
    }
    func constant(_ node: ONNXNode, _ i: Int, _ what: String) throws -> ONNXConstant? {
        switch try binding(node, i) {
        case .constant(let c)?: return c
        case .value?: throw error(node, "\(what) must be a constant of the model (an initializer), not computed from the input")
        case nil: return nil
        }
    }
    /// The value for input i, adding constants to the graph as constant values.
    mutating func valueOrConstant(_ node: ONNXNode, _ i: Int) throws -> ValueID {
        switch try binding(node, i) {
        case .value(let v)?: return v
        case .constant(let c)?:
            let id = graph.addConstant(c.tensor, name: node.inputs[i])
            bindings[node.inputs[i]] = .value(id)
            return id
        case nil: throw error(node, "input \(i) is missing")
        }
    }
    func shape(_ v: ValueID) -> [Int] { graph.values[v].shape }

    func ints(_ node: ONNXNode, _ name: String) -> [Int]? {
        if case .ints(let v)? = node.attribute(name)?.value { return v.map { Int($0) } }
        return nil
    }
    func int(_ node: ONNXNode, _ name: String, _ fallback: Int) -> Int {
        if case .int(let v)? = node.attribute(name)?.value { return Int(v) }
        return fallback
    }
    func float(_ node: ONNXNode, _ name: String, _ fallback: Float) -> Float {
        if case .float(let v)? = node.attribute(name)?.value { return v }
        return fallback
    }
    func string(_ node: ONNXNode, _ name: String, _ fallback: String) -> String {
        if case .string(let v)? = node.attribute(name)?.value { return v }
        return fallback
    }

    /// The PyTorch module path of a node: from the dynamo exporter's `pkg.torch.onnx.name_scopes`
    /// metadata (`['', 'layer1', 'layer1.0', 'layer1.0.bn1', 'op']` gives `layer1.0.bn1`), or from the
    /// legacy exporter's node name (`/layer4/layer4.1/conv2/Conv` gives `layer4.1.conv2`); "" when
    /// the node records none.
    static func modulePath(of node: ONNXNode) -> String {
        if let scopes = node.metadataProps.first(where: { $0.key == "pkg.torch.onnx.name_scopes" })?.value {
            let parts = scopes.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",")
                .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " '\"")) }
            return parts.count >= 2 ? parts[parts.count - 2] : ""
        }
        return modulePath(fromNodeName: node.name)
    }

    /// The module path in a legacy exporter's node name such as `/layer4/layer4.1/conv2/Conv`.
    static func modulePath(fromNodeName name: String) -> String {
        guard name.hasPrefix("/") else { return "" }
        let parts = name.split(separator: "/").map(String.init).dropLast()
        var path = ""
        for p in parts {
            path = path.isEmpty || p.hasPrefix(path + ".") ? p : path + "." + p
        }
        return path
    }

    mutating func emit(_ node: ONNXNode, _ op: Operation, _ inputs: [ValueID]) throws {
        guard let out = node.outputs.first, !out.isEmpty else { throw error(node, "has no output") }
        for extra in node.outputs.dropFirst() where !extra.isEmpty && model.graph.nodes.contains(where: { $0.inputs.contains(extra) }) {
            throw error(node, "its second output '\(extra)' is used; Voxplain supports only the first output of \(node.opType)")
        }
        let id = try graph.add(op, inputs: inputs, name: ONNXImporter.plainName(node), output: out,
                               modulePath: ONNXImporter.modulePath(of: node))
        bindings[out] = .value(id)
    }
    mutating func bindConstant(_ node: ONNXNode, _ c: ONNXConstant) throws {
        guard let out = node.outputs.first else { throw error(node, "has no output") }
        bindings[out] = .constant(c)
    }
}

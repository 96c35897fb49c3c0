import VoxelTensor

/// The index of a value (an activation) in a `Graph`.
public typealias ValueID = Int

/// A value of a graph: its name (the ONNX value name) and its shape at the model's declared input
/// size with batch 1.
public struct ValueInfo: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
}

/// One node: an operation, the values it reads and the value it writes.
public struct Node: Sendable {
    /// The node's name (ONNX node name, or a generated one).
    public var name: String
    /// The PyTorch module path the node came from (`layer4.1.conv2`), or "" when unknown.
    public var modulePath: String
    public var op: Operation
    public var inputs: [ValueID]
    public var output: ValueID
}

/// An error in building or running a graph: a dangling value, a shape that does not fit, an unknown layer.
public struct GraphError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A model as a directed acyclic graph of operations in topological order, with one spatial input
/// `[N, C, D, H, W]` and one or more outputs.
///
/// Values hold the shapes inferred at the declared input size (batch 1); the graph runs on any batch.
public struct Graph: Sendable {
    public private(set) var values: [ValueInfo]
    public private(set) var nodes: [Node]
    /// The spatial input.
    public let input: ValueID
    /// The model's outputs (logits first), by value.
    public private(set) var outputs: [ValueID]
    /// Values that are constants of the model (weights read as values, e.g. a MatMul operand).
    public private(set) var constants: [ValueID: Tensor]

    /// A graph with one input of `inputShape` (`[1, C, D, H, W]`) named `inputName` and no nodes yet.
    public init(inputName: String, inputShape: [Int]) throws {
        guard inputShape.count == 5, inputShape.allSatisfy({ $0 > 0 }) else {
            throw GraphError("model input '\(inputName)' must be 5D [N, C, D, H, W] with known sizes, got \(inputShape)")
        }
        values = [ValueInfo(name: inputName, shape: [1] + inputShape.dropFirst())]
        nodes = []
        input = 0
        outputs = []
        constants = [:]
    }

    /// Adds a constant value (a weight that nodes read as an input) and returns it.
    @discardableResult
    public mutating func addConstant(_ tensor: Tensor, name: String) -> ValueID {
        values.append(ValueInfo(name: name, shape: tensor.shape))
        constants[values.count - 1] = tensor
        return values.count - 1
    }

    /// Appends a node computing `op` from `inputs`, infers its output shape, and returns the new value.
    @discardableResult
    public mutating func add(_ op: Operation, inputs: [ValueID], name: String, output outputName: String? = nil,
                             modulePath: String = "") throws -> ValueID {
        for v in inputs where v < 0 || v >= values.count {
            throw GraphError("node '\(name)' reads value \(v), which no earlier node produces")
        }
        let shape: [Int]
        do {
            shape = try op.outputShape(inputs.map { values[$0].shape })
        } catch let e as TensorError {
            throw GraphError("node '\(name)' (\(op.name)): \(e.message)")
        }
        let id = values.count
        values.append(ValueInfo(name: outputName ?? name, shape: shape))
        nodes.append(Node(name: name, modulePath: modulePath, op: op, inputs: inputs, output: id))
        return id
    }

    /// Declares which values are the model's outputs.
    public mutating func setOutputs(_ ids: [ValueID]) throws {
        guard !ids.isEmpty, ids.allSatisfy({ $0 >= 0 && $0 < values.count }) else {
            throw GraphError("graph outputs \(ids) are not values of the graph")
        }
        outputs = ids
    }

    /// Replaces the node list (used by graph passes); the nodes must stay in topological order.
    mutating func replaceNodes(_ newNodes: [Node]) { nodes = newNodes }

    /// Replaces a constant's tensor with one of the same shape (used by graph passes).
    mutating func replaceConstant(_ id: ValueID, with tensor: Tensor) {
        precondition(constants[id]?.shape == tensor.shape, "replaceConstant: shape must be kept")
        constants[id] = tensor
    }

    /// The node that writes each value (nil for the input).
    public var producers: [Int?] {
        var p = [Int?](repeating: nil, count: values.count)
        for (i, n) in nodes.enumerated() { p[n.output] = i }
        return p
    }

    /// For each value, the nodes that read it.
    public var consumers: [[Int]] {
        var c = [[Int]](repeating: [], count: values.count)
        for (i, n) in nodes.enumerated() { for v in Set(n.inputs) { c[v].append(i) } }
        return c
    }

    /// The value a layer name refers to, following ARCHITECTURE.md: an ONNX node name, a value name,
    /// or a PyTorch module path, which means the output of the last node inside that module.
    public func value(named layer: String) throws -> ValueID {
        if let n = nodes.last(where: { $0.name == layer }) { return n.output }
        if let v = values.lastIndex(where: { $0.name == layer }) { return v }
        let prefix = layer + "."
        if let n = nodes.last(where: { $0.modulePath == layer || $0.modulePath.hasPrefix(prefix) }) { return n.output }
        let candidates = nodes.filter { $0.op.isConvolutional && values[$0.output].shape.count == 5 }
            .map { $0.modulePath.isEmpty ? $0.name : $0.modulePath }
        let hint = candidates.suffix(8).joined(separator: ", ")
        throw GraphError("no layer '\(layer)' in the model; spatial layers include: \(hint) (see `voxplain layers`)")
    }

    /// The last spatial (5D) value before the first non-spatial node on the way to the output:
    /// the usual default target layer of CAM methods.
    public var lastSpatialValue: ValueID? {
        var best: ValueID?
        for n in nodes where values[n.output].shape.count == 5 && n.op.isConvolutional {
            best = n.output
        }
        return best
    }

    /// Multiply-adds x 2 of the convolutions and matrix products for one forward pass at batch 1.
    public var flops: Int { nodes.indices.reduce(0) { $0 + flops(ofNode: $1) } }

    /// Multiply-adds x 2 of node `i` at batch 1 (0 for nodes that are not convolutions or products).
    public func flops(ofNode i: Int) -> Int {
        let n = nodes[i]
        let out = values[n.output].shape
        switch n.op {
        case .conv(let c):
            let perOutput: Int = c.weight.shape.dropFirst().reduce(1, *)
            return 2 * out.product * perOutput
        case .gemm(let g):
            let a: [Int] = values[n.inputs[0]].shape
            let k: Int = g.transA ? a[0] : a[1]
            return 2 * out.product * k
        case .matMul:
            let k: Int = values[n.inputs[0]].shape.last ?? 1
            return 2 * out.product * k
        default:
            return 0
        }
    }
}

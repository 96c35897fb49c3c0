import Foundation
import VoxelIO
import VoxelTensor

/// Voxplain's native model format: a JSON graph description (`NAME.voxplain.json`) beside a
/// safetensors file of its weights (`NAME.safetensors`). See docs/native-format.md.
public enum NativeFormat {
    /// The JSON file's suffix.
    public static let suffix = ".voxplain.json"

    struct File: Codable {
        var format = "voxplain-graph"
        var version = 1
        var weights: String
        var input: ValueDecl
        var outputs: [String]
        var constants: [String: String]
        var nodes: [NodeDecl]
    }
    struct ValueDecl: Codable { var name: String; var shape: [Int] }
    struct NodeDecl: Codable {
        var name: String
        var module: String
        var op: String
        var inputs: [String]
        var output: String
        var ints: [String: [Int]] = [:]
        var floats: [String: [Float]] = [:]
        var strings: [String: String] = [:]
        /// Role (weight, bias, mean...) to the tensor's name in the safetensors file.
        var tensors: [String: String] = [:]

        init(name: String, module: String, op: String, inputs: [String], output: String) {
            self.name = name; self.module = module; self.op = op; self.inputs = inputs; self.output = output
        }

        /// Parameter maps may be left out of hand-written files.
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            module = try c.decodeIfPresent(String.self, forKey: .module) ?? ""
            op = try c.decode(String.self, forKey: .op)
            inputs = try c.decode([String].self, forKey: .inputs)
            output = try c.decode(String.self, forKey: .output)
            ints = try c.decodeIfPresent([String: [Int]].self, forKey: .ints) ?? [:]
            floats = try c.decodeIfPresent([String: [Float]].self, forKey: .floats) ?? [:]
            strings = try c.decodeIfPresent([String: String].self, forKey: .strings) ?? [:]
            tensors = try c.decodeIfPresent([String: String].self, forKey: .tensors) ?? [:]
        }
    }

    /// Writes `graph` as `<base>.voxplain.json` and `<base>.safetensors` (each to a temporary file first,
    /// then renamed), where `url` is the JSON file's path.
    public static func write(_ graph: Graph, to url: URL) throws {
        guard url.lastPathComponent.hasSuffix(suffix) else {
            throw GraphError("\(url.lastPathComponent): a native model file must end in \(suffix)")
        }
        var isFolder: ObjCBool = false
        let folder = url.deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw ModelError(url.lastPathComponent, .io, "the folder \(folder) does not exist")
        }
        let base = String(url.lastPathComponent.dropLast(suffix.count))
        let weightsURL = url.deletingLastPathComponent().appendingPathComponent(base + ".safetensors")
        var tensors: [String: Tensor] = [:]
        var constants: [String: String] = [:]
        for (v, t) in graph.constants {
            let key = "const.\(v)"
            tensors[key] = t
            constants[graph.values[v].name] = key
        }
        let nodes = graph.nodes.enumerated().map { i, n in
            encode(n, index: i, graph: graph, tensors: &tensors)
        }
        let file = File(weights: weightsURL.lastPathComponent,
                        input: ValueDecl(name: graph.values[graph.input].name, shape: graph.values[graph.input].shape),
                        outputs: graph.outputs.map { graph.values[$0].name }, constants: constants, nodes: nodes)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(file)
        try SafetensorsFile.write(tensors, metadata: ["format": "voxplain-graph"], to: weightsURL)
        try writeModelFile(json, to: url)
    }

    /// Reads a graph written by `write(_:to:)`.
    public static func read(contentsOf url: URL) throws -> Graph {
        let name = url.lastPathComponent
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError(name, .io, "cannot read the file (\(error.localizedDescription))")
        }
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch {
            throw ModelError(name, .corrupt, "not a Voxplain graph description (\(error))")
        }
        guard file.format == "voxplain-graph", file.version == 1 else {
            throw ModelError(name, .invalid, "format \(file.format) version \(file.version) is not voxplain-graph version 1")
        }
        let weights = try SafetensorsFile(contentsOf: url.deletingLastPathComponent().appendingPathComponent(file.weights))
        var byName: [String: Tensor] = [:]
        for t in weights.tensors { byName[t.name] = t.value }
        do {
            var g = try Graph(inputName: file.input.name, inputShape: file.input.shape)
            var ids: [String: ValueID] = [file.input.name: g.input]
            for (valueName, key) in file.constants.sorted(by: { $0.key < $1.key }) {
                guard let t = byName[key] else { throw GraphError("constant '\(valueName)' has no tensor '\(key)' in \(file.weights)") }
                ids[valueName] = g.addConstant(t, name: valueName)
            }
            for n in file.nodes {
                let inputs = try n.inputs.map { v -> ValueID in
                    guard let id = ids[v] else { throw GraphError("node '\(n.name)' reads '\(v)', which no earlier node writes") }
                    return id
                }
                ids[n.output] = try g.add(try decode(n, byName), inputs: inputs, name: n.name, output: n.output, modulePath: n.module)
            }
            try g.setOutputs(try file.outputs.map { o in
                guard let id = ids[o] else { throw GraphError("output '\(o)' is written by no node") }
                return id
            })
            return g
        } catch let e as GraphError {
            throw ModelError(name, .invalid, e.message)
        } catch let e as TensorError {
            throw ModelError(name, .invalid, e.message)
        }
    }

    // MARK: Encoding operations

    static func encode(_ n: Node, index: Int, graph: Graph, tensors: inout [String: Tensor]) -> NodeDecl {
        var d = NodeDecl(name: n.name, module: n.modulePath, op: n.op.name,
                         inputs: n.inputs.map { graph.values[$0].name }, output: graph.values[n.output].name)
        func put(_ role: String, _ t: Tensor?) {
            guard let t else { return }
            let key = "n\(index).\(role)"
            tensors[key] = t
            d.tensors[role] = key
        }
        func window(_ k: Size3, _ s: Size3, _ p: Padding3, _ dil: Size3) {
            d.ints["kernel"] = k.array; d.ints["stride"] = s.array; d.ints["dilation"] = dil.array
            d.ints["pads"] = p.begin.array + p.end.array
        }
        switch n.op {
        case .conv(let c):
            put("weight", c.weight); put("bias", c.bias)
            if c.addsResidual { d.ints["residual"] = [1] }
            window(Size3(c.weight.shape[2], c.weight.shape[3], c.weight.shape[4]), c.stride, c.padding, c.dilation)
            d.ints["groups"] = [c.groups]
            encodeActivation(c.activation, into: &d)
        case .batchNorm(let b):
            put("mean", b.mean); put("variance", b.variance); put("scale", b.scale); put("shift", b.shift)
            d.floats["epsilon"] = [b.epsilon]
            if b.activation != .identity { encodeActivation(b.activation, into: &d) }
        case .activation(let a): encodeActivation(a, into: &d)
        case .prelu(let slope): put("slope", slope)
        case .softmax(let axis): d.ints["axis"] = [axis]
        case .maxPool(let p), .avgPool(let p):
            window(p.kernel, p.stride, p.padding, p.dilation)
            d.ints["ceil_mode"] = [p.ceilMode ? 1 : 0]; d.ints["count_include_pad"] = [p.countIncludePad ? 1 : 0]
        case .reduceMean(let axes, let keep), .reduceMax(let axes, let keep):
            d.ints["axes"] = axes; d.ints["keepdims"] = [keep ? 1 : 0]
        case .flatten(let axis): d.ints["axis"] = [axis]
        case .reshape(let rest): d.ints["rest"] = rest
        case .transpose(let perm): d.ints["perm"] = perm
        case .gemm(let g):
            d.floats["alpha"] = [g.alpha]; d.floats["beta"] = [g.beta]
            d.ints["transA"] = [g.transA ? 1 : 0]; d.ints["transB"] = [g.transB ? 1 : 0]
        case .binary(let op): d.strings["binary"] = "\(op)"
        case .concat(let axis): d.ints["axis"] = [axis]
        case .pad(let pads, let mode):
            d.ints["pads"] = pads
            switch mode {
            case .constant(let v): d.strings["mode"] = "constant"; d.floats["value"] = [v]
            case .edge: d.strings["mode"] = "edge"
            case .reflect: d.strings["mode"] = "reflect"
            }
        case .resize(let r):
            d.strings["mode"] = r.mode.rawValue
            d.strings["coordinates"] = r.coordinates.rawValue
            d.strings["rounding"] = r.rounding.rawValue
            if let size = r.size { d.ints["size"] = size.array }
            if let scales = r.scales { d.floats["scales"] = scales.map(Float.init) }
        case .sigmoid, .tanh, .globalAveragePool, .globalMaxPool, .matMul, .identity:
            break
        }
        return d
    }

    static func encodeActivation(_ a: Activation, into d: inout NodeDecl) {
        switch a {
        case .identity: d.strings["activation"] = "identity"
        case .relu: d.strings["activation"] = "relu"
        case .leakyRelu(let alpha): d.strings["activation"] = "leaky_relu"; d.floats["alpha"] = [alpha]
        case .clip(let lo, let hi): d.strings["activation"] = "clip"; d.floats["clip"] = [lo, hi]
        }
    }

    static func decode(_ d: NodeDecl, _ byName: [String: Tensor]) throws -> Operation {
        func tensor(_ role: String) throws -> Tensor {
            guard let key = d.tensors[role], let t = byName[key] else { throw GraphError("node '\(d.name)' has no \(role) tensor") }
            return t
        }
        func size3(_ key: String, _ fallback: Int) throws -> Size3 {
            guard let v = d.ints[key] else { return Size3(fallback) }
            guard let s = Size3(v) else { throw GraphError("node '\(d.name)': \(key) \(v) is not 1 or 3 integers") }
            return s
        }
        func pads() throws -> Padding3 {
            let p = d.ints["pads"] ?? [0, 0, 0, 0, 0, 0]
            guard p.count == 6 else { throw GraphError("node '\(d.name)': pads \(p) are not 6 integers") }
            return Padding3(begin: Size3(p[0], p[1], p[2]), end: Size3(p[3], p[4], p[5]))
        }
        func flag(_ key: String) -> Bool { (d.ints[key]?.first ?? 0) != 0 }
        func activation() throws -> Activation {
            switch d.strings["activation"] ?? "identity" {
            case "identity": return .identity
            case "relu": return .relu
            case "leaky_relu": return .leakyRelu(alpha: d.floats["alpha"]?.first ?? 0.01)
            case "clip":
                let c = d.floats["clip"] ?? [-.infinity, .infinity]
                guard c.count == 2 else { throw GraphError("node '\(d.name)': clip needs two bounds") }
                return .clip(min: c[0], max: c[1])
            case let other: throw GraphError("node '\(d.name)': unknown activation '\(other)'")
            }
        }
        switch d.op {
        case "Conv":
            return .conv(try ConvSpec(weight: try tensor("weight"), bias: d.tensors["bias"] == nil ? nil : try tensor("bias"),
                                      stride: try size3("stride", 1), padding: try pads(), dilation: try size3("dilation", 1),
                                      groups: d.ints["groups"]?.first ?? 1, activation: try activation(),
                                      addsResidual: d.ints["residual"]?.first == 1))
        case "BatchNormalization":
            var bn = try BatchNormSpec(mean: try tensor("mean"), variance: try tensor("variance"),
                                       scale: try tensor("scale"), shift: try tensor("shift"),
                                       epsilon: d.floats["epsilon"]?.first ?? 1e-5)
            bn.activation = try activation()
            return .batchNorm(bn)
        case "Relu", "LeakyRelu", "Clip": return .activation(try activation())
        case "PRelu": return .prelu(slope: try tensor("slope"))
        case "Sigmoid": return .sigmoid
        case "Tanh": return .tanh
        case "Softmax": return .softmax(axis: d.ints["axis"]?.first ?? -1)
        case "MaxPool", "AveragePool":
            let p = PoolSpec(kernel: try size3("kernel", 1), stride: try size3("stride", 1), padding: try pads(),
                             dilation: try size3("dilation", 1), ceilMode: flag("ceil_mode"),
                             countIncludePad: flag("count_include_pad"))
            return d.op == "MaxPool" ? .maxPool(p) : .avgPool(p)
        case "GlobalAveragePool": return .globalAveragePool
        case "GlobalMaxPool": return .globalMaxPool
        case "ReduceMean": return .reduceMean(axes: d.ints["axes"] ?? [], keepDims: flag("keepdims"))
        case "ReduceMax": return .reduceMax(axes: d.ints["axes"] ?? [], keepDims: flag("keepdims"))
        case "Flatten": return .flatten(axis: d.ints["axis"]?.first ?? 1)
        case "Reshape": return .reshape(rest: d.ints["rest"] ?? [])
        case "Transpose": return .transpose(permutation: d.ints["perm"] ?? [])
        case "Gemm":
            return .gemm(GemmSpec(alpha: d.floats["alpha"]?.first ?? 1, beta: d.floats["beta"]?.first ?? 1,
                                  transA: flag("transA"), transB: flag("transB")))
        case "MatMul": return .matMul
        case "Add", "Sub", "Mul", "Div":
            let ops: [String: BinaryOp] = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div]
            return .binary(ops[d.op]!)
        case "Concat": return .concat(axis: d.ints["axis"]?.first ?? 1)
        case "Pad":
            let mode: PadMode
            switch d.strings["mode"] ?? "constant" {
            case "constant": mode = .constant(d.floats["value"]?.first ?? 0)
            case "edge": mode = .edge
            case "reflect": mode = .reflect
            case let other: throw GraphError("node '\(d.name)': unknown pad mode '\(other)'")
            }
            return .pad(pads: d.ints["pads"] ?? [], mode: mode)
        case "Resize":
            guard let mode = ResampleMode(rawValue: d.strings["mode"] ?? ""),
                  let coordinates = ResizeCoordinateTransform(rawValue: d.strings["coordinates"] ?? ""),
                  let rounding = NearestRounding(rawValue: d.strings["rounding"] ?? "") else {
                throw GraphError("node '\(d.name)': resize needs a known mode, coordinates and rounding")
            }
            let size: Size3? = d.ints["size"] == nil ? nil : try size3("size", 1)
            return .resize(ResizeSpec(mode: mode, size: size, scales: d.floats["scales"]?.map(Double.init),
                                      coordinates: coordinates, rounding: rounding))
        case "Identity": return .identity
        default: throw GraphError("node '\(d.name)': unknown operation '\(d.op)'")
        }
    }
}

/// Writes a model file atomically (`AtomicFile`), turning failures into `ModelError`s of kind `.io`.
func writeModelFile(_ data: Data, to url: URL) throws {
    do {
        try AtomicFile.write(data, to: url)
    } catch let f as AtomicFile.Failure {
        throw ModelError(url.lastPathComponent, .io, f.reason)
    }
}

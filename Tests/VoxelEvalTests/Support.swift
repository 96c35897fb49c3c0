import Foundation
import VoxelEval
import VoxelNN
import VoxelTensor
import _TestSupport

/// A toy classifier built in code whose logits are `[w · mean(x), 0]`: a 1x1x1 convolution with weight
/// `w`, global average pooling, flatten, and a Gemm with B = [[1, 0]]. Its scores are known by hand.
func meanModel(size: Int = 4, weight: Float = 1) throws -> Graph {
    var g = try Graph(inputName: "x", inputShape: [1, 1, size, size, size])
    let conv = try g.add(.conv(try ConvSpec(weight: try Tensor(shape: [1, 1, 1, 1, 1], scalars: [weight]), bias: nil)),
                         inputs: [g.input], name: "conv")
    let pooled = try g.add(.globalAveragePool, inputs: [conv], name: "pool")
    let flat = try g.add(.flatten(axis: 1), inputs: [pooled], name: "flatten")
    let b = g.addConstant(try Tensor(shape: [1, 2], scalars: [1, 0]), name: "fc.weight")
    let logits = try g.add(.gemm(GemmSpec()), inputs: [flat, b], name: "fc")
    try g.setOutputs([logits])
    return g
}

/// A `[1, 1, D, H, W]` input and a `[D, H, W]` tensor from the same values.
func volume(_ values: [Float], _ shape: [Int]) throws -> (input: Tensor, map: Tensor) {
    (try Tensor(shape: [1, 1] + shape, scalars: values), try Tensor(shape: shape, scalars: values))
}

/// The committed evaluation fixtures (Scripts/make_eval_fixtures.py).
enum EvalFixture {
    static let file: GoldenFile? = try? GoldenFile.load("eval/eval.json")
    static func cases(_ op: String) throws -> [GoldenCase] {
        guard let f = file else { throw TensorError("cannot read Tests/Fixtures/eval/eval.json") }
        return f.cases.filter { $0.op == op }
    }
    static func data() throws -> (graph: Graph, input: Tensor, map: Tensor, classIndex: Int) {
        let c = try cases("data")[0]
        let graph = try Graph(onnx: try ONNXModel(contentsOf: fixturesDirectory.appendingPathComponent("eval/\(c.strings["model"]!)")))
        let x = try c.tensor("input")
        let map = try c.tensor("map")
        return (graph, x, map, c.int("class", 0))
    }
}

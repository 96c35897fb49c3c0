import Testing
import VoxelTensor
import _TestSupport

/// Every case of `Tests/Fixtures/torch/ops.json` (written by `Scripts/make_ops_fixtures.py` with
/// PyTorch): outputs and the gradients autograd gives for a random upstream gradient.
///
/// Tolerance: 1e-4 relative plus 1e-5 absolute. Inputs are multiples of 1/32 of magnitude <= 4, so
/// outputs are O(1) and both libraries differ only by Float32 rounding order (a few ulps, ~1e-6);
/// the absolute term covers values that cancel to near zero (sums of gradients, softmax tails).
@Suite struct GoldenOpsTests {
    static let file: GoldenFile? = try? GoldenFile.load("torch/ops.json")
    static let names: [String] = file?.cases.map(\.name) ?? ["<ops.json missing>"]

    @Test func fixtureLoads() throws {
        let f = try GoldenFile.load("torch/ops.json")
        #expect(f.cases.count >= 40)
    }

    @Test(arguments: names)
    func matchesPyTorch(name: String) throws {
        let file = try GoldenFile.load("torch/ops.json")
        guard let c = file.cases.first(where: { $0.name == name }) else {
            Issue.record("case \(name) not found")
            return
        }
        var results: [String: Tensor] = [:]
        try run(c, into: &results)
        for (key, value) in results {
            let expected = try c.tensor(key)
            #expect(value.shape == expected.shape, "\(name) \(key): shape \(value.shape) vs \(expected.shape)")
            guard value.shape == expected.shape else { continue }
            let close = allClose(value.scalars, expected.scalars, rtol: 1e-4, atol: 1e-5)
            #expect(close, "\(name) \(key): max diff \(maxAbsDifference(value.scalars, expected.scalars))")
        }
        // Every gradient PyTorch recorded must have been checked.
        for key in c.tensors.keys where key.hasPrefix("g_") {
            #expect(results[key] != nil, "\(name): \(key) not compared")
        }
    }

    private func size3(_ v: [Int]) -> Size3 { Size3(v) ?? Size3(0) }

    private func run(_ c: GoldenCase, into r: inout [String: Tensor]) throws {
        let gy = try c.tensor("gy")
        switch c.op {
        case "maxpool", "avgpool":
            let x = try c.tensor("x")
            let k = size3(c.ints("kernel", [])), s = size3(c.ints("stride", []))
            let p = Padding3(begin: size3(c.ints("pad_begin", [0])), end: size3(c.ints("pad_end", [0])))
            let ceil = c.int("ceil", 0) == 1
            if c.op == "maxpool" {
                let d = size3(c.ints("dilation", [1]))
                r["y"] = try maxPool3d(x, kernel: k, stride: s, padding: p, dilation: d, ceilMode: ceil)
                r["g_x"] = try maxPool3dBackward(gradOutput: gy, input: x, kernel: k, stride: s, padding: p, dilation: d, ceilMode: ceil)
            } else {
                let include = c.int("count_include_pad", 1) == 1
                r["y"] = try avgPool3d(x, kernel: k, stride: s, padding: p, ceilMode: ceil, countIncludePad: include)
                r["g_x"] = try avgPool3dBackward(gradOutput: gy, inputShape: x.shape, kernel: k, stride: s, padding: p,
                                                 ceilMode: ceil, countIncludePad: include)
            }
        case "globalavgpool":
            let x = try c.tensor("x")
            r["y"] = try globalAveragePool(x)
            r["g_x"] = try globalAveragePoolBackward(gradOutput: gy, inputShape: x.shape)
        case "globalmaxpool":
            let x = try c.tensor("x")
            r["y"] = try globalMaxPool(x)
            r["g_x"] = try globalMaxPoolBackward(gradOutput: gy, input: x)
        case "resize":
            let x = try c.tensor("x")
            let mode = ResampleMode(rawValue: c.strings["mode"] ?? "") ?? .trilinear
            let ac = c.int("align_corners", 0) == 1
            if let scales = c.floats["scales"] {
                r["y"] = try resize3d(x, scales: scales, mode: mode, alignCorners: ac)
                r["g_x"] = try resize3dBackward(gradOutput: gy, inputShape: x.shape, mode: mode, alignCorners: ac, scales: scales)
            } else {
                r["y"] = try resize3d(x, size: size3(c.ints("size", [])), mode: mode, alignCorners: ac)
                r["g_x"] = try resize3dBackward(gradOutput: gy, inputShape: x.shape, mode: mode, alignCorners: ac)
            }
        case "batchnorm":
            let x = try c.tensor("x"), mean = try c.tensor("mean"), variance = try c.tensor("variance")
            let scale = try c.tensor("scale"), shift = try c.tensor("shift"), eps = c.float("epsilon", 1e-5)
            r["y"] = try batchNorm(x, mean: mean, variance: variance, scale: scale, shift: shift, epsilon: eps)
            let b = try batchNormBackward(gradOutput: gy, input: x, mean: mean, variance: variance, scale: scale, epsilon: eps)
            r["g_x"] = b.input; r["g_scale"] = b.scale; r["g_shift"] = b.shift
        case "groupnorm", "instancenorm":
            let x = try c.tensor("x"), scale = try c.tensor("scale"), shift = try c.tensor("shift")
            let eps = c.float("epsilon", 1e-5)
            if c.op == "groupnorm" {
                let groups = c.int("groups", 1)
                r["y"] = try groupNorm(x, groups: groups, scale: scale, shift: shift, epsilon: eps)
                let b = try groupNormBackward(gradOutput: gy, input: x, groups: groups, scale: scale, epsilon: eps)
                r["g_x"] = b.input; r["g_scale"] = b.scale; r["g_shift"] = b.shift
            } else {
                r["y"] = try instanceNorm(x, scale: scale, shift: shift, epsilon: eps)
                let b = try instanceNormBackward(gradOutput: gy, input: x, scale: scale, epsilon: eps)
                r["g_x"] = b.input; r["g_scale"] = b.scale; r["g_shift"] = b.shift
            }
        case "gemm":
            let a = try c.tensor("a"), b = try c.tensor("b"), cc = try c.tensor("c")
            let tA = c.int("transA", 0) == 1, tB = c.int("transB", 0) == 1
            let alpha = c.float("alpha", 1), beta = c.float("beta", 1)
            r["y"] = try gemm(a, b, c: cc, alpha: alpha, beta: beta, transA: tA, transB: tB)
            let back = try gemmBackward(gradOutput: gy, a: a, b: b, cShape: cc.shape, alpha: alpha, beta: beta, transA: tA, transB: tB)
            r["g_a"] = back.a; r["g_b"] = back.b; r["g_c"] = back.c
        case "matmul":
            let a = try c.tensor("a"), b = try c.tensor("b")
            r["y"] = try matmul(a, b)
            let back = try matmulBackward(gradOutput: gy, a: a, b: b)
            r["g_a"] = back.a; r["g_b"] = back.b
        case "add", "sub", "mul", "div":
            let a = try c.tensor("a"), b = try c.tensor("b")
            let op: BinaryOp = ["add": .add, "sub": .sub, "mul": .mul][c.op] ?? .div
            r["y"] = try binary(a, b, op)
            let back: (a: Tensor, b: Tensor)
            switch op {
            case .add: back = try addBackward(gradOutput: gy, aShape: a.shape, bShape: b.shape)
            case .sub: back = try subBackward(gradOutput: gy, aShape: a.shape, bShape: b.shape)
            case .mul: back = try mulBackward(gradOutput: gy, a: a, b: b)
            default: back = try divBackward(gradOutput: gy, a: a, b: b)
            }
            r["g_a"] = back.a; r["g_b"] = back.b
        case "softmax", "logsoftmax":
            let x = try c.tensor("x"), axis = c.int("axis", -1)
            let log = c.op == "logsoftmax"
            let y = log ? try logSoftmax(x, axis: axis) : try softmax(x, axis: axis)
            r["y"] = y
            r["g_x"] = log ? try logSoftmaxBackward(gradOutput: gy, output: y, axis: axis)
                           : try softmaxBackward(gradOutput: gy, output: y, axis: axis)
        case "prelu":
            let x = try c.tensor("x"), w = try c.tensor("slope")
            // PyTorch applies a [C] weight along axis 1 (the channel form); the ONNX form is [C, 1, ..., 1].
            r["y"] = try prelu(x, channelSlope: w)
            let back = try preluBackward(gradOutput: gy, input: x, channelSlope: w)
            r["g_x"] = back.input; r["g_slope"] = back.slope
            let onnx = try w.reshaped([w.count] + [Int](repeating: 1, count: x.rank - 2))
            let y2 = try prelu(x, slope: onnx)
            #expect(y2.scalars == r["y"]?.scalars)
        case "sigmoid":
            let y = sigmoid(try c.tensor("x"))
            r["y"] = y; r["g_x"] = try sigmoidBackward(gradOutput: gy, output: y)
        case "tanh":
            let y = VoxelTensor.tanh(try c.tensor("x"))
            r["y"] = y; r["g_x"] = try tanhBackward(gradOutput: gy, output: y)
        case "leakyrelu":
            let x = try c.tensor("x"), alpha = c.float("alpha", 0.01)
            r["y"] = leakyRelu(x, alpha: alpha); r["g_x"] = try leakyReluBackward(gradOutput: gy, input: x, alpha: alpha)
        case "clip":
            let x = try c.tensor("x"), lo = c.float("min", 0), hi = c.float("max", 0)
            r["y"] = try clip(x, min: lo, max: hi); r["g_x"] = try clipBackward(gradOutput: gy, input: x, min: lo, max: hi)
        case "reducemean", "reducemax":
            let x = try c.tensor("x"), axes = c.ints("axes", []), keep = c.int("keepdims", 1) == 1
            if c.op == "reducemean" {
                r["y"] = try reduceMean(x, axes: axes, keepDims: keep)
                r["g_x"] = try reduceBackward(gradOutput: gy, inputShape: x.shape, .mean, axes: axes, keepDims: keep)
            } else {
                r["y"] = try reduceMax(x, axes: axes, keepDims: keep)
                r["g_x"] = try reduceMaxBackward(gradOutput: gy, input: x, axes: axes, keepDims: keep)
            }
        case "pad":
            let x = try c.tensor("x"), pads = c.ints("pads", [])
            let mode: PadMode = switch c.strings["mode"] {
            case "edge": .edge
            case "reflect": .reflect
            default: .constant(c.float("value", 0))
            }
            r["y"] = try pad(x, pads: pads, mode: mode)
            r["g_x"] = try padBackward(gradOutput: gy, inputShape: x.shape, pads: pads, mode: mode)
        default:
            Issue.record("unknown op \(c.op) in case \(c.name)")
        }
    }
}

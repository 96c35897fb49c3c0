import Foundation
import VoxelNN
import VoxelTensor

/// What a faithfulness curve measures: the class probability (softmax of the logits) or the logit.
public enum ScoreTarget: String, CaseIterable, Sendable, Codable {
    case probability
    case logit
}

/// An error of an evaluation: shapes that do not fit, bad options; the message names both.
public struct EvalError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The one-line message.
    public var message: String
    /// An error with `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// Scores many inputs of one model: the class probability or logit of each. Inputs that change a
/// little from one to the next (perturbation curves) run through an `IncrementalRunner` when every
/// activation fits the memory budget; otherwise, or with `incremental = false`, they run in batches.
///
/// The batch size comes from a memory budget: one more sample in a batch costs the graph's peak
/// activation memory at batch 1 (`Graph.peakActivationBytes`, input included), so a batch of `B`
/// samples needs about `B * peakActivationBytes`, plus the batch input that this scorer builds.
public struct ModelScorer: Sendable {
    /// The graph as run (fused: batch norm and activations folded into convolutions).
    public let graph: Graph
    /// The output holding the logits `[N, classes]`.
    public let output: Int
    /// Peak memory for a batch, in bytes.
    public var memoryBudget: Int
    /// The largest batch, whatever the budget: beyond a few samples a batch only adds memory traffic.
    public var maxBatch: Int = 8
    /// Score inputs one at a time, recomputing only what differs from the input before
    /// (`IncrementalRunner`) instead of in batches: perturbation curves change one region per step.
    /// Used when the graph's activations all fit `memoryBudget` (the runner keeps them all).
    public var incremental = true
    /// Called with (what, done, total) after each batch.
    public var progress: (@Sendable (String, Int, Int) -> Void)?

    /// A scorer for `graph` (fused here; pass the unfused model).
    /// - Throws: `GraphError` when fusion fails.
    public init(graph: Graph, output: Int = 0, memoryBudget: Int = 1 << 30,
                progress: (@Sendable (String, Int, Int) -> Void)? = nil) throws {
        self.graph = try graph.fused()
        self.output = output
        self.memoryBudget = memoryBudget
        self.progress = progress
    }

    /// The shape of one input, `[1, C, D, H, W]`.
    public var inputShape: [Int] { graph.values[graph.input].shape }

    /// How many samples one `graph.run` call takes: what fits the memory budget, at most `maxBatch`,
    /// and at most what keeps every activation of the batch within `Graph.batchActivationBytes`; at
    /// least 1.
    public var batchSize: Int {
        let perSample = graph.peakActivationBytes + 4 * inputShape.product
        return max(1, min(graph.cacheFriendlyBatch(limit: maxBatch), memoryBudget / max(perSample, 1)))
    }

    /// The logits of one input.
    /// - Parameter x: `[1, C, D, H, W]`. - Returns: `[classes]`.
    /// - Throws: `GraphError` or `EvalError` when the output is not `[1, classes]`.
    public func logits(_ x: Tensor) throws -> [Float] {
        let out = try graph.run(x).outputs[output]
        guard out.rank == 2, out.shape[0] == 1 else {
            throw EvalError("model output '\(graph.values[graph.outputs[output]].name)' has shape \(out.shape); evaluation needs a classifier's [N, classes] logits")
        }
        return out.scalars
    }

    /// The score of class `classIndex` for `count` inputs that `fill` writes, batch by batch.
    ///
    /// `fill(i, buffer)` writes input `i` (`C*D*H*W` values) and is called for `i = 0, 1, ...` in
    /// increasing order, so it may keep state from one input to the next (cumulative perturbations).
    /// - Returns: `count` scores, in input order.
    /// - Throws: `EvalError` when the class is out of range; errors of `fill` and of the graph.
    public func scores(count: Int, classIndex: Int, target: ScoreTarget, what: String,
                       fill: (Int, UnsafeMutableBufferPointer<Float>) throws -> Void) throws -> [Float] {
        let sample = inputShape.dropFirst().product
        if incremental && graph.totalActivationBytes + 4 * sample <= memoryBudget {
            let runner = IncrementalRunner(graph: graph)
            var buffer = [Float](repeating: 0, count: sample)
            var result: [Float] = []
            result.reserveCapacity(count)
            for i in 0..<count {
                try buffer.withUnsafeMutableBufferPointer { try fill(i, $0) }
                let out = try runner.run(try Tensor(shape: inputShape, scalars: buffer))[output]
                result.append(try Self.score(of: out, row: 0, classIndex: classIndex, target: target, graph: graph, output: output))
                progress?(what, i + 1, count)
            }
            return result
        }
        let batch = min(batchSize, max(count, 1))
        var result: [Float] = []
        result.reserveCapacity(count)
        var storage = [Float](repeating: 0, count: batch * sample)
        var start = 0
        while start < count {
            let n = min(batch, count - start)
            try storage.withUnsafeMutableBufferPointer { buf in
                for j in 0..<n {
                    try fill(start + j, UnsafeMutableBufferPointer(rebasing: buf[(j * sample)..<((j + 1) * sample)]))
                }
            }
            let x: Tensor
            if n == batch {
                x = try Tensor(shape: [n] + inputShape.dropFirst(), scalars: storage)
            } else {
                x = try Tensor(shape: [n] + inputShape.dropFirst(), scalars: Array(storage[0..<(n * sample)]))
            }
            let out = try graph.run(x).outputs[output]
            guard out.rank == 2, out.shape[0] == n else {
                throw EvalError("model output '\(graph.values[graph.outputs[output]].name)' has shape \(out.shape) for a batch of \(n); evaluation needs [N, classes] logits")
            }
            for j in 0..<n {
                result.append(try Self.score(of: out, row: j, classIndex: classIndex, target: target, graph: graph, output: output))
            }
            start += n
            progress?(what, start, count)
        }
        return result
    }

    /// The score of class `classIndex` in row `row` of logits `[N, classes]`.
    static func score(of logits: Tensor, row: Int, classIndex: Int, target: ScoreTarget, graph: Graph,
                      output: Int) throws -> Float {
        guard logits.rank == 2, row < logits.shape[0] else {
            throw EvalError("model output '\(graph.values[graph.outputs[output]].name)' has shape \(logits.shape); evaluation needs a classifier's [N, classes] logits")
        }
        let k = logits.shape[1]
        guard classIndex >= 0 && classIndex < k else {
            throw EvalError("class \(classIndex) is out of range: the model has \(k) classes")
        }
        return score(Array(logits.scalars[(row * k)..<((row + 1) * k)]), classIndex: classIndex, target: target)
    }

    /// The score of one class from a row of logits: its softmax probability or its logit.
    public static func score(_ logits: [Float], classIndex: Int, target: ScoreTarget) -> Float {
        switch target {
        case .logit:
            return logits[classIndex]
        case .probability:
            let m = logits.max() ?? 0
            var sum = 0.0
            for v in logits { sum += Foundation.exp(Double(v - m)) }
            return Float(Foundation.exp(Double(logits[classIndex] - m)) / sum)
        }
    }
}

/// Checks that a map `[D, H, W]` lies on the grid of an input `[1, C, D, H, W]`.
func requireMap(_ map: Tensor, on input: Tensor, _ op: String) throws {
    guard input.rank == 5, input.shape[0] == 1 else {
        throw EvalError("\(op): the input must be one sample [1, C, D, H, W], got \(input.shape)")
    }
    guard map.shape == Array(input.shape[2...]) else {
        throw EvalError("\(op): map shape \(map.shape) does not match the input's grid \(Array(input.shape[2...])) (input \(input.shape))")
    }
    guard map.scalars.allSatisfy(\.isFinite) else { throw EvalError("\(op): the map has NaN or infinite values") }
}

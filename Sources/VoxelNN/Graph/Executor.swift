import VoxelTensor

/// The result of running a graph forward.
public struct ForwardResult: Sendable {
    /// The model's outputs, in the order of `Graph.outputs`.
    public var outputs: [Tensor]
    /// The values asked for with `capture`, by value.
    public var captured: [ValueID: Tensor]
}

extension Graph {
    /// For each value, the index of the last node that reads it (-1 when none does).
    func lastUses() -> [Int] {
        var last = [Int](repeating: -1, count: values.count)
        for (i, n) in nodes.enumerated() { for v in n.inputs { last[v] = i } }
        return last
    }

    /// The tensors `node` reads, from `env` (indexed by value).
    /// - Throws: `GraphError` naming the node and a value that is not there (freed, or never computed).
    func arguments(of node: Node, in env: [Tensor?]) throws -> [Tensor] {
        try node.inputs.map { v in
            guard let t = env[v] else { throw GraphError("node '\(node.name)' reads '\(values[v].name)', which is freed or not computed") }
            return t
        }
    }

    /// Runs `node` on `args`; a `TensorError` becomes a `GraphError` naming the node.
    func forward(_ node: Node, _ args: [Tensor]) throws -> Tensor {
        do {
            return try node.op.forward(args)
        } catch let e as TensorError {
            throw GraphError("node '\(node.name)' (\(node.op.name)): \(e.message)")
        }
    }

    /// Checks the input's shape against the graph: 5D, the declared channels, any batch.
    func checkInput(_ x: Tensor) throws {
        let declared = values[input].shape
        guard x.rank == 5, x.shape[1...] == declared[1...] else {
            throw GraphError("model input '\(values[input].name)' expects [N, \(declared[1...].map(String.init).joined(separator: ", "))], got \(x.shape)")
        }
    }

    /// Runs the graph forward on `input` (`[N, C, D, H, W]`).
    ///
    /// Each activation is freed as soon as the last node that reads it has run, unless it is an output
    /// or in `capture`, so peak memory is the largest live set, not the sum of all activations.
    /// - Parameters:
    ///   - capture: values to return besides the outputs (CAM target layers).
    ///   - profile: receives each node's index and wall time in seconds as it finishes (`bench --profile`).
    public func run(_ x: Tensor, capture: Set<ValueID> = [],
                    profile: ((_ node: Int, _ seconds: Double) -> Void)? = nil) throws -> ForwardResult {
        try checkInput(x)
        let last = lastUses()
        let keep = capture.union(outputs)
        var env = [Tensor?](repeating: nil, count: values.count)
        env[input] = x
        for (v, t) in constants { env[v] = t }
        for (i, node) in nodes.enumerated() {
            let args = try arguments(of: node, in: env)
            let start = profile == nil ? nil : ContinuousClock.now
            env[node.output] = try forward(node, args)
            if let profile, let start {
                let d = (ContinuousClock.now - start).components
                profile(i, Double(d.seconds) + Double(d.attoseconds) * 1e-18)
            }
            for v in Set(node.inputs) where last[v] == i && !keep.contains(v) && constants[v] == nil {
                env[v] = nil
            }
        }
        var captured: [ValueID: Tensor] = [:]
        for v in capture { captured[v] = env[v] }
        return ForwardResult(outputs: outputs.map { env[$0]! }, captured: captured)
    }
}

extension Graph {
    /// The largest total size in bytes of the activations alive at once during `run` at batch 1 (input
    /// included, constants excluded): the memory one more sample in a batch costs.
    public var peakActivationBytes: Int {
        let last = lastUses()
        var live = values[input].shape.product
        var peak = live
        for (i, n) in nodes.enumerated() {
            live += values[n.output].shape.product
            peak = max(peak, live)
            for v in Set(n.inputs) where last[v] == i && constants[v] == nil && !outputs.contains(v) {
                live -= values[v].shape.product
            }
        }
        return 4 * peak
    }

    /// The size in bytes of each activation at batch 1 (input included, constants excluded).
    var activationBytes: [Int] {
        values.indices.filter { constants[$0] == nil }.map { 4 * values[$0].shape.product }
    }

    /// The total size in bytes of every activation at batch 1: what an `IncrementalRunner` keeps
    /// between runs.
    public var totalActivationBytes: Int { activationBytes.reduce(0, +) }

    /// The largest batch, at most `limit`, whose every activation stays within `batchActivationBytes`.
    public func cacheFriendlyBatch(limit: Int) -> Int {
        max(1, min(limit, Self.batchActivationBytes / max(activationBytes.max() ?? 1, 1)))
    }

    /// The largest activation a batch should have. Each layer runs a batch item by item, so a batch
    /// saves no arithmetic; past the caches it only adds memory traffic, and blocks above glibc's mmap
    /// threshold (at most 32 MiB) are handed back to the kernel when freed, so each costs a page fault
    /// per 4 KiB on every run. Measured on VGG3D at 64^3 (16 MiB largest activation per sample): AOPC's
    /// 201 passes took the same user time batched or not, but batches of 2-8 took 1.7-1.9 M page faults
    /// and 2.8-3.3 s of system time against 0.5-0.9 M and 0.9-1.5 s unbatched; Score-CAM took 2.90 s
    /// in batches of 1 and 2.99-3.07 s in batches of 2-16. Small models still batch, where a pass is
    /// cheap and the per-call overhead matters.
    public static let batchActivationBytes = 16 << 20

    /// The last layer of every resolution stage on the way to `output`: for each spatial size, the
    /// last 5D feature map of that size (in graph order), coarsest last.
    public func stageEnds(toward output: ValueID) -> [ValueID] {
        let above = ancestors(of: output)
        var ends: [ValueID] = []
        var current: [Int]? = nil
        for n in nodes where above[n.output] && n.op.isConvolutional {
            let s = values[n.output].shape
            guard s.count == 5 else { continue }
            let spatial = Array(s[2...])
            if spatial != current { ends.append(n.output); current = spatial } else { ends[ends.count - 1] = n.output }
        }
        return ends
    }
}

import VoxelTensor

// Incremental inference for perturbation curves (MoRF/LeRF, deletion/insertion) and occlusion: each
// input differs from the one before it in one small region, so most of every early activation is
// unchanged. The runner keeps every activation of its last run and, for the next input, recomputes
// only the box of each activation that the changed voxels can reach:
//   - the input's changed box comes from comparing it with the previous input;
//   - a convolution or pooling window maps a changed input box to the output box whose windows touch it,
//     and recomputes that box from the input box it reads, with the layer's padding kept only where
//     the box meets the volume's border (so each output is the same sum, bit for bit);
//   - element-wise operations (activations, batch norm, same-shape arithmetic, channel concat) keep
//     the union of their inputs' boxes;
//   - any other operation (pooling over the whole volume, linear layers, reshapes, resampling), and
//     any box covering most of its tensor, is recomputed whole, and everything after it is too.
// The outputs are identical to `Graph.run`'s, bit for bit (tested on every fixture model).

/// A box of voxels `[lo, hi)` along (D, H, W).
struct VoxelBox: Equatable {
    var lo: Size3, hi: Size3

    var volume: Int { max(0, hi.d - lo.d) * max(0, hi.h - lo.h) * max(0, hi.w - lo.w) }
    var isEmpty: Bool { volume == 0 }

    /// The whole of a `[N, C, D, H, W]` shape.
    static func whole(_ shape: [Int]) -> VoxelBox {
        VoxelBox(lo: Size3(0), hi: Size3(shape[2], shape[3], shape[4]))
    }

    /// The smallest box holding both.
    func union(_ o: VoxelBox) -> VoxelBox {
        if isEmpty { return o }
        if o.isEmpty { return self }
        return VoxelBox(lo: Size3(min(lo.d, o.lo.d), min(lo.h, o.lo.h), min(lo.w, o.lo.w)),
                        hi: Size3(max(hi.d, o.hi.d), max(hi.h, o.hi.h), max(hi.w, o.hi.w)))
    }
}

/// Runs a graph on a sequence of batch-1 inputs, each recomputed only where it differs from the one
/// before (see the file comment). Holds every activation of the last run, so it costs the sum of the
/// graph's activations in memory. Not thread-safe: one sequence at a time.
public final class IncrementalRunner {
    /// The graph as run (pass a fused graph for speed).
    public let graph: Graph
    private var cache: [Tensor?]
    private var hasRun = false
    /// Voxels recomputed in the last run against a whole run's, summed over the spatial activations
    /// (1 for a whole run): for tests and benchmarks.
    public private(set) var lastRecomputedFraction = 1.0
    /// A box covering more than this share of its tensor is recomputed whole.
    static let wholeShare = 0.6

    /// A runner for `graph`; its first run is a whole run.
    public init(graph: Graph) {
        self.graph = graph
        cache = [Tensor?](repeating: nil, count: graph.values.count)
    }

    /// The graph's outputs for `x` (`[1, C, D, H, W]`), equal to `graph.run(x).outputs`.
    /// - Throws: `GraphError` when the input does not fit the graph or a node fails.
    public func run(_ x: Tensor) throws -> [Tensor] {
        try graph.checkInput(x)
        guard x.shape[0] == 1 else {
            throw GraphError("incremental runs take one input at a time, got a batch of \(x.shape[0])")
        }
        let g = graph
        var changed = [VoxelBox?](repeating: nil, count: g.values.count)  // nil: unchanged
        if hasRun, let previous = cache[g.input], previous.shape == x.shape {
            changed[g.input] = Self.changedBox(previous, x)
        } else {
            changed[g.input] = VoxelBox.whole(x.shape)
            for v in cache.indices where g.constants[v] == nil { cache[v] = nil }
            hasRun = false
        }
        for (v, t) in g.constants { cache[v] = t }
        cache[g.input] = x
        var recomputed = 0.0, total = 0.0
        for node in g.nodes {
            let outShape = hasRun ? cache[node.output]!.shape : nil
            let inputBoxes = node.inputs.map { changed[$0] }
            if hasRun && inputBoxes.allSatisfy({ $0 == nil }) {
                if let s = outShape, s.count == 5 { total += Double(s[2...].product) }
                continue
            }
            let args = try g.arguments(of: node, in: cache)
            var box: VoxelBox?
            if hasRun, let s = outShape, s.count == 5 {
                box = Self.outputBox(node, args: args, inputBoxes: inputBoxes, outputShape: s)
            }
            do {
                if let b = box, !b.isEmpty, let s = outShape,
                   Double(b.volume) <= Self.wholeShare * Double(s[2...].product) {
                    let part = try Self.forwardBox(node, args: args, box: b, outputShape: s)
                    Self.paste(part, into: &cache[node.output]!, at: b.lo)
                    changed[node.output] = b
                    recomputed += Double(b.volume)
                } else if let b = box, b.isEmpty {
                    changed[node.output] = nil
                } else {
                    let y = try node.op.forward(args)
                    cache[node.output] = y
                    changed[node.output] = y.rank == 5 ? VoxelBox.whole(y.shape) : VoxelBox(lo: Size3(0), hi: Size3(1))
                    if y.rank == 5 { recomputed += Double(y.shape[2...].product) }
                }
            } catch let e as TensorError {
                throw GraphError("node '\(node.name)' (\(node.op.name)): \(e.message)")
            }
            if let s = cache[node.output]?.shape, s.count == 5 { total += Double(s[2...].product) }
        }
        lastRecomputedFraction = total > 0 ? recomputed / total : 1
        hasRun = true
        return try g.outputs.map { v in
            guard let t = cache[v] else { throw GraphError("output '\(g.values[v].name)' was not computed") }
            return t
        }
    }

    /// The box where `b` differs from `a` (same shape), or nil when they are equal.
    static func changedBox(_ a: Tensor, _ b: Tensor) -> VoxelBox? {
        let C = a.shape[1], D = a.shape[2], H = a.shape[3], W = a.shape[4]
        var lo = Size3(D, H, W), hi = Size3(0)
        a.scalars.withUnsafeBufferPointer { pa in b.scalars.withUnsafeBufferPointer { pb in
            for c in 0..<C { for d in 0..<D { for h in 0..<H {
                let row = ((c * D + d) * H + h) * W
                var w0 = -1, w1 = -1
                for w in 0..<W where pa[row + w].bitPattern != pb[row + w].bitPattern {
                    if w0 < 0 { w0 = w }
                    w1 = w
                }
                if w0 >= 0 {
                    lo = Size3(min(lo.d, d), min(lo.h, h), min(lo.w, w0))
                    hi = Size3(max(hi.d, d + 1), max(hi.h, h + 1), max(hi.w, w1 + 1))
                }
            }}}
        }}
        return hi.d > lo.d ? VoxelBox(lo: lo, hi: hi) : nil
    }

    /// The output box a node must recompute, or nil when the node must run whole.
    static func outputBox(_ node: Node, args: [Tensor], inputBoxes: [VoxelBox?], outputShape: [Int]) -> VoxelBox? {
        let O = Size3(outputShape[2], outputShape[3], outputShape[4])
        func window(_ b: VoxelBox, kernel: Size3, stride: Size3, padBegin: Size3, dilation: Size3) -> VoxelBox {
            // Output o reads inputs [o*s - p, o*s - p + dil*(k-1)]: it changes when that meets [lo, hi).
            func axis(_ lo: Int, _ hi: Int, _ k: Int, _ s: Int, _ p: Int, _ dl: Int, _ n: Int) -> (Int, Int) {
                let first = lo + p - dl * (k - 1)
                let o0 = first <= 0 ? 0 : (first + s - 1) / s
                let o1 = (hi - 1 + p) < 0 ? 0 : (hi - 1 + p) / s + 1
                return (max(0, o0), min(n, o1))
            }
            let d = axis(b.lo.d, b.hi.d, kernel.d, stride.d, padBegin.d, dilation.d, O.d)
            let h = axis(b.lo.h, b.hi.h, kernel.h, stride.h, padBegin.h, dilation.h, O.h)
            let w = axis(b.lo.w, b.hi.w, kernel.w, stride.w, padBegin.w, dilation.w, O.w)
            return VoxelBox(lo: Size3(d.0, h.0, w.0), hi: Size3(d.1, h.1, w.1))
        }
        let spatialSame = args.allSatisfy { $0.rank == 5 && Array($0.shape[2...]) == Array(outputShape[2...]) }
        switch node.op {
        case .conv(let c):
            guard let b0 = inputBoxes[0] ?? (c.addsResidual ? VoxelBox(lo: Size3(0), hi: Size3(0)) : nil) else { return nil }
            var b = inputBoxes[0] == nil ? b0 : window(b0, kernel: Size3(c.weight.shape[2], c.weight.shape[3], c.weight.shape[4]),
                                                        stride: c.stride, padBegin: c.padding.begin, dilation: c.dilation)
            if c.addsResidual, let r = inputBoxes[1] { b = b.union(r) }
            // Winograd computes 2x2x2 tiles from even coordinates: a box starting there recomputes
            // whole tiles, each the same sums as in the whole run.
            let tile = c.packed.outputTile(wholeOutputWidth: O.w)
            if tile > 1, !b.isEmpty { b = VoxelBox(lo: Size3(b.lo.d / tile * tile, b.lo.h / tile * tile, b.lo.w / tile * tile), hi: b.hi) }
            return b
        case .maxPool(let p):
            guard let b = inputBoxes[0] else { return nil }
            return window(b, kernel: p.kernel, stride: p.stride, padBegin: p.padding.begin, dilation: p.dilation)
        case .avgPool(let p) where !p.ceilMode:
            // Without ceil mode every window lies inside the padded volume, so a box's divisors (padding
            // counted or not) are the whole run's.
            guard let b = inputBoxes[0] else { return nil }
            return window(b, kernel: p.kernel, stride: p.stride, padBegin: p.padding.begin, dilation: Size3(1))
        case .activation, .sigmoid, .tanh, .batchNorm, .identity:
            return inputBoxes[0]
        case .binary:
            guard args.count == 2, args[0].shape == args[1].shape, spatialSame else { return nil }
            return inputBoxes.compactMap { $0 }.reduce(VoxelBox(lo: Size3(0), hi: Size3(0))) { $0.union($1) }
        case .concat(let axis):
            guard axis == 1 || axis == -4, spatialSame else { return nil }
            return inputBoxes.compactMap { $0 }.reduce(VoxelBox(lo: Size3(0), hi: Size3(0))) { $0.union($1) }
        default:
            return nil
        }
    }

    /// A node's output over `box` only, computed from the parts of its inputs that box reads.
    static func forwardBox(_ node: Node, args: [Tensor], box: VoxelBox, outputShape: [Int]) throws -> Tensor {
        /// The input range read by outputs [o0, o1) along one axis, clamped to the input, and the
        /// padding that stands for the part outside it.
        func reads(_ o0: Int, _ o1: Int, _ k: Int, _ s: Int, _ p: Int, _ dl: Int, _ n: Int) -> (lo: Int, hi: Int, before: Int, after: Int) {
            let start = o0 * s - p, end = (o1 - 1) * s - p + dl * (k - 1) + 1
            let lo = min(n, max(0, start)), hi = max(lo, min(n, end))
            return (lo, hi, lo - start, end - hi)
        }
        func windowed(kernel: Size3, stride: Size3, padBegin: Size3, dilation: Size3, input: Tensor) throws
            -> (crop: Tensor, padding: Padding3) {
            let I = Size3(input.shape[2], input.shape[3], input.shape[4])
            let d = reads(box.lo.d, box.hi.d, kernel.d, stride.d, padBegin.d, dilation.d, I.d)
            let h = reads(box.lo.h, box.hi.h, kernel.h, stride.h, padBegin.h, dilation.h, I.h)
            let w = reads(box.lo.w, box.hi.w, kernel.w, stride.w, padBegin.w, dilation.w, I.w)
            let crop = try Self.crop(input, VoxelBox(lo: Size3(d.lo, h.lo, w.lo), hi: Size3(d.hi, h.hi, w.hi)))
            return (crop, Padding3(begin: Size3(d.before, h.before, w.before), end: Size3(d.after, h.after, w.after)))
        }
        switch node.op {
        case .conv(let c):
            let k = Size3(c.weight.shape[2], c.weight.shape[3], c.weight.shape[4])
            let (crop, padding) = try windowed(kernel: k, stride: c.stride, padBegin: c.padding.begin, dilation: c.dilation,
                                           input: args[0])
            return try c.packed.forward(crop, padding: padding, residual: c.addsResidual ? try Self.crop(args[1], box) : nil,
                                        wholeOutputWidth: outputShape[4])
        case .maxPool(let p):
            let (crop, padding) = try windowed(kernel: p.kernel, stride: p.stride, padBegin: p.padding.begin,
                                           dilation: p.dilation, input: args[0])
            return try maxPool3d(crop, kernel: p.kernel, stride: p.stride, padding: padding, dilation: p.dilation)
        case .avgPool(let p):
            let (crop, padding) = try windowed(kernel: p.kernel, stride: p.stride, padBegin: p.padding.begin,
                                           dilation: Size3(1), input: args[0])
            return try avgPool3d(crop, kernel: p.kernel, stride: p.stride, padding: padding, ceilMode: false,
                                 countIncludePad: p.countIncludePad)
        default:
            return try node.op.forward(args.map { try Self.crop($0, box) })
        }
    }

    /// The voxels of `t` (`[1, C, D, H, W]`) inside `box`, as `[1, C, d, h, w]`.
    static func crop(_ t: Tensor, _ box: VoxelBox) throws -> Tensor {
        try slice(t, starts: box.lo.array, ends: box.hi.array, axes: [2, 3, 4])
    }

    /// Writes `part` (`[1, C, d, h, w]`) into `t` at `lo`.
    static func paste(_ part: Tensor, into t: inout Tensor, at lo: Size3) {
        let C = t.shape[1], D = t.shape[2], H = t.shape[3], W = t.shape[4]
        let n = Size3(part.shape[2], part.shape[3], part.shape[4])
        part.scalars.withUnsafeBufferPointer { src in
            t.scalars.withUnsafeMutableBufferPointer { dst in
                var i = 0
                for c in 0..<C { for d in 0..<n.d { for h in 0..<n.h {
                    let row = ((c * D + lo.d + d) * H + lo.h + h) * W + lo.w
                    for w in 0..<n.w { dst[row + w] = src[i]; i += 1 }
                }}}
            }
        }
    }
}

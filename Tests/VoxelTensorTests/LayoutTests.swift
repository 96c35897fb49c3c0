import Testing
import VoxelTensor
import _TestSupport

@Suite struct LayoutTests {
    /// Channels of one volume, as DenseNet concatenates them: blocks of 12,000-36,000 and 100,000 floats,
    /// copied in pieces on every core (uneven last pieces), and split back, element by element.
    @Test func concatAndSplitOfLargeBlocks() throws {
        let parts = [Tensor.random([1, 1, 10, 30, 40], seed: 75), Tensor.random([1, 3, 10, 30, 40], seed: 76),
                     Tensor.random([1, 2, 1, 3, 2], seed: 77), Tensor.random([1, 25, 10, 20, 20], seed: 78)]
        let flat = try parts.map { try reshape($0, [1, -1]) }
        let y = try concat(flat, axis: 1)
        // Compared as Bools, so a failure does not print the arrays.
        let joined = y.scalars == parts.flatMap { $0.scalars }
        #expect(joined)
        let back = try split(y, sizes: parts.map { $0.count }, axis: 1)
        for (i, (b, p)) in zip(back, parts).enumerated() {
            let same = b.scalars == p.scalars
            #expect(same, "piece \(i)")
        }
        // Two volumes: each piece of each volume lands in its place.
        let a = Tensor.random([2, 5, 10, 30, 40], seed: 79), c = Tensor.random([2, 2, 10, 30, 40], seed: 80)
        let ac = try concat([a, c], axis: 1)
        let v = 10 * 30 * 40
        for n in 0..<2 {
            let first = ac.scalars[(n * 7 * v)..<((n * 7 + 5) * v)].elementsEqual(a.scalars[(n * 5 * v)..<((n + 1) * 5 * v)])
            let second = ac.scalars[((n * 7 + 5) * v)..<((n + 1) * 7 * v)].elementsEqual(c.scalars[(n * 2 * v)..<((n + 1) * 2 * v)])
            #expect(first && second, "volume \(n)")
        }
        let parts2 = try split(ac, sizes: [5, 2], axis: 1)
        let splitBack = parts2[0] == a && parts2[1] == c
        #expect(splitBack)
    }

    @Test(arguments: [0, 1, 2, -1])
    func concatAndSplitRoundTrip(axis: Int) throws {
        let shapes: [[Int]] = (0..<3).map { i in
            var s = [2, 3, 4]
            s[(axis + 3) % 3] = i + 1
            return s
        }
        let parts = shapes.enumerated().map { Tensor.random($0.element, seed: UInt64(70 + $0.offset)) }
        let y = try concat(parts, axis: axis)
        var expectedShape = [2, 3, 4]
        expectedShape[(axis + 3) % 3] = 6
        #expect(y.shape == expectedShape)
        // Element check against index arithmetic.
        let a = (axis + 3) % 3
        var offset = 0
        for p in parts {
            for flat in 0..<p.count {
                let idx = [flat / (p.shape[1] * p.shape[2]), flat / p.shape[2] % p.shape[1], flat % p.shape[2]]
                var outIdx = idx
                outIdx[a] += offset
                #expect(y[outIdx] == p.scalars[flat])
            }
            offset += p.shape[a]
        }
        let back = try concatBackward(gradOutput: y, shapes: shapes, axis: axis)
        #expect(back.map(\.scalars) == parts.map(\.scalars))
        let g = Tensor.random(y.shape, seed: 79)
        let gparts = try concatBackward(gradOutput: g, shapes: shapes, axis: axis)
        try checkGradient("concat part 1", at: parts[1], upstream: g,
                          forward: { try concat([parts[0], $0, parts[2]], axis: axis) }, analytic: gparts[1])
    }

    @Test func concatMismatchNamesShapes() {
        let m = errorMessage { _ = try concat([Tensor.zeros([2, 3]), Tensor.zeros([3, 3])], axis: 1) }
        #expect(m?.contains("[2, 3]") == true && m?.contains("[3, 3]") == true, "\(m ?? "no error")")
        #expect(errorMessage { _ = try concat([], axis: 0) } != nil)
        #expect(errorMessage { _ = try split(Tensor.zeros([4]), sizes: [1, 2], axis: 0) } != nil)
    }

    @Test func flattenReshapeSqueeze() throws {
        let x = Tensor.random([2, 3, 4, 5], seed: 80)
        #expect(try flatten(x).shape == [2, 60])
        #expect(try flatten(x, axis: 0).shape == [1, 120])
        #expect(try flatten(x, axis: 4).shape == [120, 1])
        #expect(try flatten(x, axis: -2).shape == [6, 20])
        #expect(try reshape(x, [0, -1]).shape == [2, 60])
        #expect(try reshape(x, [0, 0, -1, 1]).shape == [2, 3, 20, 1])
        #expect(try reshape(x, [-1]).scalars == x.scalars)
        #expect(try reshapeTarget([2, 0, 3], [0, 0], allowZero: true) == [0, 0])
        #expect(errorMessage { _ = try reshape(x, [-1, -1]) } != nil)
        #expect(errorMessage { _ = try reshape(x, [7, -1]) }?.contains("[2, 3, 4, 5]") == true)
        #expect(errorMessage { _ = try flatten(x, axis: 5) } != nil)
        let u = try unsqueeze(x, axes: [0, -1])
        #expect(u.shape == [1, 2, 3, 4, 5, 1])
        #expect(try squeeze(u).shape == [2, 3, 4, 5])
        #expect(try squeeze(u, axes: [-1]).shape == [1, 2, 3, 4, 5])
        #expect(errorMessage { _ = try squeeze(u, axes: [1]) } != nil)
        #expect(try reshapeBackward(gradOutput: u, inputShape: x.shape).shape == x.shape)
    }

    static let permutations: [([Int], [Int])] = [
        ([2, 3], [1, 0]), ([2, 3, 4], [2, 0, 1]), ([2, 3, 4, 5, 6], [0, 2, 3, 4, 1]), ([2, 3, 4, 5], [0, 1, 3, 2]),
        ([1, 3, 1, 5], [3, 2, 1, 0]), ([2, 3, 4], [0, 1, 2]),
    ]

    @Test(arguments: permutations)
    func transposeMatchesIndexArithmetic(c: ([Int], [Int])) throws {
        let x = Tensor.random(c.0, seed: 81)
        let y = try transpose(x, permutation: c.1)
        #expect(y.shape == c.1.map { c.0[$0] })
        let outStrides = y.strides, inStrides = x.strides
        for flat in 0..<y.count {
            var src = 0
            for axis in 0..<y.rank { src += (flat / outStrides[axis]) % y.shape[axis] * inStrides[c.1[axis]] }
            #expect(y.scalars[flat] == x.scalars[src])
        }
        #expect(try transposeBackward(gradOutput: y, permutation: c.1).scalars == x.scalars)
        #expect(errorMessage { _ = try transpose(x, permutation: [0, 0]) } != nil)
    }

    @Test func defaultTransposeReverses() throws {
        let x = Tensor.random([2, 3, 4], seed: 82)
        #expect(try transpose(x).shape == [4, 3, 2])
        #expect(identity(x) == x && dropoutInference(x) == x)
    }

    @Test func padModesOnOneAxis() throws {
        let x = try Tensor(shape: [4], scalars: [1, 2, 3, 4])
        // numpy.pad(x, (2, 3), mode): constant 9 / edge / reflect.
        #expect(try pad(x, pads: [2, 3], mode: .constant(9)).scalars == [9, 9, 1, 2, 3, 4, 9, 9, 9])
        #expect(try pad(x, pads: [2, 3], mode: .edge).scalars == [1, 1, 1, 2, 3, 4, 4, 4, 4])
        #expect(try pad(x, pads: [2, 3], mode: .reflect).scalars == [3, 2, 1, 2, 3, 4, 3, 2, 1])
        #expect(try pad(x, pads: [-1, 1]).scalars == [2, 3, 4, 0])
        #expect(errorMessage { _ = try pad(x, pads: [4, 0], mode: .reflect) } != nil)
        #expect(errorMessage { _ = try pad(x, pads: [1]) } != nil)
        #expect(errorMessage { _ = try pad(x, pads: [-3, -2]) } != nil)
    }

    @Test(arguments: [PadMode.constant(0.5), .edge, .reflect])
    func padBackwardMatchesFiniteDifferences(mode: PadMode) throws {
        let x = Tensor.random([1, 2, 3, 4, 3], seed: 83)
        let pads = [0, 0, 1, 2, 2, 0, 1, 0, 1, 2]
        let y = try pad(x, pads: pads, mode: mode)
        #expect(y.shape == [1, 3, 4, 7, 7])
        let g = Tensor.random(y.shape, seed: 84)
        try checkGradient("pad \(mode)", at: x, upstream: g, forward: { try pad($0, pads: pads, mode: mode) },
                          analytic: try padBackward(gradOutput: g, inputShape: x.shape, pads: pads, mode: mode))
        let crop = [0, 0, -1, 1, 0, 0, 0, 0, -1, 1]
        let gc = Tensor.random(try pad(x, pads: crop, mode: mode).shape, seed: 85)
        try checkGradient("pad crop \(mode)", at: x, upstream: gc, forward: { try pad($0, pads: crop, mode: mode) },
                          analytic: try padBackward(gradOutput: gc, inputShape: x.shape, pads: crop, mode: mode))
    }
}

@Suite struct SliceTests {
    /// (shape, starts, ends, axes, steps, expected output shape) following the ONNX Slice examples.
    static let cases: [([Int], [Int], [Int], [Int]?, [Int]?, [Int])] = [
        ([2, 4], [1, 0], [2, 3], [0, 1], [1, 2], [1, 2]),             // ONNX example 1: [[5, 7]]
        ([2, 4], [0, 1], [-1, 1000], nil, nil, [1, 3]),               // ONNX example 2: [[2, 3, 4]]
        ([3, 5, 6], [-1], [-1000], [1], [-2], [3, 3, 6]),             // backwards from the end
        ([3, 5, 6], [1, -3], [Int.max, Int.max], [-1, 0], nil, [3, 5, 5]),
        ([1, 2, 5, 6, 7], [1, 0, 2], [4, 6, 7], [2, 3, 4], [2, 3, 1], [1, 2, 2, 2, 5]),
        ([4, 3], [5], [10], [0], nil, [0, 3]),
    ]

    @Test(arguments: cases)
    func sliceMatchesIndexArithmetic(c: ([Int], [Int], [Int], [Int]?, [Int]?, [Int])) throws {
        let x = Tensor.random(c.0, seed: 86)
        let y = try slice(x, starts: c.1, ends: c.2, axes: c.3, steps: c.4)
        #expect(y.shape == c.5)
        // numpy-style reference: clamp like Python slicing, which ONNX Slice mirrors.
        let rank = c.0.count
        var ranges = c.0.map { Array(0..<$0) }
        for (i, axis) in (c.3 ?? Array(0..<c.1.count)).enumerated() {
            let a = axis < 0 ? axis + rank : axis, dim = c.0[a], step = c.4?[i] ?? 1
            var idx: [Int] = []
            var v = c.1[i] < 0 ? max(c.1[i] + dim, step > 0 ? 0 : -1) : min(c.1[i], step > 0 ? dim : dim - 1)
            let end = c.2[i] < 0 ? max(c.2[i] >= -dim ? c.2[i] + dim : -1, -1) : min(c.2[i], dim)
            while step > 0 ? v < end : v > end { if v >= 0 && v < dim { idx.append(v) }; v += step }
            ranges[a] = idx
        }
        var expected: [Float] = []
        func walk(_ axis: Int, _ index: [Int]) {
            if axis == rank { expected.append(x[index]); return }
            for i in ranges[axis] { walk(axis + 1, index + [i]) }
        }
        walk(0, [])
        #expect(y.scalars == expected)
        if y.count > 0 {
            let g = Tensor.random(y.shape, seed: 87)
            try checkGradient("slice \(c)", at: x, upstream: g, forward: { try slice($0, starts: c.1, ends: c.2, axes: c.3, steps: c.4) },
                              analytic: try sliceBackward(gradOutput: g, inputShape: x.shape, starts: c.1, ends: c.2, axes: c.3, steps: c.4))
        }
    }

    @Test func badArgumentsThrow() {
        let x = Tensor.zeros([2, 3])
        #expect(errorMessage { _ = try slice(x, starts: [0], ends: [1, 2]) } != nil)
        #expect(errorMessage { _ = try slice(x, starts: [0], ends: [1], axes: [2]) } != nil)
        #expect(errorMessage { _ = try slice(x, starts: [0], ends: [1], axes: [0], steps: [0]) } != nil)
        #expect(errorMessage { _ = try slice(x, starts: [0, 0], ends: [1, 1], axes: [1, -1]) } != nil)
    }
}

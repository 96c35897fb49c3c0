import Testing
@testable import VoxelTensor
import _TestSupport

/// The AVX2 and AVX-512 direct kernels sum every output in the same order with one FMA per product,
/// so they must agree bit for bit. (On a CPU without AVX-512 both runs take the AVX2 path and this is
/// trivial.) Layers the AVX-512 path runs as Winograd round differently: equal to the engine's tolerance.
@Suite struct Conv3DISATests {
    @Test(arguments: ConvCase.table)
    func avx2AndAVX512AreBitIdentical(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 50)
        func layer(_ isa: ConvISA) throws -> PackedConv3D {
            try PackedConv3D(weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation,
                             groups: c.groups, activation: c.activation, isa: isa)
        }
        let y2 = try layer(.avx2).forward(x), y5 = try layer(.avx512).forward(x)
        if try layer(.avx512).usesWinograd(width: y5.shape[4]) {
            #expect(convClose(y5, y2, terms: c.terms), "max diff \(maxAbsDifference(y2.scalars, y5.scalars))")
        } else {
            #expect(y2 == y5, "max diff \(maxAbsDifference(y2.scalars, y5.scalars))")
        }
        let gy = Tensor.random(y2.shape, seed: 51)
        func backward(_ isa: ConvISA) throws -> Tensor {
            try conv3dBackwardInput(gradOutput: gy, weight: w, inputShape: x.shape, stride: c.stride,
                                    padding: c.padding, dilation: c.dilation, groups: c.groups, isa: isa)
        }
        let g2 = try backward(.avx2), g5 = try backward(.avx512)
        let gradient = try PackedConv3DInputGradient(weight: w, stride: c.stride, padding: c.padding, dilation: c.dilation,
                                                     groups: c.groups, isa: .avx512)
        if gradient.usesWinograd(width: x.shape[4]) {
            #expect(convClose(g5, g2, terms: c.cout / c.groups * c.kernel.product))
        } else {
            #expect(g2 == g5, "max diff \(maxAbsDifference(g2.scalars, g5.scalars))")
        }
        // Weight gradients sum lanes in different groupings per ISA: equal to Float rounding.
        func weightGrad(_ isa: ConvISA) throws -> (weight: Tensor, bias: Tensor) {
            try conv3dBackwardWeight(gradOutput: gy, input: x, weightShape: w.shape, stride: c.stride,
                                     padding: c.padding, dilation: c.dilation, groups: c.groups, isa: isa)
        }
        let w2 = try weightGrad(.avx2), w5 = try weightGrad(.avx512)
        let close = convClose(w5.weight, w2.weight, terms: gy.count / c.cout)
        #expect(close && w2.bias == w5.bias)
    }

    /// Streaming stores (forced here by `Conv3DEngine.streamingOverride`, whatever the CPU and the
    /// output's size) move the same values as plain stores with their lines prefetched (the
    /// override's `false`) and as plain stores alone (these outputs are small): every path must give
    /// the same bits all three ways. Outputs start at every alignment within a 64-byte line: rows
    /// 16-byte aligned stream every vector, partial lines as 16-byte pieces (`RowStreamer`, and
    /// Winograd's 32 columns); rows that are not go through `RowStreamer`'s slots (ends stored
    /// plainly) or Winograd's masked stores (`vx_stream32_at`). Nothing outside the output may be written. Layers: forward 1->8
    /// (W-vectorised 8-blocks, rows of 2.5 vectors), forward 8->8 (Winograd on AVX-512, rows of two
    /// tile vectors), the input gradient of 4->8 (the one-channel kernel by row blocks, rows of 2.5
    /// vectors).
    @Test(arguments: [0, 1, 4, 7, 8, 12, 15])
    func streamingStoresGiveTheSameResults(misalignment m: Int) throws {
        func layer(_ cout: Int, _ cin: Int, seed: UInt64) throws -> PackedConv3D {
            try PackedConv3D(weight: .random([cout, cin, 3, 3, 3], seed: seed), bias: .random([cout], seed: seed + 1),
                             stride: 1, padding: 1, dilation: 1, groups: 1, activation: .relu)
        }
        let cases = [(try layer(8, 1, seed: 71), Tensor.random([1, 1, 5, 7, 40], seed: 70)),
                     (try layer(8, 8, seed: 74), Tensor.random([1, 8, 4, 6, 64], seed: 73))]
        for (conv, x) in cases {
            let geo = try Conv3DGeometry(inputShape: x.shape, weightShape: conv.weightShape, stride: 1, padding: 1,
                                         dilation: 1, groups: 1)
            let plain = try conv.forward(x)
            let prefetched = try Conv3DEngine.$streamingOverride.withValue(false) { try conv.forward(x) }
            let prefetchSame = prefetched == plain
            #expect(prefetchSame, "\(x.shape): prefetched stores differ")
            let streamed = try writtenMisaligned(plain.shape, by: m) { y in
                x.scalars.withUnsafeBufferPointer { conv.convForwardDirect($0.baseAddress!, geo: geo, into: y) }
            }
            let same = streamed == plain
            #expect(same, "\(x.shape): max diff \(maxAbsDifference(streamed.scalars, plain.scalars))")
        }
        let w = Tensor.random([8, 4, 3, 3, 3], seed: 75), gy = Tensor.random([1, 8, 5, 7, 40], seed: 76)
        let gradient = try PackedConv3DInputGradient(weight: w, stride: 1, padding: 1)
        let geo = try Conv3DGeometry(inputShape: [1, 4, 5, 7, 40], weightShape: w.shape, stride: 1, padding: 1,
                                     dilation: 1, groups: 1)
        let plain = try gradient.backward(gy, inputShape: geo.inputShape)
        let prefetched = try Conv3DEngine.$streamingOverride.withValue(false) {
            try gradient.backward(gy, inputShape: geo.inputShape)
        }
        let prefetchSame = prefetched == plain
        #expect(prefetchSame, "input gradient: prefetched stores differ")
        #expect(gradient.runsByRows(inputWidth: 40) == (Conv3DEngine.isa == .avx512))
        if gradient.runsByRows(inputWidth: 40) {
            let streamed = try writtenMisaligned(plain.shape, by: m) { gx in
                gy.scalars.withUnsafeBufferPointer { gradient.backwardRows($0.baseAddress!, into: gx, geo: geo) }
            }
            let same = streamed == plain
            #expect(same, "max diff \(maxAbsDifference(streamed.scalars, plain.scalars))")
        }
    }

    /// Which outputs stream: none under 8 MB per volume (stored plainly, no prefetch); larger ones
    /// prefetch their lines, and stream only where the CPU streams at all and either the call moves
    /// at least 4 times the L3 (a batch) or the output alone is as large as the L3; never a single
    /// volume's output that the L3 could keep for the next layer.
    @Test func streamingIsForLargeBatchedCalls() {
        let l3 = System.lastLevelCacheBytes, mb = 1 << 20
        #expect(l3 >= 1 << 20 && l3 <= 1 << 32, "L3 read as \(l3) bytes")
        let small = outputStores(bytes: 4 * mb, callBytes: 100 * l3)
        #expect(!small.streaming && !small.prefetch)
        if l3 > 8 * mb {
            let single = outputStores(bytes: l3 - 1, callBytes: 4 * l3 - 1)
            #expect(!single.streaming && single.prefetch)
        }
        let beyondL3 = outputStores(bytes: max(8 * mb, l3), callBytes: 2 * l3)
        #expect(beyondL3.streaming == Conv3DEngine.streamingStores && beyondL3.prefetch == !Conv3DEngine.streamingStores)
        let batch = outputStores(bytes: 16 * mb, callBytes: 4 * l3)
        #expect(batch.streaming == Conv3DEngine.streamingStores && batch.prefetch == !Conv3DEngine.streamingStores)
        let forced = Conv3DEngine.$streamingOverride.withValue(true) { outputStores(bytes: 4, callBytes: 4) }
        #expect(forced.streaming && !forced.prefetch)
    }

    /// What `body` writes, with streaming forced, into a buffer `m` floats past a 64-byte boundary;
    /// fails the test if it wrote any of the 16 floats before or after it.
    func writtenMisaligned(_ shape: [Int], by m: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) throws -> Tensor {
        let count = shape.product, guardFloats = 16
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 4 * (count + 3 * guardFloats), alignment: 64)
        defer { raw.deallocate() }
        let buffer = raw.bindMemory(to: Float.self, capacity: count + 3 * guardFloats)
        buffer.initialize(repeating: -7.25, count: count + 3 * guardFloats)
        let y = buffer + guardFloats + m
        Conv3DEngine.$streamingOverride.withValue(true) { body(y) }
        let before = (0..<(guardFloats + m)).filter { buffer[$0] != -7.25 }
        let after = ((guardFloats + m + count)..<(count + 3 * guardFloats)).filter { buffer[$0] != -7.25 }
        #expect(before.isEmpty && after.isEmpty, "wrote outside the output: \(before.count) floats before, \(after.count) after")
        return try Tensor(shape: shape, scalars: Array(UnsafeBufferPointer(start: y, count: count)))
    }

    @Test func avx512PathIsExercisedWhenAvailable() throws {
        // AVX-512: a wide layer (> 16 outputs) gets W-vectorised 8-blocks and
        // channel-vectorised 32-blocks, and the output width picks the one filling more lanes; a narrow
        // layer (<= 16 outputs) has 8-blocks only.
        let avx512 = Conv3DEngine.cpuHasAVX512
        let wide = try PackedConv3D(weight: .random([20, 16, 3, 3, 3], seed: 1), bias: nil, stride: 1, padding: 1,
                                    dilation: 1, groups: 1, activation: .identity, isa: .avx512)
        #expect(wide.isa == (avx512 ? .avx512 : .avx2))
        #expect(wide.packed.packs.map(\.block) == (avx512 ? [8, 32] : [16]))
        #expect(wide.packed.forWidth(16).block == (avx512 ? 8 : 16))
        #expect(wide.packed.forWidth(8).block == (avx512 ? 32 : 16))
        #expect(wide.packed.forWidth(6).block == (avx512 ? 32 : 16))
        let narrow = try PackedConv3D(weight: .random([16, 16, 3, 3, 3], seed: 1), bias: nil, stride: 1, padding: 1,
                                      dilation: 1, groups: 1, activation: .identity, isa: .avx512)
        #expect(narrow.packed.packs.map(\.block) == (avx512 ? [8] : [16]))
    }

    /// Large layers run in chunks of output planes, each padding only the input planes it reads.
    /// Chunking changes no arithmetic, so every chunk size must give the same bits as one chunk.
    @Test(arguments: ConvCase.table)
    func depthChunksGiveIdenticalResults(_ c: ConvCase) throws {
        let (x, w, b) = c.inputs(seed: 60)
        let conv = try PackedConv3D(weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation,
                                    groups: c.groups, activation: c.activation)
        let whole = try conv.forward(x, depthChunk: Int.max)
        let grad = try PackedConv3DInputGradient(weight: w, stride: c.stride, padding: c.padding, dilation: c.dilation,
                                                 groups: c.groups)
        let gy = Tensor.random(whole.shape, seed: 61)
        let gxWhole = try grad.backward(gy, inputShape: x.shape, depthChunk: Int.max)
        for chunk in [1, 2, 3] {
            #expect(try conv.forward(x, depthChunk: chunk) == whole, "forward, chunks of \(chunk)")
            #expect(try grad.backward(gy, inputShape: x.shape, depthChunk: chunk) == gxWhole, "input gradient, chunks of \(chunk)")
        }
        // Gradients reaching at most 4 channels run by row blocks on AVX-512: blocks shorter than the
        // one-channel kernel's 6-row tile, one tile, and tiles that shift back at a block's end.
        if grad.runsByRows(inputWidth: x.shape[4]) {
            for rows in [1, 5, 6, 7, 13] {
                #expect(try grad.backward(gy, inputShape: x.shape, depthChunk: 2, rowsPerBlock: rows) == gxWhole,
                        "input gradient, blocks of \(rows) rows")
            }
        }
    }

    @Test func blockChoiceFillsTheLanes() {
        // 128 -> 32 at 24^3: a 24-wide row fills 75% of two 16-lane vectors, so 32-blocks (measured 422
        // against 364 GFLOP/s); 64 -> 64 at 16^3: full vectors, so 8-blocks (494 against 426).
        #expect(DirectWeights.preferredBlock(outPerGroup: 32, inPerGroup: 128, taps: 27, width: 24, isa: .avx512) == 32)
        #expect(DirectWeights.preferredBlock(outPerGroup: 64, inPerGroup: 64, taps: 27, width: 16, isa: .avx512) == 8)
        #expect(DirectWeights.preferredBlock(outPerGroup: 32, inPerGroup: 32, taps: 27, width: 32, isa: .avx512) == 8)
        #expect(DirectWeights.preferredBlock(outPerGroup: 128, inPerGroup: 128, taps: 27, width: 8, isa: .avx512) == 32)
        #expect(DirectWeights.preferredBlock(outPerGroup: 64, inPerGroup: 1, taps: 343, width: 64, isa: .avx512) == 8)
        // 1x1x1: few products per output, so block 32's scattered stores cost more than 75% lanes...
        #expect(DirectWeights.preferredBlock(outPerGroup: 128, inPerGroup: 64, taps: 1, width: 24, isa: .avx512) == 8)
        // ...but not more than 37.5% lanes (6-wide rows).
        #expect(DirectWeights.preferredBlock(outPerGroup: 128, inPerGroup: 256, taps: 1, width: 6, isa: .avx512) == 32)
        #expect(DirectWeights.preferredBlock(outPerGroup: 64, inPerGroup: 64, taps: 27, width: 8, isa: .avx2) == 16)
    }
}

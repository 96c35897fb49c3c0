// Depth chunks whose padded source copies are made one chunk ahead.

/// One depth chunk of a chunked convolution: its batch item, the first and end planes of the chunk
/// as its driver counts them (planes of tiles or of outputs), and the padded source planes its copy
/// holds.
struct SourceChunk: Sendable {
    var item: Int, first: Int, end: Int
    var planes: Range<Int>
}

/// Runs `chunks` in order. Each chunk's padded source planes are copied into a scratch buffer of
/// `strides` (`copy(chunk, planes, into)` for a run of them), then its `tasks` run in parallel on it.
///
/// The copy of chunk j + 1 is made during chunk j's tasks, into a second buffer, one padded plane per
/// task slipped evenly between the kernel tasks: one core reads the input (from memory, in a batch)
/// while the other computes, where before both cores copied between chunks and then both computed.
/// Only the first chunk's copy runs alone. Each buffer is written only while no task reads it, so
/// the results are those of copying every chunk first. Measured on the stride-1 Winograd driver (Zen
/// 5, round robins against copying between chunks): the batch of 16 at 16->16, 64^3 faster in every
/// round, 88.0 against 89.5 ms in a fast phase of the machine and 114.4 against 119.5 in a slow one
/// (where its copy took 15% of the samples instead of 6%); one volume 6.09 against 6.09 ms. Costs a
/// second source buffer.
func forEachChunkAhead(_ chunks: [SourceChunk], strides: SourceStrides,
                       copy: @Sendable (SourceChunk, Range<Int>, UnsafeMutablePointer<Float>) -> Void,
                       tasks: (SourceChunk, SharedConstPointer<Float>) -> (count: Int, run: @Sendable (Int) -> Void)) {
    guard let firstChunk = chunks.first else { return }
    var a = makeSourceScratch(strides)
    var b = chunks.count > 1 ? makeSourceScratch(strides) : []
    a.withUnsafeMutableBufferPointer { aBuf in b.withUnsafeMutableBufferPointer { bBuf in
        let buffers = [SharedPointer(aBuf.baseAddress!), SharedPointer(bBuf.baseAddress ?? aBuf.baseAddress!)]
        copy(firstChunk, firstChunk.planes, buffers[0].base)
        for (j, chunk) in chunks.enumerated() {
            let work = tasks(chunk, SharedConstPointer(UnsafePointer(buffers[j % 2].base)))
            let next = j + 1 < chunks.count ? chunks[j + 1] : nil
            let copies = next?.planes.count ?? 0
            // Kernel tasks t >= 0 and copies -1 - k, spread evenly: item i of the merged order.
            var items: [Int] = []
            items.reserveCapacity(work.count + copies)
            var t = 0, k = 0
            while t < work.count || k < copies {
                // Next is whichever comes first at its fraction (t + 0.5) / count.
                if k >= copies || (t < work.count && (2 * t + 1) * copies <= (2 * k + 1) * work.count) {
                    items.append(t); t += 1
                } else {
                    items.append(-1 - k); k += 1
                }
            }
            let dst = buffers[(j + 1) % 2], run = work.run, plane = strides.plane, order = items
            Parallel.forEach(order.count) { i in
                let item = order[i]
                if item >= 0 { run(item); return }
                guard let next else { return }
                let p = next.planes.lowerBound + (-1 - item)
                copy(next, p..<(p + 1), dst + (p - next.planes.lowerBound) * plane)
            }
        }
    }}
}

/// A chunk's list of tile vectors, kept alive by the tasks that read it (they run after the closure
/// that made it has returned). Read only.
final class TileList: @unchecked Sendable {
    let base: UnsafeMutablePointer<Int>
    init(_ list: [Int]) {
        base = .allocate(capacity: max(1, list.count))
        _ = UnsafeMutableBufferPointer(start: base, count: list.count).initialize(from: list)
    }
    deinit { base.deallocate() }
}

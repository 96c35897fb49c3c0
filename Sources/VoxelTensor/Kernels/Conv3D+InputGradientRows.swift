import VoxelTensorAVX512

// Input gradients of layers with at most 4 input channels (the gradient reaching a 1-channel image
// through its first layer), on the AVX-512 one-channel kernel, padded row block by row block.
//
// The general path (`PackedConv3DInputGradient.backward`) pads a depth chunk of the output gradient
// gy into a scratch volume (every channel, 8 MB or more), then runs each stride phase over it. With
// one output channel a micro-tile reads every channel of its rows: 101 KB for 1->16, 617 KB for a
// 7x7x7 stem, more than L1 holds, so the kernel streamed the scratch from L3, which had just been
// written through it, and a chunk that did not fit went to memory and back. On this machine's slow
// phases (a neighbour's memory traffic), 1->16's gradient took 3.1-3.2 ms against its forward pass's
// 1.1, half of it in the padded copy.
//
// Here each task owns a block of phase-grid rows j (as many as keep its source in L2) over a range
// of phase-grid planes m, for every phase, output channel and stride phase of those rows. It keeps a
// ring of the kd source planes it reads, each padded from gy into a private buffer only for its own
// rows (plus the kernel's reach; channel by channel), so gy is read from memory once (plus the
// reach overlap between row blocks) and the kernel reads L2. Each step adds one plane to the ring
// and runs every phase on the task's rows of that plane, with the tap offsets rebuilt for the ring
// slots, while the kernel prefetches the rows the next step adds. Every output is computed by one
// task, in the same order of channels and taps as the general path: the same bits.

extension PackedConv3DInputGradient {
    /// Whether `backwardRows` runs a gradient: AVX-512, one group, the one-channel kernel (at most 4
    /// input channels) on every phase.
    func runsByRows(inputWidth: Int) -> Bool {
        guard isa == .avx512, groups == 1 else { return false }
        let w = (inputWidth + stride.w - 1) / stride.w
        return phases.allSatisfy { $0.weights.forWidth(w).block == 1 }
    }

    /// `gx = dLoss/dInput` from `gy = dLoss/dOutput` (see `backward`), by row blocks. Tests may fix
    /// the planes per task and the rows per block (every choice gives the same bits).
    func backwardRows(_ gy: UnsafePointer<Float>, into gx: UnsafeMutablePointer<Float>, geo: Conv3DGeometry,
                      planesPerTask: Int? = nil, rowsPerBlock: Int? = nil) {
        let I = geo.input, O = geo.output, s = stride
        let C = geo.outChannels, batch = geo.batch
        let shifts = phases.flatMap(\.shifts)
        guard let lowD = shifts.map(\.d).min(), let highD = shifts.map(\.d).max() else {
            gx.initialize(repeating: 0, count: batch * geo.inChannels * I.product)
            return
        }
        let lowH = shifts.map(\.h).min()!, highH = shifts.map(\.h).max()!
        let lowW = shifts.map(\.w).min()!, highW = shifts.map(\.w).max()!
        // Phase-grid extents (phase 0 has the most), the padded row (gy columns lowW ...), the ring.
        let grid = Size3((I.d + s.d - 1) / s.d, (I.h + s.h - 1) / s.h, (I.w + s.w - 1) / s.w)
        let rowLength = grid.w + highW - lowW
        let reachD = highD - lowD + 1, reachH = highH - lowH
        let perRow = 4 * C * rowLength * reachD
        let blockRows = min(grid.h, max(1, rowsPerBlock ?? max(6, (rowsL2Budget / perRow - reachH) / 6 * 6)))
        let rowBlocks = (grid.h + blockRows - 1) / blockRows
        // At least 8 tasks per core where the planes allow, each as deep as that leaves.
        let wantedRanges = (8 * Parallel.threadCount + batch * rowBlocks - 1) / (batch * rowBlocks)
        let rangesWanted = max(1, min(grid.d, wantedRanges))
        let planesPer = max(1, min(grid.d, planesPerTask ?? (grid.d + rangesWanted - 1) / rangesWanted))
        let ranges = (grid.d + planesPer - 1) / planesPer
        let tasks = batch * ranges * rowBlocks
        let channelFloats = (blockRows + reachH) * rowLength, planeFloats = C * channelFloats
        let bufferFloats = reachD * planeFloats + directSourceSlack + rowLength
        let workers = min(Parallel.threadCount, tasks)
        let maxTaps = phases.map(\.shifts.count).max() ?? 0
        let streaming = outputStores(bytes: 4 * geo.inChannels * I.product, callBytes: geo.bytesMoved).streaming
        // Every phase's packed weights, one after another (phase p's from `weightStart[p]`), with a
        // zero bias after them.
        let packs = phases.map { $0.weights.forWidth(grid.w) }
        let weightStart = packs.reduce(into: [0]) { $0.append($0.last! + $1.data.count) }
        let weights = packs.flatMap(\.data) + [0]
        // Row reuse per phase: its kernel rows lie one buffer row apart whichever ring slots hold its planes.
        let reuses = phases.map { p in
            rowReuse(taps: p.shifts.map { ($0.d - lowD) * planeFloats + ($0.h - lowH) * rowLength + $0.w - lowW },
                     shape: p.tapShape)
        }
        let gyP = SharedConstPointer(gy), gxP = SharedPointer(gx)
        weights.withUnsafeBufferPointer { wBuf in
            let wP = SharedConstPointer(wBuf.baseAddress!)
            // Each worker owns one buffer and runs its tasks in order. Tasks go to workers in order,
            // each to the one with the least work so far (rows x planes): consecutive tasks, which are
            // neighbouring row blocks, run at once and share their overlapping gy rows in L3, and the
            // work is even when the row blocks are not. (Task k on worker k % workers gave one worker
            // every 36-row block and the other every 28-row one for 1->16's 64 rows.)
            // Task k: batch item, phase-grid rows j0 ..< j1 and planes m0 ..< m1.
            @Sendable func bounds(_ task: Int) -> (n: Int, j0: Int, j1: Int, m0: Int, m1: Int) {
                let rb = task % rowBlocks, range = (task / rowBlocks) % ranges
                let j0 = rb * blockRows, m0 = range * planesPer
                return (task / (rowBlocks * ranges), j0, min(grid.h, j0 + blockRows), m0, min(grid.d, m0 + planesPer))
            }
            let owned = balancedTasks(tasks, workers: workers) { task in
                let b = bounds(task)
                return (b.j1 - b.j0) * (b.m1 - b.m0)
            }
            Parallel.forEach(workers) { worker in
                let buffer = UnsafeMutablePointer<Float>.allocate(capacity: bufferFloats)
                buffer.initialize(repeating: 0, count: bufferFloats)
                let taps = UnsafeMutablePointer<Int>.allocate(capacity: max(1, maxTaps))
                let rowSrc = UnsafeMutablePointer<Int>.allocate(capacity: blockRows)
                let rowDst = UnsafeMutablePointer<Int>.allocate(capacity: blockRows)
                defer { buffer.deallocate(); taps.deallocate(); rowSrc.deallocate(); rowDst.deallocate() }
                for task in owned[worker] {
                    let (n, j0, j1, m0, m1) = bounds(task)
                    let gyN = gyP + n * C * O.product
                    @inline(__always) func slot(_ d: Int) -> Int { ((d % reachD) + reachD) % reachD }
                    // gy plane d, rows j0 + lowH ..< j1 + highH, columns lowW ..< lowW + rowLength, zero
                    // outside gy, into its ring slot.
                    func fill(_ d: Int) {
                        let base = buffer + slot(d) * planeFloats
                        let first = max(0, -lowW), last = min(rowLength, O.w - lowW)
                        for c in 0..<C {
                            for r in 0..<(j1 - j0 + reachH) {
                                let jj = j0 + lowH + r
                                let row = base + c * channelFloats + r * rowLength
                                guard d >= 0 && d < O.d && jj >= 0 && jj < O.h && first < last else {
                                    row.initialize(repeating: 0, count: rowLength)
                                    continue
                                }
                                if first > 0 { row.initialize(repeating: 0, count: first) }
                                copyFloats(row + first, gyN + ((c * O.d + d) * O.h + jj) * O.w + lowW + first,
                                           count: last - first)
                                if last < rowLength { (row + last).initialize(repeating: 0, count: rowLength - last) }
                            }
                        }
                    }
                    for d in (m0 + lowD)..<(m0 + highD) { fill(d) }
                    for m in m0..<m1 {
                        fill(m + highD)
                        // The rows the next step fills, prefetched while this step computes: per channel
                        // one run of consecutive gy rows, shared among the step's kernel calls.
                        let next = m + 1 + highD, firstRow = max(0, j0 + lowH), endRow = min(O.h, j1 + highH)
                        let fetch = m + 1 < m1 && next >= 0 && next < O.d && firstRow < endRow
                        let runLines = ((endRow - firstRow) * O.w + 15) / 16 + 1
                        let nextRows = fetch ? PrefetchLines(base: gyN + (next * O.h + firstRow) * O.w, runLines: runLines,
                                                             runStride: O.product, from: 0, to: C * runLines)
                                             : PrefetchLines()
                        let calls = phases.count * geo.inChannels
                        var call = 0
                        for (k, p) in phases.enumerated() {
                            let phi = p.phase
                            let count = Size3((I.d - phi.d + s.d - 1) / s.d, (I.h - phi.h + s.h - 1) / s.h,
                                              (I.w - phi.w + s.w - 1) / s.w)
                            let rows = min(j1, count.h) - j0
                            if m >= count.d || rows <= 0 || count.w == 0 { continue }
                            for (t, sh) in p.shifts.enumerated() {
                                taps[t] = slot(m + sh.d) * planeFloats + (sh.h - lowH) * rowLength + sh.w - lowW
                            }
                            for r in 0..<rows {
                                rowSrc[r] = r * rowLength
                                rowDst[r] = ((phi.d + s.d * m) * I.h + phi.h + s.h * (j0 + r)) * I.w + phi.w
                            }
                            for co in 0..<geo.inChannels {
                                var tile = Direct512Tile(
                                    src: UnsafePointer(buffer), srcChannelStride: channelFloats, channels: C,
                                    taps: UnsafePointer(taps), tapCount: p.shifts.count,
                                    weights: wP + weightStart[k] + packs[k].blockOffset(0, co),
                                    bias: wP + weightStart[phases.count],
                                    dst: gxP + (n * geo.inChannels + co) * I.product, dstChannelStride: I.product,
                                    validChannels: 1, rowSrc: UnsafePointer(rowSrc), rowDst: UnsafePointer(rowDst),
                                    rows: rows, cols: count.w, colSrcStep: 1, colDstStep: s.w,
                                    activation: 0, actA: 0, actB: 0)
                                tile.streaming = streaming
                                tile.prefetch = nextRows.share(call, of: calls)
                                call += 1
                                if let reuse = reuses[k] {
                                    tile.rowStride = rowLength
                                    tile.tapRowStep = reuse.step; tile.tapRows = reuse.rows; tile.tapCols = reuse.cols
                                }
                                direct512Run(tile, block: 1)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Source bytes a task of `backwardRows` keeps in its ring (half of a 1 MB L2: the rest holds its
/// output rows and the planes being filled).
let rowsL2Budget = 512 << 10

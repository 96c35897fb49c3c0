/// Hot spots of a heatmap and the slices that pass through them.
public enum HeatPeaks {
    /// The local maxima of `values` (on a grid of `dims`, i fastest): voxels at least `minimum` and
    /// at least as hot as each of their 26 neighbours, highest first (ties by voxel order), keeping
    /// only those more than `separation` voxels (Chebyshev distance) from every hotter one kept, at
    /// most `limit`. NaN voxels are never peaks.
    public static func localMaxima(_ values: [Float], dims: [Int], minimum: Float, limit: Int, separation: Int = 3) -> [(voxel: [Int], value: Float)] {
        guard dims.count == 3, values.count == dims[0] * dims[1] * dims[2], limit > 0 else { return [] }
        let (ni, nj, nk) = (dims[0], dims[1], dims[2])
        var candidates: [(index: Int, value: Float)] = []
        values.withUnsafeBufferPointer { v in
            for k in 0..<nk {
                for j in 0..<nj {
                    for i in 0..<ni {
                        let n = i + ni * (j + nj * k)
                        let x = v[n]
                        guard x >= minimum else { continue }   // also skips NaN
                        var isMax = true
                        search: for dk in -1...1 where k + dk >= 0 && k + dk < nk {
                            for dj in -1...1 where j + dj >= 0 && j + dj < nj {
                                for di in -1...1 where i + di >= 0 && i + di < ni {
                                    if v[(i + di) + ni * ((j + dj) + nj * (k + dk))] > x { isMax = false; break search }
                                }
                            }
                        }
                        if isMax { candidates.append((n, x)) }
                    }
                }
            }
        }
        candidates.sort { $0.value > $1.value || ($0.value == $1.value && $0.index < $1.index) }
        var kept: [(voxel: [Int], value: Float)] = []
        for c in candidates {
            let p = [c.index % ni, (c.index / ni) % nj, c.index / (ni * nj)]
            let far = kept.allSatisfy { q in (0..<3).map { abs(q.voxel[$0] - p[$0]) }.max()! > separation }
            if far { kept.append((p, c.value)) }
            if kept.count == limit { break }
        }
        return kept
    }

    /// The voxel of the largest finite value (the first in voxel order on ties), or nil when none is finite.
    public static func argmax(_ values: [Float], dims: [Int]) -> [Int]? {
        var best = -1
        var bestValue = -Float.infinity
        for (n, v) in values.enumerated() where v.isFinite && (best < 0 || v > bestValue) {
            best = n
            bestValue = v
        }
        guard best >= 0, dims.count == 3 else { return nil }
        return [best % dims[0], (best / dims[0]) % dims[1], best / (dims[0] * dims[1])]
    }

    /// Slices of `layout` for a montage of `count`: first through each lesion centre (fractional
    /// voxels, rounded), then through heat peaks (hottest first), then evenly spaced over the grid;
    /// chosen slices are at least `max(1, slices / (4 count))` apart. Sorted ascending.
    public static func chooseSlices(layout: PlaneLayout, lesions: [SIMD3<Double>], peaks: [[Int]], count: Int) -> [Int] {
        let n = layout.sliceCount
        let want = min(max(1, count), n)
        let minGap = max(1, n / (4 * want))
        var chosen: [Int] = []
        func offer(_ s: Int) {
            guard chosen.count < want, (0..<n).contains(s), chosen.allSatisfy({ abs($0 - s) >= minGap }) else { return }
            chosen.append(s)
        }
        for c in lesions { offer(Int(c[layout.normal].rounded())) }
        for p in peaks { offer(p[layout.normal]) }
        // Evenly spaced fill: centres of `want` equal parts, then any free slice.
        for m in 0..<want { offer(Int((Double(m) + 0.5) * Double(n) / Double(want))) }
        var s = 0
        while chosen.count < want && s < n {
            if !chosen.contains(s) { chosen.append(s) }
            s += 1
        }
        return chosen.sorted()
    }
}

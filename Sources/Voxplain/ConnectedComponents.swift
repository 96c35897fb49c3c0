import NIfTI

/// Which neighbours join voxels into one component.
public enum Connectivity: Int, CaseIterable, Sendable, Codable {
    /// Face neighbours only.
    case six = 6
    /// Face, edge and corner neighbours.
    case twentySix = 26

    /// The neighbour offsets (di, dj, dk), all of them.
    public var offsets: [(Int, Int, Int)] {
        var o: [(Int, Int, Int)] = []
        for dk in -1...1 { for dj in -1...1 { for di in -1...1 {
            let n = abs(di) + abs(dj) + abs(dk)
            if n == 0 || (self == .six && n != 1) { continue }
            o.append((di, dj, dk))
        } } }
        return o
    }

    /// The offsets that come earlier in voxel order (i fastest): those a raster scan has visited.
    var backwardOffsets: [(Int, Int, Int)] {
        offsets.filter { di, dj, dk in dk < 0 || (dk == 0 && dj < 0) || (dk == 0 && dj == 0 && di < 0) }
    }
}

/// Connected components of the voxels at or above a threshold.
public struct ComponentLabels: Equatable, Sendable {
    /// The grid.
    public let dims: VoxelDims
    /// Per voxel (i fastest): 0 for background, else the component 1...count, numbered in the order
    /// of each component's first voxel in voxel order.
    public let labels: [Int32]
    /// Number of components.
    public let count: Int

    /// Labels the voxels of `values` (on `dims`, i fastest) with `value >= threshold` (NaN is
    /// background) by two-pass union-find: a raster scan gives each voxel the smallest root among its
    /// already visited neighbours (13 for 26-connectivity, 3 for 6) and merges the others' sets; a
    /// second pass replaces each label by its set's final number. Memory: one Int32 per voxel plus one
    /// per provisional label.
    /// - Throws: `VoxplainError` when the count differs from the grid or there are too many labels for Int32.
    public init(values: [Float], dims: VoxelDims, threshold: Float, connectivity: Connectivity = .twentySix) throws {
        guard values.count == dims.count else {
            throw VoxplainError("components: \(values.count) values do not fill the grid \(dims)")
        }
        guard dims.count < Int(Int32.max) else { throw VoxplainError("components: grid \(dims) has too many voxels (at most 2^31 - 1)") }
        let (ni, nj, nk) = (dims.i, dims.j, dims.k)
        let back = connectivity.backwardOffsets
        let backOffsets = back.map { di, dj, dk in di + ni * (dj + nj * dk) }
        var labels = [Int32](repeating: 0, count: dims.count)
        var parent: [Int32] = [0]
        func find(_ x: Int32, _ parent: inout [Int32]) -> Int32 {
            var x = x
            while parent[Int(x)] != x {
                parent[Int(x)] = parent[Int(parent[Int(x)])]   // path halving
                x = parent[Int(x)]
            }
            return x
        }
        values.withUnsafeBufferPointer { v in
            labels.withUnsafeMutableBufferPointer { lab in
                for k in 0..<nk {
                    for j in 0..<nj {
                        let row = ni * (j + nj * k)
                        for i in 0..<ni {
                            let n = row + i
                            guard v[n] >= threshold else { continue }
                            var current: Int32 = 0
                            // Interior voxels skip the bounds checks.
                            let interior = i > 0 && i < ni - 1 && j > 0 && j < nj - 1 && k > 0
                            for (m, (di, dj, dk)) in back.enumerated() {
                                if !interior {
                                    let ii = i + di, jj = j + dj, kk = k + dk
                                    if ii < 0 || ii >= ni || jj < 0 || jj >= nj || kk < 0 { continue }
                                }
                                let l = lab[n + backOffsets[m]]
                                if l == 0 { continue }
                                let r = find(l, &parent)
                                if current == 0 {
                                    current = r
                                } else if r != current {
                                    let (a, b) = r < current ? (r, current) : (current, r)
                                    parent[Int(b)] = a
                                    current = a
                                }
                            }
                            if current == 0 {
                                current = Int32(parent.count)
                                parent.append(current)
                            }
                            lab[n] = current
                        }
                    }
                }
            }
        }
        // A set's root is its smallest provisional label, made at its first voxel: numbering roots in
        // increasing order numbers components by their first voxel.
        var final = [Int32](repeating: 0, count: parent.count)
        var next: Int32 = 0
        for l in 1..<max(1, parent.count) {
            let r = find(Int32(l), &parent)
            if r == Int32(l) { next += 1; final[l] = next } else { final[l] = final[Int(r)] }
        }
        labels.withUnsafeMutableBufferPointer { lab in
            for n in 0..<lab.count where lab[n] != 0 { lab[n] = final[Int(lab[n])] }
        }
        self.dims = dims
        self.labels = labels
        self.count = Int(next)
    }

    /// The slow, obviously correct labelling (breadth-first flood fill from each unlabelled voxel in
    /// voxel order), the oracle for tests; same numbering as `init(values:dims:threshold:connectivity:)`.
    public static func reference(values: [Float], dims: VoxelDims, threshold: Float, connectivity: Connectivity) throws -> ComponentLabels {
        guard values.count == dims.count else { throw VoxplainError("components: \(values.count) values do not fill the grid \(dims)") }
        var labels = [Int32](repeating: 0, count: dims.count)
        var count: Int32 = 0
        for start in 0..<dims.count where values[start] >= threshold && labels[start] == 0 {
            count += 1
            labels[start] = count
            var queue = [start], head = 0
            while head < queue.count {
                let n = queue[head]
                head += 1
                let i = n % dims.i, j = (n / dims.i) % dims.j, k = n / (dims.i * dims.j)
                for (di, dj, dk) in connectivity.offsets {
                    let ii = i + di, jj = j + dj, kk = k + dk
                    guard ii >= 0, ii < dims.i, jj >= 0, jj < dims.j, kk >= 0, kk < dims.k else { continue }
                    let m = ii + dims.i * (jj + dims.j * kk)
                    if values[m] >= threshold && labels[m] == 0 {
                        labels[m] = count
                        queue.append(m)
                    }
                }
            }
        }
        return ComponentLabels(dims: dims, labels: labels, count: Int(count))
    }

    init(dims: VoxelDims, labels: [Int32], count: Int) {
        self.dims = dims
        self.labels = labels
        self.count = count
    }
}

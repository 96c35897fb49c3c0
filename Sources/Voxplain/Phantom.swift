import Foundation
import NIfTI

/// Settings of a synthetic chest CT phantom.
public struct PhantomOptions: Sendable, Equatable {
    /// Grid extent (i, j, k). Default 128 x 128 x 96.
    public var size: VoxelDims
    /// Voxel size in mm along i, j, k. Default 0.7 x 0.7 x 1.25 (anisotropic, as clinical chest CT).
    public var spacing: SIMD3<Double>
    /// Number of nodules (0...255: one uint8 label each).
    public var noduleCount: Int
    /// Seed of every random choice (anatomy jitter, vessels, nodules, noise).
    public var seed: UInt64
    /// Standard deviation of the Gaussian noise, in HU.
    public var noiseHU: Double

    /// Options with the defaults above, `noduleCount` 3, `seed` 1 and 12 HU noise unless given.
    public init(size: VoxelDims = VoxelDims(128, 128, 96), spacing: SIMD3<Double> = SIMD3(0.7, 0.7, 1.25),
                noduleCount: Int = 3, seed: UInt64 = 1, noiseHU: Double = 12) {
        self.size = size
        self.spacing = spacing
        self.noduleCount = noduleCount
        self.seed = seed
        self.noiseHU = noiseHU
    }
}

/// One nodule of a phantom, as listed in its JSON info file.
public struct PhantomNodule: Codable, Sendable, Equatable {
    /// Label in the mask (1, 2, ...).
    public var label: Int
    /// Centre in world coordinates (RAS+ mm).
    public var centerWorldMM: [Double]
    /// Centre in (fractional) voxel indices (i, j, k).
    public var centerVoxel: [Double]
    /// Volume-equivalent diameter of the core ellipsoid: `2 * cbrt(a * b * c)`, in mm.
    public var diameterMM: Double
    /// Semi-axes of the core ellipsoid, in mm (before rotation).
    public var semiAxesMM: [Double]
    /// True when the nodule has spicules (thin tapering spikes) beyond the core.
    public var spiculated: Bool
    /// Attenuation of the nodule, in HU.
    public var hu: Double
    /// "right" or "left" (the patient's lung).
    public var lung: String
    /// Number of voxels with this label in the mask.
    public var voxels: Int

    enum CodingKeys: String, CodingKey {
        case label, spiculated, hu, lung, voxels
        case centerWorldMM = "center_world_mm", centerVoxel = "center_voxel"
        case diameterMM = "diameter_mm", semiAxesMM = "semi_axes_mm"
    }
}

/// A seeded synthetic chest CT: the scan in HU, a label mask of its nodules, and the nodule list.
///
/// Anatomy (world coordinates relative to the grid centre, scaled with the field of view): air
/// (-1000 HU) around an elliptic body of soft tissue (40 HU) under a fat layer (-100 HU), two lungs
/// (-850 HU; the left one smaller, for the heart), a vertebral body (250 HU, 700 HU cortex), branching
/// tapering vessels (40 HU) inside the lungs, and nodules: rotated ellipsoids with soft edges, some
/// spiculated, fully inside a lung and apart from each other. Gaussian noise is seeded per voxel, so
/// the result is identical for a seed whatever the thread count.
///
/// Orientation: LPS-like, as CT converted from DICOM usually is: the affine is
/// `diag(-dx, -dy, dz)` (axis codes "LPS": i runs to the patient's left, j to posterior, k to
/// superior) with the grid centre at world (0, 20, -150) mm. sform and qform hold it with code 1.
public struct Phantom: Sendable {
    /// The CT, int16 Hounsfield units (no scaling).
    public var ct: Volume
    /// Nodule labels (0 background, `label` of each nodule), uint8, same grid and affine.
    public var mask: Volume
    /// The nodules, by label.
    public var nodules: [PhantomNodule]
    /// The lungs (right, left): axis-aligned ellipsoids in world coordinates.
    public var lungs: [PhantomLung]
    /// The options it was made with.
    public var options: PhantomOptions

    /// Generates the phantom for `options`.
    /// - Throws: `PhantomError` when the grid or spacing is invalid, or the nodules cannot be placed.
    public static func generate(_ options: PhantomOptions) throws -> Phantom {
        try PhantomBuilder(options).build()
    }

    /// The info file: generator, grid, affine and the nodule list (stable snake_case keys).
    public func infoJSON() throws -> String {
        struct Info: Encodable {
            var generator = "voxplain phantom"
            var version = VoxplainInfo.version
            var seed: UInt64
            var size: [Int]
            var spacing: [Double]
            var affine: [[Double]]
            var orientation: String
            var units = "HU"
            var lungs: [PhantomLung]
            var nodules: [PhantomNodule]
        }
        let info = Info(seed: options.seed, size: ct.dims.array, spacing: [ct.spacing.x, ct.spacing.y, ct.spacing.z],
                        affine: ct.affine.rows, orientation: ct.affine.orientationCode, lungs: lungs, nodules: nodules)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try e.encode(info), as: UTF8.self) + "\n"
    }
}

/// A lung of a phantom: an axis-aligned ellipsoid in world coordinates.
public struct PhantomLung: Codable, Sendable, Equatable {
    /// "right" or "left" (the patient's).
    public var name: String
    /// Centre in world coordinates (RAS+ mm).
    public var centerWorldMM: [Double]
    /// Semi-axes along world x, y, z in mm.
    public var semiAxesMM: [Double]

    /// True when the world point lies inside the ellipsoid.
    public func contains(world p: SIMD3<Double>) -> Bool {
        let q = (p - SIMD3(centerWorldMM[0], centerWorldMM[1], centerWorldMM[2])) / SIMD3(semiAxesMM[0], semiAxesMM[1], semiAxesMM[2])
        return (q * q).sum() < 1
    }

    enum CodingKeys: String, CodingKey {
        case name, centerWorldMM = "center_world_mm", semiAxesMM = "semi_axes_mm"
    }
}

/// A phantom could not be made from the options.
public typealias PhantomError = VoxplainError

/// The phantom's random stream: SplitMix64 with the phantom's seed salt.
struct PhantomRandom {
    var base: SplitMix64
    init(seed: UInt64) { base = SplitMix64(seed: seed ^ 0x5EED_0F_C0FFEE) }
    mutating func next() -> UInt64 { base.next() }
    static func mix(_ x: UInt64) -> UInt64 { SplitMix64.mix(x) }
    mutating func unit() -> Double { base.unit() }
    mutating func uniform(_ a: Double, _ b: Double) -> Double { base.uniform(a, b) }
    /// A uniformly distributed unit vector.
    mutating func direction() -> SIMD3<Double> {
        let z = uniform(-1, 1), t = uniform(0, 2 * .pi), r = (1 - z * z).squareRoot()
        return SIMD3(r * cos(t), r * sin(t), z)
    }
}

/// An axis-aligned ellipsoid (lungs).
struct Ellipsoid {
    var center: SIMD3<Double>
    var semi: SIMD3<Double>
    /// Normalised radius: < 1 inside.
    func rho(_ p: SIMD3<Double>) -> Double {
        let q = (p - center) / semi
        return (q * q).sum().squareRoot()
    }
    /// Approximate signed distance in mm (exact along rays from the centre).
    func distance(_ p: SIMD3<Double>) -> Double {
        let d = p - center
        let len = (d * d).sum().squareRoot()
        let r = rho(p)
        return r > 0 ? len * (1 - 1 / r) : -semi.min()
    }
    /// True when a ball of `radius` at `p` lies inside (checked against the shrunk ellipsoid).
    func contains(_ p: SIMD3<Double>, radius: Double) -> Bool {
        let s = semi - radius
        guard s.min() > 0 else { return false }
        let q = (p - center) / s
        return (q * q).sum() < 1
    }
}

/// A tapering vessel segment (a cone-capped capsule).
struct VesselSegment {
    var a: SIMD3<Double>, b: SIMD3<Double>
    var ra: Double, rb: Double
    var lo: SIMD3<Double>, hi: SIMD3<Double>   // bounding box (mm, local)
}

/// A nodule: rotated ellipsoid core and optional spikes.
struct NoduleShape {
    var center: SIMD3<Double>
    var semi: SIMD3<Double>
    var axes: [SIMD3<Double>]             // rotation columns (unit, orthogonal)
    var spikes: [(dir: SIMD3<Double>, cosWidth: Double, length: Double)]
    var hu: Double
    var reach: Double                     // max extent from the centre, mm
    var lung: Int
}

struct PhantomBuilder {
    let o: PhantomOptions
    let dims: VoxelDims
    let sp: SIMD3<Double>
    let affine: Affine
    /// Extent of the field of view (mm) along x, y, z.
    let fov: SIMD3<Double>
    let edge = 1.0   // soft edge width (mm) of body and lungs
    /// World coordinates (RAS+ mm) of the grid centre; local coordinates are world minus this.
    static let worldCentre = SIMD3(0.0, 20.0, -150.0)

    init(_ options: PhantomOptions) throws {
        o = options
        dims = options.size
        sp = options.spacing
        guard dims.i >= 8, dims.j >= 8, dims.k >= 4, let count = dims.checkedCount, count <= 1 << 28 else {
            throw PhantomError("phantom size \(dims) is out of range (at least 8x8x4, at most 2^28 voxels)")
        }
        let s = options.spacing
        guard (0..<3).allSatisfy({ s[$0] > 0 && s[$0].isFinite && s[$0] < 50 }) else {
            throw PhantomError("phantom spacing \(s.x)x\(s.y)x\(s.z) must be positive mm (below 50)")
        }
        guard (0...255).contains(options.noduleCount) else {
            throw PhantomError("nodule count \(options.noduleCount) is out of range (0 to 255)")
        }
        fov = SIMD3(Double(dims.i), Double(dims.j), Double(dims.k)) * sp
        // World of voxel (i, j, k) = centre + (-dx (i - ci), -dy (j - cj), dz (k - ck)).
        let centre = PhantomBuilder.worldCentre
        let c = SIMD3(Double(dims.i - 1), Double(dims.j - 1), Double(dims.k - 1)) / 2
        let signs = SIMD3(-1.0, -1.0, 1.0)
        affine = Affine(scale: signs * sp, offset: centre - signs * sp * c)
    }

    /// Local patient coordinates (mm from the grid centre; x right, y anterior, z superior) of a voxel.
    func local(_ i: Double, _ j: Double, _ k: Double) -> SIMD3<Double> {
        let c = SIMD3(Double(dims.i - 1), Double(dims.j - 1), Double(dims.k - 1)) / 2
        return SIMD3(-(i - c.x), -(j - c.y), k - c.z) * sp
    }
    /// Voxel range covering local coordinates [lo, hi] along each axis, clipped to the grid.
    func voxelRange(_ lo: SIMD3<Double>, _ hi: SIMD3<Double>) -> (i: ClosedRange<Int>, j: ClosedRange<Int>, k: ClosedRange<Int>)? {
        let c = SIMD3(Double(dims.i - 1), Double(dims.j - 1), Double(dims.k - 1)) / 2
        func axis(_ a: Int, _ sign: Double, _ n: Int) -> ClosedRange<Int>? {
            let v1 = c[a] + sign * lo[a] / sp[a], v2 = c[a] + sign * hi[a] / sp[a]
            let first = max(0, Int(floor(min(v1, v2)))), last = min(n - 1, Int(ceil(max(v1, v2))))
            return first <= last ? first...last : nil
        }
        guard let i = axis(0, -1, dims.i), let j = axis(1, -1, dims.j), let k = axis(2, 1, dims.k) else { return nil }
        return (i, j, k)
    }

    /// The lungs (right, left), as fractions of the field of view, sizes jittered by up to 6% per seed.
    func makeLungs(_ rng: inout PhantomRandom) -> [Ellipsoid] {
        func jitter() -> SIMD3<Double> { SIMD3(rng.uniform(0.94, 1.06), rng.uniform(0.94, 1.06), rng.uniform(0.94, 1.06)) }
        let right = Ellipsoid(center: SIMD3(0.20, 0.02, 0.0) * fov, semi: SIMD3(0.15, 0.26, 0.45) * fov * jitter())
        let left = Ellipsoid(center: SIMD3(-0.21, 0.0, 0.01) * fov, semi: SIMD3(0.13, 0.25, 0.42) * fov * jitter())
        return [right, left]
    }

    func build() throws -> Phantom {
        var rng = PhantomRandom(seed: o.seed)
        let lungs = makeLungs(&rng)
        let vessels = makeVessels(lungs, &rng)
        let nodules = try placeNodules(lungs, &rng)
        let (ct, labels) = rasterize(lungs: lungs, vessels: vessels, nodules: nodules)
        var counts = [Int](repeating: 0, count: nodules.count + 1)
        for l in labels { counts[Int(l)] += 1 }
        let inverse = affine.inverse() ?? .identity
        let list = nodules.enumerated().map { n, s -> PhantomNodule in
            let world = affine.apply(voxelOf(s.center))
            let vox = inverse.apply(world)
            return PhantomNodule(label: n + 1, centerWorldMM: [world.x, world.y, world.z], centerVoxel: [vox.x, vox.y, vox.z],
                                 diameterMM: 2 * cbrt(s.semi.x * s.semi.y * s.semi.z),
                                 semiAxesMM: [s.semi.x, s.semi.y, s.semi.z], spiculated: !s.spikes.isEmpty,
                                 hu: s.hu, lung: s.lung == 0 ? "right" : "left", voxels: counts[n + 1])
        }
        var ctVolume = try Volume(dims: dims, voxels: ct, spacing: sp, affine: affine, datatype: .int16,
                                  description: "voxplain phantom seed \(o.seed)")
        ctVolume.calMin = -1000
        ctVolume.calMax = 400
        var mask = try Volume(dims: dims, voxels: labels.map(Float.init), spacing: sp, affine: affine, datatype: .uint8,
                              description: "voxplain phantom nodules seed \(o.seed)")
        mask.calMin = 0
        mask.calMax = Double(nodules.count)
        let lungList = lungs.enumerated().map { n, l in
            let c = l.center + PhantomBuilder.worldCentre
            return PhantomLung(name: n == 0 ? "right" : "left", centerWorldMM: [c.x, c.y, c.z], semiAxesMM: [l.semi.x, l.semi.y, l.semi.z])
        }
        return Phantom(ct: ctVolume, mask: mask, nodules: list, lungs: lungList, options: o)
    }

    /// Fractional voxel index of a local point.
    func voxelOf(_ p: SIMD3<Double>) -> SIMD3<Double> {
        let c = SIMD3(Double(dims.i - 1), Double(dims.j - 1), Double(dims.k - 1)) / 2
        return SIMD3(c.x - p.x / sp.x, c.y - p.y / sp.y, c.z + p.z / sp.z)
    }

    /// Nine trunks per lung from the hilum (up, down, lateral, front, back, four random; jittered), each branching in
    /// two up to six times, tapering, kept inside the lung.
    func makeVessels(_ lungs: [Ellipsoid], _ rng: inout PhantomRandom) -> [VesselSegment] {
        var segments: [VesselSegment] = []
        for (n, lung) in lungs.enumerated() {
            let medial = n == 0 ? -1.0 : 1.0   // towards the midline
            let hilum = lung.center + SIMD3(medial * 0.45 * lung.semi.x, 0.05 * lung.semi.y, 0.05 * lung.semi.z)
            let r0 = max(0.8, 0.1 * lung.semi.x)
            var trunks: [SIMD3<Double>] = [SIMD3(0, 0, 1), SIMD3(0, 0, -1), SIMD3(-medial, 0, 0.2),
                                           SIMD3(-0.5 * medial, 1, -0.3), SIMD3(-0.5 * medial, -1, 0.3)]
            for _ in 0..<4 {   // and four more, away from the midline
                var d = rng.direction()
                if d.x * medial > 0 { d.x = -d.x }
                trunks.append(d)
            }
            for t in trunks {
                var dir = t + SIMD3(rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3))
                dir /= (dir * dir).sum().squareRoot()
                // Half the way to the lung's edge along this direction.
                var reach = 0.0
                while reach < 4 * lung.semi.max() && lung.rho(hilum + dir * (reach + 0.5)) < 1 { reach += 0.5 }
                grow(from: hilum, dir: dir, length: 0.5 * reach, radius: r0 * rng.uniform(0.8, 1.1), depth: 0,
                     lung: lung, into: &segments, &rng)
            }
        }
        return segments
    }

    func grow(from a: SIMD3<Double>, dir: SIMD3<Double>, length: Double, radius: Double, depth: Int,
              lung: Ellipsoid, into segments: inout [VesselSegment], _ rng: inout PhantomRandom) {
        // Shorten the segment so its end stays well inside the lung.
        var len = length
        while len > 0.5 && lung.rho(a + dir * len) > 0.9 { len *= 0.8 }
        guard len > 0.5, lung.rho(a) < 0.95 else { return }
        let b = a + dir * len
        let rb = radius * 0.78
        let pad = SIMD3(repeating: radius + 1)
        segments.append(VesselSegment(a: a, b: b, ra: radius, rb: rb,
                                      lo: pointwiseMin(a, b) - pad, hi: pointwiseMax(a, b) + pad))
        guard depth < 6, rb > 0.3 else { return }
        // Two children, turned by 20-40 degrees to either side of a random plane.
        var perp = rng.direction()
        perp -= dir * (perp * dir).sum()
        let pn = (perp * perp).sum().squareRoot()
        guard pn > 1e-6 else { return }
        perp /= pn
        for side in [-1.0, 1.0] {
            let angle = rng.uniform(20, 40) * .pi / 180 * side
            var child = dir * cos(angle) + perp * sin(angle)
            child /= (child * child).sum().squareRoot()
            grow(from: b, dir: child, length: len * rng.uniform(0.6, 0.8), radius: rb * 0.92, depth: depth + 1,
                 lung: lung, into: &segments, &rng)
        }
    }

    /// Nodules of 4-30 mm (log-uniform, capped to fit the lung), inside a lung, apart from each other.
    func placeNodules(_ lungs: [Ellipsoid], _ rng: inout PhantomRandom) throws -> [NoduleShape] {
        var placed: [NoduleShape] = []
        for n in 0..<o.noduleCount {
            var done = false
            for attempt in 0..<400 {
                let lungIndex = Int(rng.next() % 2)
                let lung = lungs[lungIndex]
                // Cap so the nodule (with a margin for its soft edge) fits across the lung's thinnest part.
                let maxD = min(30, 0.8 * 2 * (lung.semi.min() - 2))
                guard maxD >= 4 else { throw PhantomError("phantom grid \(dims) at \(sp.x)x\(sp.y)x\(sp.z) mm is too small for 4 mm nodules") }
                // Later attempts shrink towards 4 mm so crowded lungs still fit N nodules.
                let hiD = max(4, maxD * (attempt < 200 ? 1 : 0.5))
                let d = exp(rng.uniform(log(4), log(hiD)))
                let r = d / 2
                var semi = SIMD3(rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15))
                semi *= r / cbrt(semi.x * semi.y * semi.z)   // keep the volume-equivalent radius
                let spiculated = rng.unit() < 0.4
                var spikes: [(dir: SIMD3<Double>, cosWidth: Double, length: Double)] = []
                if spiculated {
                    for _ in 0..<(5 + Int(rng.next() % 8)) {
                        spikes.append((rng.direction(), cos(rng.uniform(6, 12) * .pi / 180), r * rng.uniform(0.4, 1.0)))
                    }
                }
                let core = semi.max()
                let reach = core + (spikes.map(\.length).max() ?? 0) + 1.5
                let p = lung.center + SIMD3(rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)) * lung.semi
                guard lung.contains(p, radius: core + 1.5) else { continue }
                guard placed.allSatisfy({ q in
                    let d = p - q.center
                    return (d * d).sum().squareRoot() > core + q.semi.max() + 3
                }) else { continue }
                // A random rotation from a random unit quaternion.
                let u1 = rng.unit(), u2 = rng.uniform(0, 2 * .pi), u3 = rng.uniform(0, 2 * .pi)
                let (qa, qb, qc, qd) = ((1 - u1).squareRoot() * sin(u2), (1 - u1).squareRoot() * cos(u2),
                                        u1.squareRoot() * sin(u3), u1.squareRoot() * cos(u3))
                let axes = [SIMD3(1 - 2 * (qc * qc + qd * qd), 2 * (qb * qc + qa * qd), 2 * (qb * qd - qa * qc)),
                            SIMD3(2 * (qb * qc - qa * qd), 1 - 2 * (qb * qb + qd * qd), 2 * (qc * qd + qa * qb)),
                            SIMD3(2 * (qb * qd + qa * qc), 2 * (qc * qd - qa * qb), 1 - 2 * (qb * qb + qc * qc))]
                placed.append(NoduleShape(center: p, semi: semi, axes: axes, spikes: spikes, hu: rng.uniform(10, 60),
                                          reach: reach, lung: lungIndex))
                done = true
                break
            }
            guard done else {
                throw PhantomError("cannot place nodule \(n + 1) of \(o.noduleCount) in the lungs of a \(dims) grid; use fewer nodules")
            }
        }
        return placed
    }
}

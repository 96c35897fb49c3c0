import Foundation
import NIfTI
import VoxelTensor

extension PhantomBuilder {
    /// Soft inside-fraction of a signed distance `d` (mm, negative inside) over an edge of `width` mm.
    @inline(__always) static func inside(_ d: Double, _ width: Double) -> Double { min(1, max(0, 0.5 - d / width)) }

    /// Signed distance (approximate, exact along rays from the centre) to an axis-aligned ellipse.
    @inline(__always) static func ellipse(_ x: Double, _ y: Double, _ a: Double, _ b: Double) -> Double {
        let len = (x * x + y * y).squareRoot()
        let rho = ((x / a) * (x / a) + (y / b) * (y / b)).squareRoot()
        return rho > 0 ? len * (1 - 1 / rho) : -min(a, b)
    }

    /// Soft occupancy (0...1) of a nodule at local point `p`.
    @inline(__always) static func nodule(_ s: NoduleShape, _ p: SIMD3<Double>) -> Double {
        let q = p - s.center
        let n = SIMD3((q * s.axes[0]).sum(), (q * s.axes[1]).sum(), (q * s.axes[2]).sum())
        let len = (n * n).sum().squareRoot()
        if len == 0 { return 1 }
        let e = n / s.semi
        var radius = len / (e * e).sum().squareRoot()   // core radius along this direction
        var spike = 0.0
        let u = n / len
        for sp in s.spikes {
            let c = (u * sp.dir).sum()
            if c > sp.cosWidth {
                let t = (c - sp.cosWidth) / (1 - sp.cosWidth)
                spike = max(spike, sp.length * t * t)   // thin, tapering to a point
            }
        }
        radius += spike
        // Soft edge 1.5 mm wide: partial volume as a scanner's point spread would give.
        return inside(len - radius, 1.5)
    }

    /// Rasterises the anatomy, one k-slice per task: CT in HU (rounded, within int16's CT range) and labels.
    func rasterize(lungs: [Ellipsoid], vessels: [VesselSegment], nodules: [NoduleShape]) -> ([Float], [UInt8]) {
        let (ni, nj, nk) = (dims.i, dims.j, dims.k)
        var ct = [Float](repeating: 0, count: dims.count)
        var labels = [UInt8](repeating: 0, count: dims.count)
        let body = SIMD2(0.46 * fov.x, 0.36 * fov.y)
        let fat = max(2.0, 0.05 * min(body.x, body.y))
        let spineCentre = SIMD2(0.0, -0.62 * body.y)
        let spineRadius = 0.16 * body.y
        let noise = o.noiseHU
        let seed = o.seed
        let edge = self.edge
        ct.withUnsafeMutableBufferPointer { ctBuf in
            labels.withUnsafeMutableBufferPointer { labelBuf in
                let ctOut = SharedPointer(ctBuf.baseAddress!)
                let labelOut = SharedPointer(labelBuf.baseAddress!)
                Parallel.forEach(nk) { k in
                    let z = local(0, 0, Double(k)).z
                    var vessel = [Double](repeating: 0, count: ni * nj)
                    var nod = [Double](repeating: 0, count: ni * nj)
                    var nodLabel = [UInt8](repeating: 0, count: ni * nj)
                    var nodHU = [Double](repeating: 0, count: ni * nj)
                    for s in vessels where s.lo.z <= z && z <= s.hi.z {
                        guard let r = voxelRange(s.lo, s.hi) else { continue }
                        let ab = s.b - s.a
                        let ab2 = max((ab * ab).sum(), 1e-12)
                        for j in r.j {
                            for i in r.i {
                                let p = local(Double(i), Double(j), Double(k))
                                let t = min(1, max(0, ((p - s.a) * ab).sum() / ab2))
                                let d = p - (s.a + ab * t)
                                let f = PhantomBuilder.inside((d * d).sum().squareRoot() - (s.ra + (s.rb - s.ra) * t), 0.7)
                                if f > vessel[i + ni * j] { vessel[i + ni * j] = f }
                            }
                        }
                    }
                    for (n, s) in nodules.enumerated() where abs(z - s.center.z) <= s.reach {
                        let reach = SIMD3(repeating: s.reach)
                        guard let r = voxelRange(s.center - reach, s.center + reach) else { continue }
                        for j in r.j {
                            for i in r.i {
                                let f = PhantomBuilder.nodule(s, local(Double(i), Double(j), Double(k)))
                                if f > nod[i + ni * j] {
                                    nod[i + ni * j] = f
                                    nodLabel[i + ni * j] = UInt8(n + 1)
                                    nodHU[i + ni * j] = s.hu
                                }
                            }
                        }
                    }
                    for j in 0..<nj {
                        for i in 0..<ni {
                            let p = local(Double(i), Double(j), Double(k))
                            let bodyD = PhantomBuilder.ellipse(p.x, p.y, body.x, body.y)
                            let fb = PhantomBuilder.inside(bodyD, edge)
                            let innerD = PhantomBuilder.ellipse(p.x, p.y, body.x - fat, body.y - fat)
                            let tissue = 40 + (-100 - 40) * min(1, max(0, 0.5 + innerD / edge))
                            var v = -1000 + (tissue + 1000) * fb
                            var fl = 0.0
                            for lung in lungs { fl = max(fl, PhantomBuilder.inside(lung.distance(p), edge)) }
                            v += (-850 - v) * fl
                            let m = i + ni * j
                            v += (40 - v) * vessel[m] * fl
                            let fn = nod[m] * fl
                            if fn > 0 { v += (nodHU[m] - v) * fn }
                            let sd = SIMD2(p.x, p.y) - spineCentre
                            let sr = (sd * sd).sum().squareRoot()
                            let fs = PhantomBuilder.inside(sr - spineRadius, edge) * fb
                            let bone = 700 + (250 - 700) * PhantomBuilder.inside(sr - (spineRadius - 1.5), edge)
                            v += (bone - v) * fs
                            let index = m + ni * nj * k
                            if noise > 0 { v += noise * PhantomBuilder.gaussian(seed: seed, index: index) }
                            ctOut[index] = Float(min(3071, max(-1024, v.rounded())))
                            labelOut[index] = fn >= 0.5 ? nodLabel[m] : 0
                        }
                    }
                }
            }
        }
        return (ct, labels)
    }

    /// A standard normal number from a hash of (seed, index): the same whatever thread computes it.
    @inline(__always) static func gaussian(seed: UInt64, index: Int) -> Double {
        let h1 = PhantomRandom.mix(seed &* 0xD6E8_FEB8_6659_FD93 ^ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        let h2 = PhantomRandom.mix(h1 ^ 0xA076_1D64_78BD_642F)
        let u1 = (Double(h1 >> 11) + 1) * 0x1.0p-53
        let u2 = Double(h2 >> 11) * 0x1.0p-53
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

import Foundation
import Testing
import Voxplain
import _TestSupport

struct InspectTests {
    /// Slow reference: two passes in Double, numpy's linear percentiles from a sorted copy.
    static func reference(_ v: [Float], _ p: Double) -> (mean: Double, std: Double, pct: Double) {
        let f = v.filter(\.isFinite).map(Double.init)
        let mean = f.reduce(0, +) / Double(f.count)
        let std = (f.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(f.count)).squareRoot()
        let s = f.sorted()
        let pos = p / 100 * Double(s.count - 1)
        let lo = Int(pos), hi = min(lo + 1, s.count - 1)
        return (mean, std, s[lo] + (s[hi] - s[lo]) * (pos - Double(lo)))
    }

    @Test func percentilesAsNumpy() {
        // numpy.percentile([1, 2, 3, 4], [25, 50, 99]) = [1.75, 2.5, 3.97]
        let s = IntensityStats([4, 1, 3, 2], percentiles: [25, 50, 99])
        #expect(s.percentiles["p25"] == 1.75 && s.percentiles["p50"] == 2.5 && abs(s.percentiles["p99"]! - 3.97) < 1e-12)
        #expect(s.min == 1 && s.max == 4 && s.mean == 2.5 && abs(s.std! - 1.118033988749895) < 1e-12)
    }

    @Test(arguments: [1, 2, 7, 100, 1001])
    func statsMatchReference(_ n: Int) {
        var g = SeededGenerator(seed: UInt64(n))
        var v = (0..<n).map { _ in Float.random(in: -1000...3000, using: &g) }
        if n > 5 { v[1] = .nan; v[3] = .infinity; v[4] = -.infinity }
        let s = IntensityStats(v, percentiles: IntensityStats.reportedPercentiles)
        #expect(s.nan == (n > 5 ? 1 : 0) && s.inf == (n > 5 ? 2 : 0) && s.count == n - s.nan - s.inf)
        for p in IntensityStats.reportedPercentiles {
            let r = Self.reference(v, p)
            // Same formula in Double; only summation order may differ: 1e-9 relative.
            #expect(abs(s.mean! - r.mean) <= 1e-9 * max(1, abs(r.mean)))
            #expect(abs(s.std! - r.std) <= 1e-9 * max(1, r.std))
            #expect(s.percentiles[IntensityStats.key(p)] == r.pct)
        }
    }

    @Test func allNaNGivesNullsNotCrashes() throws {
        let s = IntensityStats([Float.nan, .nan], percentiles: [50])
        #expect(s.count == 0 && s.min == nil && s.percentiles.isEmpty)
        let json = String(decoding: try JSONEncoder().encode(s), as: UTF8.self)
        #expect(json.contains("\"min\":null"))
    }

    @Test func reportOfFixture() throws {
        let path = fixturesDirectory.appendingPathComponent("nifti/nan_inf.nii").path
        let r = try InspectReport.make(path: path, slices: .j)
        #expect(r.intensity.nan == 1 && r.intensity.inf == 2)
        #expect(r.slices.count == 4 && r.slices.map(\.stats.count).reduce(0, +) + 3 == 60)
        let v = try NIfTIFile.read(path)
        for s in r.slices {
            var values: [Float] = []
            for k in 0..<3 { for i in 0..<5 { values.append(v[i, s.index, k]) } }
            #expect(s.stats == IntensityStats(values))
        }
        let obj = try JSONSerialization.jsonObject(with: Data(try r.json().utf8)) as! [String: Any]
        #expect(Set(obj.keys) == ["file", "format", "compressed", "big_endian", "dims", "volumes", "volume", "spacing",
                                  "spatial_units", "datatype", "bitpix", "vox_offset", "scaling", "affine", "affine_source",
                                  "sform", "sform_code", "qform", "qform_code", "orientation", "description", "intent_code",
                                  "cal_min", "cal_max", "intensity", "slices"])
        #expect(obj["orientation"] as? String == "RAS")
        #expect(r.text().contains("1 NaN, 2 Inf"))
    }

    @Test func scaledCTReport() throws {
        let r = try InspectReport.make(path: fixturesDirectory.appendingPathComponent("nifti/ct_scaled.nii.gz").path)
        #expect(r.volume.scaling == Scaling(slope: 2.5, intercept: -1024))
        #expect(r.orientation == "LPS" && r.volume.affineSource == "sform")
        #expect(r.text().contains("slope 2.5, intercept -1024"))
    }
}

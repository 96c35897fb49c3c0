import Foundation
import NIfTI
import _TestSupport

/// The fixture folder written by Scripts/make_nifti_fixtures.py.
let niftiFixtures = fixturesDirectory.appendingPathComponent("nifti")

func fixture(_ name: String) -> String { niftiFixtures.appendingPathComponent(name).path }

/// A fresh empty folder under the system temporary folder.
func makeTempDir(_ tag: String = "nifti") -> String {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("voxplain-\(tag)-\(getpid())-\(UUID().uuidString.prefix(8))")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// What nibabel read from one fixture (see the script for the meaning of each key).
struct ExpectedFile: Decodable {
    var file: String
    var format: Int
    var shape: [Int]
    var volumes: Int
    var volume: Int?
    var datatype: String
    var big_endian: Bool
    var voxels: [Double]
    var affine: [[Double]]
    var sform: [[Double]]?
    var sform_code: Int
    var qform: [[Double]]?
    var qform_code: Int
    var spacing: [Double]
    var slope: Double?
    var intercept: Double?
    var axcodes: String
    var description: String
    var intent_code: Int
    var cal_min: Double
    var cal_max: Double
    var xyz_units: Int
}

struct ExpectedOrientation: Decodable {
    var affine: [[Double]]
    var axcodes: String
}

struct ExpectedBad: Decodable {
    var file: String
    var contains: String
}

struct ExpectedFixtures: Decodable {
    var files: [ExpectedFile]
    var bad: [ExpectedBad]
    var orientations: [ExpectedOrientation]

    static let shared: ExpectedFixtures = {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do {
            let data = try Data(contentsOf: niftiFixtures.appendingPathComponent("expected.json"))
            return try decoder.decode(ExpectedFixtures.self, from: data)
        } catch {
            fatalError("cannot load Tests/Fixtures/nifti/expected.json: \(error)")
        }
    }()
}

/// Equal as Float32, with NaN equal to NaN.
func sameVoxels(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
}

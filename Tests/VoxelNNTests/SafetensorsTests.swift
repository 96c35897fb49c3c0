import Foundation
import Testing
import VoxelNN
import VoxelTensor
import _TestSupport

/// Facts about Tests/Fixtures/safetensors/golden.safetensors, written by Scripts/make_onnx_fixtures.py
/// with the `safetensors` package.
struct SafetensorsFacts: Decodable {
    struct TensorFact: Decodable {
        var dtype: String
        var shape: [Int]
        var sum: Double
        var sumsq: Double
        var values: [Double]?
        var ints: [Int64]?
    }
    var metadata: [String: String]
    var tensors: [String: TensorFact]
}

/// The tensors the Swift writer stores for the Python cross-check (Scripts/check_safetensors.py
/// recomputes the same formulas): element i of "ramp" is i * 0.25 - 3, of "bias" is 1 / (i + 1).
func crossCheckTensors() throws -> [String: Tensor] {
    [
        "ramp": try Tensor(shape: [2, 3, 4], scalars: (0..<24).map { Float($0) * 0.25 - 3 }),
        "bias": try Tensor(shape: [5], scalars: (0..<5).map { 1 / Float($0 + 1) }),
        "scalar": Tensor(scalar: 3.5),
        "empty": Tensor.zeros([0, 2]),
    ]
}
let crossCheckMetadata = ["format": "pt", "note": "written by Voxplain \"quoted\"\nsecond line", "unicode": "µm ✓"]

/// A safetensors file from a header string and a data section, with the 8-byte length in front.
func safetensorsBytes(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var out: [UInt8] = []
    withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
    return out + h + data
}

@Suite struct SafetensorsTests {
    static let dtypeNames = ["float32": "F32", "float16": "F16", "float64": "F64", "bfloat16": "BF16",
                             "int64": "I64", "int32": "I32"]

    @Test func goldenFileFromPythonMatches() throws {
        let facts = try JSONDecoder().decode(SafetensorsFacts.self, from: Data(contentsOf:
            fixturesDirectory.appendingPathComponent("safetensors/golden.json")))
        let file = try SafetensorsFile(contentsOf: fixturesDirectory.appendingPathComponent("safetensors/golden.safetensors"))
        #expect(file.metadata == facts.metadata)
        #expect(Set(file.tensors.map(\.name)) == Set(facts.tensors.keys))
        for (name, f) in facts.tensors {
            let t = try #require(file[name], "missing tensor \(name)")
            #expect(t.dtype == SafetensorsTests.dtypeNames[f.dtype], "\(name)")
            #expect(t.value.shape == f.shape, "\(name)")
            // Exact: every dtype converts to Float32 without rounding choices (F64 rounds to nearest,
            // as PyTorch's .to(float32) does), so the values must be equal, not close.
            if let values = f.values { #expect(t.value.scalars.map(Double.init) == values, "\(name)") }
            let sum = t.value.scalars.reduce(0.0) { $0 + Double($1) }
            #expect(abs(sum - f.sum) <= 1e-12 * max(1, abs(f.sum)), "\(name) sum")
            #expect(t.integers == f.ints, "\(name) integers")
        }
        // Data order (file order) is the offsets' order, whatever the JSON key order.
        #expect(file.tensors.count == facts.tensors.count)
    }

    @Test func writeThenReadRoundTripsExactly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("voxplain-st-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var tensors = try crossCheckTensors()
        tensors["random"] = Tensor.random([3, 1, 2, 2, 2], seed: 7)
        let url = dir.appendingPathComponent("weights.safetensors")
        try SafetensorsFile.write(tensors, metadata: crossCheckMetadata, to: url)
        // Overwriting an existing file goes through the same rename.
        try SafetensorsFile.write(tensors, metadata: crossCheckMetadata, to: url)
        let back = try SafetensorsFile(contentsOf: url)
        #expect(back.metadata == crossCheckMetadata)
        #expect(back.tensors.map(\.name) == tensors.keys.sorted())
        for (name, t) in tensors {
            #expect(back[name]?.value == t, "\(name)")
            #expect(back[name]?.dtype == "F32")
        }
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["weights.safetensors"])
        // The header is padded so the data section starts 8-byte aligned.
        let bytes = try SafetensorsFile.serialize(tensors, metadata: crossCheckMetadata)
        let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(n % 8 == 0)

        // For the Python cross-check (Scripts/check_safetensors.py): write the file where asked.
        if let out = ProcessInfo.processInfo.environment["VOXPLAIN_SAFETENSORS_OUT"] {
            try SafetensorsFile.write(try crossCheckTensors(), metadata: crossCheckMetadata, to: URL(fileURLWithPath: out))
        }
    }

    @Test func writeIntoMissingFolderIsAnIOError() throws {
        let url = URL(fileURLWithPath: "/nonexistent-voxplain/w.safetensors")
        let e = modelError { try SafetensorsFile.write(["a": Tensor.zeros([1])], to: url) }
        #expect(e?.kind == .io && e?.file == "w.safetensors")
        let reserved = modelError { _ = try SafetensorsFile.serialize(["__metadata__": Tensor.zeros([1])]) }
        #expect(reserved?.kind == .invalid)
    }

    static let f32x2: [UInt8] = [0, 0, 128, 63, 0, 0, 0, 64]  // [1.0, 2.0]

    @Test(arguments: [
        ("too short", [1, 2, 3], "too short"),
        ("length beyond file", safetensorsBytes("{}", length: 50), "runs past the end"),
        ("length over limit", safetensorsBytes("{}", length: 200_000_000), "100 MB"),
        ("not an object", safetensorsBytes("[1, 2]"), "does not start with a JSON object"),
        ("invalid json", safetensorsBytes("{\"a\": "), "not valid JSON"),
        ("metadata not strings", safetensorsBytes("{\"__metadata__\": {\"k\": 1}}"), "not valid JSON"),
        ("offsets out of bounds", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, data: f32x2),
         "outside the data section"),
        ("reversed offsets", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: f32x2),
         "outside the data section"),
        ("size mismatch", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: f32x2),
         "needs 12"),
        ("gap", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: f32x2), "gap of 4 bytes"),
        ("overlap", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                                     data: f32x2), "overlaps"),
        ("uncovered tail", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: f32x2),
         "cover 4 bytes but the data section has 8"),
        ("negative extent", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: f32x2),
         "negative extent"),
        ("three offsets", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}"#, data: f32x2),
         "expected [begin, end]"),
        ("unknown dtype", safetensorsBytes(#"{"a":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}}"#, data: f32x2),
         "unknown dtype 'F12'"),
        ("unread dtype", safetensorsBytes(#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#, data: f32x2),
         "dtype U8, which Voxplain does not read"),
        // JSON decoders keep one of two equal keys (so does the reference reader); the tiling check
        // then finds the other tensor's bytes uncovered.
        ("duplicate name", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                                            data: f32x2), "cover 4 bytes"),
        ("missing field", safetensorsBytes(#"{"a":{"dtype":"F32","data_offsets":[0,8]}}"#, data: f32x2), "not valid JSON"),
    ] as [(String, [UInt8], String)])
    func malformedFilesAreRejected(name: String, bytes: [UInt8], expected: String) {
        let e = modelError { _ = try SafetensorsFile(bytes: bytes, fileName: "w.safetensors") }
        #expect(e?.description.hasPrefix("w.safetensors: ") == true, "\(name)")
        #expect(e?.description.contains(expected) == true, "\(name): \(String(describing: e))")
        #expect(e?.description.contains("\n") == false, "\(name)")
    }

    @Test func validMinimalFilesAreAccepted() throws {
        let empty = try SafetensorsFile(bytes: safetensorsBytes("{}"), fileName: "e.safetensors")
        #expect(empty.tensors.isEmpty && empty.metadata.isEmpty)
        let padded = try SafetensorsFile(bytes: safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   "#,
                                                                 data: SafetensorsTests.f32x2), fileName: "p.safetensors")
        #expect(padded["a"]?.value.scalars == [1, 2])
    }

    /// Truncations and byte flips of the golden file: each decodes or throws a ModelError.
    @Test func truncationsAndByteFlipsNeverCrash() throws {
        let original = [UInt8](try Data(contentsOf: fixturesDirectory.appendingPathComponent("safetensors/golden.safetensors")))
        var rng = SeededGenerator(seed: 9)
        var rejected = 0
        func attempt(_ bytes: [UInt8]) {
            do { _ = try SafetensorsFile(bytes: bytes, fileName: "fuzz.safetensors") } catch is ModelError { rejected += 1 } catch {
                Issue.record("non-ModelError thrown: \(error)")
            }
        }
        for n in 0..<original.count { attempt(Array(original.prefix(n))) }
        for trial in 0..<2000 {
            var bytes = original
            let i = Int.random(in: 0..<min(bytes.count, 400), using: &rng)  // mostly the header
            bytes[i] = UInt8.random(in: 0...255, using: &rng)
            if trial % 3 == 0 { bytes[Int.random(in: 0..<8, using: &rng)] ^= 0x10 }
            attempt(bytes)
        }
        #expect(rejected > 1000)
    }
}

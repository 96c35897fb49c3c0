import Foundation
import Testing
import VoxelNN

@Suite struct ONNXReadTimeTests {
    /// Times reading a large model made by Scripts/make_large_onnx.py (not committed). Runs only when
    /// VOXPLAIN_ONNX_BENCH names the file; the target is a 50 MB model in under 1 s.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VOXPLAIN_ONNX_BENCH"] != nil))
    func largeModelReadTime() throws {
        let path = try #require(ProcessInfo.processInfo.environment["VOXPLAIN_ONNX_BENCH"])
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        var best = Double.infinity
        var parameters = 0
        for _ in 0..<5 {
            let start = Date()
            let model = try ONNXModel(contentsOf: URL(fileURLWithPath: path))
            best = min(best, Date().timeIntervalSince(start))
            parameters = model.graph.initializers.reduce(0) { $0 + $1.value.count }
        }
        print("read \(path): \(size / 1_000_000) MB, \(parameters) parameters, best of 5: \(Int(best * 1000)) ms")
        #expect(best < 1.0)
    }
}

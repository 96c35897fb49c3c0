import Foundation
import Testing
import VoxelNN
import VoxelTensor
import _TestSupport

@Suite struct NativeFormatTests {
    /// Every fixture model written in the native format reads back to a graph that computes the same
    /// logits bit for bit (the same weights, ops and order).
    /// Plain graphs, and fused ones (residual convolutions, batch norms with an activation) too.
    @Test(arguments: ["vgg.onnx", "resnet.onnx", "densenet.onnx", "oddops.onnx", "oddops_dynamo.onnx"], [false, true])
    func roundTrip(_ file: String, fused: Bool) throws {
        let plain = try Graph(onnx: try ONNXModel(contentsOf: fixturesDirectory.appendingPathComponent("models/\(file)")))
        let graph = fused ? try plain.fused() : plain
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("voxplain-native-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.voxplain.json")
        try NativeFormat.write(graph, to: url)
        let back = try NativeFormat.read(contentsOf: url)
        #expect(back.nodes.map(\.name) == graph.nodes.map(\.name))
        #expect(back.nodes.map(\.modulePath) == graph.nodes.map(\.modulePath))
        let shape = graph.values[graph.input].shape
        let x = Tensor.random(shape, seed: 5)
        #expect(try back.run(x).outputs[0].scalars == graph.run(x).outputs[0].scalars)
    }

    @Test func badFilesAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("voxplain-native-bad-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.voxplain.json")
        try Data("{not json".utf8).write(to: url)
        #expect(throws: ModelError.self) { try NativeFormat.read(contentsOf: url) }
        try Data(#"{"format":"voxplain-graph","version":1,"weights":"m.safetensors","input":{"name":"x","shape":[1,1,4,4,4]},"outputs":["y"],"constants":{},"nodes":[{"name":"c","module":"","op":"Conv","inputs":["x"],"output":"y","tensors":{"weight":"w"}}]}"#.utf8).write(to: url)
        try SafetensorsFile.write(["w": Tensor.random([2, 1, 3, 3, 3], seed: 1)], to: dir.appendingPathComponent("m.safetensors"))
        #expect(throws: Never.self) { try NativeFormat.read(contentsOf: url) }
        try SafetensorsFile.write(["w": Tensor.random([2, 3, 3, 3, 3], seed: 1)], to: dir.appendingPathComponent("m.safetensors"))
        do { _ = try NativeFormat.read(contentsOf: url); Issue.record("a weight with 3 input channels for a 1-channel input was accepted") }
        catch let e as ModelError { #expect(e.description.contains("m.voxplain.json") && e.description.contains("[1, 1, 4, 4, 4]")) }
        // A convolution marked as adding a residual needs that second input.
        try Data(#"{"format":"voxplain-graph","version":1,"weights":"m.safetensors","input":{"name":"x","shape":[1,1,4,4,4]},"outputs":["y"],"constants":{},"nodes":[{"name":"c","module":"","op":"Conv","inputs":["x"],"output":"y","ints":{"residual":[1]},"tensors":{"weight":"w"}}]}"#.utf8).write(to: url)
        try SafetensorsFile.write(["w": Tensor.random([1, 1, 1, 1, 1], seed: 1)], to: dir.appendingPathComponent("m.safetensors"))
        do { _ = try NativeFormat.read(contentsOf: url); Issue.record("a residual convolution without its residual input was accepted") }
        catch let e as ModelError { #expect(e.description.contains("m.voxplain.json") && e.description.contains("2 input")) }
    }
}

import Foundation
import Testing
import VoxelCAM
import VoxelNN
import VoxelTensor
import _TestSupport

/// Parity with the peers' own implementations (Scripts/make_cam_fixtures.py): MONAI's CAM, GradCAM and
/// GradCAMpp, torch-cam's 3D ScoreCAM, and pytorch-grad-cam's XGradCAM and LayerCAM formulas.
///
/// Criterion (from the issue): after min-max scaling of both maps, Pearson correlation >= 0.999 and
/// maximum absolute difference <= 1e-3. Raw maps differ only by Float32 summation order.
@Suite struct CAMParityTests {
    static let models = ["vgg", "resnet", "densenet"]

    static func agree(_ ours: [Float], _ theirs: [Float], _ what: String) {
        #expect(ours.count == theirs.count, "\(what): \(ours.count) vs \(theirs.count) voxels")
        guard ours.count == theirs.count else { return }
        let a = normalizeMap(ours), b = normalizeMap(theirs)
        let diff = maxAbsDifference(a, b)
        let r = pearson(a, b)
        #expect(r >= 0.999, "\(what): correlation \(r)")
        #expect(diff <= 1e-3, "\(what): max abs difference \(diff) after min-max scaling")
    }

    static func pearson(_ a: [Float], _ b: [Float]) -> Double {
        let n = Double(a.count)
        let ma = a.reduce(0.0) { $0 + Double($1) } / n, mb = b.reduce(0.0) { $0 + Double($1) } / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in a.indices {
            let x = Double(a[i]) - ma, y = Double(b[i]) - mb
            sab += x * y; saa += x * x; sbb += y * y
        }
        return saa == 0 && sbb == 0 ? 1 : sab / (saa * sbb).squareRoot()
    }

    @Test(arguments: models)
    func mapsMatchPeers(_ name: String) throws {
        let c = try GoldenFile.load("cam/\(name).json").cases[0]
        let model = try ONNXModel(contentsOf: fixturesDirectory.appendingPathComponent("models/\(c.strings["file"]!)"))
        let graph = try Graph(onnx: model)
        let layer = try graph.value(named: c.strings["layer"]!)
        let explainer = CAMExplainer(graph: graph)
        var options = CAMOptions()
        options.memoryBudget = 64 << 20  // several Score-CAM batches even on these small models
        let methods: [CAMMethod] = [.cam, .gradcam, .gradcampp, .scorecam, .xgradcam, .layercam]
        let e = try explainer.explain(try c.tensor("input"), methods: methods, layers: [layer],
                                      classIndex: c.int("class", 1), options: options)
        let byMethod = Dictionary(uniqueKeysWithValues: e.map { ($0.method, $0) })
        for m in [CAMMethod.cam, .gradcam, .gradcampp] {
            Self.agree(byMethod[m]!.map.scalars, try c.tensor(m.rawValue).scalars, "\(name) \(m) (MONAI)")
        }
        Self.agree(byMethod[.scorecam]!.layerMaps[0].map.scalars, try c.tensor("scorecam_layer").scalars, "\(name) scorecam (torch-cam)")
        Self.agree(byMethod[.xgradcam]!.layerMaps[0].map.scalars, try c.tensor("xgradcam_layer").scalars, "\(name) xgradcam (pytorch-grad-cam)")
        Self.agree(byMethod[.layercam]!.layerMaps[0].map.scalars, try c.tensor("layercam_layer").scalars, "\(name) layercam (pytorch-grad-cam)")
        #expect(byMethod[.scorecam]!.forwardPasses == graph.values[layer].shape[1] + 1)
    }
}

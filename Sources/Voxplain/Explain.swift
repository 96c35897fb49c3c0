import Foundation
import NIfTI
import VoxelCAM
import VoxelIO
import VoxelNN
import VoxelTensor

/// What `voxplain explain` is asked to do.
public struct ExplainRequest: Sendable {
    public var methods: [CAMMethod]
    /// Target layers by name (ONNX node or value name, or PyTorch module path); default from the
    /// card or the last 3D feature map.
    public var layers: [String] = []
    /// A class index or card class name; nil for the predicted class.
    public var classSpec: String?
    public var outputDirectory: String
    /// Also write the raw (unnormalised) maps.
    public var raw = false
    public var cam = CAMOptions()
    public var preprocessing = PreprocessingRequest()
    /// Patches around these points, combined into one map by the maximum where they overlap; empty
    /// for one input (the whole scan, or the preprocessing's own centre).
    public var candidates: [Candidate] = []
    /// A label mask of the true lesions on the scan's grid: outlined in montages, matched by the lesion tables.
    public var truthPath: String?
    /// Montage settings for `<method>.png` and `comparison.png`; nil writes no pictures.
    public var montage: MontageOptions? = MontageOptions()
    /// The heat threshold of the lesion tables.
    public var lesionThreshold: Float = 0.5
    /// For a model with several outputs, the one whose class scores are explained (by ONNX name).
    public var output: String?

    public init(methods: [CAMMethod], outputDirectory: String) {
        self.methods = methods
        self.outputDirectory = outputDirectory
    }
}

/// `report.json`: the audit trail of one explain run.
public struct ExplainReport: Codable, Sendable {
    public struct Input: Codable, Sendable {
        public var path: String, sha256: String, dims: [Int], spacing: [Double], affine: [[Double]], orientation: String
    }
    public struct ModelInfo: Codable, Sendable {
        public var path: String, sha256: String, card: ModelCard?, cardPath: String?, inputShape: [Int]
    }
    public struct PreprocessingInfo: Codable, Sendable {
        public var intensity: IntensityTransform, spacing: [Double]?, size: [Int], center: [Double]?, padValue: Float
        /// Model voxel (d, h, w) to scan voxel (i, j, k): scan = model * scale + offset.
        public var scale: [Double], offset: [Double]
    }
    public struct MapStats: Codable, Sendable {
        public var min: Float, max: Float, mean: Float
        /// The hottest scan voxel and its world position (RAS mm).
        public var peakVoxel: [Int], peakWorldMM: [Double]
        /// Share of scan voxels whose normalised heat is at least 0.5.
        public var fractionAboveHalf: Double
    }
    public struct MethodResult: Codable, Sendable {
        public var method: String, summary: String, form: String?
        public var layers: [String]
        public var forwardPasses: Int
        public var seconds: Double
        public var map: String, rawMap: String?, levelMaps: [String]
        public var montage: String?
        public var stats: MapStats
        /// The hot regions of the normalised map (26-connected components above the threshold),
        /// matched against the truth mask when given; also written as `<method>-lesions.csv`.
        public var lesions: LesionTable
    }
    public struct PatchResult: Codable, Sendable {
        public var candidate: Candidate
        public var prediction: Prediction
    }
    public var tool: String
    public var version: String
    public var date: String
    public var input: Input
    public var model: ModelInfo
    public var preprocessing: PreprocessingInfo
    public var prediction: Prediction
    /// Per patch, when candidates were given: the point and the model's prediction there.
    public var patches: [PatchResult]?
    public var explainedClass: Int
    public var explainedClassName: String
    public var explainedProbability: Float
    public var results: [MethodResult]
    /// Every method's map side by side on the same slices (when there are several).
    public var comparison: String?
    public var timings: [String: Double]
}

/// Runs the explain pipeline: scan to model input, the methods, maps back on the scan's grid,
/// heatmap NIfTI files with the scan's affine, and `report.json`.
public enum ExplainPipeline {
    /// - Throws: `VoxplainError`, `ModelError`, `NIfTIError` or `CAMError` naming what is wrong.
    public static func run(model: LoadedModel, scanPath: String, volume: Int? = nil,
                           request: ExplainRequest) throws -> ExplainReport {
        let clock = ContinuousClock()
        var timings: [String: Double] = [:]
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
        guard !request.methods.isEmpty else { throw VoxplainError("--method: give at least one method") }
        let outDir = URL(fileURLWithPath: request.outputDirectory)
        var start = clock.now
        let scan = try NIfTIFile.read(scanPath, volume: volume)
        let truth = try request.truthPath.map { try NIfTIFile.read($0) }
        if let truth, let name = request.truthPath { try Montage.checkSameGrid(truth, name, as: scan, scanPath, role: "truth mask") }
        // One model input, or one per candidate point.
        var requests: [PreprocessingRequest] = []
        if request.candidates.isEmpty {
            requests = [request.preprocessing]
        } else {
            for c in request.candidates {
                var r = request.preprocessing
                r.centerWorld = c.world
                r.centerVoxel = c.voxel
                requests.append(r)
            }
        }
        let inputs = try model.inputs(for: scan, scanName: scanPath, requests: requests)
        let pre = try requests[0].resolve(model: model, scan: scan, scanName: scanPath)
        timings["preprocess"] = seconds(clock.now - start)
        // The folder is made only once the inputs are known to be good, so a failed run leaves nothing.
        do {
            try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        } catch {
            throw VoxplainError("\(request.outputDirectory): cannot create the output folder (\(error.localizedDescription))")
        }

        start = clock.now
        let predictions = try inputs.map { try model.predict($0, output: request.output) }
        let prediction = predictions[0]
        timings["predict"] = seconds(clock.now - start)
        let classIndex = try model.classIndex(request.classSpec, logits: prediction.logits)

        let graph = model.graph
        let explainer = CAMExplainer(graph: graph, output: try model.outputIndex(request.output))
        let layerNames = request.layers.isEmpty ? (model.card.layers?.default.map { [$0] } ?? []) : request.layers
        let layers = try layerNames.map { try graph.value(named: $0) }
        let hrcamLayers = try model.card.layers?.hrcam.map { try $0.map { try graph.value(named: $0) } }
        let hrcamHead = request.methods.contains(.hrcam) ? try HRCAMFitting.load(forModel: model.path) : nil

        var results: [ExplainReport.MethodResult] = []
        let protected = [scanPath, model.path] + (model.cardPath.map { [$0] } ?? []) + (request.truthPath.map { [$0] } ?? [])
        func write(_ volume: Volume, _ name: String) throws -> String {
            let path = outDir.appendingPathComponent(name).path
            try NIfTIFile.write(volume, to: path, protecting: protected)
            return path
        }
        func write(_ voxels: [Float], _ name: String, _ description: String) throws -> String {
            try write(try Volume(mapLike: scan, voxels: voxels, description: description), name)
        }
        var mapVolumes: [(name: String, volume: Volume)] = []
        for method in request.methods {
            start = clock.now
            // Voxels outside every patch stay -inf until the end; overlaps take the maximum.
            var combined = [Float](repeating: -.infinity, count: scan.dims.count), levels: [[Float]] = []
            var first: Explanation? = nil, passes = 0
            for (n, input) in inputs.enumerated() {
                let e = try explainer.explain(input.tensor, methods: [method], layers: layers, hrcamLayers: hrcamLayers,
                                              hrcamHead: hrcamHead, classIndex: classIndex, options: request.cam)[0]
                first = first ?? e
                passes += e.forwardPasses
                input.maxIntoScan(&combined, e.map.scalars, mapSize: e.map.shape, replacing: n == 0)
                if method == .hrcam {
                    for (i, level) in e.layerMaps.enumerated() {
                        if i == levels.count { levels.append([Float](repeating: -.infinity, count: scan.dims.count)) }
                        input.maxIntoScan(&levels[i], level.map.scalars, mapSize: level.map.shape, replacing: n == 0)
                    }
                }
            }
            let elapsed = seconds(clock.now - start)
            let onScan = fillUncovered(combined)
            let range = mapRange(onScan)
            let normalized = normalizeMap(onScan, range: range)
            let e = first!
            let layerText = e.layerMaps.map(\.name).joined(separator: ", ")
            let description = "voxplain \(method.rawValue) \(layerText.isEmpty ? "input" : layerText) class \(classIndex)"
            // The map's volume made once, for its file, the montage, the lesion table and the comparison.
            let mapVolume = try Volume(mapLike: scan, voxels: normalized, description: description)
            let mapPath = try write(mapVolume, "\(method.rawValue).nii.gz")
            let rawPath = request.raw ? try write(onScan, "\(method.rawValue)-raw.nii.gz", description + " raw") : nil
            var levelPaths: [String] = []
            for (i, level) in levels.enumerated() {
                levelPaths.append(try write(normalizeMap(fillUncovered(level)), "hrcam-level\(i + 1).nii.gz",
                                            "voxplain hrcam level \(i + 1) \(e.layerMaps[i].name)"))
            }
            mapVolumes.append((method.rawValue, mapVolume))
            var montagePath: String?
            if let options = request.montage {
                let path = outDir.appendingPathComponent("\(method.rawValue).png").path
                try Montage.render(scan: scan, overlay: mapVolume, truth: truth, options: options,
                                   names: (scanPath, mapPath, request.truthPath ?? "truth")).writePNG(to: path)
                montagePath = path
            }
            let lesions = try LesionTable.make(map: mapVolume, mapName: mapPath, threshold: request.lesionThreshold,
                                               truth: truth, truthName: request.truthPath ?? "truth")
            try lesions.writeCSV(to: outDir.appendingPathComponent("\(method.rawValue)-lesions.csv").path, protecting: protected)
            results.append(ExplainReport.MethodResult(
                method: method.rawValue, summary: method.summary, form: e.form, layers: e.layerMaps.map(\.name),
                forwardPasses: passes, seconds: elapsed, map: mapPath, rawMap: rawPath, levelMaps: levelPaths,
                montage: montagePath, stats: stats(raw: onScan, range: range, normalized: normalized, scan: scan), lesions: lesions))
            timings[method.rawValue] = elapsed
        }
        var comparisonPath: String?
        if let options = request.montage, mapVolumes.count > 1 {
            let path = outDir.appendingPathComponent("comparison.png").path
            try Montage.comparison(scan: scan, maps: mapVolumes, truth: truth, options: options, scanName: scanPath).writePNG(to: path)
            comparisonPath = path
        }
        let input = inputs[0]
        let patches = request.candidates.isEmpty ? nil
            : zip(request.candidates, predictions).map { ExplainReport.PatchResult(candidate: $0, prediction: $1) }
        let names = prediction.classNames
        let report = ExplainReport(
            tool: "voxplain", version: VoxplainInfo.version, date: ISO8601DateFormatter().string(from: Date()),
            input: .init(path: scanPath, sha256: try SHA256.hex(ofFile: scanPath), dims: scan.dims.array,
                         spacing: [scan.spacing.x, scan.spacing.y, scan.spacing.z], affine: scan.affine.rows,
                         orientation: Orientation.code(of: scan.affine)),
            model: .init(path: model.path, sha256: try SHA256.hex(ofFile: model.path), card: model.card,
                         cardPath: model.cardPath, inputShape: model.inputShape),
            preprocessing: .init(intensity: pre.intensity, spacing: pre.spacing.map { [$0.x, $0.y, $0.z] },
                                 size: Array(input.tensor.shape[2...]), center: pre.center.map { [$0.x, $0.y, $0.z] },
                                 padValue: pre.padValue, scale: [input.mapping.scale.x, input.mapping.scale.y, input.mapping.scale.z],
                                 offset: [input.mapping.offset.x, input.mapping.offset.y, input.mapping.offset.z]),
            prediction: prediction, patches: patches, explainedClass: classIndex, explainedClassName: names[classIndex],
            explainedProbability: prediction.probabilities[classIndex], results: results, comparison: comparisonPath,
            timings: timings)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            try AtomicFile.write(try encoder.encode(report), to: outDir.appendingPathComponent("report.json"))
        } catch let f as AtomicFile.Failure {
            throw VoxplainError("\(outDir.appendingPathComponent("report.json").path): \(f.reason)")
        }
        return report
    }

    /// A combined map with the voxels no patch covered (-inf) set to the lowest covered value.
    static func fillUncovered(_ m: [Float]) -> [Float] {
        let floor = finiteRange(m)?.low ?? 0
        return [Float](unsafeUninitializedCapacity: m.count) { out, done in
            m.withUnsafeBufferPointer { p in
                for i in 0..<p.count { out[i] = p[i].isFinite ? p[i] : floor }
            }
            done = m.count
        }
    }

    /// The report's statistics of a map: `range` is `mapRange(raw)`, found once for these and for
    /// `normalizeMap`.
    static func stats(raw: [Float], range: (low: Float, high: Float)?, normalized: [Float], scan: Volume) -> ExplainReport.MapStats {
        // One pass over each map through raw memory, each value compared as `max(by:)` compares (the
        // first of equal peaks; the sum in order, in Double).
        var peak = 0, hot = 0
        normalized.withUnsafeBufferPointer { p in
            for n in 0..<p.count {
                if p[peak] < p[n] { peak = n }
                if p[n] >= 0.5 { hot += 1 }
            }
        }
        var sum = 0.0
        raw.withUnsafeBufferPointer { p in
            for v in p { sum += Double(v) }
        }
        let (lo, hi) = range ?? (0, 0)
        let i = peak % scan.dims.i, j = (peak / scan.dims.i) % scan.dims.j, k = peak / (scan.dims.i * scan.dims.j)
        let world = scan.affine.apply(SIMD3(Double(i), Double(j), Double(k)))
        let mean = sum / Double(max(raw.count, 1))
        return .init(min: lo, max: hi, mean: Float(mean), peakVoxel: [i, j, k],
                     peakWorldMM: [world.x, world.y, world.z], fractionAboveHalf: Double(hot) / Double(max(raw.count, 1)))
    }
}

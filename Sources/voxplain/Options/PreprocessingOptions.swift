import ArgumentParser
import Voxplain

/// The shared preprocessing options; what is not given comes from the model card (`MODEL.json`).
struct PreprocessingOptions: ParsableArguments {
    @Option(name: .customLong("model-card"), help: "The model card (default: MODEL.json beside the model).")
    var modelCard: String?

    @Option(help: ArgumentHelp("Clip intensities to LO,HI (scan units, e.g. HU).", valueName: "lo,hi"))
    var clip: String?

    @Option(help: ArgumentHelp("Map the clip range (or the scan's range) linearly onto LO,HI.", valueName: "lo,hi"))
    var scale: String?

    @Flag(help: "Z-score the (clipped) intensities.")
    var zscore = false

    @Option(help: ArgumentHelp("Resample to this voxel size in mm along i,j,k.", valueName: "x,y,z"))
    var spacing: String?

    @Option(help: ArgumentHelp("Model input size D,H,W (crop or pad).", valueName: "d,h,w"))
    var size: String?

    @Option(help: ArgumentHelp("Centre the input on this world point in mm (RAS+; LPS with --lps).", valueName: "x,y,z"))
    var center: String?

    @Option(name: .customLong("center-voxel"), help: ArgumentHelp("Centre the input on this scan voxel.", valueName: "i,j,k"))
    var centerVoxel: String?

    @Flag(help: "--center is in LPS (ITK, DICOM, LUNA16 CSV) rather than RAS+.")
    var lps = false

    @Option(help: "The volume of a 4D scan to use (0-based).")
    var volume: Int?

    /// The request these options make.
    func request() throws -> PreprocessingRequest {
        var r = PreprocessingRequest()
        r.clip = try clip.map { try parseNumbers($0, count: 2, option: "--clip").map(Float.init) }
        r.scale = try scale.map { try parseNumbers($0, count: 2, option: "--scale").map(Float.init) }
        r.zscore = zscore
        r.spacing = try spacing.map { try parseNumbers($0, count: 3, option: "--spacing") }
        r.size = try size.map { text in
            let v = try parseNumbers(text, count: 3, option: "--size")
            guard v.allSatisfy({ $0 >= 1 && $0 == $0.rounded() && $0 <= 4096 }) else {
                throw VoxplainError("--size \(text): expected three whole numbers of voxels, as 64,64,64")
            }
            return v.map { Int($0) }
        }
        r.centerWorld = try center.map { try parseNumbers($0, count: 3, option: "--center") }
        r.centerVoxel = try centerVoxel.map { try parseNumbers($0, count: 3, option: "--center-voxel") }
        r.lps = lps
        return r
    }

    /// Loads the model at the requested input size.
    func loadModel(_ path: String, request: PreprocessingRequest) throws -> LoadedModel {
        let card = try modelCard.map(ModelCard.read)
        return try LoadedModel.load(path, cardPath: modelCard, inputSize: request.size ?? card?.input?.size)
    }
}

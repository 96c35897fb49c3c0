import VoxelNN
import VoxelTensor

/// The explanation methods. Each method's formula and reference are in its `Methods/` file.
public enum CAMMethod: String, CaseIterable, Sendable, Codable {
    case cam
    case gradcam
    case gradcampp
    case scorecam
    case hrcam
    case layercam
    case xgradcam
    case hirescam
    case occlusion

    /// A one-line description with the paper.
    public var summary: String {
        switch self {
        case .cam: return "CAM (Zhou et al. 2016): the linear head's class weights on the pooled layer"
        case .gradcam: return "Grad-CAM (Selvaraju et al. 2017): channels weighted by their mean gradient"
        case .gradcampp: return "Grad-CAM++ (Chattopadhay et al. 2018), MONAI's formula"
        case .scorecam: return "Score-CAM (Wang et al. 2020): channels weighted by the score of the input they mask"
        case .hrcam: return "HR-CAM (Shinde et al. 2019): class maps of every resolution level fused at input resolution"
        case .layercam: return "LayerCAM (Jiang et al. 2021): activations weighted voxel-wise by positive gradients"
        case .xgradcam: return "XGrad-CAM (Fu et al. 2020): gradients weighted by normalised activations"
        case .hirescam: return "HiResCAM (Draelos and Carin 2020): element-wise gradient times activation"
        case .occlusion: return "Occlusion sensitivity (Zeiler and Fergus 2014): score drop when a cube is hidden"
        }
    }

    /// Whether the method reads gradients at the target layer (one backward pass).
    public var needsGradients: Bool {
        switch self {
        case .gradcam, .gradcampp, .layercam, .xgradcam, .hirescam: return true
        case .cam, .scorecam, .hrcam, .occlusion: return false
        }
    }
}

/// An error from an explanation method, naming the method, layer or option at fault.
public struct CAMError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A method's map at one target layer.
public struct LayerMap: Sendable {
    /// The target layer's value and display name.
    public var layer: ValueID
    public var name: String
    /// The raw map at the layer's resolution, `[d, h, w]`.
    public var map: Tensor
    /// The channel weights, for methods that have them.
    public var weights: [Float]?
}

/// One method's explanation of one class.
public struct Explanation: Sendable {
    public var method: CAMMethod
    /// The class explained and its logit.
    public var classIndex: Int
    public var score: Float
    /// The map at each target layer (HR-CAM: every level).
    public var layerMaps: [LayerMap]
    /// The raw map upsampled to the model input, `[D, H, W]` (not normalised).
    public var map: Tensor
    /// Which form of a method ran, where there are several (HR-CAM: exact, fitted or gradient).
    public var form: String?
    /// Forward passes spent (1 for gradient methods' capture, more for Score-CAM and occlusion).
    public var forwardPasses: Int
}

/// The smallest and largest values of a map, compared as `min()` and `max()` compare (so a NaN in
/// first place stays), in one pass through raw memory; nil when the map is empty.
public func mapRange(_ x: [Float]) -> (low: Float, high: Float)? {
    guard let first = x.first else { return nil }
    var lo = first, hi = first
    x.withUnsafeBufferPointer { p in
        for v in p.dropFirst() {
            if v < lo { lo = v }
            if hi < v { hi = v }
        }
    }
    return (lo, hi)
}

/// Min-max normalisation of a map to [0, 1] (min to 0, max to 1, never inverted); a constant map
/// becomes all zeros, and NaN never appears.
public func normalizeMap(_ x: [Float]) -> [Float] {
    normalizeMap(x, range: mapRange(x))
}

/// `normalizeMap(x)` with `range == mapRange(x)` already known (explain also reports it).
public func normalizeMap(_ x: [Float], range: (low: Float, high: Float)?) -> [Float] {
    // The scaling through raw pointers: two generic passes and a closure took 0.2 s a map of a
    // 512x512x240 CT, a tenth of explaining it.
    guard let (lo, hi) = range else { return [] }
    guard hi > lo, lo.isFinite, hi.isFinite else { return [Float](repeating: 0, count: x.count) }
    let k = 1 / (hi - lo)
    return [Float](unsafeUninitializedCapacity: x.count) { out, done in
        x.withUnsafeBufferPointer { p in
            for i in 0..<p.count { out[i] = (p[i] - lo) * k }
        }
        done = x.count
    }
}

/// A layer map `[d, h, w]` upsampled trilinearly (half-pixel centres, as PyTorch's
/// `F.interpolate(align_corners=False)`) to `size`.
public func upsampleMap(_ map: Tensor, to size: [Int]) throws -> Tensor {
    let x = try map.reshaped([1, 1] + map.shape)
    if map.shape == size { return map }
    return try resize3d(x, size: Size3(size[0], size[1], size[2]), mode: .trilinear, alignCorners: false).reshaped(size)
}

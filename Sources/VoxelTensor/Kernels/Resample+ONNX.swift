// ONNX Resize coordinate conventions for `resize3d`: coordinate_transformation_mode and nearest_mode,
// computed in Float as onnxruntime does. `scale` is ONNX's (output / input, or the given `scales`).
//   half_pixel:          src = (dst + 0.5) / scale - 0.5
//   pytorch_half_pixel:  the same, but 0 when the output extent is 1
//   align_corners:       src = dst * (in - 1) / (out - 1), 0 when out == 1
//   asymmetric:          src = dst / scale
// Linear clamps src into [0, in - 1]; nearest rounds by nearest_mode, then clamps the index.

/// ONNX Resize `coordinate_transformation_mode` (the modes other than `tf_crop_and_resize` and
/// `half_pixel_symmetric`).
public enum ResizeCoordinateTransform: String, Sendable, Hashable, CaseIterable {
    /// `(dst + 0.5) / scale - 0.5` (the ONNX default).
    case halfPixel = "half_pixel"
    /// As half_pixel, but 0 when the output extent is 1.
    case pytorchHalfPixel = "pytorch_half_pixel"
    /// `dst * (in - 1) / (out - 1)`.
    case alignCorners = "align_corners"
    /// `dst / scale`.
    case asymmetric = "asymmetric"
}

/// ONNX Resize `nearest_mode`: how a fractional source coordinate becomes an index.
public enum NearestRounding: String, Sendable, Hashable, CaseIterable {
    /// Round half down (the ONNX default).
    case roundPreferFloor = "round_prefer_floor"
    /// Round half up.
    case roundPreferCeil = "round_prefer_ceil"
    /// Round down (PyTorch 'nearest' exports use this with `asymmetric`).
    case floor = "floor"
    /// Round up.
    case ceil = "ceil"

    /// The index for source coordinate `x` (before clamping into the input).
    func apply(_ x: Float) -> Int {
        switch self {
        case .floor: return Int(x.rounded(.down))
        case .ceil: return Int(x.rounded(.up))
        case .roundPreferFloor:
            return x == x.rounded(.down) + 0.5 ? Int(x.rounded(.down)) : Int(x.rounded(.toNearestOrAwayFromZero))
        case .roundPreferCeil:
            return x == x.rounded(.down) + 0.5 ? Int(x.rounded(.up)) : Int(x.rounded(.toNearestOrAwayFromZero))
        }
    }
}

/// The ONNX source coordinate of output index `o` along one axis.
func onnxSourceCoordinate(_ o: Int, inSize: Int, outSize: Int, transform: ResizeCoordinateTransform, scale: Double?) -> Float {
    let s = scale.map { Float($0) } ?? Float(outSize) / Float(inSize)
    let x = Float(o)
    switch transform {
    case .halfPixel: return (x + 0.5) / s - 0.5
    case .pytorchHalfPixel: return outSize > 1 ? (x + 0.5) / s - 0.5 : 0
    case .alignCorners: return outSize == 1 ? 0 : x * Float(inSize - 1) / Float(outSize - 1)
    case .asymmetric: return x / s
    }
}

/// Resamples a volume with ONNX Resize conventions (for the ONNX importer).
///
/// - Parameters: x: `[N, C, D, H, W]`; size: output (D, H, W) (ONNX `sizes`, or `floor(in * scale)`
///   for `scales`); mode: trilinear (ONNX `linear`) or nearest; coordinates:
///   `coordinate_transformation_mode`; nearestRounding: `nearest_mode`; scales: ONNX `scales` for
///   D, H, W when the model gives them (nil: `out / in`).
/// - Returns: `[N, C, size.d, size.h, size.w]`.
/// - Throws: `TensorError` when x is not 5D with a non-empty grid, or size/scales are not positive.
public func resize3d(_ x: Tensor, size: Size3, mode: ResampleMode, coordinates: ResizeCoordinateTransform,
                     nearestRounding: NearestRounding = .roundPreferFloor, scales: [Double]? = nil) throws -> Tensor {
    let p = try ResamplePlan(op: "resize3d", shape: x.shape, size: size, mode: mode,
                             rule: .onnx(coordinates, nearestRounding), scales: scales)
    return resampleForward(x, p, mode)
}

/// Backward (adjoint) of the ONNX-convention `resize3d`.
///
/// - Parameters: gradOutput: `[N, C, size.d, size.h, size.w]`; inputShape: `[N, C, D, H, W]`; the
///   forward's mode, coordinates, nearestRounding and scales.
/// - Returns: gradient w.r.t. the input, shape `inputShape`.
/// - Throws: `TensorError` when the shapes do not match the forward's.
public func resize3dBackward(gradOutput: Tensor, inputShape: [Int], mode: ResampleMode, coordinates: ResizeCoordinateTransform,
                             nearestRounding: NearestRounding = .roundPreferFloor, scales: [Double]? = nil) throws -> Tensor {
    guard gradOutput.rank == 5 else {
        throw TensorError.shapeMismatch("resize3dBackward", gradOutput.shape, inputShape, "gradient must be 5D")
    }
    let size = Size3(gradOutput.shape[2], gradOutput.shape[3], gradOutput.shape[4])
    let p = try ResamplePlan(op: "resize3dBackward", shape: inputShape, size: size, mode: mode,
                             rule: .onnx(coordinates, nearestRounding), scales: scales)
    return try resampleBackward(gradOutput, p, inputShape: inputShape)
}

/// Naive ONNX-convention resampling: the oracle for the kernels' arithmetic. Same contract as
/// `resize3d(_:size:mode:coordinates:nearestRounding:scales:)`.
public func resize3dReference(_ x: Tensor, size: Size3, mode: ResampleMode, coordinates: ResizeCoordinateTransform,
                              nearestRounding: NearestRounding = .roundPreferFloor, scales: [Double]? = nil) throws -> Tensor {
    let p = try ResamplePlan(op: "resize3dReference", shape: x.shape, size: size, mode: mode,
                             rule: .onnx(coordinates, nearestRounding), scales: scales)
    return resampleReference(x, p)
}

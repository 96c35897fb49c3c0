import VoxelTensor

/// A convolution node's parameters and weights, with the weights prepacked for the fast kernel.
///
/// `weight: [Cout, Cin/groups, kD, kH, kW]`, `bias: [Cout]`. Batch norm, a residual addition and an
/// activation that follow the convolution may be folded in by `Graph.fused(keeping:)`.
public struct ConvSpec: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Size3, padding: Padding3, dilation: Size3, groups: Int
    public let activation: Activation
    /// The node has a second input, shaped like the output, added before the activation (a ResNet
    /// block's `relu(bn(conv(x)) + identity)` as one pass). Only `Graph.fused` makes these.
    public let addsResidual: Bool
    /// The packed form used by the forward pass.
    public let packed: PackedConv3D

    public init(weight: Tensor, bias: Tensor?, stride: Size3 = 1, padding: Padding3 = 0,
                dilation: Size3 = 1, groups: Int = 1, activation: Activation = .identity,
                addsResidual: Bool = false) throws {
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.activation = activation
        self.addsResidual = addsResidual
        packed = try PackedConv3D(weight: weight, bias: bias, stride: stride, padding: padding,
                                  dilation: dilation, groups: groups, activation: activation)
    }

    /// The same convolution with other weights, another fused activation or a fused residual.
    public func with(weight: Tensor? = nil, bias: Tensor?? = nil, activation: Activation? = nil,
                     addsResidual: Bool? = nil) throws -> ConvSpec {
        try ConvSpec(weight: weight ?? self.weight, bias: bias ?? self.bias, stride: stride, padding: padding,
                     dilation: dilation, groups: groups, activation: activation ?? self.activation,
                     addsResidual: addsResidual ?? self.addsResidual)
    }
}

/// Inference batch norm: `y = (x - mean[c]) / sqrt(variance[c] + epsilon) * scale[c] + shift[c]`.
/// Every tensor is `[C]`.
public struct BatchNormSpec: Sendable {
    public var mean: Tensor, variance: Tensor, scale: Tensor, shift: Tensor
    public var epsilon: Float
    /// Applied in the same pass (`Graph.fused` folds a following ReLU here, as DenseNet's and
    /// pre-activation ResNets' BN -> ReLU -> conv blocks have).
    public var activation: Activation = .identity
    public init(mean: Tensor, variance: Tensor, scale: Tensor, shift: Tensor, epsilon: Float = 1e-5) throws {
        let c = mean.count
        guard [variance, scale, shift].allSatisfy({ $0.count == c }) else {
            throw TensorError("BatchNormalization: mean \(mean.shape), variance \(variance.shape), scale \(scale.shape) and shift \(shift.shape) must all have one value per channel")
        }
        self.mean = mean; self.variance = variance; self.scale = scale; self.shift = shift; self.epsilon = epsilon
    }
    public var channels: Int { mean.count }
}

/// Parameters of a 3D max or average pooling window.
public struct PoolSpec: Hashable, Sendable {
    public var kernel: Size3, stride: Size3, padding: Padding3, dilation: Size3
    public var ceilMode: Bool
    /// Average pooling only: whether padded voxels count in the divisor.
    public var countIncludePad: Bool

    public init(kernel: Size3, stride: Size3? = nil, padding: Padding3 = 0, dilation: Size3 = 1,
                ceilMode: Bool = false, countIncludePad: Bool = false) {
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding
        self.dilation = dilation
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
    }
}

/// Parameters of ONNX Gemm: `Y = alpha * A' * B' + beta * C` with A' = A or Aᵀ, B' = B or Bᵀ.
public struct GemmSpec: Hashable, Sendable {
    public var alpha: Float = 1, beta: Float = 1
    public var transA = false, transB = false
    public init(alpha: Float = 1, beta: Float = 1, transA: Bool = false, transB: Bool = false) {
        self.alpha = alpha; self.beta = beta; self.transA = transA; self.transB = transB
    }
}

/// Parameters of ONNX Resize on the three spatial axes: a fixed output size or scales, the
/// interpolation, the coordinate transform, and the rounding of nearest.
public struct ResizeSpec: Hashable, Sendable {
    public var mode: ResampleMode
    public var size: Size3?
    /// Scales for (D, H, W); with scales, source coordinates follow them rather than the size ratio.
    public var scales: [Double]?
    public var coordinates: ResizeCoordinateTransform
    public var rounding: NearestRounding

    public init(mode: ResampleMode, size: Size3? = nil, scales: [Double]? = nil,
                coordinates: ResizeCoordinateTransform = .halfPixel, rounding: NearestRounding = .roundPreferFloor) {
        self.mode = mode; self.size = size; self.scales = scales; self.coordinates = coordinates; self.rounding = rounding
    }

    /// The output size for a spatial input size.
    public func outputSize(_ input: Size3) throws -> Size3 {
        if let size { return size }
        guard let scales, scales.count == 3, scales.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw TensorError("Resize needs an output size or three positive scales")
        }
        let i = input.array
        return Size3((0..<3).map { Int((Double(i[$0]) * scales[$0]).rounded(.down)) })!
    }
}

/// One operation of a graph. Weights are held by the operation (they are constants of the model);
/// activations flow through the graph's values.
public enum Operation: Sendable {
    /// 3D convolution, inputs `[x]`.
    case conv(ConvSpec)
    /// Inference batch norm with running statistics, inputs `[x]`.
    case batchNorm(BatchNormSpec)
    /// ReLU, LeakyReLU or Clip, inputs `[x]`.
    case activation(Activation)
    /// PReLU with a slope broadcastable to x, inputs `[x]`.
    case prelu(slope: Tensor)
    case sigmoid
    case tanh
    /// Softmax along an axis, inputs `[x]`.
    case softmax(axis: Int)
    case maxPool(PoolSpec)
    case avgPool(PoolSpec)
    /// `[N, C, D, H, W] -> [N, C, 1, 1, 1]`.
    case globalAveragePool
    case globalMaxPool
    /// Mean over axes, inputs `[x]`.
    case reduceMean(axes: [Int], keepDims: Bool)
    case reduceMax(axes: [Int], keepDims: Bool)
    /// ONNX Flatten: `[d0, ..., dn] -> [d0 * ... * d(axis-1), d(axis) * ... * dn]`.
    case flatten(axis: Int)
    /// Reshape keeping axis 0 (the batch) and setting the rest; `rest` may hold one -1.
    case reshape(rest: [Int])
    case transpose(permutation: [Int])
    /// ONNX Gemm, inputs `[A, B]` or `[A, B, C]`.
    case gemm(GemmSpec)
    /// numpy matmul, inputs `[A, B]`.
    case matMul
    /// Broadcasting add, sub, mul or div, inputs `[a, b]`.
    case binary(BinaryOp)
    /// Concatenation along an axis, inputs `[x0, x1, ...]`.
    case concat(axis: Int)
    /// Padding (ONNX order: every axis's begin, then every axis's end), inputs `[x]`.
    case pad(pads: [Int], mode: PadMode)
    /// Resampling of the spatial axes (ONNX Resize), inputs `[x]`.
    case resize(ResizeSpec)
    /// Identity, and Dropout at inference.
    case identity

    /// The ONNX-style name of the operation, for listings and errors.
    public var name: String {
        switch self {
        case .conv: return "Conv"
        case .batchNorm: return "BatchNormalization"
        case .activation(let a):
            switch a {
            case .identity: return "Identity"
            case .relu: return "Relu"
            case .leakyRelu: return "LeakyRelu"
            case .clip: return "Clip"
            }
        case .prelu: return "PRelu"
        case .sigmoid: return "Sigmoid"
        case .tanh: return "Tanh"
        case .softmax: return "Softmax"
        case .maxPool: return "MaxPool"
        case .avgPool: return "AveragePool"
        case .globalAveragePool: return "GlobalAveragePool"
        case .globalMaxPool: return "GlobalMaxPool"
        case .reduceMean: return "ReduceMean"
        case .reduceMax: return "ReduceMax"
        case .flatten: return "Flatten"
        case .reshape: return "Reshape"
        case .transpose: return "Transpose"
        case .gemm: return "Gemm"
        case .matMul: return "MatMul"
        case .binary(let op):
            switch op {
            case .add: return "Add"
            case .sub: return "Sub"
            case .mul: return "Mul"
            case .div: return "Div"
            default: return op.description
            }
        case .concat: return "Concat"
        case .pad: return "Pad"
        case .resize: return "Resize"
        case .identity: return "Identity"
        }
    }

    /// Whether the op has spatial feature maps `[N, C, D, H, W]` as output that CAM methods can use.
    public var isConvolutional: Bool {
        switch self {
        case .conv, .batchNorm, .activation, .prelu, .sigmoid, .tanh, .maxPool, .avgPool, .binary, .concat,
             .pad, .resize, .identity:
            return true
        default:
            return false
        }
    }
}

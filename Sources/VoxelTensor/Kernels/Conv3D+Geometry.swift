/// The validated geometry of one 3D convolution: channel counts, kernel, stride, padding, dilation,
/// groups, and the input and output extents. Shared by the reference, fast and backward kernels so
/// they accept and reject exactly the same shapes.
public struct Conv3DGeometry: Hashable, Sendable {
    /// Batch size N.
    public var batch: Int
    /// Input channels Cin, output channels Cout, and channel groups (Cin and Cout both divisible).
    public var inChannels: Int, outChannels: Int, groups: Int
    /// Input extents (D, H, W).
    public var input: Size3
    /// Output extents (D, H, W).
    public var output: Size3
    /// Kernel extents (kD, kH, kW), stride, padding (before and after) and dilation.
    public var kernel: Size3, stride: Size3, padding: Padding3, dilation: Size3

    /// Input channels per group (the weight's second axis).
    public var inPerGroup: Int { inChannels / groups }
    /// Output channels per group.
    public var outPerGroup: Int { outChannels / groups }
    /// Bytes the forward pass (or the input gradient) reads and writes: every batch item's input and
    /// output.
    public var bytesMoved: Int { 4 * batch * (inChannels * input.product + outChannels * output.product) }

    /// Multiply-adds of the forward pass (`2 * macs` FLOPs).
    public var macs: Int { batch * outChannels * output.product * inPerGroup * kernel.product }

    /// `[N, Cin, D, H, W]`.
    public var inputShape: [Int] { [batch, inChannels, input.d, input.h, input.w] }
    /// `[N, Cout, OD, OH, OW]`.
    public var outputShape: [Int] { [batch, outChannels, output.d, output.h, output.w] }
    /// `[Cout, Cin/groups, kD, kH, kW]`.
    public var weightShape: [Int] { [outChannels, inPerGroup, kernel.d, kernel.h, kernel.w] }

    /// Validates an input shape `[N, Cin, D, H, W]` and weight shape `[Cout, Cin/groups, kD, kH, kW]`.
    ///
    /// Throws `TensorError` naming both shapes when channels or groups disagree, when a parameter is
    /// not positive (padding: negative), or when the dilated kernel is larger than the padded input.
    public init(op: String = "conv3d", inputShape x: [Int], weightShape w: [Int], stride: Size3,
                padding: Padding3, dilation: Size3, groups: Int) throws {
        guard x.count == 5 else {
            throw TensorError("\(op): input must be 5D [N, C, D, H, W], got \(x) (weight \(w))")
        }
        guard w.count == 5 else {
            throw TensorError("\(op): weight must be 5D [Cout, Cin/groups, kD, kH, kW], got \(w) (input \(x))")
        }
        guard x.allSatisfy({ $0 > 0 }), w.allSatisfy({ $0 > 0 }) else {
            throw TensorError("\(op): input \(x) and weight \(w) must have positive extents")
        }
        guard groups >= 1 else { throw TensorError("\(op): groups must be >= 1, got \(groups)") }
        for (name, s) in [("stride", stride), ("dilation", dilation)] where min(s.d, s.h, s.w) < 1 {
            throw TensorError("\(op): \(name) must be >= 1 on every axis, got \(s)")
        }
        guard min(padding.begin.d, padding.begin.h, padding.begin.w,
                  padding.end.d, padding.end.h, padding.end.w) >= 0 else {
            throw TensorError("\(op): padding must not be negative, got \(padding)")
        }
        guard x[1] % groups == 0, w[0] % groups == 0 else {
            throw TensorError.shapeMismatch(op, x, w, "channels \(x[1]) in and \(w[0]) out must both be divisible by groups \(groups)")
        }
        guard x[1] / groups == w[1] else {
            throw TensorError.shapeMismatch(op, x, w, "input has \(x[1]) channels; weight expects \(w[1]) x groups \(groups)")
        }
        batch = x[0]; inChannels = x[1]; outChannels = w[0]; self.groups = groups
        input = Size3(x[2], x[3], x[4]); kernel = Size3(w[2], w[3], w[4])
        self.stride = stride; self.padding = padding; self.dilation = dilation
        func out(_ n: Int, _ k: Int, _ s: Int, _ pb: Int, _ pe: Int, _ dil: Int) -> Int {
            let span = dil * (k - 1) + 1
            let padded = n + pb + pe
            return padded < span ? 0 : (padded - span) / s + 1
        }
        output = Size3(out(input.d, kernel.d, stride.d, padding.begin.d, padding.end.d, dilation.d),
                       out(input.h, kernel.h, stride.h, padding.begin.h, padding.end.h, dilation.h),
                       out(input.w, kernel.w, stride.w, padding.begin.w, padding.end.w, dilation.w))
        guard output.product > 0 else {
            throw TensorError.shapeMismatch(op, x, w, "dilated kernel \(kernel) (dilation \(dilation)) is larger than the input padded by \(padding)")
        }
    }

    /// Checks a bias `[Cout]`.
    func checkBias(_ bias: Tensor?, op: String = "conv3d") throws {
        guard let bias else { return }
        guard bias.shape == [outChannels] else {
            throw TensorError.shapeMismatch(op, bias.shape, [outChannels], "bias must be [Cout] for weight \(weightShape)")
        }
    }
}

import VoxelTensor
import _TestSupport

/// One conv3d test shape: the table shared by the forward and backward tests.
struct ConvCase: CustomStringConvertible, Sendable {
    var name: String
    var batch = 1, cin: Int, cout: Int
    var size: Size3
    var kernel: Size3
    var stride: Size3 = 1
    var padding: Padding3 = 0
    var dilation: Size3 = 1
    var groups = 1
    var bias = true
    var activation: Activation = .identity
    var description: String { name }

    var inputShape: [Int] { [batch, cin, size.d, size.h, size.w] }
    var weightShape: [Int] { [cout, cin / groups, kernel.d, kernel.h, kernel.w] }
    func inputs(seed: UInt64) -> (x: Tensor, w: Tensor, b: Tensor?) {
        (Tensor.random(inputShape, seed: seed), Tensor.random(weightShape, seed: seed + 1),
         bias ? Tensor.random([cout], seed: seed + 2) : nil)
    }
    /// Products summed into one output element (bounds the Float rounding error, see `convClose`).
    var terms: Int { cin / groups * kernel.product }

    static let table: [ConvCase] = [
        ConvCase(name: "k1", cin: 3, cout: 5, size: Size3(4, 5, 7), kernel: 1),
        // 1x1x1 layers read the input in place but for their last rows (see `pointwiseForward`).
        ConvCase(name: "k1 40->36 W24 batch 2", batch: 2, cin: 40, cout: 36, size: Size3(6, 10, 24), kernel: 1,
                 activation: .relu),
        // Pointwise rows of `pointwiseRowLength` positions: 27 in one row, 16 per row, 64 per row
        // with 3000 % 64 = 56 left over after 46 rows (many head rows, a tail copy, then the short row).
        ConvCase(name: "k1 27 positions", cin: 5, cout: 9, size: Size3(3, 3, 3), kernel: 1),
        ConvCase(name: "k1 16 positions", cin: 3, cout: 20, size: Size3(2, 2, 4), kernel: 1),
        ConvCase(name: "k1 3000 positions 40->24", cin: 40, cout: 24, size: Size3(10, 15, 20), kernel: 1),
        // Strided 1x1x1 layers (a ResNet's shortcut) gather the positions they read, then run pointwise:
        // stride 2 with whole 32-column loads and a scalar rest, batch 2; strides 3, 2, 3 all scalar.
        ConvCase(name: "k1 s2 shortcut 16->24 batch 2", batch: 2, cin: 16, cout: 24, size: Size3(6, 8, 70), kernel: 1,
                 stride: 2),
        ConvCase(name: "k1 strides 3,2,3", cin: 5, cout: 7, size: Size3(7, 8, 9), kernel: 1, stride: [3, 2, 3]),
        ConvCase(name: "k1 groups 4 W20", cin: 8, cout: 12, size: Size3(5, 6, 20), kernel: 1, groups: 4),
        ConvCase(name: "k3 16->16 W13", cin: 16, cout: 16, size: Size3(5, 6, 13), kernel: 3, padding: 1),
        ConvCase(name: "k3 s2 5->17", cin: 5, cout: 17, size: Size3(7, 8, 9), kernel: 3, stride: 2, padding: 1),
        ConvCase(name: "k2 s2 no bias", cin: 4, cout: 8, size: Size3(6, 6, 7), kernel: 2, stride: 2, bias: false),
        ConvCase(name: "k5 p2", cin: 3, cout: 20, size: Size3(6, 7, 8), kernel: 5, padding: 2),
        ConvCase(name: "k7 s2 p3 stem", cin: 1, cout: 16, size: Size3(9, 10, 11), kernel: 7, stride: 2, padding: 3),
        ConvCase(name: "stride 1,2,2", cin: 6, cout: 10, size: Size3(5, 8, 9), kernel: 3, stride: [1, 2, 2], padding: 1),
        ConvCase(name: "asymmetric pad", cin: 3, cout: 7, size: Size3(5, 6, 7), kernel: 3, padding: [0, 1, 2, 2, 0, 1]),
        ConvCase(name: "dilation 2", cin: 4, cout: 6, size: Size3(7, 7, 8), kernel: 3, padding: 2, dilation: 2),
        ConvCase(name: "groups 2", cin: 8, cout: 12, size: Size3(4, 5, 6), kernel: 3, padding: 1, groups: 2),
        ConvCase(name: "depthwise x2", cin: 6, cout: 12, size: Size3(4, 5, 6), kernel: 3, padding: 1, groups: 6),
        ConvCase(name: "batch 3", batch: 3, cin: 2, cout: 3, size: Size3(4, 4, 5), kernel: 3, padding: 1),
        ConvCase(name: "mixed k s d", cin: 3, cout: 20, size: Size3(7, 6, 11), kernel: Size3(3, 1, 2),
                 stride: Size3(2, 1, 3), padding: [1, 0, 1, 0, 2, 1], dilation: Size3(1, 2, 1)),
        ConvCase(name: "cout 33 W17", cin: 9, cout: 33, size: Size3(3, 4, 17), kernel: 3, padding: 1),
        // Wide enough (Cin*k^3 > 400, Cout > 16) for the AVX-512 channel-vectorised kernel (rows < 12
        // wide), and the same with rows >= 12 wide (W-vectorised 8-blocks).
        ConvCase(name: "wide 20->40 s2", cin: 20, cout: 40, size: Size3(5, 6, 11), kernel: 3, stride: 2, padding: 1),
        ConvCase(name: "wide 18->33 W9", batch: 2, cin: 18, cout: 33, size: Size3(4, 5, 9), kernel: 3, padding: 1,
                 activation: .relu),
        ConvCase(name: "wide 17->35 W14", cin: 17, cout: 35, size: Size3(3, 4, 14), kernel: 3, padding: 1,
                 activation: .leakyRelu(alpha: 0.2)),
        ConvCase(name: "wide 20->24 W13 s2 bwd", cin: 20, cout: 24, size: Size3(4, 5, 26), kernel: 3, stride: [1, 1, 2],
                 padding: 1),
        // Rows wide enough for the vector split of stride-2 columns, with even and odd left padding.
        ConvCase(name: "s2 W37", cin: 3, cout: 8, size: Size3(3, 4, 37), kernel: 3, stride: 2, padding: 1),
        ConvCase(name: "s2 W40 pad w 2/0", cin: 2, cout: 5, size: Size3(3, 3, 40), kernel: 3, stride: [1, 1, 2],
                 padding: [1, 1, 2, 1, 1, 0]),
        // At most 4 outputs per group with planes of at least 6 rows: the AVX-512 one-channel kernel
        // reuses source rows across kernel rows (forward: kernel rows go down the source; input
        // gradients: up; 2, 3 and 4 kernel rows; rows over 64 columns; a stride-2 gradient's phases
        // stored every other column). Plane ends fall mid-tile, so tiles shift back to end on them.
        ConvCase(name: "1 out W70 rows 13", cin: 8, cout: 1, size: Size3(3, 13, 70), kernel: 3, padding: 1,
                 activation: .relu),
        ConvCase(name: "2 in W67 rows 14", cin: 2, cout: 6, size: Size3(4, 14, 67), kernel: 3, padding: 1),
        ConvCase(name: "k2 2 out rows 9", cin: 3, cout: 2, size: Size3(3, 9, 20), kernel: 2),
        ConvCase(name: "stem gradient rows 14", cin: 1, cout: 4, size: Size3(6, 28, 40), kernel: 7, stride: 2, padding: 3),
        // Input gradients by row blocks (`backwardRows`): 64 channels of 42-float rows make 12-row
        // blocks (the last one 4 rows), 2 planes per task so the ring of 3 planes wraps; a stem with
        // 4-plane rings over 2 channels.
        ConvCase(name: "1->64 rows 40 row blocks", cin: 1, cout: 64, size: Size3(7, 40, 40), kernel: 3, padding: 1),
        ConvCase(name: "stem 2->24 s2 rows 30", cin: 2, cout: 24, size: Size3(9, 30, 36), kernel: 7, stride: 2,
                 padding: 3),
        // A stride-2 input gradient 64 columns wide: W phase 1's last vector ends one column before the
        // row's end, so blending it into 32 floats would reach the next row (past the tensor's end on
        // the last row; the address sanitizer's run catches it).
        ConvCase(name: "s2 gradient W64", cin: 1, cout: 8, size: Size3(2, 4, 64), kernel: 3, stride: 2, padding: 1),
        ConvCase(name: "stride 3 > kernel 2", cin: 2, cout: 4, size: Size3(8, 7, 8), kernel: 2, stride: 3, padding: 1),
        ConvCase(name: "relu", cin: 4, cout: 16, size: Size3(4, 4, 6), kernel: 3, padding: 1, activation: .relu),
        ConvCase(name: "leaky relu", cin: 4, cout: 8, size: Size3(4, 4, 6), kernel: 3, padding: 1,
                 activation: .leakyRelu(alpha: 0.1)),
        ConvCase(name: "clip", cin: 4, cout: 8, size: Size3(4, 4, 6), kernel: 3, padding: 1,
                 activation: .clip(min: -0.5, max: 0.7)),
    ]
}

/// Fast (Float, FMA) against reference (Double) values.
///
/// Tolerance: each output sums `terms` products of values in [-1, 1]; Float accumulation rounds each
/// partial sum (|partial| <~ sqrt(terms) for random signs) by 2^-24 relative, so the error stays well
/// under 1e-6 * terms absolute; 1e-5 relative covers large outputs. Real indexing bugs give errors
/// of order 0.1-1.
func convClose(_ a: Tensor, _ b: Tensor, terms: Int) -> Bool {
    a.shape == b.shape && allClose(a.scalars, b.scalars, rtol: 1e-5, atol: 1e-6 * Float(max(terms, 1)))
}

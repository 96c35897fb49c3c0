import Foundation
import Testing
import VoxelTensor
import _TestSupport

/// Throughput of the Gemm core and trilinear upsampling; runs only with `VOXPLAIN_BENCH=1`
/// (use a release build: `VOXPLAIN_BENCH=1 swift test -c release --filter OpsBenchmarkTests`).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["VOXPLAIN_BENCH"] == "1"))
struct OpsBenchmarkTests {
    /// Best wall time of `repeats` runs, in seconds.
    func best(_ repeats: Int, _ body: () throws -> Void) rethrows -> Double {
        var t = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            t = min(t, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return t
    }

    @Test(arguments: [(256, 256, 256), (512, 512, 512), (64, 4096, 512), (1024, 256, 1000)])
    func gemmThroughput(size: (Int, Int, Int)) throws {
        let (m, k, n) = size
        let a = Tensor.random([m, k], seed: 1), b = Tensor.random([k, n], seed: 2)
        var y = Tensor.zeros([1])
        let t = try best(5) { y = try gemm(a, b) }
        let flops = 2.0 * Double(m * k * n)
        print("gemm M\(m) K\(k) N\(n): \(String(format: "%.2f", t * 1e3)) ms, \(String(format: "%.1f", flops / t / 1e9)) GFLOP/s on \(Parallel.threadCount) threads")
        #expect(y.shape == [m, n])
    }

    @Test func naiveGemmForScale() throws {
        let a = Tensor.random([128, 128], seed: 1), b = Tensor.random([128, 128], seed: 2)
        let t = try best(1) { _ = try gemmReference(a, b) }
        print("gemmReference 128^3: \(String(format: "%.2f", t * 1e3)) ms, \(String(format: "%.2f", 2 * pow(128, 3) / t / 1e9)) GFLOP/s")
    }

    @Test(arguments: [([1, 1, 16, 16, 16], Size3(128)), ([1, 64, 8, 8, 8], Size3(32)), ([1, 1, 24, 28, 24], Size3(96, 112, 96))])
    func trilinearThroughput(c: ([Int], Size3)) throws {
        let x = Tensor.random(c.0, seed: 3)
        var y = Tensor.zeros([1])
        let t = try best(5) { y = try resize3d(x, size: c.1) }
        let tb = try best(3) { _ = try resize3dBackward(gradOutput: y, inputShape: x.shape) }
        let voxels = Double(y.count)
        print("trilinear \(c.0) -> \(c.1): \(String(format: "%.2f", t * 1e3)) ms (\(String(format: "%.0f", voxels / t / 1e6)) Mvox/s), backward \(String(format: "%.2f", tb * 1e3)) ms")
    }

    @Test func memoryBoundOps() throws {
        let x = Tensor.random([1, 32, 64, 64, 64], seed: 4)
        let bias = Tensor.random([1, 32, 1, 1, 1], seed: 5)
        let mb = Double(x.count * 4) / 1e6
        func report(_ name: String, _ t: Double, passes: Double = 2) {
            print("\(name) on [1, 32, 64, 64, 64]: \(String(format: "%.2f", t * 1e3)) ms (\(String(format: "%.1f", passes * mb / t / 1e3)) GB/s)")
        }
        report("add bias", try best(3) { _ = try add(x, bias) })
        report("add same shape", try best(3) { _ = try add(x, x) }, passes: 3)
        report("relu", best(3) { _ = relu(x) })
        report("reluBackward", try best(3) { _ = try reluBackward(gradOutput: x, input: x) }, passes: 3)
        let ones = Tensor(shape: [32], repeating: 1)
        report("batchNorm", try best(3) { _ = try batchNorm(x, mean: ones, variance: ones, scale: ones, shift: ones) })
        report("maxPool3d k2 s2", try best(3) { _ = try maxPool3d(x, kernel: 2) }, passes: 1.125)
        report("maxPool3d k3 s2 p1", try best(3) { _ = try maxPool3d(x, kernel: 3, stride: 2, padding: 1) }, passes: 1.125)
        report("avgPool3d k2 s2", try best(3) { _ = try avgPool3d(x, kernel: 2) }, passes: 1.125)
        let y = try maxPool3d(x, kernel: 2)
        report("maxPool3dBackward k2", try best(3) { _ = try maxPool3dBackward(gradOutput: y, input: x, kernel: 2) }, passes: 2.125)
        report("globalAveragePool", try best(3) { _ = try globalAveragePool(x) }, passes: 1)
        report("reduceSum over N,D,H,W (bias grad)", try best(3) { _ = try sumToShape(x, [1, 32, 1, 1, 1]) }, passes: 1)
        report("softmax over C", try best(3) { _ = try softmax(x, axis: 1) }, passes: 4)
        report("transpose C last", try best(3) { _ = try transpose(x, permutation: [0, 2, 3, 4, 1]) })
        report("pad 1 edge spatial", try best(3) { _ = try pad(x, pads: [0, 0, 1, 1, 1, 0, 0, 1, 1, 1], mode: .edge) })
        report("concat C", try best(3) { _ = try concat([x, x], axis: 1) }, passes: 4)
    }
}

import Foundation

// `voxplain bench`: the machine's peak FMA throughput, and the conv3d kernels measured against it.
// Timing is best-of-k after a warm-up (the minimum is the least disturbed by other processes).

/// Results of one `voxplain bench` run.
public struct BenchReport: Codable, Sendable {
    /// Instruction set the conv kernels ran with (`avx2` or `avx512`).
    public var isa: String
    /// Peak single-precision FMA throughput on one core, GFLOP/s, with the vector width of `isa`
    /// (register-bound loop of independent FMA chains). Percentages are of `peakAllCoresGFLOPS`.
    public var peakOneCoreGFLOPS: Double
    /// The same loop on every core at once (`Parallel.threadCount` workers).
    public var peakAllCoresGFLOPS: Double
    /// The 8-wide (AVX2) loop on all cores, for comparison when `isa` is `avx512`.
    public var peakAVX2AllCoresGFLOPS: Double
    /// Worker threads (`Parallel.threadCount`).
    public var threads: Int
    /// One entry per layer and pass, in order.
    public var results: [BenchResult]
    /// Peak resident memory of the process, MiB (getrusage ru_maxrss).
    public var peakMemoryMiB: Double
}

/// One measured kernel on one layer.
public struct BenchResult: Codable, Sendable {
    /// Layer label, e.g. `16->16 @64^3`.
    public var layer: String
    /// `forward` (`PackedConv3D`), `backwardInput` (`PackedConv3DInputGradient`) or `backwardWeight`
    /// (`conv3dBackwardWeight`). Weight packing happens before the timing for the first two.
    public var pass: String
    /// Best time over the repetitions, milliseconds.
    public var milliseconds: Double
    /// `2 * MACs` of the forward pass divided by the time (backward passes count the same FLOPs).
    public var gflops: Double
    /// `gflops` as a percentage of the all-core peak.
    public var percentOfPeak: Double
    /// FLOPs of one pass: `2 * MACs` of the forward convolution.
    public var flops: Double
    /// `winograd` (F(2x2x2, 3x3x3): fewer products than `flops` counts, so `gflops` may exceed the
    /// peak) or `direct`.
    public var algorithm: String
}

/// One benchmark layer: a conv3d shape.
public struct BenchLayer: Sendable {
    /// Display label, also the `--only` key.
    public var label: String
    /// Batch size, channels in and out, and the cubic input size (D = H = W).
    public var batch: Int, inChannels: Int, outChannels: Int, size: Int
    /// Cubic kernel size, stride and symmetric padding.
    public var kernel: Int, stride: Int, padding: Int

    /// A layer `cin -> cout` on a `size^3` input.
    public init(_ label: String, batch: Int = 1, _ cin: Int, _ cout: Int, size: Int,
                kernel: Int = 3, stride: Int = 1, padding: Int = 1) {
        self.label = label; self.batch = batch; inChannels = cin; outChannels = cout; self.size = size
        self.kernel = kernel; self.stride = stride; self.padding = padding
    }

    /// The benchmark's layers (3x3x3, padding 1, batch 1 unless stated), as in issue 3.
    public static let standard: [BenchLayer] = [
        BenchLayer("1->16 @64^3", 1, 16, size: 64),
        BenchLayer("16->16 @64^3", 16, 16, size: 64),
        BenchLayer("32->32 @32^3", 32, 32, size: 32),
        BenchLayer("64->64 @16^3", 64, 64, size: 16),
        BenchLayer("128->128 @8^3", 128, 128, size: 8),
        BenchLayer("64->128 @16^3", 64, 128, size: 16),
        BenchLayer("64->128 s2 @32^3", 64, 128, size: 32, stride: 2),
        BenchLayer("stem7 s2 1->64 @128^3", 1, 64, size: 128, kernel: 7, stride: 2, padding: 3),
        BenchLayer("batch16 16->16 @64^3", batch: 16, 16, 16, size: 64),
    ]
}

/// The benchmark harness (library side of `voxplain bench`).
public enum Bench {
    /// Peak FMA GFLOP/s of one thread: `Conv3DEngine.fmaProbe`'s 12 independent FMA chains; 8 lanes
    /// for AVX2, 16 for AVX-512 (only call with `.avx512` when
    /// `Conv3DEngine.cpuHasAVX512`).
    public static func peakFMA(iterations: Int, isa: ConvISA) -> Double {
        let t0 = ContinuousClock.now
        let sink = Conv3DEngine.fmaProbe(iterations: iterations, isa: isa)
        let dt = seconds(since: t0)
        withExtendedLifetime(sink) {}
        return Double(iterations) * 12 * flopsPerFMA(isa) / dt / 1e9
    }

    /// Peak of all cores running `peakFMA`'s loop at once (total FLOPs over the wall time).
    public static func peakFMAAllCores(iterations: Int, isa: ConvISA) -> Double {
        let threads = Parallel.threadCount
        let t0 = ContinuousClock.now
        let sinks = UnsafeMutableBufferPointer<Float>.allocate(capacity: threads)
        defer { sinks.deallocate() }
        let sp = SharedPointer(sinks.baseAddress!)
        Parallel.forEach(threads) { i in sp[i] = Conv3DEngine.fmaProbe(iterations: iterations, isa: isa) }
        let dt = seconds(since: t0)
        return Double(threads * iterations) * 12 * flopsPerFMA(isa) / dt / 1e9
    }

    static func flopsPerFMA(_ isa: ConvISA) -> Double { isa == .avx512 ? 32 : 16 }

    static func seconds(since t0: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - t0
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// Best wall time of `body` over `reps` runs after one warm-up run, in seconds.
    public static func bestTime(reps: Int, _ body: () throws -> Void) rethrows -> Double {
        try body()
        var best = Double.infinity
        for _ in 0..<max(1, reps) {
            let t0 = ContinuousClock.now
            try body()
            best = min(best, seconds(since: t0))
        }
        return best
    }

    /// Peak resident memory of this process in MiB.
    public static func peakMemoryMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024  // Linux reports KiB
    }

    /// Starts a new peak-memory measurement: free heap pages go back to the system and Linux's
    /// high-water mark is reset to the current resident size (`/proc/self/clear_refs`). Returns false
    /// where that is not possible; `residentPeakMiB` then reports the whole run's peak.
    @discardableResult
    public static func resetPeakMemory() -> Bool {
        Memory.releaseFreeMemory()
        guard let f = fopen("/proc/self/clear_refs", "w") else { return false }
        defer { fclose(f) }
        return fputs("5", f) >= 0
    }

    /// The resident high-water mark (VmHWM) since the last `resetPeakMemory`, in MiB.
    public static func residentPeakMiB() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return peakMemoryMiB() }
        return kib / 1024
    }


    /// Runs the whole benchmark. `quick` uses fewer repetitions; `log` receives progress lines.
    public static func run(quick: Bool, measurePeak: Bool = true, layers: [BenchLayer] = BenchLayer.standard,
                           passes: Set<String> = ["forward", "backwardInput", "backwardWeight"],
                           log: (String) -> Void = { _ in }) throws -> BenchReport {
        Memory.reuseLargeAllocations()
        let iters = quick ? 20_000_000 : 100_000_000
        let isa = Conv3DEngine.isa
        if measurePeak { _ = peakFMA(iterations: iters / 10, isa: isa) }
        var one = 0.0, all = 0.0, all2 = 0.0
        for _ in 0..<(measurePeak ? (quick ? 1 : 3) : 0) {
            one = max(one, peakFMA(iterations: iters, isa: isa))
            all = max(all, peakFMAAllCores(iterations: iters, isa: isa))
            all2 = isa == .avx2 ? all : max(all2, peakFMAAllCores(iterations: iters, isa: .avx2))
        }
        log(String(format: "peak FMA (%@): %.1f GFLOP/s one core, %.1f GFLOP/s all %d cores (AVX2: %.1f)",
                   isa.rawValue, one, all, Parallel.threadCount, all2))
        var results: [BenchResult] = []
        for layer in layers {
            results += try measure(layer, quick: quick, passes: passes, peak: all, log: log)
        }
        return BenchReport(isa: isa.rawValue, peakOneCoreGFLOPS: one, peakAllCoresGFLOPS: all,
                           peakAVX2AllCoresGFLOPS: all2, threads: Parallel.threadCount,
                           results: results, peakMemoryMiB: peakMemoryMiB())
    }

    /// Measures the requested passes of one layer.
    public static func measure(_ layer: BenchLayer, quick: Bool, passes: Set<String>, peak: Double,
                               log: (String) -> Void) throws -> [BenchResult] {
        let s = layer.size
        let x = Tensor.benchRandom([layer.batch, layer.inChannels, s, s, s], seed: 1)
        let k = layer.kernel
        let w = Tensor.benchRandom([layer.outChannels, layer.inChannels, k, k, k], seed: 2)
        let b = Tensor.benchRandom([layer.outChannels], seed: 3)
        let stride = Size3(layer.stride), pad = Padding3(integerLiteral: layer.padding)
        let geo = try Conv3DGeometry(inputShape: x.shape, weightShape: w.shape, stride: stride, padding: pad,
                                     dilation: 1, groups: 1)
        let flops = 2 * Double(geo.macs)
        // Repetitions: enough for about 0.3 s per pass (fewer with --quick), at least 2.
        let packed = try PackedConv3D(weight: w, bias: b, stride: stride, padding: pad)
        var y = try packed.forward(x)
        let probe = try bestTime(reps: 1) { y = try packed.forward(x) }
        let reps = max(2, min(20, Int((quick ? 0.1 : 0.4) / max(probe, 1e-6))))
        let gy = Tensor.benchRandom(y.shape, seed: 4)
        var out: [BenchResult] = []
        func record(_ pass: String, _ t: Double, winograd: Bool = false) {
            let gf = flops / t / 1e9
            out.append(BenchResult(layer: layer.label, pass: pass, milliseconds: t * 1e3, gflops: gf,
                                   percentOfPeak: peak > 0 ? 100 * gf / peak : 0, flops: flops,
                                   algorithm: winograd ? "winograd" : "direct"))
            log(String(format: "%-24@ %-15@ %9.2f ms %8.1f GFLOP/s %5.1f%% of peak", layer.label, pass, t * 1e3, gf, peak > 0 ? 100 * gf / peak : 0))
        }
        if passes.contains("forward") {
            record("forward", try bestTime(reps: reps) { y = try packed.forward(x) }, winograd: packed.usesWinograd(width: y.shape[4]))
        }
        if passes.contains("backwardInput") {
            // Weights packed once, as for the forward pass (`conv3dBackwardInput` packs on every call).
            let grad = try PackedConv3DInputGradient(weight: w, stride: stride, padding: pad)
            record("backwardInput", try bestTime(reps: reps) { y = try grad.backward(gy, inputShape: x.shape) },
                   winograd: grad.usesWinograd(width: s))
        }
        if passes.contains("backwardWeight") {
            record("backwardWeight", try bestTime(reps: reps) {
                _ = try conv3dBackwardWeight(gradOutput: gy, input: x, weightShape: w.shape, stride: stride, padding: pad)
            })
        }
        return out
    }
}

extension Tensor {
    /// Deterministic pseudo-random values in [-1, 1] (a 64-bit LCG), for benchmark inputs.
    static func benchRandom(_ shape: [Int], seed: UInt64) -> Tensor {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        return Tensor(shape: shape) { buf in
            for i in buf.indices {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                buf[i] = Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
            }
        }
    }
}

import VoxelTensorAVX512
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The vector instruction set the convolution kernels use on this machine.
public enum ConvISA: String, Sendable, CaseIterable {
    /// 8-wide AVX2 + FMA (the build's baseline; also the path on non-x86 machines).
    case avx2
    /// 16-wide AVX-512 (F, CD, BW, DQ, VL), chosen at run time when the CPU and OS support it.
    case avx512
}

/// Run-time facts about the convolution engine.
public enum Conv3DEngine {
    /// The instruction set the kernels use: AVX-512 when the CPU has it, unless the environment
    /// variable `VOXPLAIN_ISA=avx2` asks for the baseline (for comparisons and debugging).
    public static let isa: ConvISA = {
        if let env = getenv("VOXPLAIN_ISA"), String(cString: env).lowercased() == "avx2" { return .avx2 }
        return cpuHasAVX512 ? .avx512 : .avx2
    }()

    /// True when the CPU (and the OS, which must save the zmm state) supports the AVX-512 subset the
    /// kernels are compiled for.
    public static let cpuHasAVX512: Bool = {
        #if arch(x86_64) && os(Linux)
        // Linux lists a feature in /proc/cpuinfo only when the kernel has enabled it (XSAVE of zmm).
        guard let flags = cpuinfoWords("flags") else { return false }
        return ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "fma", "avx2"].allSatisfy(Set(flags).contains)
        #elseif arch(x86_64) && canImport(Darwin)
        func has(_ name: String) -> Bool {
            var v: Int32 = 0
            var size = MemoryLayout<Int32>.size
            return sysctlbyname(name, &v, &size, nil, 0) == 0 && v != 0
        }
        return ["hw.optional.avx512f", "hw.optional.avx512cd", "hw.optional.avx512bw", "hw.optional.avx512dq",
                "hw.optional.avx512vl"].allSatisfy(has)
        #else
        return false
        #endif
    }()

    /// Whether kernels may write outputs larger than the caches with streaming stores (`outputStores`
    /// streams only calls that move several times the L3: batches).
    /// Where it was measured to help: AMD (Zen 5: a 16->16 layer at 64^3 9.3-9.7 -> 7.8-8.1 ms). On
    /// Intel (Xeon, Emerald Rapids, 2 cores of a VM) plain stores were as fast or faster, alternating
    /// in one session: 1->16 at 64^3 2.60-2.81 against 3.78-4.51 ms streamed, 16->16 14.1-17.2 against
    /// 14.4-14.8, the 7x7x7 stem 58-66 against 58-73. `VOXPLAIN_STREAM=1` or `0` overrides (for
    /// comparisons; other values are ignored, as `VOXPLAIN_ISA`'s are). Results are the same bits
    /// either way.
    public static let streamingStores: Bool = {
        switch getenv("VOXPLAIN_STREAM").map({ String(cString: $0) }) {
        case "1": return true
        case "0": return false
        default: break
        }
        #if arch(x86_64) && os(Linux)
        return cpuinfoWords("vendor_id")?.first == "AuthenticAMD"
        #else
        return false
        #endif
    }()

    /// For tests and comparisons: `true` streams every kernel output whatever its size, `false` stores
    /// every one plainly with its lines prefetched for writing; nil (the default) follows
    /// `streamingStores` and the size rule of `outputStores`.
    @TaskLocal public static var streamingOverride: Bool?

    /// For tests: input channels per block of the Winograd kernel's transformed input (nil, the
    /// default: `winogradBlocking`'s rule, blocks only past 85 channels). Results are the same bits
    /// for any block.
    @TaskLocal public static var winogradChannelBlock: Int?

    /// For tests: `false` runs pointwise layers on AVX-512 with the direct kernel instead of the
    /// packed matrix product (nil, the default, and `true`: packed). Results are the same bits.
    @TaskLocal public static var packedPointwise: Bool?

    /// For tests: `true` runs every layer the AVX-512 W-vectorised direct kernel would run (one group,
    /// 8-channel blocks) over packed patches instead, `false` none (nil, the default: strided layers
    /// of at least 16 input channels, see `convForwardDirect`). Results are the same bits.
    @TaskLocal public static var patches: Bool?

    /// A register-bound FMA loop for measuring peak throughput: 12 independent FMA chains (enough to
    /// cover FMA latency on two pipes), `iterations` times; 8 lanes for `.avx2`, 16 for `.avx512`
    /// (which falls back to 8 lanes when the CPU lacks AVX-512). Returns a value to keep the work alive.
    public static func fmaProbe(iterations: Int, isa: ConvISA) -> Float {
        isa == .avx512 && cpuHasAVX512 ? fmaLoop512(iterations) : fmaLoop256(iterations)
    }
}

#if os(Linux)
/// The words of the first line of /proc/cpuinfo that starts with `field` (after the colon), or nil.
func cpuinfoWords(_ field: String) -> [String]? {
    guard let f = fopen("/proc/cpuinfo", "r") else { return nil }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 8192)
    while fgets(&line, Int32(line.count), f) != nil {
        let s = String(decoding: line.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard s.hasPrefix(field), let colon = s.firstIndex(of: ":") else { continue }
        return s[s.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
    }
    return nil
}
#endif

@inline(never) func fmaLoop256(_ n: Int) -> Float {
    let b = SIMD8<Float>(repeating: 1e-7), c = SIMD8<Float>(repeating: 0.5)
    var a0 = SIMD8<Float>(repeating: 0), a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5
    var a6 = a0 + 6, a7 = a0 + 7, a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10, a11 = a0 + 11
    for _ in 0..<n {
        a0 = a0.addingProduct(b, c); a1 = a1.addingProduct(b, c); a2 = a2.addingProduct(b, c)
        a3 = a3.addingProduct(b, c); a4 = a4.addingProduct(b, c); a5 = a5.addingProduct(b, c)
        a6 = a6.addingProduct(b, c); a7 = a7.addingProduct(b, c); a8 = a8.addingProduct(b, c)
        a9 = a9.addingProduct(b, c); a10 = a10.addingProduct(b, c); a11 = a11.addingProduct(b, c)
    }
    let s = (a0 + a1 + a2 + a3) + (a4 + a5 + a6 + a7) + (a8 + a9 + a10 + a11)
    return s.sum()
}

// swift-tools-version:6.0
// Voxplain: explanations for 3D CNN classifiers on CT and MRI volumes.
// Module floors follow ../shared/design/ARCHITECTURE.md: each module imports only modules below it.
import PackageDescription

// SIMD code needs a target CPU: without one, `SIMD8<Float>.addingProduct` becomes a library call per
// lane (0.8 GFLOP/s measured); with `-target-cpu haswell` it becomes fused AVX2 FMAs (114 GFLOP/s on
// one core). Haswell (AVX2 + FMA) is the baseline every x86-64 server of the last decade has, so the
// binary runs on any CI machine. These flags are allowed because Voxplain is a root package.
#if arch(x86_64)
let cpuFlags: [String] = ["-target-cpu", "haswell"]
#else
let cpuFlags: [String] = []
#endif

/// Debian's niftilib headers include each other with angle brackets from /usr/include/nifti, and
/// Debian ships no pkg-config file for them, so the clang importer is told the directory. Every
/// module that (transitively) loads CNIfTI needs it, so all targets get it.
let niftiInclude: [String] = ["-Xcc", "-I/usr/include/nifti"]

/// Settings for compute modules: fast SIMD in every configuration. Debug builds also optimise these
/// modules so the test suite exercises the same fast kernels in seconds rather than minutes.
let computeSettings: [SwiftSetting] = [
    .unsafeFlags(cpuFlags + niftiInclude),
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]
let plainSettings: [SwiftSetting] = [.unsafeFlags(cpuFlags + niftiInclude)]

/// AVX-512 kernels live in their own module, compiled for Skylake-SP (AVX-512 F/CD/BW/DQ/VL, also
/// AMD Zen 4+); VoxelTensor calls them only after checking the CPU at run time, so the binary still
/// runs on AVX2-only machines. On other architectures the module builds but is never called.
#if arch(x86_64)
let avx512Flags: [String] = ["-target-cpu", "skylake-avx512"]
#else
let avx512Flags: [String] = []
#endif
let avx512Settings: [SwiftSetting] = [
    .unsafeFlags(avx512Flags),
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]

let package = Package(
    name: "Voxplain",
    platforms: [.macOS(.v15)],  // Synchronization's Atomic (Parallel's spinning pool)
    products: [
        .executable(name: "voxplain", targets: ["voxplain"]),
        .library(name: "Voxplain", targets: ["Voxplain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Floor 0: atomic file writes shared by every module that writes files.
        .target(name: "VoxelIO", swiftSettings: plainSettings),
        // Floor 1: system libraries, tensors and kernels, NIfTI volumes.
        .systemLibrary(name: "CNIfTI", path: "Sources/CNIfTI"),
        .target(name: "CStream"),
        .target(name: "VoxelTensorAVX512", dependencies: ["CStream"], swiftSettings: avx512Settings),
        .target(name: "VoxelTensor", dependencies: ["VoxelTensorAVX512", "CStream"], swiftSettings: computeSettings),
        .target(name: "NIfTI", dependencies: ["CNIfTI"], swiftSettings: plainSettings),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        // Floor 2: the network engine and its model files (ONNX, safetensors).
        .target(name: "VoxelNN", dependencies: ["VoxelTensor", "VoxelIO"], swiftSettings: computeSettings),
        // Floor 2: pictures (colormaps, windows, montages, PNG, terminal view); plain arrays, no NIfTI.
        .target(name: "VoxelRender", dependencies: ["CPNG", "VoxelIO"], swiftSettings: plainSettings),
        // Floor 3: explanations.
        .target(name: "VoxelCAM", dependencies: ["VoxelNN", "VoxelTensor"], swiftSettings: computeSettings),
        .target(name: "VoxelEval", dependencies: ["VoxelNN", "VoxelTensor", "VoxelCAM"], swiftSettings: computeSettings),
        // Floor 4: the pipeline.
        .target(name: "Voxplain", dependencies: ["VoxelIO", "VoxelTensor", "VoxelNN", "VoxelCAM", "VoxelEval", "NIfTI", "VoxelRender"], swiftSettings: computeSettings),
        // Floor 5: the command-line tool (no logic).
        .executableTarget(
            name: "voxplain",
            dependencies: ["Voxplain", "VoxelCAM", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: plainSettings),
        // Test helpers (not public API).
        .target(name: "_TestSupport", dependencies: ["VoxelTensor", "NIfTI"], path: "Sources/_TestSupport",
                swiftSettings: plainSettings),
        .testTarget(name: "VoxelTensorTests", dependencies: ["VoxelTensor", "_TestSupport"],
                    swiftSettings: plainSettings),
        .testTarget(name: "VoxelNNTests", dependencies: ["VoxelNN", "_TestSupport"],
                    swiftSettings: plainSettings),
        .testTarget(name: "VoxelCAMTests", dependencies: ["VoxelCAM", "VoxelNN", "_TestSupport"],
                    swiftSettings: plainSettings),
        .testTarget(name: "VoxelEvalTests", dependencies: ["VoxelEval", "VoxelCAM", "VoxelNN", "_TestSupport"],
                    swiftSettings: plainSettings),
        .testTarget(name: "NIfTITests", dependencies: ["NIfTI", "_TestSupport"], swiftSettings: plainSettings),
        .testTarget(name: "VoxelRenderTests", dependencies: ["VoxelRender", "CPNG", "_TestSupport"],
                    swiftSettings: plainSettings),
        .testTarget(name: "VoxplainTests", dependencies: ["Voxplain", "_TestSupport"], swiftSettings: plainSettings),
        // Runs the built `voxplain` binary (end-to-end); depends on it so `swift test` builds it first.
        .testTarget(name: "VoxplainCLITests", dependencies: ["voxplain", "_TestSupport"], swiftSettings: plainSettings),
    ],
    swiftLanguageModes: [.v6]
)

// The only file in VoxelTensor that imports Dispatch: every parallel kernel goes through `Parallel`.
import Dispatch
import Foundation

/// A raw mutable pointer that may cross into `concurrentPerform` tiles.
///
/// Safety contract: every tile writes a range of elements that no other tile reads or writes during
/// the same parallel call. Kernels document which disjoint ranges their tiles own; there are no locks.
public struct SharedPointer<Element>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Element>
    @inlinable public init(_ base: UnsafeMutablePointer<Element>) { self.base = base }
    @inlinable public subscript(i: Int) -> Element {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
    @inlinable public static func + (p: SharedPointer, offset: Int) -> UnsafeMutablePointer<Element> {
        p.base + offset
    }
}

/// A raw read-only pointer that may cross into `concurrentPerform` tiles (reads only, so always safe
/// while the owning buffer is alive for the duration of the parallel call).
public struct SharedConstPointer<Element>: @unchecked Sendable {
    public let base: UnsafePointer<Element>
    @inlinable public init(_ base: UnsafePointer<Element>) { self.base = base }
    @inlinable public subscript(i: Int) -> Element { base[i] }
    @inlinable public static func + (p: SharedConstPointer, offset: Int) -> UnsafePointer<Element> {
        p.base + offset
    }
}

/// Runs work over disjoint tiles on every core.
///
/// Determinism: kernels split their output into tiles by fixed tile sizes, never by the thread count,
/// and each output element is computed by exactly one tile in a fixed order. Results are therefore
/// bit-identical whatever `threadCount` is.
public enum Parallel {
    /// Number of worker threads Dispatch will use (the number of active cores).
    public static var threadCount: Int { System.activeProcessorCount }

    /// Runs `body(i)` for every `i` in `0..<count`, in parallel when `count > 1`.
    @inlinable
    public static func forEach(_ count: Int, _ body: @Sendable (Int) -> Void) {
        if count <= 0 { return }
        if count == 1 { body(0); return }
        DispatchQueue.concurrentPerform(iterations: count, execute: body)
    }

    /// Runs `body(range)` over `0..<count` split into chunks of at most `grain` elements.
    @inlinable
    public static func forRanges(_ count: Int, grain: Int, _ body: @Sendable (Range<Int>) -> Void) {
        let grain = max(1, grain)
        let chunks = (count + grain - 1) / grain
        forEach(chunks) { c in
            body(c * grain ..< min(count, (c + 1) * grain))
        }
    }
}

/// Facts about the machine, read once.
public enum System {
    /// Bytes of the L3 cache the first core shares with its neighbours, as Linux lists it
    /// (`/sys/devices/system/cpu/cpu0/cache/index3/size`, "32768K"), or 32 MiB where it lists none.
    /// (The C library's `_SC_LEVEL3_CACHE_SIZE` reports a whole EPYC socket's L3 instead, 384 MB on
    /// the machine where a core's L3 is 32 MB.)
    public static let lastLevelCacheBytes: Int = {
        guard let raw = try? String(contentsOfFile: "/sys/devices/system/cpu/cpu0/cache/index3/size", encoding: .utf8)
        else { return 32 << 20 }
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        let unit = text.last.map { ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30][String($0)] ?? 1 } ?? 1
        guard let n = Int(unit == 1 ? text : String(text.dropLast())), n > 0 else { return 32 << 20 }
        return n * unit
    }()

    /// Cores the process may use.
    public static let activeProcessorCount: Int = {
        #if canImport(Glibc) || canImport(Darwin)
        return max(1, Int(sysconfNProcessorsOnline()))
        #else
        return 1
        #endif
    }()
}

#if canImport(Glibc)
import Glibc
@usableFromInline func sysconfNProcessorsOnline() -> Int { sysconf(Int32(_SC_NPROCESSORS_ONLN)) }
#elseif canImport(Darwin)
import Darwin
@usableFromInline func sysconfNProcessorsOnline() -> Int { sysconf(_SC_NPROCESSORS_ONLN) }
#endif

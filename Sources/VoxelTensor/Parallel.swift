// The only file in VoxelTensor that imports Dispatch: every parallel kernel goes through `Parallel`.
import Dispatch
import Foundation
import Synchronization
import CStream

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
    /// Threads a parallel region runs on, the calling thread among them (the active cores).
    public static var threadCount: Int { System.activeProcessorCount }

    /// Runs `body(i)` for every `i` in `0..<count`, in parallel when `count > 1`: on `SpinPool`'s
    /// workers and the calling thread, or with `DispatchQueue.concurrentPerform` when the pool is
    /// taken (a call from inside a parallel region, or from a second thread at once). Either way
    /// every `i` runs exactly once, in any order, on any thread.
    public static func forEach(_ count: Int, _ body: @Sendable (Int) -> Void) {
        if count <= 0 { return }
        if count == 1 { body(0); return }
        if threadCount == 1 {
            for i in 0..<count { body(i) }
            return
        }
        if let pool = SpinPool.shared, pool.run(count, body) { return }
        // Dispatch runs up to one thread per online CPU; when fewer are allowed, that many
        // iterations take every `width`-th item.
        let width = min(count, threadCount)
        if width == count || threadCount >= onlineProcessorCount {
            DispatchQueue.concurrentPerform(iterations: count, execute: body)
        } else {
            DispatchQueue.concurrentPerform(iterations: width) { first in
                for i in stride(from: first, to: count, by: width) { body(i) }
            }
        }
    }

    /// CPUs online, allowed to this process or not (Dispatch's width).
    static let onlineProcessorCount = ProcessInfo.processInfo.processorCount

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

/// Worker threads for `Parallel.forEach` that spin between parallel regions before they sleep.
///
/// `concurrentPerform` wakes a sleeping worker for every region, and on these VMs a wake-up costs
/// about 35 microseconds (two items of 28 us each took 65 us; 278 us items 311-322), paid by every
/// region: a layer runs several (its depth chunks), a model hundreds. Here the workers spin on a
/// generation counter for a while after each region (`spinNanoseconds`), so the next region starts
/// at once (two 28 us items: 28.3 us), and only then sleep, each on its own semaphore. The calling
/// thread takes items too; items are claimed one at a time from a shared counter, as
/// `concurrentPerform` hands them out, so which thread runs which item never changes a result
/// (kernels tile by fixed sizes). One region at a time: a call made while the pool is busy returns
/// false and the caller falls back to `concurrentPerform` (nested calls, concurrent callers such as
/// parallel tests).
///
/// A region ends when its items are done, not when every worker has looked at it: the caller claims
/// items too, and once all are claimed it closes the region and waits only for the workers that
/// joined it (`active`). Until stop 20 it waited for every worker to check in, so a worker the OS
/// had not scheduled held up the region though the caller had done every item: with more threads
/// than CPUs (`VOXPLAIN_THREADS=5` on two) `voxplain demo` took 46 s instead of 7.6.
///
/// Sleeping: a worker raises its `sleeping` flag, then looks at the generation once more; the caller
/// bumps the generation, then lowers every raised flag and signals that worker's semaphore, once per
/// flag it lowered. A worker that saw the new generation after raising its flag lowers the flag
/// itself, or, when the caller lowered it first, takes the signal the caller gave. So no signal is
/// left over for a later sleep. (Until stop 20 the workers shared one semaphore and a counter of
/// sleepers: a worker that had finished the region could take the signal meant for one still
/// asleep, which then never woke, and the caller waited for it forever. It takes two workers, so
/// three cores; found with `VOXPLAIN_THREADS=3` on two.)
final class SpinPool: @unchecked Sendable {
    /// The pool, with `System.activeProcessorCount - 1` workers; nil on one core.
    static let shared: SpinPool? = System.activeProcessorCount > 1 ? SpinPool(workers: System.activeProcessorCount - 1) : nil

    /// A worker's sleep: its flag, raised while it sleeps or is about to, and its semaphore.
    private final class Sleep: Sendable {
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }

    private let sleeps: [Sleep]
    /// How long an idle worker spins before it sleeps (200 us; tests use less to make them sleep often).
    private let spinNanoseconds: UInt64
    private let generation = Atomic<Int>(0), nextItem = Atomic<Int>(0)
    /// True while a region's items may be claimed.
    private let open = Atomic<Bool>(false)
    /// Workers between joining a region and leaving it (looking at `open`, claiming, running items).
    private let active = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    // Written by the caller only while no worker is active and the region is closed.
    private var count = 0
    private var body: (@Sendable (Int) -> Void)?

    /// Starts `workers` threads. They hold the pool, which so lives as long as the process (tests'
    /// pools too: their workers sleep for good once no region comes).
    init(workers: Int, spinNanoseconds: UInt64 = 200_000) {
        sleeps = (0..<workers).map { _ in Sleep() }
        self.spinNanoseconds = spinNanoseconds
        for sleep in sleeps {
            let thread = Thread { self.work(sleep) }
            thread.stackSize = 8 << 20  // as a main thread's: kernels keep small buffers on the stack
            thread.start()
        }
    }

    /// Runs `body` over `0..<count` on the workers and this thread; false (nothing run) if busy.
    func run(_ count: Int, _ body: @Sendable (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        withoutActuallyEscaping(body) { body in
            self.count = count
            self.body = body
            nextItem.store(0, ordering: .relaxed)
            open.store(true, ordering: .sequentiallyConsistent)
            generation.add(1, ordering: .sequentiallyConsistent)
            for sleep in sleeps where sleep.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                sleep.wake.signal()
            }
            claimItems()
            // Every item is claimed; close, then wait for the workers still running one (or still
            // looking at `open`). A worker that joins later finds the region closed.
            open.store(false, ordering: .sequentiallyConsistent)
            while active.load(ordering: .acquiring) > 0 {}
            self.body = nil
        }
        busy.store(false, ordering: .releasing)
        return true
    }

    private func claimItems() {
        let count = self.count
        guard let body = self.body else { return }
        while true {
            let i = nextItem.add(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i)
        }
    }

    private func work(_ sleep: Sleep) {
        var seen = 0
        while true {
            var spins = 0, since = DispatchTime.now().uptimeNanoseconds
            while generation.load(ordering: .sequentiallyConsistent) == seen {
                spins += 1
                if spins & 255 != 0 { continue }
                if DispatchTime.now().uptimeNanoseconds - since < spinNanoseconds { continue }
                sleep.sleeping.store(true, ordering: .sequentiallyConsistent)
                if generation.load(ordering: .sequentiallyConsistent) == seen {
                    sleep.wake.wait()  // the caller lowers the flag and signals once
                } else if !sleep.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                    sleep.wake.wait()  // the caller lowered it first: take its signal now
                }
                since = DispatchTime.now().uptimeNanoseconds
            }
            seen = generation.load(ordering: .sequentiallyConsistent)
            active.add(1, ordering: .sequentiallyConsistent)
            if open.load(ordering: .sequentiallyConsistent) { claimItems() }
            active.subtract(1, ordering: .releasing)
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

    /// Threads parallel regions run on: `VOXPLAIN_THREADS` when it holds a whole number from 1 to
    /// `maximumThreads`, else the CPUs this process may use (`vx_usable_cpus`: the online CPUs, fewer
    /// under an affinity mask such as `taskset`, SLURM's or `docker --cpuset-cpus`, or a cgroup quota
    /// such as `docker --cpus`). Counting every online CPU instead put two threads on one allowed CPU,
    /// one of them spinning (`SpinPool`) while the other had work. Results do not depend on it.
    public static var activeProcessorCount: Int { environmentThreadSetting.count }

    /// `threadSetting` of this process's `VOXPLAIN_THREADS`, read once (with the CPU affinity and cgroup files).
    static let environmentThreadSetting = threadSetting(ProcessInfo.processInfo.environment["VOXPLAIN_THREADS"])

    /// The most threads `VOXPLAIN_THREADS` may ask for.
    public static let maximumThreads = 1024

    /// What `VOXPLAIN_THREADS` (the raw value, nil when unset) gives: the thread count, and a problem
    /// to report when the value is not a whole number from 1 to `maximumThreads` (the count is then
    /// the usable CPUs, as when it is unset). The command-line tool refuses to run with a problem.
    public static func threadSetting(_ raw: String?) -> (count: Int, problem: String?) {
        let usable = max(1, Int(vx_usable_cpus()))
        guard let raw else { return (usable, nil) }
        let text = raw.trimmingCharacters(in: .whitespaces)
        guard let n = Int(text), (1...maximumThreads).contains(n) else {
            return (usable, "VOXPLAIN_THREADS: expected a whole number of threads from 1 to \(maximumThreads), got '\(raw)'")
        }
        return (n, nil)
    }

    /// The problem with this process's `VOXPLAIN_THREADS`, or nil when it is unset or valid.
    public static var threadSettingProblem: String? { environmentThreadSetting.problem }
}

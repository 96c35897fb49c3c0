import Dispatch
import Foundation
import Synchronization
import Testing
@testable import VoxelTensor

/// `Parallel.forEach` runs every index exactly once: on the spinning pool, and on the
/// `concurrentPerform` fallback it takes when the pool is busy (calls nested in a region, and
/// several threads calling at once, as parallel tests do).
struct ParallelTests {
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Counts how often each index ran.
    final class Tally: Sendable {
        let counts: [Counter]
        init(_ n: Int) { counts = (0..<n).map { _ in Counter() } }
        func hit(_ i: Int) { counts[i].value.add(1, ordering: .relaxed) }
        var exactlyOnce: Bool { counts.allSatisfy { $0.value.load(ordering: .relaxed) == 1 } }
    }

    @Test func everyIndexRunsOnce() {
        for count in [2, 3, 7, 64, 1000] {
            // Many regions in a row: the pool's workers spin between them, sleep after a pause.
            for round in 0..<50 {
                let tally = Tally(count)
                Parallel.forEach(count) { tally.hit($0) }
                #expect(tally.exactlyOnce, "\(count) items, round \(round)")
            }
        }
        // After the workers have gone to sleep.
        Thread.sleep(forTimeInterval: 0.01)
        let tally = Tally(9)
        Parallel.forEach(9) { tally.hit($0) }
        #expect(tally.exactlyOnce)
    }

    /// Pools with more workers than this machine has cores, whose workers spin for only a moment and
    /// so fall asleep between most regions: every region ends, with every index run once. (With one
    /// semaphore for all workers, a worker that had finished a region took the wake-up meant for one
    /// still asleep and the region never ended: this test hung within a few hundred regions.)
    @Test(arguments: [(2, 0), (3, 0), (5, 20_000)] as [(Int, UInt64)])
    func sleepingWorkersAllWake(workers: Int, spin: UInt64) {
        let pool = SpinPool(workers: workers, spinNanoseconds: spin)
        let done = DispatchSemaphore(value: 0), failures = Counter()
        Thread.detachNewThread {
            for region in 0..<1500 {
                if region % 3 == 0 { usleep(30) }
                let count = 1 + region % 17
                let tally = Tally(count)
                _ = pool.run(count) { tally.hit($0) }
                if !tally.exactlyOnce { failures.value.add(1, ordering: .relaxed) }
            }
            done.signal()
        }
        let finished = done.wait(timeout: .now() + 60) == .success
        #expect(finished, "a region of a pool of \(workers) workers never ended")
        #expect(failures.value.load(ordering: .relaxed) == 0)
    }

    @Test func nestedRegionsRunEveryIndex() {
        let tally = Tally(8 * 16)
        Parallel.forEach(8) { outer in
            Parallel.forEach(16) { inner in tally.hit(16 * outer + inner) }
        }
        #expect(tally.exactlyOnce)
    }

    @Test func concurrentCallersRunEveryIndex() {
        let complete = (0..<6).map { _ in Counter() }
        DispatchQueue.concurrentPerform(iterations: 6) { caller in
            for _ in 0..<20 {
                let tally = Tally(200)
                Parallel.forEach(200) { tally.hit($0) }
                if tally.exactlyOnce { complete[caller].value.add(1, ordering: .relaxed) }
            }
        }
        #expect(complete.allSatisfy { $0.value.load(ordering: .relaxed) == 20 })
    }

    /// `VOXPLAIN_THREADS`: a whole number from 1 to the maximum is the thread count; anything else is
    /// a problem to report, with the usable CPUs as the count; unset, the usable CPUs.
    @Test func threadSettingIsParsedStrictly() {
        let usable = System.threadSetting(nil).count
        #expect(usable >= 1 && usable <= ProcessInfo.processInfo.processorCount)
        #expect(System.threadSetting(nil).problem == nil)
        for (raw, n) in [("1", 1), ("3", 3), (" 8 ", 8), ("1024", 1024)] {
            let setting = System.threadSetting(raw)
            #expect(setting.count == n && setting.problem == nil, "\(raw)")
        }
        for raw in ["0", "-1", "", "two", "1.5", "1025", "99999999999999999999"] {
            let setting = System.threadSetting(raw)
            #expect(setting.count == usable)
            #expect(setting.problem?.contains("VOXPLAIN_THREADS") == true && setting.problem?.contains("'\(raw)'") == true)
        }
    }

    /// `evenParts`: every item in a part, no part empty, no more parts than wanted.
    @Test func evenPartsCoverEveryItemWithoutEmptyParts() {
        for count in 1...40 {
            for wanted in 0...45 {
                let (size, parts) = evenParts(count, wanted: wanted)
                #expect(size * parts >= count && size * (parts - 1) < count && parts <= max(1, wanted), "\(count) in \(wanted)")
            }
        }
    }

    /// `balancedTasks`: every task once, each worker's list in order, equal tasks round-robin, and
    /// unequal ones spread so no worker holds more than one task's work above another (1->16's input
    /// gradient: row blocks of 36 and 28 rows, which `k % workers` gave one worker each).
    @Test func balancedTasksSpreadTheWork() {
        #expect(balancedTasks(6, workers: 2) { _ in 5 } == [[0, 2, 4], [1, 3, 5]])
        #expect(balancedTasks(2, workers: 4) { _ in 1 } == [[0], [1], [], []])
        let rows = balancedTasks(16, workers: 2) { $0 % 2 == 0 ? 36 : 28 }
        #expect(rows.map { $0.reduce(0) { $0 + ($1 % 2 == 0 ? 36 : 28) } } == [256, 256])
        for count in 0...30 {
            for workers in 1...5 {
                let work = { (t: Int) in 1 + (t * 7) % 5 }
                let owned = balancedTasks(count, workers: workers, work: work)
                #expect(owned.count == workers && owned.flatMap { $0 }.sorted() == Array(0..<count))
                #expect(owned.allSatisfy { $0 == $0.sorted() })
                let loads = owned.map { $0.reduce(0) { $0 + work($1) } }
                #expect(loads.max()! - loads.min()! <= 5, "\(count) tasks on \(workers): \(loads)")
            }
        }
    }
}

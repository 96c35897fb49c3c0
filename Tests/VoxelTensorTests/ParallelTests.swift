import Dispatch
import Foundation
import Synchronization
import Testing
import VoxelTensor

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
}

import Synchronization
import Testing

@testable import MinkServer

/// `/readyz`'s write probe: at most one write per interval, and none cached once a request's write
/// failed with `.unavailable`.
@Suite("readiness write probe", .timeLimit(.minutes(1)))
struct WriteProbeTests {
    @Test func aFailedWriteMakesTheNextCheckProbeAgain() async throws {
        let calls = Atomic<Int>(0)
        let failing = Atomic<Bool>(false)
        let probe = WriteProbe(interval: .seconds(600)) {
            calls.add(1, ordering: .relaxed)
            if failing.load(ordering: .relaxed) { throw ProbeFailure() }
        }
        #expect(await probe.failure() == nil)
        #expect(await probe.failure() == nil)
        #expect(calls.load(ordering: .relaxed) == 1, "answered from the last probe within the interval")
        // The disk fills: an append fails; without invalidation /readyz would say ready for the
        // rest of the interval.
        failing.store(true, ordering: .relaxed)
        probe.invalidate()
        #expect(await probe.failure() != nil)
        #expect(calls.load(ordering: .relaxed) == 2)
        // A failure is not forgotten by an invalidation: it stays until the next probe's turn.
        probe.invalidate()
        #expect(await probe.failure() != nil)
        #expect(calls.load(ordering: .relaxed) == 2)
    }

    /// An invalidation while a probe runs: that probe's success (it may have written just before
    /// the fault) is not kept for the interval.
    @Test func anInvalidationDuringAProbeIsNotLost() async throws {
        let calls = Atomic<Int>(0)
        let release = Mutex<CheckedContinuation<Void, Never>?>(nil)
        let started = Atomic<Bool>(false)
        let probe = WriteProbe(interval: .seconds(600)) {
            if calls.add(1, ordering: .relaxed).newValue == 1 {
                await withCheckedContinuation { c in
                    release.withLock { $0 = c }
                    started.store(true, ordering: .releasing)
                }
            }
        }
        let first = Task { await probe.failure() }
        let deadline = ContinuousClock.now + .seconds(10)
        while !started.load(ordering: .acquiring) {
            try #require(ContinuousClock.now < deadline, "the probe never started")
            try await Task.sleep(for: .milliseconds(5))
        }
        probe.invalidate()  // a write failed while the probe was under way
        release.withLock { $0?.resume() }
        #expect(await first.value == nil)
        #expect(await probe.failure() == nil)
        #expect(calls.load(ordering: .relaxed) == 2, "probed again rather than answering from the stale probe")
    }

    struct ProbeFailure: Error {}
}

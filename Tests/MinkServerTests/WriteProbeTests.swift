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

    struct ProbeFailure: Error {}
}

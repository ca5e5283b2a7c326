import Foundation
@testable import Mink
import MinkTestFixtures
import Synchronization
import Testing

/// A held (paused or faulted) async runner parks on a continuation that `resume` and `stop`
/// wake: it does no work while held, catches up at once when resumed, and stops promptly.
@Suite("Async runner wake-up", .timeLimit(.minutes(3)))
struct AsyncRunnerTests {
    static func makeRunner(_ store: EventStore, box: RecordingProjection.Box, retry: RetryPolicy = RetryPolicy()) -> AsyncRunner {
        AsyncRunner(
            projection: RecordingProjection(box: box), options: AsyncOptions(batchSize: 50, retryPolicy: retry), store: store,
            logger: store.options.logger)
    }

    /// Waits (at most `seconds`) until `condition` holds. The limit is generous because the full
    /// suite can starve the cooperative pool for seconds on a loaded 2-core machine; a passing
    /// condition returns at once.
    static func eventually(_ seconds: Double = 30, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return condition()
    }

    @Test func pausedRunnerDoesNoWorkAndResumeCatchesUp() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        let runner = Self.makeRunner(store, box: box)
        try await store.append("s-1", events: (0..<3).map { _ in raw("E") })
        runner.start()
        #expect(await Self.eventually { box.checkpoint.withLock { $0 } == 3 })

        runner.pause()
        #expect(runner.status(head: 3).state == .paused)
        // The loop notices the pause at its next wake-up (the append) and parks.
        try await store.append("s-1", events: (0..<2).map { _ in raw("E") })
        #expect(await Self.eventually { runner.isParked }, "the held loop waits on a continuation, it does not poll")
        try await Task.sleep(for: .milliseconds(100))
        #expect(box.applied.withLock { $0 } == [1, 2, 3], "a paused runner applies nothing")

        runner.resume()
        #expect(!runner.isParked, "resume wakes the parked loop")
        #expect(await Self.eventually { box.checkpoint.withLock { $0 } == 5 }, "resumed, it catches up")
        #expect(box.applied.withLock { $0 } == [1, 2, 3, 4, 5])
        #expect(runner.status(head: 5).state == .running)
        await runner.stop()
    }

    @Test func aPauseAskedWhileStoppedHoldsTheRunnerFromItsStart() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        let runner = Self.makeRunner(store, box: box)
        try await store.append("s-1", events: [raw("E"), raw("E")])
        runner.pause()
        runner.start()
        #expect(runner.status(head: 2).state == .paused)
        #expect(await Self.eventually { runner.isParked })
        #expect(box.applied.withLock { $0 }.isEmpty)
        runner.resume()
        #expect(await Self.eventually { box.checkpoint.withLock { $0 } == 2 })
        await runner.stop()
    }

    /// Stopping a parked runner wakes it, so `stop` returns promptly.
    @Test func stopWakesAHeldRunner() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let runner = Self.makeRunner(store, box: RecordingProjection.Box())
        runner.pause()
        runner.start()
        #expect(await Self.eventually { runner.isParked })
        final class Flag: Sendable { let done = Atomic<Bool>(false) }
        let flag = Flag()
        Task {
            await runner.stop()
            flag.done.store(true, ordering: .releasing)
        }
        #expect(await Self.eventually { flag.done.load(ordering: .acquiring) }, "stop returned")
        #expect(runner.status(head: 0).state == .stopped)
    }

    @Test func aFaultParksTheRunnerUntilResumeRetriesIt() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        box.failures.withLock { $0[2] = Int.max }
        let runner = Self.makeRunner(store, box: box, retry: fastRetry)
        try await store.append("s-1", events: (0..<3).map { _ in raw("E") })
        runner.start()
        #expect(await Self.eventually { runner.isParked })
        let status = runner.status(head: 3)
        #expect(status.state == .faulted && status.faultedPosition == 2 && status.checkpoint == 1)
        box.failures.withLock { $0[2] = 0 }
        runner.resume()
        #expect(await Self.eventually { box.checkpoint.withLock { $0 } == 3 })
        #expect(runner.status(head: 3).lastError == nil)
        await runner.stop()
    }
}

import Foundation
@testable import Mink
import MinkTestFixtures
import Synchronization
import Testing

/// The async projection runner's lifecycle: one state at a time, a held runner parked on a
/// continuation (woken by `resume`/`stop`, never polling), and the statuses it shows.
@Suite("Async runner lifecycle")
struct AsyncRunnerTests {
    static func makeRunner(_ store: EventStore, box: RecordingProjection.Box) -> AsyncRunner {
        AsyncRunner(projection: RecordingProjection(box: box), options: AsyncOptions(batchSize: 50), store: store, logger: store.options.logger)
    }

    /// Waits (at most `seconds`) until `condition` holds.
    static func eventually(_ seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return condition()
    }

    /// Whether the runner is held with its task parked on a wake-up continuation.
    static func isParked(_ runner: AsyncRunner) -> Bool {
        switch runner.lifecycle {
        case .paused(_, _, wake: .some), .faulted(_, _, _, _, wake: .some): true
        default: false
        }
    }

    @Test func pausedRunnerDoesNoWorkAndResumeCatchesUpAtOnce() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        let runner = Self.makeRunner(store, box: box)
        try await store.append("s-1", events: (0..<3).map { _ in raw("E") })
        runner.start()
        #expect(await Self.eventually { box.checkpoint.withLock { $0 } == 3 })
        guard case .running(_, rebuilding: false) = runner.lifecycle else {
            Issue.record("expected running, got \(runner.lifecycle.state)")
            return
        }

        runner.pause()
        #expect(runner.lifecycle.state == .paused && runner.lifecycle.isPauseRequested)
        // The loop notices the pause at its next wake-up (the append) and parks.
        try await store.append("s-1", events: (0..<2).map { _ in raw("E") })
        #expect(await Self.eventually { Self.isParked(runner) }, "the held loop waits on a continuation")
        try await Task.sleep(for: .milliseconds(100))
        #expect(box.applied.withLock { $0 } == [1, 2, 3], "a paused runner applies nothing")
        #expect(runner.status(head: 5).lag == 2)

        let resumed = ContinuousClock.now
        runner.resume()
        #expect(await Self.eventually(2) { box.checkpoint.withLock { $0 } == 5 }, "resume wakes the loop, which catches up")
        #expect(ContinuousClock.now - resumed < .seconds(2))
        #expect(box.applied.withLock { $0 } == [1, 2, 3, 4, 5])
        #expect(runner.lifecycle.state == .running && !runner.lifecycle.isPauseRequested)
        await runner.stop()
    }

    @Test func aPauseAskedWhileStoppedHoldsTheRunnerFromItsStart() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        let runner = Self.makeRunner(store, box: box)
        try await store.append("s-1", events: [raw("E"), raw("E")])
        runner.pause()
        guard case .stopped(paused: true, rebuildPending: false) = runner.lifecycle else {
            Issue.record("expected stopped and paused, got \(runner.lifecycle.state)")
            return
        }
        #expect(runner.lifecycle.state == .stopped)
        runner.start()
        #expect(runner.lifecycle.state == .paused)
        #expect(await Self.eventually { Self.isParked(runner) })
        #expect(box.applied.withLock { $0 }.isEmpty)
        runner.resume()
        #expect(await Self.eventually(2) { box.checkpoint.withLock { $0 } == 2 })
        await runner.stop()
    }

    /// Stopping a parked runner wakes it: `stop` returns promptly and the pause stays asked.
    @Test func stopWakesAHeldRunnerAndKeepsThePause() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let runner = Self.makeRunner(store, box: RecordingProjection.Box())
        runner.pause()
        runner.start()
        #expect(await Self.eventually { Self.isParked(runner) })
        final class Flag: Sendable { let done = Atomic<Bool>(false) }
        let flag = Flag()
        Task {
            await runner.stop()
            flag.done.store(true, ordering: .releasing)
        }
        let stopped = await Self.eventually(2) { flag.done.load(ordering: .acquiring) }
        #expect(stopped, "stop returned within 2 s")
        guard case .stopped(paused: true, rebuildPending: false) = runner.lifecycle else {
            Issue.record("expected stopped with the pause kept, got \(runner.lifecycle.state)")
            return
        }
    }

    @Test func aFaultHoldsTheRunnerUntilResumeRetriesIt() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        box.failures.withLock { $0[2] = Int.max }
        let runner = AsyncRunner(
            projection: RecordingProjection(box: box),
            options: AsyncOptions(batchSize: 50, retryPolicy: fastRetry), store: store, logger: store.options.logger)
        try await store.append("s-1", events: (0..<3).map { _ in raw("E") })
        runner.start()
        #expect(await Self.eventually { Self.isParked(runner) })
        let fault = try #require(runner.lifecycle.fault)
        #expect(fault.position == 2)
        let status = runner.status(head: 3)
        #expect(status.state == .faulted && status.faultedPosition == 2 && status.checkpoint == 1)
        #expect(status.lastError == fault.message)

        runner.pause()  // asked while faulted: kept
        #expect(runner.lifecycle.isPauseRequested && runner.lifecycle.state == .faulted)
        box.failures.withLock { $0[2] = 0 }
        runner.resume()
        #expect(runner.lifecycle.fault == nil && !runner.lifecycle.isPauseRequested)
        #expect(await Self.eventually(2) { box.checkpoint.withLock { $0 } == 3 })
        #expect(runner.status(head: 3).lastError == nil)
        await runner.stop()
    }

    @Test func aRebuildWhileStoppedIsPendingUntilTheStartAndEndsWhenCaughtUp() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        let runner = Self.makeRunner(store, box: box)
        try await store.append("s-1", events: [raw("E"), raw("E")])
        runner.start()
        #expect(await Self.eventually { box.checkpoint.withLock { $0 } == 2 })
        await runner.stop()
        #expect(runner.lifecycle.state == .stopped)
        try await runner.rebuild(restart: false)
        guard case .stopped(paused: false, rebuildPending: true) = runner.lifecycle else {
            Issue.record("expected a pending rebuild, got \(runner.lifecycle.state)")
            return
        }
        #expect(runner.status(head: 2).state == .rebuilding)
        runner.start()
        #expect(await Self.eventually { box.checkpoint.withLock { $0 } == 2 && runner.lifecycle.state == .running })
        #expect(box.applied.withLock { $0 } == [1, 2], "replayed from 0")
        await runner.stop()
    }
}

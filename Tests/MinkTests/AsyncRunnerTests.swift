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

    /// A stop keeps a pending pause; a start asked while the old loop is still ending (inside a
    /// slow batch) runs once that loop has ended — never two loops at once.
    @Test func aStartAskedWhileStoppingWaitsForTheOldLoop() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let slow = SlowProjection()
        let runner = AsyncRunner(projection: slow, options: AsyncOptions(batchSize: 1), store: store, logger: store.options.logger)
        try await store.append("s-1", events: [raw("E")])
        runner.start()
        #expect(await Self.eventually { slow.started.withLock { $0 } >= 1 }, "the loop is inside its first batch")
        final class Flag: Sendable { let done = Atomic<Bool>(false) }
        let flag = Flag()
        let stopping = Task {
            await runner.stop()
            flag.done.store(true, ordering: .releasing)
        }
        #expect(await Self.eventually {
            if case .stopping(_, pausePending: false, restart: false) = runner.lifecycle { return true }
            return false
        })
        runner.start()
        guard case .stopping(_, pausePending: false, restart: true) = runner.lifecycle else {
            Issue.record("expected stopping with a restart, got \(runner.lifecycle)")
            return
        }
        await stopping.value
        let stopReturned = flag.done.load(ordering: .acquiring)
        #expect(stopReturned)
        guard case .running(_, rebuilding: false) = runner.lifecycle else {
            Issue.record("expected running after the restart, got \(runner.lifecycle)")
            return
        }
        try await store.append("s-1", events: [raw("E")])
        #expect(await Self.eventually { slow.finished.withLock { $0 } >= 2 }, "the new loop applies the next event")
        #expect(slow.mostAtOnce.withLock { $0 } == 1, "one loop at a time")
        await runner.stop()
        #expect(runner.status(head: 2).state == .stopped)
    }

    /// The transitions on the lifecycle value itself: which are allowed, and the data each
    /// state keeps (a pending pause across a fault and a stop, `rebuilding` across a pause).
    @Test func lifecycleTransitionsKeepTheirData() async {
        let task = Task<Void, Never> {}
        var l = AsyncRunner.Lifecycle.running(task, rebuilding: true)
        #expect(l.state == .rebuilding && !l.isHeld)
        // A pause during a rebuild keeps the rebuild: caught up while paused, it is over.
        l = .paused(task, rebuilding: true, wake: nil)
        #expect(l.state == .paused && l.isHeld)
        let caughtUpWhilePaused = l.caughtUp()
        #expect(caughtUpWhilePaused)
        guard case .paused(_, rebuilding: false, wake: nil) = l else {
            Issue.record("expected paused without rebuilding, got \(l)")
            return
        }
        // A fault met while paused keeps the pause asked.
        let faulted = l.failed(AsyncRunner.Fault(position: 7, message: "bad"))
        #expect(faulted && l.state == .faulted && l.fault == AsyncRunner.Fault(position: 7, message: "bad"))
        guard case .faulted(_, _, rebuilding: false, pausePending: true, wake: nil) = l else {
            Issue.record("expected faulted with the pause pending, got \(l)")
            return
        }
        // Illegal: a faulted loop neither catches up nor faults again.
        let caughtUpWhileFaulted = l.caughtUp()
        let faultedAgain = l.failed(AsyncRunner.Fault(position: 8, message: "again"))
        #expect(!caughtUpWhileFaulted && !faultedAgain && l.fault?.position == 7)
        // Parking: once (a second park is refused); unparking hands the continuation back once.
        var results: [String] = []
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            results.append("park \(l.park(c).map(String.init) ?? "refused")")
            results.append("parked \(l.isParked)")
            results.append("park again \(l.park(c).map(String.init) ?? "refused")")
            let back = l.unpark()
            results.append("unpark \(back != nil), again \(l.unpark() != nil), parked \(l.isParked)")
            back?.resume()
        }
        #expect(results == ["park true", "parked true", "park again refused", "unpark true, again false, parked false"])
        // The loop ended on its own: stopped, the pause still pending.
        let ended = l.loopEnded()
        #expect(ended)
        guard case .stopped(pausePending: true, rebuilding: false) = l else {
            Issue.record("expected stopped with the pause pending, got \(l)")
            return
        }
        let endedAgain = l.loopEnded()
        let caughtUpWhileStopped = l.caughtUp()
        #expect(!endedAgain && !caughtUpWhileStopped, "a stopped runner has no loop")
        #expect(AsyncRunner.Lifecycle.stopped(pausePending: false, rebuilding: true).state == .rebuilding)
        #expect(AsyncRunner.Lifecycle.stopping(task, pausePending: true, restart: false).state == .stopped)
    }
}

/// An async projection whose batches take 300 ms (not cut short by cancellation, like a storage
/// call in flight), counting batches begun and ended and the most running at once.
final class SlowProjection: AsyncProjection {
    let name = "slow"
    let handledEvents: [String] = []
    let started = Mutex(0)
    let finished = Mutex(0)
    let running = Mutex(0)
    let mostAtOnce = Mutex(0)
    let stored = Mutex<UInt64>(0)

    func apply(_ events: [Event]) async throws {
        started.withLock { $0 += 1 }
        let now = running.withLock { n -> Int in
            n += 1
            return n
        }
        mostAtOnce.withLock { $0 = max($0, now) }
        let end = ContinuousClock.now + .milliseconds(300)
        while ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(10)) }
        running.withLock { $0 -= 1 }
        finished.withLock { $0 += 1 }
    }

    func checkpoint() async throws -> UInt64 { stored.withLock { $0 } }
    func setCheckpoint(_ position: UInt64) async throws { stored.withLock { $0 = position } }
}

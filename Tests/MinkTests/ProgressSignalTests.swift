import Foundation
@testable import Mink
import MinkTestFixtures
import Testing

/// The signal that replaced `waitUntilCaughtUp`'s 5 ms polling.
@Suite("progress signal", .timeLimit(.minutes(1)))
struct ProgressSignalTests {
    @Test func aSignalAfterTheNotedGenerationWakesTheWaiter() async throws {
        let signal = ProgressSignal()
        let noted = signal.generation
        let started = ContinuousClock.now
        async let waited = signal.wait(after: noted, until: .now + .seconds(30))
        try await Task.sleep(for: .milliseconds(50))
        signal.signal()
        #expect(await waited, "a signal says true")
        #expect(started.duration(to: .now) < .seconds(10), "woken by the signal, not by the 30 s deadline")
        #expect(signal.generation == noted + 1)
    }

    @Test func aSignalGivenBeforeTheWaitIsNotMissed() async {
        let signal = ProgressSignal()
        let noted = signal.generation
        signal.signal()
        let started = ContinuousClock.now
        #expect(await signal.wait(after: noted, until: .now + .seconds(30)))
        #expect(started.duration(to: .now) < .seconds(10))
    }

    @Test func withoutASignalTheWaitEndsAtTheDeadline() async {
        let signal = ProgressSignal()
        let started = ContinuousClock.now
        #expect(await signal.wait(after: signal.generation, until: .now + .milliseconds(200)) == false, "a deadline says false")
        let waited = started.duration(to: .now)
        #expect(waited >= .milliseconds(200))
        #expect(waited < .seconds(10))
    }

    @Test func aFalseSignalSaysTheWatchedThingEnded() async {
        let signal = ProgressSignal()
        let noted = signal.generation
        signal.signal(false)
        #expect(await signal.wait(after: noted, until: nil) == false)
    }

    /// A wait woken before its deadline cancels its timer: nothing of it is kept for the rest of
    /// the timeout (a subscriber waits again after every commit; timers left to run out piled up,
    /// one per wake-up, each holding the signal for a whole keepalive interval).
    @Test func aWaitWokenEarlyKeepsNothingUntilItsDeadline() async throws {
        weak var weakSignal: ProgressSignal?
        do {
            let signal = ProgressSignal()
            weakSignal = signal
            for _ in 0..<200 {
                let noted = signal.generation
                async let woken = signal.wait(after: noted, until: .now + .seconds(60))
                await Task.yield()
                signal.signal()
                #expect(await woken)
            }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while weakSignal != nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(weakSignal == nil, "the woken waits' timers still hold the signal (they would until their 60 s deadline)")
    }

    @Test func cancellationEndsTheWait() async {
        let signal = ProgressSignal()
        let started = ContinuousClock.now
        let task = Task { await signal.wait(after: signal.generation, until: .now + .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(50))
        task.cancel()
        #expect(await task.value == false)
        #expect(started.duration(to: .now) < .seconds(10))
    }

    /// The engine's wait returns when the runner's checkpoint reaches the target, long before
    /// its timeout, and with no polling (a missed signal would hold it for the whole 30 s).
    @Test func waitUntilCaughtUpReturnsWhenTheCheckpointArrives() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        let engine = ProjectionEngine(store: store)
        await engine.registerAsync(RecordingProjection(box: box), options: AsyncOptions(batchSize: 3))
        try await engine.start()
        for round in 1...5 {
            try await store.append("s-1", events: (0..<4).map { _ in raw("E") })
            let started = ContinuousClock.now
            let status = try await engine.waitUntilCaughtUp("recorder", to: UInt64(round * 4), timeout: .seconds(30))
            #expect(status.checkpoint == UInt64(round * 4))
            #expect(started.duration(to: .now) < .seconds(10), "round \(round): woken by the checkpoint, not the timeout")
        }
        #expect(box.applied.withLock { $0 } == Array(1...20))
        await engine.stop()
    }
}

import Foundation
@testable import Mink
import MetricsTestKit
import MinkTestFixtures
import Synchronization
import Testing

/// An async projection whose `apply` can be held at a gate (its checkpoint in memory).
private final class GatedProjection: AsyncProjection {
    let name = "gated"
    let handledEvents: [String] = []
    let held = Atomic<Bool>(false)
    let entered = Atomic<Bool>(false)
    let stored = Mutex<UInt64>(0)

    func apply(_ events: [Event]) async throws {
        if held.load(ordering: .sequentiallyConsistent) {
            entered.store(true, ordering: .sequentiallyConsistent)
            while held.load(ordering: .sequentiallyConsistent) { try await Task.sleep(for: .milliseconds(2)) }
        }
    }
    func checkpoint() async throws -> UInt64 { stored.withLock { $0 } }
    func setCheckpoint(_ position: UInt64) async throws { stored.withLock { $0 = position } }
}

@Suite("Projection delay metric", .timeLimit(.minutes(1)))
struct ProjectionDelayTests {
    /// A rebuild's replay records nothing — also when the projection is paused while a replay
    /// batch is in flight (the batch completes with the runner paused, not rebuilding).
    @Test func aReplayBatchInFlightWhenPausedRecordsNothing() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let metrics = TestMetrics()
        let engine = ProjectionEngine(store: store, metrics: metrics)
        let p = GatedProjection()
        await engine.registerAsync(p, options: AsyncOptions(batchSize: 10, retryPolicy: fastRetry))
        try await engine.start()
        func delays() throws -> Int {
            try metrics.expectTimer("mink_projection_delay_seconds", [("projection", "gated")]).values.count
        }
        try await store.append("s-1", events: (0..<3).map { _ in raw("E") })
        _ = try await engine.waitUntilCaughtUp("gated", to: 3)
        #expect(try delays() == 3)

        p.held.store(true, ordering: .sequentiallyConsistent)
        try await engine.rebuild("gated")
        let deadline = ContinuousClock.now + .seconds(20)
        while !p.entered.load(ordering: .sequentiallyConsistent) {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(try await engine.status("gated").state == .rebuilding)
        try await engine.pause("gated")
        p.held.store(false, ordering: .sequentiallyConsistent)
        let s = try await engine.waitUntilCaughtUp("gated", to: 3)
        #expect(s.state == .paused && s.checkpoint == 3)
        let after = try delays()
        #expect(after == 3, "the rebuild's replay recorded \(after - 3) values")
        await engine.stop()
    }
}

import Foundation
@testable import Mink
import MetricsTestKit
import MinkTesting
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

/// Loses the answer of the transaction that switches a rebuilt copy in (once, when armed): the
/// switch commits, the caller sees a transient error — as after a broken connection after COMMIT.
private final class LosingSwitchStore: ForwardingReadModelStore, @unchecked Sendable {
    let armed = Atomic<Bool>(false)
    let lost = Atomic<Bool>(false)
    let projection: String

    init(_ inner: any ReadModelStore, projection: String) {
        self.projection = projection
        super.init(inner)
    }

    override func transaction<T: Sendable>(
        _ durability: CommitDurability, _ body: @Sendable (any ReadModelTransaction) throws -> T
    ) async throws -> T {
        let before = try await inner.transaction { [projection] tx in try ReadModelGenerations.read(projection, in: tx) }
        let result = try await inner.transaction(durability, body)
        let after = try await inner.transaction { [projection] tx in try ReadModelGenerations.read(projection, in: tx) }
        if armed.load(ordering: .relaxed), before.building != 0, after.building == 0, after.serving == before.building {
            armed.store(false, ordering: .relaxed)
            lost.store(true, ordering: .relaxed)
            throw MinkError(.unavailable, "the answer of the switch was lost", isTransient: true)
        }
        return result
    }
}

@Suite("Rebuild switch whose answer was lost", .timeLimit(.minutes(1)))
struct LostSwitchAnswerTests {
    /// The switch committed but its caller saw an error: the builder's next attempt finds the
    /// switch done and finishes it here — reads move to the new copy, whose runner serves (and
    /// records its delay), and the old copy is dropped.
    @Test func aSwitchWhoseAnswerWasLostIsFinishedByTheNextAttempt() async throws {
        let storage = InMemoryStorage()
        let losing = LosingSwitchStore(storage, projection: "order-summary")
        let store = EventStore(adapter: storage)
        let metrics = TestMetrics()
        let engine = ProjectionEngine(store: store, readModels: losing, metrics: metrics)
        await engine.registerReadModel(
            OrderSummaryProjection(), mode: .async, readModels: losing,
            options: AsyncOptions(batchSize: 2, batchTimeout: .milliseconds(50), retryPolicy: fastRetry))
        try await engine.start()
        try await store.append("order-1", events: [raw("OrderCreated"), raw("ItemAdded"), raw("ItemAdded")])
        _ = try await engine.waitUntilCaughtUp("order-summary", to: 3)
        losing.armed.store(true, ordering: .relaxed)
        try await engine.rebuild("order-summary")
        let deadline = ContinuousClock.now + .seconds(20)
        while await engine.readModelName("orders") != "orders__g2" {
            guard ContinuousClock.now < deadline else { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let lost = losing.lost.load(ordering: .relaxed)
        #expect(lost, "the switch's answer was lost")
        #expect(await engine.readModelName("orders") == "orders__g2", "reads never moved to the rebuilt copy")
        try await store.append("order-1", events: [raw("ItemAdded")])
        let status = try await engine.waitUntilCaughtUp("order-summary", to: 4, timeout: .seconds(20))
        #expect(status.checkpoint == 4 && status.state == .running)
        let items = try await engine.withReadModel("orders") { physical in
            try await DocumentRepository<OrderSummary>(store: storage, model: physical).get("order-1")?.items
        }
        #expect(items == 3)
        #expect(try metrics.expectTimer("mink_projection_delay_seconds", [("projection", "order-summary")]).values.count == 4)
        #expect(try await !storage.modelNames().contains("orders"), "the old copy is dropped")
        await engine.stop()
    }
}

extension LostSwitchAnswerTests {
    /// Inline mode: after a lost switch answer the copy serves already and the append hook
    /// writes it; the builder must not apply the events appended meanwhile a second time.
    @Test func anInlineEventAppendedAfterALostSwitchIsAppliedOnce() async throws {
        let storage = InMemoryStorage()
        let losing = LosingSwitchStore(storage, projection: "order-summary")
        let store = EventStore(adapter: storage)
        let engine = ProjectionEngine(store: store, readModels: losing)
        await engine.registerReadModel(
            OrderSummaryProjection(), mode: .inline, readModels: losing,
            options: AsyncOptions(batchSize: 2, batchTimeout: .seconds(2), retryPolicy: fastRetry))
        try await engine.start()
        try await store.append("order-1", events: [raw("OrderCreated"), raw("ItemAdded"), raw("ItemAdded")])
        losing.armed.store(true, ordering: .relaxed)
        try await engine.rebuild("order-summary")
        let deadline = ContinuousClock.now + .seconds(20)
        while !losing.lost.load(ordering: .relaxed), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        let lost = losing.lost.load(ordering: .relaxed)
        #expect(lost, "the switch's answer was lost")
        try await store.append("order-1", events: [raw("ItemAdded")])
        while await engine.readModelName("orders") != "orders__g2", ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(await engine.readModelName("orders") == "orders__g2")
        // Time for a builder batch, were one to run.
        try await Task.sleep(for: .milliseconds(200))
        let items = try await engine.withReadModel("orders") { physical in
            try await DocumentRepository<OrderSummary>(store: storage, model: physical).get("order-1")?.items
        }
        #expect(items == 3)
        await engine.stop()
    }
}

/// Fails on every `Poison` event (its checkpoint in memory).
private final class PoisonedProjection: AsyncProjection {
    let name = "poisoned"
    let handledEvents: [String] = []
    let stored = Mutex<UInt64>(0)

    func apply(_ events: [Event]) async throws {
        if let bad = events.first(where: { $0.type == "Poison" }) {
            throw MinkError(.internalError, "cannot apply event \(bad.globalPosition)")
        }
    }
    func checkpoint() async throws -> UInt64 { stored.withLock { $0 } }
    func setCheckpoint(_ position: UInt64) async throws { stored.withLock { $0 = position } }
}

extension ProjectionDelayTests {
    /// A live batch with a poison event is applied event by event up to it: the events applied
    /// that way record their delay too (they did not before: only whole batches recorded).
    @Test func eventsAppliedOneByOneBeforeAPoisonEventRecordTheirDelay() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let metrics = TestMetrics()
        let engine = ProjectionEngine(store: store, metrics: metrics)
        await engine.registerAsync(PoisonedProjection(), options: AsyncOptions(batchSize: 10, retryPolicy: fastRetry))
        try await engine.start()
        _ = try await engine.waitUntilCaughtUp("poisoned", to: 0)
        try await store.append("s-1", events: [raw("E"), raw("E"), raw("Poison"), raw("E")])
        let deadline = ContinuousClock.now + .seconds(20)
        while try await engine.status("poisoned").state != .faulted {
            guard ContinuousClock.now < deadline else { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let status = try await engine.status("poisoned")
        #expect(status.state == .faulted && status.checkpoint == 2)
        let recorded = try metrics.expectTimer("mink_projection_delay_seconds", [("projection", "poisoned")]).values.count
        #expect(recorded == 2, "the two events applied before the poison event recorded \(recorded) delays")
        await engine.stop()
    }
}

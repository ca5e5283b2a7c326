import Foundation
import Mink
import MinkTestFixtures
import MinkTesting
import Synchronization
import Testing

struct OrderSummary: ReadModel, Equatable {
    var id: String
    var items: Int
    var status: String
}

/// Counts items per order in the `orders` read model, inside whatever transaction it is given.
struct OrderSummaryProjection: InlineProjection, ReadModelProjection {
    var name = "order-summary"
    var handledEvents: [String] { ["OrderCreated", "ItemAdded", "Poison"] }
    var readModelName: String { "orders" }

    func apply(_ event: Event, in tx: any ReadModelTransaction) throws {
        if event.type == "Poison" { throw MinkError(.projectionFailed, "poison at \(event.globalPosition)") }
        var summary = try tx.document("orders", id: event.streamID).map { try JSONDecoder().decode(OrderSummary.self, from: $0) }
            ?? OrderSummary(id: event.streamID, items: 0, status: "new")
        if event.type == "ItemAdded" { summary.items += 1 }
        if event.type == "OrderCreated" { summary.status = "created" }
        try tx.putDocument("orders", id: event.streamID, json: try JSONEncoder().encode(summary))
    }
}

/// An inline projection that keeps no read model (nothing a rebuild could drop).
struct CountingInline: InlineProjection {
    var name: String { "counting" }
    var handledEvents: [String] { [] }
    func apply(_ event: Event, in tx: any ReadModelTransaction) throws {}
}

/// An async projection that records what it was given and keeps its checkpoint in memory
/// (shared across "restarts" through the `Box`).
final class RecordingProjection: AsyncProjection {
    final class Box: Sendable {
        let applied = Mutex<[UInt64]>([])
        let checkpoint = Mutex<UInt64>(0)
        let failures = Mutex<[UInt64: Int]>([:])  // position → remaining failures (Int.max: poison)
    }

    let name: String
    let handledEvents: [String]
    let box: Box

    init(name: String = "recorder", handledEvents: [String] = [], box: Box = Box()) {
        self.name = name
        self.handledEvents = handledEvents
        self.box = box
    }

    func apply(_ events: [Event]) async throws {
        for e in events {
            let fail = box.failures.withLock { f -> Bool in
                guard let n = f[e.globalPosition], n > 0 else { return false }
                f[e.globalPosition] = n == Int.max ? n : n - 1
                return true
            }
            if fail { throw MinkError(.projectionFailed, "cannot handle \(e.globalPosition)") }
        }
        box.applied.withLock { $0.append(contentsOf: events.map(\.globalPosition)) }
    }

    func checkpoint() async throws -> UInt64 { box.checkpoint.withLock { $0 } }
    func setCheckpoint(_ position: UInt64) async throws { box.checkpoint.withLock { $0 = position } }
    func reset() async throws { box.applied.withLock { $0.removeAll() } }
}

let fastRetry = RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(2))

@Suite("Projections", .timeLimit(.minutes(3)))
struct ProjectionTests {
    @Test func inlineProjectionCommitsWithTheAppend() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage, inlineProjections: [OrderSummaryProjection()])
        try await store.append("order-1", events: [raw("OrderCreated"), raw("ItemAdded"), raw("Other")])
        let repo = DocumentRepository<OrderSummary>(store: storage, model: "orders")
        try await assertProjectionState(repo, "order-1", OrderSummary(id: "order-1", items: 1, status: "created"))
    }

    @Test func inlineProjectionThatThrowsLeavesTheStreamUnchanged() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let engine = ProjectionEngine(store: store, readModels: storage)
        await engine.registerInline(OrderSummaryProjection())
        try await store.append("order-1", events: [raw("OrderCreated")])
        await #expect(throws: MinkError.self) {
            try await store.append("order-1", events: [raw("ItemAdded"), raw("Poison")])
        }
        try await assertStreamVersion(store, "order-1", 1)
        #expect(try await store.headPosition() == 1)
        let repo = DocumentRepository<OrderSummary>(store: storage, model: "orders")
        try await assertProjectionState(repo, "order-1", OrderSummary(id: "order-1", items: 0, status: "created"))
        let status = try await engine.status("order-summary")
        #expect(status.mode == .inline && status.state == .running)
    }

    @Test func asyncProjectionRestartedFromItsCheckpointDoesNotReapply() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        try await store.append("s-1", events: (0..<10).map { _ in raw("E") })
        let engine1 = ProjectionEngine(store: store)
        await engine1.registerAsync(RecordingProjection(box: box), options: AsyncOptions(batchSize: 3, retryPolicy: fastRetry))
        try await engine1.start()
        let s1 = try await engine1.waitUntilCaughtUp("recorder")
        #expect(s1.checkpoint == 10 && s1.lag == 0 && s1.state == .running)
        await engine1.stop()
        #expect(try await engine1.status("recorder").state == .stopped)

        try await store.append("s-1", events: (0..<5).map { _ in raw("E") })
        let engine2 = ProjectionEngine(store: store)
        await engine2.registerAsync(RecordingProjection(box: box), options: AsyncOptions(batchSize: 3, retryPolicy: fastRetry))
        try await engine2.start()
        _ = try await engine2.waitUntilCaughtUp("recorder")
        await engine2.stop()
        #expect(box.applied.withLock { $0 } == Array(1...15), "each event applied exactly once across the restart")
    }

    /// A name registered again replaces the earlier projection: an inline one runs once per
    /// event, not twice, and is listed once; an async one registered again while the engine runs
    /// stops the earlier one, which sees nothing after the engine stops (before session 23 both
    /// ran, and the earlier async one could not be stopped).
    @Test func aNameRegisteredAgainReplacesTheEarlierProjection() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let engine = ProjectionEngine(store: store, readModels: storage)
        await engine.registerInline(OrderSummaryProjection())
        await engine.registerInline(OrderSummaryProjection())
        #expect(store.inlineProjections.count == 1)
        try await store.append("order-1", events: [raw("ItemAdded")])
        let repo = DocumentRepository<OrderSummary>(store: storage, model: "orders")
        try await assertProjectionState(repo, "order-1", OrderSummary(id: "order-1", items: 1, status: "new"))
        #expect(try await engine.statuses().map(\.name) == ["order-summary"])

        let first = RecordingProjection.Box(), second = RecordingProjection.Box()
        await engine.registerAsync(RecordingProjection(name: "rec", box: first), options: AsyncOptions(retryPolicy: fastRetry))
        try await engine.start()
        _ = try await engine.waitUntilCaughtUp("rec")
        await engine.registerAsync(RecordingProjection(name: "rec", box: second), options: AsyncOptions(retryPolicy: fastRetry))
        // The second starts once the first has stopped (from its own checkpoint: 0).
        _ = try await engine.waitUntilCaughtUp("rec")
        #expect(second.applied.withLock { $0 } == [1])
        await engine.stop()
        let before = first.applied.withLock { $0 }
        try await store.append("order-2", events: [raw("ItemAdded")])
        try await Task.sleep(for: .milliseconds(200))
        #expect(first.applied.withLock { $0 } == before, "the replaced projection still ran after stop")
        #expect(try await engine.statuses().map(\.name) == ["order-summary", "rec"])
        // A name moving from inline to async leaves the store's inline list.
        await engine.registerAsync(RecordingProjection(name: "order-summary", box: RecordingProjection.Box()))
        #expect(store.inlineProjections.isEmpty)
    }

    /// A read-model projection registered again: the inline hook the engine installed is
    /// replaced (one entry), moved out when the name becomes async, and a hook the caller
    /// installed itself (`installsInlineHook: false`) is left alone.
    @Test func aReadModelRegisteredAgainKeepsOneHookAndNeverTheCallersOwn() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let engine = ProjectionEngine(store: store, readModels: storage)
        await engine.registerReadModel(OrderSummaryProjection(), mode: .inline, readModels: storage)
        await engine.registerReadModel(OrderSummaryProjection(), mode: .inline, readModels: storage)
        #expect(store.inlineProjections.map(\.name) == ["order-summary"])
        await engine.registerReadModel(OrderSummaryProjection(), mode: .async, readModels: storage)
        #expect(store.inlineProjections.isEmpty, "the engine's hook stayed after the name became async")

        let own = EventStore(adapter: InMemoryStorage())
        let ownEngine = ProjectionEngine(store: own, readModels: storage)
        own.registerInline(ProjectionEngine.inlineHook(for: OrderSummaryProjection()))
        await ownEngine.registerReadModel(OrderSummaryProjection(), mode: .inline, readModels: storage, installsInlineHook: false)
        await ownEngine.registerReadModel(OrderSummaryProjection(), mode: .inline, readModels: storage, installsInlineHook: false)
        #expect(own.inlineProjections.map(\.name) == ["order-summary"], "the caller's own hook was taken out")
    }

    @Test func checkpointMovesPastUnhandledEvents() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        let engine = ProjectionEngine(store: store)
        await engine.registerAsync(RecordingProjection(handledEvents: ["Wanted"], box: box), options: AsyncOptions(batchSize: 2))
        try await engine.start()
        try await store.append("s-1", events: [raw("Wanted"), raw("Other"), raw("Other"), raw("Wanted"), raw("Other")])
        let status = try await engine.waitUntilCaughtUp("recorder", to: 5)
        await engine.stop()
        #expect(status.checkpoint == 5)
        #expect(box.applied.withLock { $0 } == [1, 4])
    }

    @Test func transientFailureIsRetriedPoisonEventFaultsAndResumeRetriesIt() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        box.failures.withLock { $0 = [2: 1, 4: Int.max] }  // 2 fails once; 4 always fails
        let engine = ProjectionEngine(store: store)
        await engine.registerAsync(RecordingProjection(box: box), options: AsyncOptions(batchSize: 10, retryPolicy: fastRetry))
        try await engine.start()
        try await store.append("s-1", events: (0..<6).map { _ in raw("E") })
        var status = try await engine.waitUntilCaughtUp("recorder", to: 6, timeout: .seconds(60))
        #expect(status.state == .faulted)
        #expect(status.faultedPosition == 4)
        #expect(status.checkpoint == 3, "everything before the poison event is checkpointed")
        #expect(status.lastError?.contains("cannot handle 4") == true)
        #expect(!box.applied.withLock { $0 }.contains(4))
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await engine.status("recorder").checkpoint == 3, "a faulted projection does not move on")

        box.failures.withLock { $0[4] = 0 }  // the operator fixes the cause
        try await engine.resume("recorder")
        status = try await engine.waitUntilCaughtUp("recorder", to: 6)
        await engine.stop()
        #expect(status.checkpoint == 6 && status.lastError == nil)
        #expect(Set(box.applied.withLock { $0 }) == Set(1...6))
    }

    @Test func pauseResumeRebuildAndStatus() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        let engine = ProjectionEngine(store: store)
        await engine.registerAsync(RecordingProjection(box: box), options: AsyncOptions(batchSize: 50))
        try await engine.start()
        try await store.append("s-1", events: (0..<4).map { _ in raw("E") })
        _ = try await engine.waitUntilCaughtUp("recorder", to: 4)
        try await engine.pause("recorder")
        try await Task.sleep(for: .milliseconds(30))
        try await store.append("s-1", events: [raw("E")])
        try await Task.sleep(for: .milliseconds(60))
        var status = try await engine.status("recorder")
        #expect(status.state == .paused && status.checkpoint == 4 && status.lag == 1)
        try await engine.resume("recorder")
        status = try await engine.waitUntilCaughtUp("recorder", to: 5)
        #expect(status.state == .running && status.checkpoint == 5)

        try await engine.rebuild("recorder")
        status = try await engine.waitUntilCaughtUp("recorder", to: 5)
        #expect(box.applied.withLock { $0 } == [1, 2, 3, 4, 5], "rebuild resets and replays from 0")
        await #expect(throws: MinkError.projectionNotFound("nope")) { try await engine.rebuild("nope") }
        await #expect(throws: MinkError.projectionNotFound("nope")) { try await engine.pause("nope") }
        #expect(try await engine.statuses().map(\.name) == ["recorder"])
        await engine.stop()
    }

    @Test func workersKeepEachStreamInOrder() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let box = RecordingProjection.Box()
        let engine = ProjectionEngine(store: store)
        await engine.registerAsync(RecordingProjection(box: box), options: AsyncOptions(batchSize: 40, workers: 4))
        for i in 0..<60 { try await store.append("s-\(i % 6)", events: [raw("E")]) }
        try await engine.start()
        _ = try await engine.waitUntilCaughtUp("recorder", to: 60)
        await engine.stop()
        let applied = box.applied.withLock { $0 }
        #expect(Set(applied) == Set(1...60) && applied.count == 60)
        for s in 0..<6 {
            let positions = applied.filter { ($0 - 1) % 6 == UInt64(s) }
            #expect(positions == positions.sorted(), "stream s-\(s) in order")
        }
    }

    @Test func transactionalAsyncProjectionCommitsDocumentsWithItsCheckpoint() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let engine = ProjectionEngine(store: store, readModels: storage)
        await engine.registerAsync(OrderSummaryProjection(), readModels: storage, options: AsyncOptions(batchSize: 2, retryPolicy: fastRetry))
        try await engine.start()
        try await store.append("order-1", events: [raw("OrderCreated"), raw("ItemAdded"), raw("ItemAdded")])
        var status = try await engine.waitUntilCaughtUp("order-summary", to: 3)
        #expect(status.checkpoint == 3)
        #expect(try await storage.checkpoint("order-summary") == 3)
        let repo = DocumentRepository<OrderSummary>(store: storage, model: "orders")
        try await assertProjectionState(repo, "order-1", OrderSummary(id: "order-1", items: 2, status: "created"))
        // A poison event rolls back its transaction: neither document nor checkpoint move.
        try await store.append("order-1", events: [raw("ItemAdded"), raw("Poison")])
        status = try await engine.waitUntilCaughtUp("order-summary", to: 5)
        #expect(status.state == .faulted && status.faultedPosition == 5 && status.checkpoint == 4)
        try await assertProjectionState(repo, "order-1", OrderSummary(id: "order-1", items: 3, status: "created"))
        // Rebuild drops the read model and replays.
        await engine.stop()
        try await engine.rebuild("order-summary")
        #expect(try await repo.get("order-1") == nil)
    }

    /// An inline projection's rebuild drops its read model and replays the log while the store's
    /// appends wait: every item counted once, appends racing the rebuild included (before
    /// 2026-12-07 an append committed during the replay was counted twice: by its hook and by
    /// the replay). A projection with no read model to drop is refused (its replay would apply
    /// every event a second time).
    @Test func anInlineRebuildCountsEveryEventOnceWhileAppendsRace() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let engine = ProjectionEngine(store: store, readModels: storage)
        await engine.registerInline(OrderSummaryProjection())
        for _ in 0..<10 { try await store.append("order-1", events: (0..<100).map { _ in raw("ItemAdded") }) }
        let repo = DocumentRepository<OrderSummary>(store: storage, model: "orders")
        try await assertProjectionState(repo, "order-1", OrderSummary(id: "order-1", items: 1_000, status: "new"))
        // Appends keep coming while the rebuild runs (it replays 1,000+ events in pages of 500).
        let writer = Task {
            for _ in 0..<40 { try await store.append("order-1", events: [raw("ItemAdded")]) }
        }
        try await Task.sleep(for: .milliseconds(1))
        try await engine.rebuild("order-summary")
        try await writer.value
        try await assertProjectionState(repo, "order-1", OrderSummary(id: "order-1", items: 1_040, status: "new"))
        // Two rebuilds at once: the second waits for the first (it dropped the model midway
        // through the first's replay, and every event was counted twice).
        async let first: Void = engine.rebuild("order-summary")
        async let second: Void = engine.rebuild("order-summary")
        _ = try await (first, second)
        try await assertProjectionState(repo, "order-1", OrderSummary(id: "order-1", items: 1_040, status: "new"))

        await engine.registerInline(CountingInline())
        await #expect(throws: MinkError.self) { try await engine.rebuild("counting") }
    }

    /// An async projection's batches (documents with their checkpoint) ask the storage for
    /// relaxed commits; a direct write through a repository stays durable.
    @Test func asyncProjectionBatchesCommitRelaxedAndRepositoryWritesDurable() async throws {
        let storage = InMemoryStorage()
        let recorder = DurabilityRecorder(storage)
        let store = EventStore(adapter: storage)
        let engine = ProjectionEngine(store: store, readModels: recorder)
        await engine.registerAsync(OrderSummaryProjection(), readModels: recorder, options: AsyncOptions(batchSize: 2, retryPolicy: fastRetry))
        try await engine.start()
        try await store.append("order-1", events: [raw("OrderCreated"), raw("ItemAdded"), raw("ItemAdded")])
        _ = try await engine.waitUntilCaughtUp("order-summary", to: 3)
        await engine.stop()
        let seen = recorder.seen.withLock { $0 }
        #expect(seen.contains(.relaxed), "the batches asked for relaxed commits: \(seen)")
        #expect(!seen.contains(.durable), "no batch asked for a durable commit: \(seen)")
        try await DocumentRepository<OrderSummary>(store: recorder, model: "orders").save(OrderSummary(id: "x", items: 0, status: "new"))
        #expect(recorder.seen.withLock { $0.last } == .durable)
    }
}

/// Records the durability every transaction asks for, then runs it on the real storage.
private final class DurabilityRecorder: ForwardingReadModelStore, @unchecked Sendable {
    let seen = Mutex<[CommitDurability]>([])

    override func transaction<T: Sendable>(
        _ durability: CommitDurability, _ body: @Sendable (any ReadModelTransaction) throws -> T
    ) async throws -> T {
        seen.withLock { $0.append(durability) }
        return try await inner.transaction(durability, body)
    }
    override func wrapping(_ tenantStore: any ReadModelStore) -> any ReadModelStore { DurabilityRecorder(tenantStore) }
}

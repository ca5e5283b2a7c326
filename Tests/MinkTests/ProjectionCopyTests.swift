import Foundation
import Mink
import MetricsTestKit
import MinkTestFixtures
import MinkTesting
import Testing

/// The engine's read-model projections: inline and async, rebuilt into a new copy.
@Suite("Read-model projections with copies", .timeLimit(.minutes(3)))
struct ProjectionCopyTests {
    @Test(arguments: [ProjectionEngine.Mode.inline, .async])
    func rebuildSwitchesToANewCopy(_ mode: ProjectionEngine.Mode) async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let engine = ProjectionEngine(store: store, readModels: storage)
        await engine.registerReadModel(OrderSummaryProjection(), mode: mode, readModels: storage, options: AsyncOptions(batchSize: 2, retryPolicy: fastRetry))
        try await engine.start()
        try await store.append("order-1", events: [raw("OrderCreated"), raw("ItemAdded"), raw("ItemAdded")])
        _ = try await engine.waitUntilCaughtUp("order-summary", to: 3)
        var name = await engine.readModelName("orders")
        #expect(name == "orders")
        try await engine.rebuild("order-summary")
        // Returns as soon as the switch happens; the bound only has to outlast a starved machine
        // (the whole suite on two cores held this loop past 5 s).
        let deadline = ContinuousClock.now + .seconds(60)
        while name != "orders__g2", ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
            name = await engine.readModelName("orders")
        }
        #expect(name == "orders__g2")
        try await store.append("order-1", events: [raw("ItemAdded")])
        let status = try await engine.waitUntilCaughtUp("order-summary", to: 4)
        #expect(status.state == .running && status.checkpoint == 4)
        let items = try await engine.withReadModel("orders") { physical in
            try await DocumentRepository<OrderSummary>(store: storage, model: physical).get("order-1")?.items
        }
        #expect(items == 3)
        await engine.stop()
    }

    /// After a rebuild's switch the new serving runner applies new events at once; the replaced
    /// copy's drop waits for its grace on the side. (The grace was slept in the runner's catch-up
    /// callback: nothing was applied for `dropGrace` — 5 s in minkd on PostgreSQL — after every
    /// rebuild.) The old copy is still dropped once the grace has passed.
    @Test func theDropGraceDoesNotHoldTheNewServingRunner() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let engine = ProjectionEngine(store: store, readModels: storage)
        await engine.registerReadModel(
            OrderSummaryProjection(), mode: .async, readModels: storage, options: AsyncOptions(batchSize: 2, retryPolicy: fastRetry),
            dropGrace: .seconds(8))
        try await engine.start()
        try await store.append("order-1", events: [raw("OrderCreated"), raw("ItemAdded")])
        _ = try await engine.waitUntilCaughtUp("order-summary", to: 2)
        try await engine.rebuild("order-summary")
        let deadline = ContinuousClock.now + .seconds(60)
        while await engine.readModelName("orders") != "orders__g2", ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(await engine.readModelName("orders") == "orders__g2")
        let appended = ContinuousClock.now
        try await store.append("order-1", events: [raw("ItemAdded")])
        let status = try await engine.waitUntilCaughtUp("order-summary", to: 3)
        #expect(status.checkpoint == 3)
        let took = ContinuousClock.now - appended
        // Well below the grace (8 s), with room for a loaded machine (3.2 s seen with a 3 s bound).
        #expect(took < .seconds(6), "the new serving runner applied an event \(took) after it was appended")
        // The replaced copy goes after the grace.
        var names = try await storage.modelNames()
        while names.contains("orders"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            names = try await storage.modelNames()
        }
        #expect(!names.contains("orders") && names.contains("orders__g2"), "\(names)")
        await engine.stop()
    }

    /// `mink_projection_delay_seconds`: one value per event the serving copy applied, from the
    /// event's append to its batch's commit; a rebuild's replay of the log records nothing.
    @Test func theServingCopyRecordsHowLongEachEventTookToShow() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let metrics = TestMetrics()
        let engine = ProjectionEngine(store: store, readModels: storage, metrics: metrics)
        await engine.registerReadModel(
            OrderSummaryProjection(), mode: .async, readModels: storage, options: AsyncOptions(batchSize: 2, retryPolicy: fastRetry))
        try await engine.start()
        func delays() throws -> [Int64] {
            try metrics.expectTimer("mink_projection_delay_seconds", [("projection", "order-summary")]).values
        }
        let before = Date()
        try await store.append("order-1", events: [raw("OrderCreated"), raw("ItemAdded"), raw("ItemAdded")])
        _ = try await engine.waitUntilCaughtUp("order-summary", to: 3)
        let elapsed = Int64(Date().timeIntervalSince(before) * 1e9)
        let first = try delays()
        #expect(first.count == 3)
        #expect(first.allSatisfy { $0 >= 0 && $0 <= elapsed }, "\(first) within \(elapsed) ns")

        try await engine.rebuild("order-summary")
        let deadline = ContinuousClock.now + .seconds(60)
        while await engine.readModelName("orders") != "orders__g2", ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(await engine.readModelName("orders") == "orders__g2")
        #expect(try delays().count == 3, "the rebuild's replay recorded nothing")
        // The rebuilt copy's runner serves now, and records.
        try await store.append("order-1", events: [raw("ItemAdded")])
        _ = try await engine.waitUntilCaughtUp("order-summary", to: 4)
        #expect(try delays().count == 4)
        await engine.stop()
    }
}

import Foundation
import Mink
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
}

import Foundation
import Mink
import MinkTestFixtures
import MinkTesting
import Testing

/// Stores every payload inside `{"payload": …}`, to tell its bytes from the default's.
struct EnvelopeSerializer: EventSerializer {
    private struct Wrapped<T: Encodable>: Encodable { var payload: T }
    private struct Unwrap<T: Decodable>: Decodable { var payload: T }
    func serialize(_ value: some Encodable) throws -> Data { try JSONEncoder().encode(Wrapped(payload: value)) }
    func deserialize<T: Decodable>(_ data: Data, as type: T.Type) throws -> T {
        try JSONDecoder().decode(Unwrap<T>.self, from: data).payload
    }
}

@Suite("Aggregates", .timeLimit(.minutes(3)))
struct AggregateTests {
    /// The store's serializer (seed: `WithSerializer`) writes typed payloads and reads them back
    /// when an aggregate is loaded.
    @Test func theStoresSerializerWritesAndReadsPayloads() async throws {
        let store = EventStore(adapter: InMemoryStorage(), registry: orderRegistry(), serializer: EnvelopeSerializer())
        let order = Order(id: "order-1")
        try order.create("c-1")
        try order.addItem("a", 2, 10)
        try await store.saveAggregate(order)
        let stored = try await store.load("order-1")
        let first = try JSONSerialization.jsonObject(with: stored[0].data) as? [String: Any]
        #expect(first?.keys.sorted() == ["payload"], "\(String(decoding: stored[0].data, as: UTF8.self))")
        let loaded = Order(id: "order-1")
        try await store.loadAggregate(loaded)
        #expect(loaded.version == 2 && loaded.customerID == "c-1" && loaded.total == 20)
        // The default serializer cannot read them: the store's own was used.
        let plain = EventStore(adapter: InMemoryStorage(), registry: orderRegistry())
        _ = try await plain.append("order-1", events: stored.map { EventData(type: $0.type, data: $0.data) })
        await #expect(throws: (any Error).self) { try await plain.loadAggregate(Order(id: "order-1")) }
    }

    /// The seed's `TestOrderAggregate`, in Swift form. The one difference: `saveAggregate` clears
    /// the uncommitted events (as it must, or a second save would append them again), so the
    /// uncommitted types are asserted before saving.
    @Test func testOrderAggregate() async throws {
        let store = InMemoryStore.make(registry: orderRegistry())
        let order = Order(id: "order-123")
        try order.create("customer-456")
        try order.addItem("SKU-001", 2, 29.99)
        try assertEventTypes(order.uncommittedEvents, "OrderCreated", "ItemAdded")
        try await store.saveAggregate(order)
        try await assertStreamVersion(store, "order-123", 2)
        #expect(order.uncommittedEvents.isEmpty && order.version == 2)
    }

    @Test func loadRebuildsStateAndSaveUsesTheVersion() async throws {
        let store = InMemoryStore.make(registry: orderRegistry())
        let order = Order(id: "order-1")
        try order.create("c-1")
        try order.addItem("a", 2, 10)
        try await store.saveAggregate(order)

        let loaded = Order(id: "order-1")
        try await store.loadAggregate(loaded)
        #expect(loaded.version == 2 && loaded.customerID == "c-1" && loaded.total == 20)
        try loaded.ship()
        let r = try #require(try await store.saveAggregate(loaded))
        #expect(r.fromVersion == 3)

        let fresh = Order(id: "order-new")
        try await store.loadAggregate(fresh)
        #expect(fresh.version == 0 && fresh.customerID.isEmpty, "a missing stream is a new aggregate")
    }

    @Test func concurrentSaveFailsWithDetails() async throws {
        let store = InMemoryStore.make(registry: orderRegistry())
        let seed = Order(id: "order-2")
        try seed.create("c")
        try await store.saveAggregate(seed)
        let a = Order(id: "order-2"), b = Order(id: "order-2")
        try await store.loadAggregate(a)
        try await store.loadAggregate(b)
        try a.addItem("x", 1, 1)
        try b.addItem("y", 1, 1)
        try await store.saveAggregate(a)
        do {
            try await store.saveAggregate(b)
            Issue.record("expected a concurrency conflict")
        } catch let e as MinkError {
            #expect(e.code == .concurrencyConflict && e.streamID == "order-2" && e.expectedVersion == 1 && e.actualVersion == 2)
        }
        #expect(b.uncommittedEvents.count == 1, "a failed save keeps the events")
        try await assertStreamVersion(store, "order-2", 2)
    }

    @Test func saveWithNothingUncommittedWritesNothing() async throws {
        let store = InMemoryStore.make(registry: orderRegistry())
        let order = Order(id: "order-3")
        #expect(try await store.saveAggregate(order) == nil)
        #expect(try await store.headPosition() == 0)
    }

    @Test func snapshotsAreTakenByPolicyAndLoadingAppliesOnlyLaterEvents() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage, registry: orderRegistry(), snapshots: (storage, .everyNEvents(10)))
        let order = Order(id: "order-4")
        try order.create("c")
        for i in 0..<8 { try order.addItem("s\(i)", 1, 1) }
        try await store.saveAggregate(order)  // version 9: no snapshot yet
        #expect(try await storage.loadSnapshot(streamID: "order-4") == nil)
        try order.addItem("s9", 1, 1)
        try order.addItem("s10", 1, 1)
        try await store.saveAggregate(order)  // version 11: crosses 10
        let snap = try #require(try await storage.loadSnapshot(streamID: "order-4"))
        #expect(snap.version == 11)
        try order.addItem("s11", 1, 1)
        try await store.saveAggregate(order)  // version 12

        let loaded = Order(id: "order-4")
        try await store.loadAggregate(loaded)
        #expect(loaded.version == 12)
        #expect(loaded.appliedCount == 1, "only the event after the snapshot is applied")
        #expect(loaded.total == 11 && loaded.items.count == 11)

        // A snapshot at the largest version (stored by another writer) loads without trapping.
        try await storage.saveSnapshot(Snapshot(streamID: "order-4", version: Int64.max, state: snap.state))
        let last = Order(id: "order-4")
        try await store.loadAggregate(last)
        #expect(last.version == Int64.max && last.appliedCount == 0)
    }
}

import Foundation
import Mink
import MinkTestFixtures
import MinkClient
import Testing

@Suite("Remote aggregates and snapshots", .timeLimit(.minutes(3)))
struct AggregateTests {
    @Test func seedOrderExampleAcrossTwoClients() async throws {
        try await withServer { server in
            let writer = server.client()
            let order = Order(id: "order-123")
            try order.create("customer-456")
            try order.addItem("SKU-001", 2, 29.99)
            let saved = try #require(try await writer.saveAggregate(order))
            #expect(saved.fromVersion == 1 && saved.toVersion == 2)
            #expect(order.version == 2 && order.uncommittedEvents.isEmpty)
            #expect(try await writer.saveAggregate(order) == nil, "nothing uncommitted: nothing sent")

            let reader = server.client()
            let loaded = Order(id: "order-123")
            try await reader.loadAggregate(loaded)
            #expect(loaded.version == 2 && loaded.customerID == "customer-456" && loaded.items == ["SKU-001": 2])
            #expect(abs(loaded.total - 59.98) < 1e-9)

            // Both change the order; the second save conflicts with the details of the core.
            try order.ship()
            try loaded.addItem("SKU-002", 1, 5)
            try await writer.saveAggregate(order)
            do {
                try await reader.saveAggregate(loaded)
                Issue.record("expected a concurrency conflict")
            } catch let e as MinkError {
                #expect(e.code == .concurrencyConflict)
                #expect(e.streamID == "order-123" && e.expectedVersion == 2 && e.actualVersion == 3)
            }
            #expect(loaded.version == 2 && loaded.uncommittedEvents.count == 1, "a failed save changes nothing")

            let fresh = Order(id: "order-404")
            try await reader.loadAggregate(fresh)
            #expect(fresh.version == 0 && fresh.customerID.isEmpty, "a missing stream is a new aggregate")
        }
    }

    @Test func loadingPagesThroughLongStreams() async throws {
        try await withServer { server in
            let client = server.client()
            let order = Order(id: "order-long")
            try order.create("c")
            for i in 0..<30 { try order.addItem("s\(i % 3)", 1, 1) }
            try await client.saveAggregate(order)
            let loaded = Order(id: "order-long")
            try await client.loadAggregate(loaded, pageSize: 7)
            #expect(loaded.version == 31 && loaded.appliedCount == 31 && loaded.items == ["s0": 10, "s1": 10, "s2": 10])
            // A page size the server does not give (it gives 1 to 10,000) still loads every event
            // (0 loaded one event and stopped: the page was "short").
            for size in [0, -5] {
                let odd = Order(id: "order-long")
                try await client.loadAggregate(odd, pageSize: size)
                #expect(odd.version == 31 && odd.appliedCount == 31, "pageSize \(size): \(odd.appliedCount)")
            }
        }
    }

    @Test func unregisteredEventTypesFailToLoad() async throws {
        try await withServer { server in
            let client = server.client()
            try await client.append("order-x", events: [raw("Mystery")])
            do {
                try await client.loadAggregate(Order(id: "order-x"))
                Issue.record("expected eventTypeNotRegistered")
            } catch let e as MinkError {
                #expect(e.code == .eventTypeNotRegistered)
            }
        }
    }

    @Test func snapshotRoundTrip() async throws {
        try await withServer { server in
            let client = server.client()
            #expect(try await client.loadSnapshot("order-s") == nil)
            let state = Data(#"{"customerID":"c","items":{"a":1},"total":3.5,"shipped":false}"#.utf8)
            #expect(try await client.saveSnapshot("order-s", version: 5, state: state))
            let snap = try #require(try await client.loadSnapshot("order-s"))
            #expect(snap.version == 5 && snap.streamID == "order-s")
            #expect(try JSONSerialization.jsonObject(with: snap.state) as? NSDictionary == JSONSerialization.jsonObject(with: state) as? NSDictionary)
            #expect(try await client.saveSnapshot("order-s", version: 3, state: Data("{}".utf8)) == false, "an older snapshot is ignored")
            #expect(try await client.loadSnapshot("order-s")?.version == 5)

            // A large state (stored compressed by the server) comes back intact.
            let big = Data(("{\"blob\":\"" + String(repeating: "xyz", count: 5000) + "\"}").utf8)
            try await client.saveSnapshot("order-big", version: 1, state: big)
            #expect(try await client.loadSnapshot("order-big")?.state == big)
            await #expect(throws: MinkError.self) { try await client.saveSnapshot("order-s", version: 9, state: Data("nope".utf8)) }
        }
    }

    @Test func snapshotsShortenLoading() async throws {
        try await withServer { server in
            let client = server.client(snapshotPolicy: .everyNEvents(10))
            let order = Order(id: "order-snap")
            try order.create("c-1")
            for _ in 0..<11 { try order.addItem("a", 1, 2) }
            try await client.saveAggregate(order)  // version 12: crosses 10, so a snapshot at 12
            #expect(try await client.loadSnapshot("order-snap")?.version == 12)
            try order.ship()
            try await client.saveAggregate(order)  // version 13: no new snapshot

            let loaded = Order(id: "order-snap")
            try await client.loadAggregate(loaded)
            #expect(loaded.version == 13 && loaded.appliedCount == 1, "only the event after the snapshot is applied")
            #expect(loaded.customerID == "c-1" && loaded.items == ["a": 11] && loaded.shipped)

            // saveSnapshot(of:) stores the current state at the current version.
            #expect(try await client.saveSnapshot(of: loaded))
            let again = Order(id: "order-snap")
            try await client.loadAggregate(again)
            #expect(again.version == 13 && again.appliedCount == 0 && again.shipped)
        }
    }
}

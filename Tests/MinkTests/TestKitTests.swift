import Foundation
import Mink
import MinkTestFixtures
import MinkTesting
import Testing

@Suite("Test kit", .timeLimit(.minutes(3)))
struct TestKitTests {
    @Test func eventBuilder() throws {
        let e = try EventBuilder("OrderCreated").withData(OrderCreated(customerID: "c-1")).withMetadata(Metadata(userID: "u"))
            .withStreamID("order-9").at(version: 3, position: 7).build()
        #expect(e.type == "OrderCreated" && e.streamID == "order-9" && e.version == 3 && e.globalPosition == 7)
        #expect(try e.decode(OrderCreated.self) == OrderCreated(customerID: "c-1"))
        #expect(e.metadata.userID == "u")
        try assertEventTypes([e, EventBuilder("X").withJSON("[]").build()], "OrderCreated", "X")
        // A payload that cannot be encoded is an error, not a `null` payload.
        #expect(throws: (any Error).self) { try EventBuilder("Bad").withData(["x": Double.nan]) }
    }

    @Test func assertionsFailWhenTheyShould() async throws {
        #expect(throws: AssertionFailure.self) { try assertEventTypes([EventBuilder("A").build()], "B") }
        let store = InMemoryStore.make()
        try await assertStreamVersion(store, "none", 0)
        await #expect(throws: AssertionFailure.self) { try await assertStreamVersion(store, "none", 1) }
        let repo = InMemoryRepository<OrderSummary>()
        await #expect(throws: AssertionFailure.self) { try await assertProjectionState(repo, "x", OrderSummary(id: "x", items: 0, status: "")) }
    }
}

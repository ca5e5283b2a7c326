import Foundation
import Mink
import MinkTestFixtures
import MinkTesting
import Testing

@Suite("EventStore", .timeLimit(.minutes(3)))
struct EventStoreTests {
    let store = EventStore(adapter: InMemoryStorage(), registry: orderRegistry())

    @Test func appendReturnsWhatWasAssigned() async throws {
        let r = try await store.append("order-1", [OrderCreated(customerID: "c-1"), ItemAdded(sku: "a", quantity: 1, price: 2)], expectedVersion: .noStream)
        #expect(r.fromVersion == 1 && r.toVersion == 2)
        #expect(r.fromPosition == 1 && r.toPosition == 2)
        #expect(r.eventIDs.count == 2 && Set(r.eventIDs).count == 2)
        let loaded = try await store.load("order-1")
        #expect(loaded.map(\.type) == ["OrderCreated", "ItemAdded"])
        #expect(loaded.map(\.id) == r.eventIDs)
        #expect(try loaded[0].decode(OrderCreated.self) == OrderCreated(customerID: "c-1"))
        #expect(try store.registry.decode(loaded[1]) as? ItemAdded == ItemAdded(sku: "a", quantity: 1, price: 2))
    }

    @Test func loadFromVersionAndStreamInfo() async throws {
        for i in 1...5 { try await store.append("order-2", events: [raw("E", #"{"i":\#(i)}"#)]) }
        #expect(try await store.load("order-2", fromVersion: 3).map(\.version) == [3, 4, 5])
        let info = try #require(try await store.streamInfo("order-2"))
        #expect(info.version == 5 && info.eventCount == 5 && info.category == "order")
        #expect(try await store.streamInfo("nothing") == nil)
        #expect(try await store.load("nothing").isEmpty)
        #expect(try await store.headPosition() == 5)
    }

    @Test func expectedVersionSemantics() async throws {
        await #expect(throws: MinkError.streamNotFound("acc-1")) {
            try await store.append("acc-1", events: [raw("X")], expectedVersion: .streamExists)
        }
        try await store.append("acc-1", events: [raw("Opened")], expectedVersion: .noStream)
        do {
            try await store.append("acc-1", events: [raw("X")], expectedVersion: .exact(7))
            Issue.record("expected a conflict")
        } catch let e as MinkError where e.code == .concurrencyConflict {
            #expect(e.streamID == "acc-1" && e.expectedVersion == 7 && e.actualVersion == 1)
            #expect(e.message == "concurrency conflict on stream acc-1: expected 7, got 1")
        }
        #expect(try await store.headPosition() == 1, "a failed check writes nothing")
        try await store.append("acc-1", events: [raw("Y")], expectedVersion: .streamExists)
        try await store.append("acc-1", events: [raw("Z")], expectedVersion: .exact(2))
        try await assertStreamVersion(store, "acc-1", 3)
    }

    @Test func invalidAppendsAreErrors() async throws {
        await #expect(throws: MinkError.self) { try await store.append("", events: [raw("X")]) }
        await #expect(throws: MinkError.self) { try await store.append("s-1", events: []) }
        await #expect(throws: MinkError.self) { try await store.append("bad\u{1}id", events: [raw("X")]) }
        await #expect(throws: MinkError.self) { try await store.append(String(repeating: "x", count: 257), events: [raw("X")]) }
        await #expect(throws: MinkError.self) { try await store.append("s-1", events: [raw("X")], expectedVersion: .exact(-1)) }
        await #expect(throws: MinkError.self) { try await store.append("s-1", events: [raw("X", id: "same"), raw("Y", id: "same")]) }
        #expect(try await store.headPosition() == 0)
    }

    @Test func fiveConcurrentAppendsExpectingTheSameVersionOneWins() async throws {
        try await store.append("race-1", events: [raw("Start")])
        let results = await withTaskGroup(of: Result<AppendResult, any Error>.self) { group in
            for i in 0..<5 {
                group.addTask { [store] in
                    do { return .success(try await store.append("race-1", events: [raw("Try", #"{"i":\#(i)}"#)], expectedVersion: .exact(1))) } catch {
                        return .failure(error)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter(\.isSuccess).count == 1)
        for case .failure(let error) in results {
            let e = try #require(error as? MinkError)
            #expect(e.code == .concurrencyConflict && e.actualVersion == 2)
        }
        try await assertStreamVersion(store, "race-1", 2)
    }

    @Test func metadataIsMergedAndKept() async throws {
        var eventMeta = Metadata(causationID: "cause-1")
        eventMeta.custom = ["k": "event"]
        try await store.append(
            "meta-1", events: [EventData(type: "E", data: Data("{}".utf8), metadata: eventMeta)],
            metadata: Metadata(correlationID: "corr-1", userID: "u-1", custom: ["k": "append", "x": "y"])
        )
        let e = try #require(try await store.load("meta-1").first)
        #expect(e.metadata == Metadata(correlationID: "corr-1", causationID: "cause-1", userID: "u-1", custom: ["k": "event", "x": "y"]))
    }

    @Test func globalLogWithFilters() async throws {
        try await store.append("order-1", [OrderCreated(customerID: "a")])
        try await store.append("customer-1", events: [raw("CustomerRegistered")])
        try await store.append("order-2", [OrderCreated(customerID: "b"), OrderShipped()])
        #expect(try await store.readAll(after: 0).map(\.globalPosition) == [1, 2, 3, 4])
        #expect(try await store.readAll(after: 2).map(\.globalPosition) == [3, 4])
        #expect(try await store.readAll(filter: EventFilter(category: "order")).map(\.globalPosition) == [1, 3, 4])
        #expect(try await store.readAll(filter: EventFilter(eventTypes: ["OrderShipped"])).map(\.globalPosition) == [4])
        #expect(try await store.readAll(filter: EventFilter(streamIDs: ["customer-1"])).map(\.type) == ["CustomerRegistered"])
        #expect(try await store.readAll(after: 0, limit: 2).count == 2)
        #expect(StreamID.category(of: "order-123-x") == "order" && StreamID.category(of: "plain") == "plain")
    }

    @Test func idempotentRetryReturnsTheOriginalResult() async throws {
        let events = [raw("A", #"{"a":1}"#, id: "e-1"), raw("B", #"{"b":1}"#, id: "e-2")]
        let first = try await store.append("idem-1", events: events, expectedVersion: .noStream)
        let again = try await store.append("idem-1", events: events, expectedVersion: .noStream)
        #expect(again.isReplay && again.toPosition == first.toPosition && again.eventIDs == ["e-1", "e-2"])
        await #expect(throws: MinkError.self) { try await store.append("idem-1", events: [raw("A", #"{"a":2}"#, id: "e-1")]) }
        #expect(try await store.headPosition() == 2)
    }

    @Test func unregisteredTypesAreAClearError() async throws {
        try await store.append("x-1", events: [raw("Mystery")])
        let event = try #require(try await store.load("x-1").first)
        do {
            _ = try store.registry.decode(event)
            Issue.record("expected an error")
        } catch let e as MinkError {
            #expect(e.code == .eventTypeNotRegistered)
            #expect(e.message.contains("Mystery"))
        }
        let r = EventRegistry()
        r.register("order.created.v1", OrderCreated.self)
        #expect(r.name(for: OrderCreated(customerID: "x")) == "order.created.v1")
        #expect(r.lookup("order.created.v1") is OrderCreated.Type)
        #expect(r.lookup("nope") == nil)
        #expect(r.name(for: OrderShipped()) == "OrderShipped", "unregistered payloads are named by their type")
    }

    /// A reused event ID's error says which rule was broken: another event under the ID, or the
    /// events of an earlier append sent again as part of a different append (some without their
    /// IDs): "used for another event" was misleading for the second (a contract audit).
    @Test func aReusedEventIDSaysWhetherTheEventDiffersOrTheAppendIsNotARetry() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        try await store.append("s-1", events: [raw("X", id: "e-1")])
        func message(_ events: [EventData]) async -> String? {
            do { try await store.append("s-1", events: events) } catch let e as MinkError where e.code == .duplicateEventID {
                return e.message
            } catch { return "\(error)" }
            return nil
        }
        #expect(await message([raw("Y", id: "e-1")])?.contains("was already used for another event") == true)
        try await store.append("s-2", events: [raw("X", id: "e-2"), raw("X", id: "e-3")])
        do {
            try await store.append("s-2", events: [raw("X", id: "e-2"), raw("Y", id: "e-3")])
            Issue.record("a changed event under a stored ID was accepted")
        } catch let e as MinkError {
            #expect(e.message.contains("event ID e-3 was already used for another event"), "names the differing ID: \(e.message)")
        }
        let partial = await message([raw("X", id: "e-1"), raw("X")])
        #expect(partial?.contains("is not a retry of the append that stored it") == true, "\(partial ?? "no error")")
        #expect(try await store.load("s-1").count == 1)
    }

    @Test func errorsThrownByTheStoreAreSwitchable() async throws {
        /// The code of the `MinkError` that `body` throws (nil: none, or another error type).
        func code(_ body: () async throws -> Void) async -> MinkError.Code? {
            do { try await body() } catch let e as MinkError { return e.code } catch { return nil }
            return nil
        }
        #expect(await code { try await store.append("s-1", events: [raw("X")], expectedVersion: .streamExists) } == .streamNotFound)
        #expect(await code { try await store.append("s-1", events: [raw("X", id: "e-1")], expectedVersion: .noStream) } == nil)
        #expect(await code { try await store.append("s-1", events: [raw("X")], expectedVersion: .exact(7)) } == .concurrencyConflict)
        #expect(await code { try await store.append("s-1", events: [raw("Y", id: "e-1")]) } == .duplicateEventID)
        #expect(await code { try await store.append("", events: [raw("X")]) } == .validationFailed)
        #expect(await code { try await store.append("s-1", events: []) } == .validationFailed)
        let stored = try #require(try await store.load("s-1").first)
        #expect(await code { _ = try store.registry.decode(stored) } == .eventTypeNotRegistered)
        let badData = try await store.append("s-2", events: [raw("OrderCreated", #"{"nope":1}"#)])
        let bad = try #require(try await store.load("s-2").first)
        #expect(badData.toVersion == 1)
        #expect(await code { _ = try store.registry.decode(bad) } == .serializationFailed)
        #expect(MinkError.unavailable("down").isTransient)
        #expect(!MinkError.streamNotFound("s").isTransient)
    }

    @Test func errorsKeepTheirCause() {
        struct Cause: Error, Equatable { let code: Int }
        let e = MinkError(
            .duplicateEventID, "dup", streamID: "s", expectedVersion: 1, actualVersion: 2, projectionName: "p", position: 7,
            underlying: Cause(code: 2067)
        )
        #expect(e.streamID == "s" && e.expectedVersion == 1 && e.actualVersion == 2 && e.projectionName == "p" && e.position == 7)
        #expect((e.underlying as? Cause) == Cause(code: 2067))
        #expect(!e.isTransient)
        // The cause is a diagnostic: equality and hashing look at code, message and details.
        let same = MinkError(.duplicateEventID, "dup", streamID: "s", expectedVersion: 1, actualVersion: 2, projectionName: "p", position: 7)
        #expect(e == same && e.hashValue == same.hashValue)
        #expect(e.description == "duplicate_event_id: dup")
        #expect(String(reflecting: e).contains("2067"))
        let conflict = MinkError.concurrencyConflict(streamID: "s", expected: 1, actual: 2)
        #expect(conflict.expectedVersion == 1 && conflict.actualVersion == 2 && conflict.underlying == nil)
    }
}

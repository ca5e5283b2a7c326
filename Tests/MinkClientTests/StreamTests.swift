import Foundation
import Mink
import MinkTestFixtures
import MinkClient
import Testing

@Suite("Streams over HTTP", .timeLimit(.minutes(3)))
struct StreamTests {
    @Test func typedAppendAndLoadRoundTrip() async throws {
        try await withServer { server in
            let client = server.client()
            let r = try await client.append(
                "order-1", [OrderCreated(customerID: "c-1"), ItemAdded(sku: "a", quantity: 2, price: 9.5)],
                expectedVersion: .noStream, metadata: Metadata(correlationID: "corr-1", custom: ["k": "v"])
            )
            #expect(r.streamID == "order-1" && r.fromVersion == 1 && r.toVersion == 2 && !r.isReplay)
            #expect(r.toPosition == r.fromPosition + 1)

            let events = try await client.load("order-1")
            #expect(events.map(\.type) == ["OrderCreated", "ItemAdded"])
            #expect(events.map(\.version) == [1, 2])
            #expect(events[0].metadata.correlationID == "corr-1" && events[0].metadata.custom == ["k": "v"])
            #expect(try events[1].decode(ItemAdded.self) == ItemAdded(sku: "a", quantity: 2, price: 9.5))
            #expect(try client.registry.decode(events[0]) as? OrderCreated == OrderCreated(customerID: "c-1"))
            #expect(UUID(uuidString: events[0].id) != nil && events[0].id == events[0].id.lowercased())
            #expect(events[0].category == "order")
        }
    }

    @Test func rawDataIsReturnedByteForByte() async throws {
        try await withServer { server in
            let client = server.client()
            let json = #"{"z":1,"a":[true,null,"é\u2028"],"n":1.50}"#
            let id = UUID().uuidString
            try await client.append("raw-1", events: [raw("Thing", json, id: id)])
            let e = try #require(try await client.load("raw-1").first)
            #expect(String(decoding: e.data, as: UTF8.self) == json)
            #expect(e.id == id.lowercased())
        }
    }

    @Test func loadFollowsPagesAcrossMoreThanAThousandEvents() async throws {
        try await withServer { server in
            let client = server.client()
            for batch in 0..<3 {
                let events = (0..<500).map { raw("Tick", #"{"n":\#(batch * 500 + $0)}"#) }
                try await client.append("ticks", events: events)
            }
            let all = try await client.load("ticks")
            #expect(all.count == 1500)
            #expect(all.map(\.version) == Array(1...1500))
            let small = try await client.load("ticks", fromVersion: 1201, pageSize: 64)
            #expect(small.map(\.version) == Array(1201...1500))
            let backward = try await client.readStream("ticks", from: -1, limit: 3, direction: .backward)
            #expect(backward.map(\.version) == [1500, 1499, 1498])
        }
    }

    @Test func missingStreams() async throws {
        try await withServer { server in
            let client = server.client()
            await #expect(throws: MinkError.self) { try await client.load("nope-1") }
            do {
                _ = try await client.load("nope-1")
            } catch let e as MinkError {
                #expect(e.code == .streamNotFound && e.streamID == "nope-1")
            }
            #expect(try await client.streamInfo("nope-1") == nil)
            do {
                try await client.append("nope-1", events: [raw("X")], expectedVersion: .streamExists)
                Issue.record("appending with .streamExists to a missing stream must fail")
            } catch let e as MinkError {
                #expect(e.code == .streamNotFound)
            }
        }
    }

    @Test func streamInfo() async throws {
        try await withServer { server in
            let client = server.client()
            try await client.append("cart-9", events: [raw("A"), raw("B"), raw("C")])
            let info = try #require(try await client.streamInfo("cart-9"))
            #expect(info.streamID == "cart-9" && info.version == 3 && info.eventCount == 3 && info.category == "cart")
            #expect(info.createdAt <= info.updatedAt)
        }
    }

    @Test func concurrencyConflictCarriesTheDetails() async throws {
        try await withServer { server in
            let client = server.client()
            try await client.append("acct-1", events: [raw("Opened"), raw("Deposited")], expectedVersion: .noStream)
            do {
                try await client.append("acct-1", events: [raw("Deposited")], expectedVersion: .exact(1))
                Issue.record("expected a conflict")
            } catch let e as MinkError where e.code == .concurrencyConflict {
                #expect(e.streamID == "acct-1" && e.expectedVersion == 1 && e.actualVersion == 2)
                #expect(!e.isTransient)
            }
            do {
                try await client.append("acct-1", events: [raw("Opened")], expectedVersion: .noStream)
                Issue.record("expected a conflict")
            } catch let e as MinkError where e.code == .concurrencyConflict {
                #expect(e.expectedVersion == 0 && e.actualVersion == 2)
            }
            #expect(try await client.load("acct-1").count == 2, "a failed check writes nothing")
        }
    }

    @Test func repeatingAnAppendIsIdempotent() async throws {
        try await withServer { server in
            let client = server.client()
            let events = [raw("A", #"{"i":1}"#, id: UUID().uuidString), raw("B", #"{"i":2}"#, id: UUID().uuidString)]
            let first = try await client.append("idem-1", events: events, expectedVersion: .noStream)
            let second = try await client.append("idem-1", events: events, expectedVersion: .noStream)
            #expect(!first.isReplay && second.isReplay)
            #expect(first.fromVersion == second.fromVersion && first.toVersion == second.toVersion)
            #expect(first.fromPosition == second.fromPosition && first.toPosition == second.toPosition)
            #expect(try await client.load("idem-1").count == 2)

            // The same ID for a different event is refused.
            do {
                try await client.append("idem-1", events: [raw("Other", "{}", id: events[0].id)])
                Issue.record("expected duplicate_event_id")
            } catch let e as MinkError {
                #expect(e.code == .duplicateEventID)
            }
        }
    }

    @Test(arguments: ["a/b", "100%", "a%2Fb", "naïve-😀", "q?x=1&y", "sp ace+plus", "..", "-", "#frag"])
    func streamIDsArePercentEncoded(_ id: String) async throws {
        try await withServer { server in
            let client = server.client()
            let r = try await client.append(id, events: [raw("E")], expectedVersion: .noStream)
            #expect(r.streamID == id)
            let events = try await client.load(id)
            #expect(events.count == 1 && events[0].streamID == id)
            #expect(try await client.streamInfo(id)?.streamID == id)
            #expect(try await client.readAll(filter: EventFilter(streamIDs: [id])).map(\.streamID) == [id])
        }
    }

    @Test func invalidInputIsRefusedBeforeSending() async throws {
        try await withServer { server in
            let client = server.client()
            await #expect(throws: MinkError.self) { try await client.append("", events: [raw("E")]) }
            await #expect(throws: MinkError.self) { try await client.append("s", events: []) }
            await #expect(throws: MinkError.self) { try await client.append("s", events: [raw("E", "{not json")]) }
            await #expect(throws: MinkError.self) { try await client.append("s", events: [raw("E", "{}", id: "not-a-uuid")]) }
            #expect(client.connectionsOpened == 0)
        }
    }

    @Test func serverValidationMapsToValidationFailed() async throws {
        try await withServer { server in
            let client = server.client()
            let tooLongType = String(repeating: "t", count: 300)
            do {
                try await client.append("s-1", events: [raw(tooLongType)])
                Issue.record("expected validation_failed")
            } catch let e as MinkError {
                #expect(e.code == .validationFailed)
            }
        }
    }

    @Test func globalLogWithFiltersAndHead() async throws {
        try await withServer { server in
            let client = server.client()
            #expect(try await client.headPosition() == 0)
            try await client.append("order-1", [OrderCreated(customerID: "a")])
            try await client.append("cart-1", events: [raw("CartOpened")])
            try await client.append("order-2", [OrderCreated(customerID: "b"), OrderShipped()])
            #expect(try await client.headPosition() == 4)

            let all = try await client.readAll()
            #expect(all.map(\.globalPosition) == [1, 2, 3, 4])
            #expect(try await client.readAll(after: 2).map(\.globalPosition) == [3, 4])
            #expect(try await client.readAll(limit: 2).map(\.globalPosition) == [1, 2])
            #expect(try await client.readAll(filter: EventFilter(category: "order")).map(\.streamID) == ["order-1", "order-2", "order-2"])
            #expect(try await client.readAll(filter: EventFilter(eventTypes: ["OrderShipped", "CartOpened"])).map(\.globalPosition) == [2, 4])
            #expect(try await client.readAll(filter: EventFilter(streamIDs: ["order-2"])).count == 2)
            await #expect(throws: MinkError.self) { try await client.readAll(filter: EventFilter(streamIDs: ["a", "b"])) }
        }
    }
}

import Foundation
import Mink
import Testing
@testable import MinkWire

extension Event {
    static func mock(data: String = #"{"customerId":"c-456"}"#, metadata: Metadata = Metadata()) -> Event {
        Event(
            id: "0f8fad5b-d9cb-469f-a165-70867728950e",
            streamID: "order-123", type: "OrderCreated",
            data: Data(data.utf8), metadata: metadata,
            version: 1, globalPosition: 42,
            timestamp: WireTimestamp(rfc3339: "2026-11-26T17:21:29.123456Z")!.date
        )
    }
}

/// The core's `Event` and `Metadata` on the wire (MinkWire has no event type of its own).
@Suite(.timeLimit(.minutes(3))) struct EventJSONTests {
    static let golden =
        #"{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","streamId":"order-123","type":"OrderCreated","data":{"customerId":"c-456"},"#
        + #""metadata":{"correlationId":"corr","causationId":"cause","userId":"u-1","tenantId":"acme","custom":{"a":"1","k":"v"}},"#
        + #""version":1,"globalPosition":42,"timestamp":"2026-11-26T17:21:29.123456Z"}"#

    static let fullMetadata = Metadata(
        correlationID: "corr", causationID: "cause", userID: "u-1", tenantID: "acme", custom: ["k": "v", "a": "1"]
    )

    func string(_ event: Event) -> String { String(decoding: event.jsonBytes(), as: UTF8.self) }

    @Test func writesGoldenBytes() {
        #expect(string(Event.mock(metadata: Self.fullMetadata)) == Self.golden)
    }

    @Test func omitsEmptyMetadataFields() {
        let event = Event.mock(metadata: Metadata(correlationID: "", userID: "u"))
        #expect(string(event).contains(#""metadata":{"userId":"u"},"#))
        #expect(string(Event.mock()).contains(#""metadata":{},"#))
    }

    @Test func readsGoldenBack() throws {
        let event = try Event(jsonString: Self.golden)
        #expect(event == Event.mock(metadata: Self.fullMetadata))
    }

    @Test func nonUUIDIDsAreWrittenAsStableUUIDs() throws {
        var event = Event.mock()
        event.id = "order-123/1"
        let first = try Event(jsonBytes: event.jsonBytes())
        #expect(UUID(uuidString: first.id) != nil && first.id == first.id.lowercased())
        #expect(try Event(jsonBytes: event.jsonBytes()).id == first.id)
        // Pinned: clients already hold these UUIDs.
        #expect(Event.wireID(of: "order-123/1") == UUID(nameBasedOn: "order-123/1"))
        #expect(FNV1a.hash64("") == 0xcbf2_9ce4_8422_2325 && FNV1a.hash64("a") == 0xaf63_dc4c_8601_ec8c)
    }

    @Test(arguments: [
        #"12345678901234567890"#, #"1e400"#, #"-0.0"#, #""\u00e9 é \ud83d\ude00 😀 \n""#,
        #"{"z":1,"a":[true,false,null],"nested":{"deep":"\\\"/"}}"#, #"[]"#, "null",
    ])
    func keepsDataBytesThroughWriteAndRead(_ data: String) throws {
        let event = Event.mock(data: data)
        let bytes = event.jsonBytes()
        #expect(String(decoding: bytes, as: UTF8.self).contains(#""data":"# + data + #","metadata""#))
        let read = try Event(jsonBytes: bytes)
        #expect(String(decoding: read.data, as: UTF8.self) == data)
        #expect(read == event)
    }

    @Test func metadataCodableAgreesWithWriter() throws {
        let viaCodable = try JSONEncoder().encode(Self.fullMetadata)
        #expect(try JSONValue(jsonBytes: Array(viaCodable)) == JSONValue(jsonBytes: Self.fullMetadata.jsonBytes()))
        var reader = JSONReader(Self.fullMetadata.jsonBytes())
        #expect(try Metadata(from: &reader) == Self.fullMetadata)
    }

    @Test func reportsMissingAndMistypedKeys() {
        #expect(throws: WireError(code: .badRequest, message: "timestamp: required")) {
            _ = try Event(jsonString: #"{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","streamId":"s","type":"T","data":1,"version":1,"globalPosition":1}"#)
        }
        #expect(throws: WireError(code: .badRequest, message: #"id: not a UUID: "nope""#, offset: 6)) {
            _ = try Event(jsonString: #"{"id":"nope"}"#)
        }
        #expect(throws: WireError.self) { _ = try Event(jsonString: #"{"id":"#) }
    }

    @Test func readsPagesOfEvents() throws {
        let page = StreamPage(streamId: "order-123", version: 7, events: [.mock(), .mock(data: "1e400")], next: nil)
        let text = page.jsonString()
        #expect(text.hasPrefix(#"{"streamId":"order-123","version":7,"events":[{"id":"#))
        #expect(text.hasSuffix(#"],"next":null}"#))
        #expect(try StreamPage(jsonString: text) == page)
        let paged = StreamPage(streamId: "s", version: 2000, events: [], next: 1001)
        #expect(paged.jsonString() == #"{"streamId":"s","version":2000,"events":[],"next":1001}"#)
        #expect(try StreamPage(jsonString: paged.jsonString()) == paged)

        let feed = EventsPage(events: [.mock()], next: 42)
        #expect(feed.jsonString().hasSuffix(#"],"next":42}"#))
        #expect(try EventsPage(jsonString: feed.jsonString()) == feed)
    }

    @Test func appendMetadataMergeIsTheCoresRule() {
        let body = AppendBody(
            metadata: Metadata(correlationID: "top", userID: "u-top", custom: ["a": "top", "b": "top"]),
            events: [AppendBody.Event(type: "T", data: .emptyObject, metadata: Metadata(userID: "u-own", custom: ["a": "own"]))]
        )
        #expect(body.effectiveMetadata(ofEvent: 0) == Metadata(correlationID: "top", userID: "u-own", custom: ["a": "own", "b": "top"]))
    }
}

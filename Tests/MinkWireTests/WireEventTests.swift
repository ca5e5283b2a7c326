import Foundation
import Testing
@testable import MinkWire

extension WireEvent {
    static func mock(data: String = #"{"customerId":"c-456"}"#, metadata: WireMetadata = WireMetadata()) -> WireEvent {
        WireEvent(
            id: UUID(uuidString: "0f8fad5b-d9cb-469f-a165-70867728950e")!,
            streamId: "order-123", type: "OrderCreated",
            data: try! RawJSON(validating: data), metadata: metadata,
            version: 1, globalPosition: 42,
            timestamp: WireTimestamp(rfc3339: "2026-11-26T17:21:29.123456Z")!
        )
    }
}

@Suite struct WireEventTests {
    static let golden =
        #"{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","streamId":"order-123","type":"OrderCreated","data":{"customerId":"c-456"},"#
        + #""metadata":{"correlationId":"corr","causationId":"cause","userId":"u-1","tenantId":"acme","custom":{"a":"1","k":"v"}},"#
        + #""version":1,"globalPosition":42,"timestamp":"2026-11-26T17:21:29.123456Z"}"#

    static let fullMetadata = WireMetadata(
        correlationId: "corr", causationId: "cause", userId: "u-1", tenantId: "acme", custom: ["k": "v", "a": "1"]
    )

    @Test func writesGoldenBytes() {
        #expect(WireEvent.mock(metadata: Self.fullMetadata).jsonString() == Self.golden)
    }

    @Test func omitsEmptyMetadataFields() {
        let event = WireEvent.mock(metadata: WireMetadata(correlationId: "", userId: "u"))
        #expect(event.jsonString().contains(#""metadata":{"userId":"u"},"#))
        #expect(WireEvent.mock().jsonString().contains(#""metadata":{},"#))
    }

    @Test func readsGoldenBack() throws {
        let event = try WireEvent(jsonString: Self.golden)
        #expect(event == WireEvent.mock(metadata: Self.fullMetadata))
    }

    @Test(arguments: [
        #"12345678901234567890"#, #"1e400"#, #"-0.0"#, #""\u00e9 é \ud83d\ude00 😀 \n""#,
        #"{"z":1,"a":[true,false,null],"nested":{"deep":"\\\"/"}}"#, #"[]"#, "null",
    ])
    func keepsDataBytesThroughWriteAndRead(_ data: String) throws {
        let event = WireEvent.mock(data: data)
        let bytes = event.jsonBytes()
        #expect(String(decoding: bytes, as: UTF8.self).contains(#""data":"# + data + #","metadata""#))
        let read = try WireEvent(jsonBytes: bytes)
        #expect(read.data.string == data)
        #expect(read == event)
    }

    @Test func codableAgreesWithWriter() throws {
        let event = WireEvent.mock(metadata: Self.fullMetadata)
        let viaCodable = try JSONEncoder().encode(event)
        #expect(try JSONValue(jsonBytes: Array(viaCodable)) == JSONValue(jsonBytes: event.jsonBytes()))
        let decoded = try JSONDecoder().decode(WireEvent.self, from: Data(event.jsonBytes()))
        #expect(decoded == event)
    }

    @Test func reportsMissingAndMistypedKeys() {
        #expect(throws: WireError(code: .badRequest, message: "timestamp: required")) {
            _ = try WireEvent(jsonString: #"{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","streamId":"s","type":"T","data":1,"version":1,"globalPosition":1}"#)
        }
        #expect(throws: WireError.self) {
            _ = try WireEvent(jsonString: #"{"id":"nope"}"#)
        }
        do {
            _ = try WireEvent(jsonString: #"{"id":"nope"}"#)
        } catch let error as WireError {
            #expect(error.message == #"id: not a UUID: "nope""#)
        } catch {}
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
        let json = try JSONEncoder().encode(StreamPage(streamId: "s", version: 0, events: [], next: nil))
        #expect(String(decoding: json, as: UTF8.self).contains(#""next":null"#))
    }
}

import Foundation
import Mink
import Testing
@testable import MinkWire

@Suite(.timeLimit(.minutes(3))) struct AppendBodyTests {
    func decode(_ text: String, limits: AppendLimits = AppendLimits(), minify: Bool = true) throws -> AppendBody {
        try AppendBody.decode(Array(text.utf8), limits: limits, minifyData: minify)
    }

    func error(_ text: String, limits: AppendLimits = AppendLimits()) -> WireError? {
        do {
            _ = try decode(text, limits: limits)
            return nil
        } catch let error as WireError {
            return error
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test func decodesFullRequest() throws {
        let request = try decode(
            #"""
            {"expectedVersion": 3,
             "metadata": {"correlationId": "c-1", "custom": {"a": "top", "b": "top"}},
             "events": [{"id": "0F8FAD5B-D9CB-469F-A165-70867728950E", "type": "ItemAdded",
                         "data": {"sku": "x", "price": 12345678901234567890.5e10},
                         "metadata": {"userId": "u", "custom": {"a": "own"}}},
                        {"type": "ItemRemoved", "data": "\u00e9"}]}
            """#)
        #expect(request.expectedVersion == .exact(3))
        #expect(request.events.count == 2)
        #expect(request.events[0].id == UUID(uuidString: "0f8fad5b-d9cb-469f-a165-70867728950e"))
        #expect(request.events[0].data.string == #"{"sku":"x","price":12345678901234567890.5e10}"#)
        #expect(request.events[1].id == nil)
        #expect(request.events[1].data.string == #""\u00e9""#)
        let merged = request.effectiveMetadata(ofEvent: 0)
        #expect(merged == Metadata(correlationID: "c-1", userID: "u", custom: ["a": "own", "b": "top"]))
        #expect(request.effectiveMetadata(ofEvent: 1) == Metadata(correlationID: "c-1", custom: ["a": "top", "b": "top"]))
    }

    @Test func keepsDataExactWithoutMinify() throws {
        let request = try decode(#"{"events":[{"type":"T","data":{ "a" : 1 }}]}"#, minify: false)
        #expect(request.events[0].data.string == #"{ "a" : 1 }"#)
    }

    @Test(arguments: [
        (#""any""#, ExpectedVersion.any), (#""no_stream""#, .noStream), (#""stream_exists""#, .streamExists),
        ("0", .exact(0)), ("17", .exact(17)), ("null", .any),
    ])
    func decodesExpectedVersion(_ json: String, _ expected: ExpectedVersion) throws {
        let request = try decode(#"{"expectedVersion":"# + json + #","events":[{"type":"T","data":{}}]}"#)
        #expect(request.expectedVersion == expected)
    }

    @Test func defaultsToAny() throws {
        #expect(try decode(#"{"events":[{"type":"T","data":{}}]}"#).expectedVersion == .any)
    }

    @Test(arguments: [
        ("-1", #"expectedVersion: must be an integer ≥ 0, "any", "no_stream" or "stream_exists", found -1"#),
        (#""latest""#, #"expectedVersion: must be an integer ≥ 0, "any", "no_stream" or "stream_exists", found "latest""#),
        ("1.5", #"expectedVersion: must be an integer ≥ 0, "any", "no_stream" or "stream_exists", found 1.5"#),
        ("true", #"expectedVersion: must be an integer ≥ 0, "any", "no_stream" or "stream_exists", found true"#),
        ("99999999999999999999", #"expectedVersion: must be an integer ≥ 0, "any", "no_stream" or "stream_exists", found 99999999999999999999"#),
    ])
    func rejectsBadExpectedVersion(_ json: String, _ message: String) {
        let failure = error(#"{"expectedVersion":"# + json + #","events":[{"type":"T","data":{}}]}"#)
        #expect(failure?.code == .badRequest)
        #expect(failure?.message == message)
    }

    @Test(arguments: [
        (#"{"events":[]}"#, ErrorCode.validationFailed, "events: at least one event is required"),
        (#"{}"#, .validationFailed, "events: at least one event is required"),
        (#"{"events":[{"data":{}}]}"#, .validationFailed, "events[0].type: required"),
        (#"{"events":[{"type":"","data":{}}]}"#, .validationFailed, "events[0].type: must not be empty"),
        (#"{"events":[{"type":"T"}]}"#, .validationFailed, "events[0].data: required"),
        (#"{"events":[{"type":1,"data":{}}]}"#, .badRequest, "events[0].type: expected a string, found a number"),
        (#"{"events":{}}"#, .badRequest, "events: expected an array, found an object"),
        (#"[]"#, .badRequest, "expected an object, found an array"),
        (#"{"events":[{"type":"T","data":{},"extra":1}]}"#, .badRequest, "events[0].extra: unknown key"),
        (#"{"expectedversion":1,"events":[{"type":"T","data":{}}]}"#, .badRequest, "expectedversion: unknown key"),
        (#"{"events":[{"type":"T","type":"U","data":{}}]}"#, .badRequest, "events[0].type: duplicate key"),
        (#"{"events":[{"id":"x","type":"T","data":{}}]}"#, .badRequest, #"events[0].id: not a UUID: "x""#),
        (#"{"metadata":{"userId":5},"events":[{"type":"T","data":{}}]}"#, .badRequest, "metadata.userId: expected a string, found a number"),
        (#"{"events":[{"type":"T","data":{},"metadata":{"custom":{"k":1}}}]}"#, .badRequest, "events[0].metadata.custom.k: expected a string, found a number"),
        (#"{"events":[{"type":"T","data":{},"metadata":{"who":"x"}}]}"#, .badRequest, "events[0].metadata.who: unknown key"),
        (#"{"events":[{"type":"T","data":{,}}]}"#, .invalidJSON, "invalid JSON at byte 31: expected a member name in double quotes"),
        (#"{"events":[{"type":"T","data":NaN}]}"#, .invalidJSON, "invalid JSON at byte 30: unexpected character 'N'"),
        (#"{"events":[{"type":"T","data":[1,]}]}"#, .invalidJSON, "invalid JSON at byte 33: trailing comma in an array"),
        (#"{"events":[{"type":"T","data":{}}]} x"#, .invalidJSON, "invalid JSON at byte 36: unexpected data after the JSON value"),
        (
            #"{"events":[{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","type":"T","data":{}},{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","type":"T","data":{}}]}"#,
            .validationFailed, "events[1].id: the same id as events[0]"
        ),
    ])
    func rejectsMalformedRequests(_ text: String, _ code: ErrorCode, _ message: String) {
        let failure = error(text)
        #expect(failure?.code == code)
        #expect(failure?.message == message)
    }

    @Test func enforcesLimits() {
        let limits = AppendLimits(maxEvents: 2, maxEventBytes: 10, maxTypeBytes: 4)
        let three = #"{"events":[{"type":"T","data":1},{"type":"T","data":2},{"type":"T","data":3}]}"#
        #expect(error(three, limits: limits) == WireError(code: .payloadTooLarge, message: "events: more than 2 events in one append", offset: 55))
        let big = #"{"events":[{"type":"T","data":"0123456789"}]}"#
        let tooBig = error(big, limits: limits)
        #expect(tooBig?.code == .payloadTooLarge)
        #expect(tooBig?.message == "events[0].data: 12 bytes, over the limit of 10")
        let longType = error(#"{"events":[{"type":"Typey","data":1}]}"#, limits: limits)
        #expect(longType?.code == .validationFailed)
        #expect(longType?.message == "events[0].type: longer than 4 bytes")
        #expect(error(#"{"events":[{"type":"é","data":"01234567"}]}"#, limits: limits) == nil)
        #expect(ErrorCode.payloadTooLarge.httpStatus == 413)
    }

    @Test func writesRequestForTheClient() throws {
        let request = AppendBody(
            expectedVersion: .noStream, metadata: Metadata(correlationID: "c"),
            events: [
                .init(id: UUID(uuidString: "0f8fad5b-d9cb-469f-a165-70867728950e"), type: "A", data: try RawJSON(validating: "1e400")),
                .init(type: "B", data: .null, metadata: Metadata(userID: "u")),
            ]
        )
        let text = request.jsonString()
        #expect(text == #"{"expectedVersion":"no_stream","metadata":{"correlationId":"c"},"events":[{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","type":"A","data":1e400},{"type":"B","data":null,"metadata":{"userId":"u"}}]}"#)
        #expect(try AppendBody.decode(Array(text.utf8)) == request)
        #expect(try AppendBody.decode(Array(#"{"expectedVersion":5,"events":[{"type":"T","data":{"a":1}}]}"#.utf8)).expectedVersion == .exact(5))
        var negative = JSONReader("-1")
        #expect(throws: WireError.self) { _ = try ExpectedVersion(from: &negative) }
    }

    @Test func writesAppendResponse() throws {
        let response = AppendResponse(streamId: "order-123", fromVersion: 4, toVersion: 5, fromPosition: 101, toPosition: 102)
        let golden = #"{"streamId":"order-123","fromVersion":4,"toVersion":5,"fromPosition":101,"toPosition":102}"#
        #expect(response.jsonString() == golden)
        #expect(try AppendResponse(jsonString: golden) == response)
        #expect(try JSONDecoder().decode(AppendResponse.self, from: Data(golden.utf8)) == response)
    }
}

import Foundation
import Mink
import Testing
@testable import MinkWire

@Suite(.timeLimit(.minutes(3))) struct BodiesTests {
    @Test func errorBodyGoldenAndRoundTrip() throws {
        let body = ErrorBody.concurrencyConflict(streamId: "order-123", expectedVersion: .exact(3), actualVersion: 5)
        let golden = #"{"error":{"code":"concurrency_conflict","message":"stream \"order-123\" is at version 5, expected 3","details":{"actualVersion":5,"expectedVersion":3,"streamId":"order-123"}}}"#
        #expect(body.jsonString() == golden)
        #expect(try ErrorBody(jsonString: golden) == body)
        #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(golden.utf8)) == body)
        #expect(body.httpStatus == 409)
        let plain = ErrorBody(code: .notFound, message: "no snapshot")
        #expect(plain.jsonString() == #"{"error":{"code":"not_found","message":"no snapshot","details":{}}}"#)
        let noDetails = try ErrorBody(jsonString: #"{"error":{"code":"brand_new","message":"m"}}"#)
        #expect(noDetails.error.code.rawValue == "brand_new")
        #expect(noDetails.httpStatus == 500)
        #expect(ErrorBody.internal(requestID: "r-1").error.message == "internal error (request r-1)")
    }

    @Test func everyErrorCodeHasItsStatus() {
        let statuses = ErrorCode.allKnown.map { "\($0.rawValue)=\($0.httpStatus)" }
        #expect(statuses == [
            "bad_request=400", "invalid_json=400", "invalid_stream_id=400", "invalid_tenant=400", "invalid_query=400",
            "unauthorized=401", "forbidden=403", "stream_not_found=404", "not_found=404", "projection_not_found=404",
            "stream_deleted=410", "method_not_allowed=405", "concurrency_conflict=409", "duplicate_event_id=409", "payload_too_large=413",
            "unsupported_media_type=415", "validation_failed=422", "too_many_requests=429", "unavailable=503", "internal=500",
        ])
    }

    @Test func streamInfoAndSnapshot() throws {
        let created = WireTimestamp(microsecondsSince1970: 0)
        let info = StreamInfoBody(streamId: "order-123", category: StreamID.category(of: "order-123"), version: 7, eventCount: 7, createdAt: created, updatedAt: created)
        #expect(info.jsonString() == #"{"streamId":"order-123","category":"order","version":7,"eventCount":7,"createdAt":"1970-01-01T00:00:00.000000Z","updatedAt":"1970-01-01T00:00:00.000000Z"}"#)
        #expect(try JSONDecoder().decode(StreamInfoBody.self, from: Data(info.jsonBytes())) == info)

        let snapshot = try SnapshotBody.decode(Array(#"{"version":120,"state":{"n":12345678901234567890}}"#.utf8))
        #expect(snapshot.state.string == #"{"n":12345678901234567890}"#)
        #expect(snapshot.jsonString() == #"{"version":120,"state":{"n":12345678901234567890}}"#)
        #expect(try SnapshotBody(jsonBytes: snapshot.jsonBytes()) == snapshot)
        #expect(throws: WireError(code: .validationFailed, message: "state: required")) {
            _ = try SnapshotBody.decode(Array(#"{"version":1}"#.utf8))
        }
        // The version's range is the server's check (`422` for 0, negatives and 2^53 alike).
        #expect(try SnapshotBody.decode(Array(#"{"version":-1,"state":{}}"#.utf8)).version == -1)
        #expect(throws: WireError.self) { _ = try SnapshotBody.decode(Array(#"{"version":"1","state":{}}"#.utf8)) }
    }

    @Test func positionBodies() throws {
        #expect(HeadBody(position: 42).jsonString() == #"{"position":42}"#)
        #expect(try CaughtUp(jsonString: #"{"position":7}"#).position == 7)
        #expect(try FellBehind(jsonString: #"{"position":9,"extra":true}"#).position == 9)
        #expect(SSEEventName.caughtUp == "caught-up" && SSEEventName.fellBehind == "fell-behind")
    }

    @Test func projectionBodies() throws {
        let list = ProjectionListBody(projections: [
            ProjectionStatusBody(name: "orders", mode: .async, status: .running, checkpoint: 1040, head: 1042),
        ])
        let golden = #"{"projections":[{"name":"orders","mode":"async","status":"running","checkpoint":1040,"head":1042,"lag":2,"lastError":null}]}"#
        #expect(list.jsonString() == golden)
        #expect(try JSONDecoder().decode(ProjectionListBody.self, from: Data(golden.utf8)) == list)
        #expect(String(decoding: try JSONEncoder().encode(list.projections[0]), as: UTF8.self).contains(#""lastError":null"#))
        #expect(ProjectionStatusBody.Status.allCases.map(\.rawValue) == ["running", "paused", "rebuilding", "faulted", "stopped"])
    }

    @Test func readModelBodies() throws {
        let page = ItemsPage(items: [try RawJSON(validating: #"{"id":"o-1","total":1e400}"#)], total: 1)
        #expect(page.jsonString() == #"{"items":[{"id":"o-1","total":1e400}],"total":1}"#)
        #expect(try ItemsPage(jsonBytes: page.jsonBytes()) == page)
        #expect(CountBody(count: 3).jsonString() == #"{"count":3}"#)
    }

    @Test func operationsAndTenantBodies() throws {
        #expect(HealthBody().jsonString() == #"{"status":"ok"}"#)
        #expect(ReadyBody.ready.jsonString() == #"{"status":"ready"}"#)
        #expect(
            ReadyBody.unavailable("storage").jsonString()
                == #"{"status":"unavailable","reason":"storage","error":{"code":"unavailable","message":"not ready: storage","details":{"reason":"storage"}}}"#
        )
        // The 503 reads as an error body too (section 3's shape).
        var reader = JSONReader(Array(ReadyBody.unavailable("storage").jsonString().utf8))
        let error = try ErrorBody(from: &reader)
        #expect(error.error.code == .unavailable && error.error.details == ["reason": .string("storage")])
        let info = InfoBody(version: "0.1.0", storage: "sqlite", tenancy: "shared", uptimeSeconds: 12, limits: .init())
        let golden = #"{"version":"0.1.0","storage":"sqlite","tenancy":"shared","uptimeSeconds":12,"limits":{"maxBodyBytes":4194304,"maxEventsPerAppend":1000,"maxEventBytes":1048576,"maxConnections":10000,"subscriberBuffer":10000}}"#
        #expect(info.jsonString() == golden)
        #expect(try JSONDecoder().decode(InfoBody.self, from: Data(golden.utf8)) == info)

        #expect(TenantListBody(tenants: [TenantBody(id: "acme")]).jsonString() == #"{"tenants":[{"id":"acme"}]}"#)
        #expect(try TenantBody.decode(Array(#"{"id":"acme"}"#.utf8)) == TenantBody(id: "acme"))
        #expect(throws: WireError(code: .invalidTenant, message: #"invalid tenant ID "Acme": must match ^[a-z0-9][a-z0-9_-]{0,62}$"#)) {
            _ = try TenantBody.decode(Array(#"{"id":"Acme"}"#.utf8))
        }
        #expect(throws: WireError(code: .validationFailed, message: "id: required")) {
            _ = try TenantBody.decode(Array("{}".utf8))
        }
    }

    @Test func identifiers() {
        #expect(TenantID.isValid("acme") && TenantID.isValid("0") && TenantID.isValid("a-b_c"))
        #expect(TenantID.isValid(String(repeating: "a", count: 63)))
        #expect(!TenantID.isValid(String(repeating: "a", count: 64)))
        #expect(!TenantID.isValid("") && !TenantID.isValid("-a") && !TenantID.isValid("_a") && !TenantID.isValid("a.b") && !TenantID.isValid("*"))
        #expect(StreamID.category(of: "order-123-4") == "order")
        #expect(StreamID.category(of: "order") == "order")
        #expect(StreamID.problem("a/b é") == nil)
        #expect(StreamID.problem("") == "stream ID must not be empty")
        #expect(StreamID.problem("a\nb") == "stream ID contains the control character U+000A")
        #expect(StreamID.problem(String(repeating: "x", count: 257)) == "stream ID is 257 bytes, longer than 256")
    }
}

@Suite(.timeLimit(.minutes(3))) struct ReadModelQueryTests {
    func decode(_ text: String) throws -> ReadModelQueryBody {
        try ReadModelQueryBody.decode(Array(text.utf8))
    }

    @Test func decodesTheSpecExample() throws {
        let query = try decode(#"""
            {"where": [[{"field": "status", "op": "=", "value": "pending"},
                        {"field": "total", "op": ">", "value": 100}],
                       [{"field": "priority", "op": "=", "value": "high"}]],
             "orderBy": [{"field": "createdAt", "desc": true}],
             "limit": 10, "offset": 0}
            """#)
        #expect(query.query == (try Query(
            groups: [
                [try QueryFilter(field: FieldPath("status"), op: .equal, value: "pending"), try QueryFilter(field: FieldPath("total"), op: .greaterThan, value: 100)],
                [try QueryFilter(field: FieldPath("priority"), op: .equal, value: "high")],
            ],
            ordering: [QueryOrder(field: try FieldPath("createdAt"), descending: true)], limit: 10, offset: 0
        )))
        #expect(try decode(query.jsonString()) == query)
        // The same query built with the library's fluent API has the same body.
        let fluent = Query().where("status", "=", "pending").and("total", ">", 100).or("priority", "=", "high")
            .orderBy("createdAt", descending: true).limit(10)
        #expect(try ReadModelQueryBody(fluent).jsonString() == query.jsonString())
    }

    @Test func acceptsEveryOperator() throws {
        for op in QueryOperator.allCases {
            let value: String
            switch op {
            case .isNull, .isNotNull: value = ""
            case .in, .notIn: value = #","value":["a",1]"#
            case .between: value = #","value":[1,5]"#
            default: value = #","value":"x""#
            }
            let query = try decode(#"{"where":[[{"field":"a.b_c","op":""# + op.rawValue + #"""# + value + "}]]}")
            #expect(query.query.groups[0][0].op == op)
        }
    }

    @Test(arguments: [
        (#"{"where":[[{"field":"a","op":"~","value":1}]]}"#, #"where[0][0].op: unknown operator "~""#),
        (#"{"where":[[{"field":"a; DROP TABLE x","op":"=","value":1}]]}"#, #"where[0][0].field: invalid field "a; DROP TABLE x": a dotted path of letters, digits and _, each part at most 128 bytes"#),
        (#"{"where":[[{"field":"1a","op":"=","value":1}]]}"#, #"where[0][0].field: invalid field "1a": a dotted path of letters, digits and _, each part at most 128 bytes"#),
        (#"{"where":[[{"field":"a.","op":"=","value":1}]]}"#, #"where[0][0].field: invalid field "a.": a dotted path of letters, digits and _, each part at most 128 bytes"#),
        (#"{"where":[[{"field":"a","op":"in","value":1}]]}"#, #"where[0][0].value: "in" needs an array of strings, numbers or booleans"#),
        (#"{"where":[[{"field":"a","op":"between","value":[1]}]]}"#, #"where[0][0].value: "between" needs [low, high]"#),
        (#"{"where":[[{"field":"a","op":"is null","value":1}]]}"#, #"where[0][0].value: "is null" takes no value"#),
        (#"{"where":[[{"field":"a","op":"="}]]}"#, #"where[0][0].value: "=" needs a string, number or boolean (use "is null" for null)"#),
        (#"{"where":[[{"field":"a"}]]}"#, "where[0][0].op: required"),
        (#"{"where":[{"field":"a"}]}"#, "where[0]: expected an array, found an object"),
        (#"{"orderBy":[{"field":"x-y"}]}"#, #"orderBy[0].field: invalid field "x-y": a dotted path of letters, digits and _, each part at most 128 bytes"#),
        (#"{"where":[[{"field":"a.\#(String(repeating: "b", count: 129))","op":"=","value":1}]]}"#,
         #"where[0][0].field: invalid field "a.\#(String(repeating: "b", count: 78))"\#(": a dotted path of letters, digits and _, each part at most 128 bytes")"#),
        (#"{"limit":-1}"#, "limit: must be ≥ 0"),
        (#"{"select":["a"]}"#, "select: unknown key"),
    ])
    func rejectsBadQueries(_ text: String, _ message: String) {
        do {
            _ = try decode(text)
            Issue.record("accepted \(text)")
        } catch let error as WireError {
            #expect(error.code == .invalidQuery)
            #expect(error.message == message)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func syntaxErrorsStayInvalidJSON() {
        #expect(throws: WireError(code: .invalidJSON, message: "invalid JSON at byte 13: trailing comma in an array", offset: 13)) {
            _ = try decode(#"{"where":[[],]}"#)
        }
    }

    @Test func parsesOrderByParameter() throws {
        #expect(try QueryOrder.parseList("-createdAt,name,+x") == [
            QueryOrder(field: try FieldPath("createdAt"), descending: true), QueryOrder(field: try FieldPath("name"), descending: false),
            QueryOrder(field: try FieldPath("x"), descending: false),
        ])
        #expect(throws: WireError(code: .invalidQuery, message: #"orderBy: invalid field "a b": a dotted path of letters, digits and _, each part at most 128 bytes"#)) {
            _ = try QueryOrder.parseList("a b")
        }
    }
}

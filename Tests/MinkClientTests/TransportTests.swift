import Foundation
import Mink
import MinkTestFixtures
import MinkHTTP
import MinkWire
import Testing

@testable import MinkClient

@Suite("Headers, tenants, retries and error mapping", .timeLimit(.minutes(3)))
struct TransportTests {
    @Test func tokenAndTenantHeadersAreSent() async throws {
        try await withServer { server in
            let proxy = Proxy(backendPort: server.port)
            let port = try proxy.start()
            let client = server.client(port: port, token: "s3cret", tenant: "acme")
            try await client.append("x-1", events: [raw("E")])
            _ = try await client.load("x-1")
            _ = try await client.headPosition()
            await proxy.shutdown()
            let requests = proxy.requests
            #expect(requests.count == 3)
            #expect(requests.allSatisfy { $0.headers["Authorization"] == "Bearer s3cret" && $0.headers["Mink-Tenant"] == "acme" })
            #expect(requests[0].method == "POST" && requests[0].target == "/v1/streams/x-1")
            #expect(requests[0].headers["Content-Type"] == "application/json")
            let anonymous = server.client()
            #expect(anonymous.commonHeaders()["Authorization"] == nil && anonymous.commonHeaders()["Mink-Tenant"] == nil)
        }
    }

    /// A header value with a line break is never sent: it would end the field early and could
    /// smuggle a second request onto the connection (whose answer the next request would read).
    /// A token read from a file with its trailing newline is trimmed.
    @Test func lineBreaksInHeaderValuesAreRefusedAndATokensNewlineTrimmed() async throws {
        try await withServer { server in
            let proxy = Proxy(backendPort: server.port)
            let port = try proxy.start()
            let trimmed = server.client(port: port, token: "s3cret\n", tenant: "acme")
            try await trimmed.append("t-1", events: [raw("E")])
            #expect(proxy.requests.last?.headers["Authorization"] == "Bearer s3cret")
            let before = proxy.requests.count
            let smuggling = server.client(port: port, tenant: "acme\r\nContent-Length: 0\r\n\r\nDELETE /v1/streams/t-1 HTTP/1.1\r\nX: y")
            do {
                try await smuggling.append("t-2", events: [raw("E")])
                Issue.record("a tenant with a line break was sent")
            } catch let error as MinkError {
                #expect(error.code == .invalidTenant, "\(error)")
            }
            do {
                for try await _ in smuggling.export(after: 0) {}
                Issue.record("an export with a line break in its tenant was sent")
            } catch let error as MinkError {
                #expect(error.code == .invalidTenant, "\(error)")
            }
            var it = smuggling.subscribeAll().makeAsyncIterator()
            do {
                _ = try await it.next()
                Issue.record("a subscription with a line break in its tenant was opened")
            } catch let error as MinkError {
                #expect(error.code == .invalidTenant && it.reconnects == 0, "\(error)")
            }
            await proxy.shutdown()
            #expect(proxy.requests.count == before, "nothing reached the server")
            #expect(try await server.client(tenant: "acme").load("t-1").count == 1, "t-1 is still there")
        }
    }

    @Test func tenantsDoNotSeeEachOther() async throws {
        try await withServer { server in
            let a = server.client(tenant: "a")
            let b = server.client(tenant: "b")
            try await a.append("order-1", [OrderCreated(customerID: "only-a")], expectedVersion: .noStream)
            #expect(try await a.load("order-1").count == 1)
            await #expect(throws: MinkError.self) { try await b.load("order-1") }
            #expect(try await b.streamInfo("order-1") == nil)
            #expect(try await b.readAll().isEmpty)
            #expect(try await b.headPosition() == 0)
            #expect(try await server.client().headPosition() == 0, "nor does the default tenant")
            // b can create its own stream of the same name, at version 1.
            #expect(try await b.append("order-1", [OrderCreated(customerID: "b")], expectedVersion: .noStream).toVersion == 1)
            #expect(try await a.load("order-1").map(\.version) == [1])

            let bad = server.client(tenant: "Not Valid!")
            do {
                _ = try await bad.headPosition()
                Issue.record("expected invalidTenant")
            } catch let e as MinkError {
                #expect(e.code == .invalidTenant)
            }
        }
    }

    /// When the retries run out on an append whose answer was lost, it may have been committed:
    /// the error carries the IDs it used, and sending the events again with them is answered with
    /// the original result, never a second copy.
    @Test func anAppendInDoubtCarriesItsEventIDs() async throws {
        try await withServer { server in
            let proxy = Proxy(backendPort: server.port)
            let port = try proxy.start()
            proxy.faults.withLock { $0 = [.loseAnswer, .loseAnswer] }
            let client = server.client(
                port: port, retryPolicy: RetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(10), maxBackoff: .milliseconds(20))
            )
            let events = [raw("A", #"{"n":1}"#), raw("B", #"{"n":2}"#)]
            var ids: [String] = []
            do {
                try await client.append("doubt-1", events: events)
                Issue.record("the lost answers were not reported")
            } catch let error as MinkError {
                #expect(error.code == .unavailable && error.isTransient, "\(error)")
                ids = error.eventIDs ?? []
            }
            await proxy.shutdown()
            #expect(ids.count == 2)
            let direct = server.client()
            let again = try await direct.append(
                "doubt-1", events: zip(events, ids).map { e, id in EventData(id: id, type: e.type, data: e.data) }
            )
            #expect(again.isReplay, "answered with the original result")
            #expect(try await direct.load("doubt-1").map(\.id) == ids, "written once, with those IDs")
        }
    }

    /// A wrong base path reaches minkd's "no such endpoint": an error, never "no snapshot".
    @Test func aWrongBasePathIsAnErrorNotAnAbsentResource() async throws {
        try await withServer { server in
            let wrong = MinkClient(host: "127.0.0.1", port: server.port, basePath: "/not-minkd")
            do {
                let snapshot = try await wrong.loadSnapshot("order-1")
                Issue.record("answered \(String(describing: snapshot)) through a wrong base path")
            } catch let error as MinkError {
                #expect(error.code == .badRequest && error.message.contains("no such endpoint"), "\(error)")
            }
            #expect(try await server.client().loadSnapshot("order-1") == nil, "the right path: no snapshot")
        }
    }

    @Test func retriesA503HonouringRetryAfter() async throws {
        try await withServer { server in
            let proxy = Proxy(backendPort: server.port)
            let port = try proxy.start()
            proxy.faults.withLock { $0 = [.unavailable(retryAfter: 1), .unavailable(retryAfter: nil)] }
            let client = server.client(port: port)
            let start = ContinuousClock.now
            let head = try await client.headPosition()
            let elapsed = ContinuousClock.now - start
            await proxy.shutdown()
            #expect(head == 0)
            #expect(proxy.requests.count == 3)
            #expect(elapsed >= .milliseconds(950), "Retry-After: 1 was honoured (waited \(elapsed))")
        }
    }

    @Test func anAppendWhoseAnswerWasLostIsRetriedWithoutDuplicates() async throws {
        try await withServer { server in
            let proxy = Proxy(backendPort: server.port)
            let port = try proxy.start()
            proxy.faults.withLock { $0 = [.loseAnswer] }
            let client = server.client(port: port)
            let r = try await client.append("pay-1", [OrderCreated(customerID: "c")], expectedVersion: .noStream)
            await proxy.shutdown()
            #expect(proxy.requests.count == 2, "the append was sent twice")
            #expect(r.isReplay && r.fromVersion == 1 && r.toVersion == 1, "the server answered the retry with the original result")
            #expect(try await server.client().load("pay-1").count == 1, "one copy stored")
        }
    }

    @Test func nonIdempotentRequestsAreNotRetried() async throws {
        try await withServer { server in
            let proxy = Proxy(backendPort: server.port)
            let port = try proxy.start()
            proxy.faults.withLock { $0 = [.unavailable(retryAfter: 0)] }
            let client = server.client(port: port)
            do {
                try await client.rebuildProjection("orders")
                Issue.record("expected unavailable")
            } catch let e as MinkError {
                #expect(e.code == .unavailable && e.isTransient)
            }
            await proxy.shutdown()
            #expect(proxy.requests.count == 1)
        }
    }

    @Test func givesUpWithATransientErrorWhenNothingAnswers() async throws {
        // A port that nothing listens on, held (bound, never listening) so that no test running
        // alongside can be given it: a stopped server's port was, and this test then reached that
        // test's server.
        let held = try ClosedPort()
        defer { held.release() }
        let server = try await TestServer.start()
        await server.shutdown()
        let client = server.client(
            port: held.port, retryPolicy: RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(10), maxBackoff: .milliseconds(20))
        )
        do {
            _ = try await client.headPosition()
            Issue.record("expected unavailable")
        } catch let e as MinkError {
            #expect(e.code == .unavailable && e.isTransient)
        }
    }

    @Test func baseURL() throws {
        let client = try MinkClient(baseURL: URL(string: "http://example.test:8080/mink/")!, token: "t")
        #expect(client.host == "example.test" && client.port == 8080 && client.basePath == "/mink")
        #expect(client.target(["v1", "events"], query: [("type", "A,B")]) == "/mink/v1/events?type=A%2CB")
        let plain = try MinkClient(baseURL: URL(string: "http://[::1]")!)
        #expect(plain.host == "::1" && plain.port == 80 && plain.basePath == "")
        #expect(throws: MinkError.self) { try MinkClient(baseURL: URL(string: "https://example.test")!) }
    }

    @Test func percentEncoding() {
        #expect(PathEncoding.encode("order-1_a.b~c") == "order-1_a.b~c")
        #expect(PathEncoding.encode("a/b") == "a%2Fb")
        #expect(PathEncoding.encode("100%") == "100%25")
        #expect(PathEncoding.encode("a b+c?d#e&f=g") == "a%20b%2Bc%3Fd%23e%26f%3Dg")
        #expect(PathEncoding.encode("é") == "%C3%A9")
        #expect(PathEncoding.encode("..") == "%2E%2E")
    }

    @Test func errorBodiesMapToMinkErrors() {
        func map(_ status: Int, _ body: String) -> MinkError {
            ErrorMapping.error(status: status, body: Array(body.utf8), streamID: "s-1")
        }
        let conflict = map(409, #"{"error":{"code":"concurrency_conflict","message":"m","details":{"streamId":"o-1","expectedVersion":3,"actualVersion":5}}}"#)
        #expect(conflict.code == .concurrencyConflict && conflict.streamID == "o-1" && conflict.expectedVersion == 3 && conflict.actualVersion == 5)
        #expect(map(409, #"{"error":{"code":"duplicate_event_id","message":"m"}}"#).code == .duplicateEventID)
        #expect(map(404, #"{"error":{"code":"stream_not_found","message":"m"}}"#).code == .streamNotFound)
        #expect(map(404, #"{"error":{"code":"not_found","message":"m"}}"#).code == .notFound)
        // minkd's own "no such endpoint" (a wrong base path): not an absent document.
        #expect(map(404, #"{"error":{"code":"not_found","message":"no such endpoint","details":{"reason":"no_such_endpoint"}}}"#).code == .badRequest)
        #expect(map(400, #"{"error":{"code":"invalid_query","message":"m"}}"#).code == .invalidQuery)
        #expect(map(422, #"{"error":{"code":"validation_failed","message":"m"}}"#).code == .validationFailed)
        #expect(map(400, #"{"error":{"code":"invalid_json","message":"m"}}"#).code == .badRequest)
        #expect(map(401, #"{"error":{"code":"unauthorized","message":"m"}}"#).code == .unauthorized)
        #expect(map(403, #"{"error":{"code":"forbidden","message":"m"}}"#).code == .forbidden)
        #expect(map(413, #"{"error":{"code":"payload_too_large","message":"m"}}"#).code == .payloadTooLarge)
        #expect(map(500, #"{"error":{"code":"internal","message":"m"}}"#).code == .internalError)
        let busy = map(429, #"{"error":{"code":"too_many_requests","message":"m"}}"#)
        #expect(busy.code == .tooManyRequests && busy.isTransient)
        let down = map(503, #"{"error":{"code":"unavailable","message":"m"}}"#)
        #expect(down.code == .unavailable && down.isTransient)
        let future = map(418, #"{"error":{"code":"teapot","message":"m"}}"#)
        #expect(future.code.rawValue == "teapot" && !future.isTransient)
        #expect(map(502, "<html>bad gateway</html>").code == .unavailable)
        // A 404 without minkd's body (a proxy, a wrong base path) is not "absent": never nil.
        #expect(map(404, "").code == .badRequest)
        #expect(map(404, "<html>Not Found</html>").code == .badRequest)
        // 408: the server stopped waiting for the request's bytes; sending again may work.
        let slow = map(408, #"{"error":{"code":"request_timeout","message":"m"}}"#)
        #expect(slow.code.rawValue == "request_timeout" && slow.isTransient)
        #expect(map(408, "").isTransient)
        #expect(map(422, "unprocessable").code == .validationFailed)
        // An answer over the client's limit is the same when asked again: not retried.
        let big = ErrorMapping.transportError(HTTPClientError.responseTooLarge(limit: 64 << 20), method: "GET", target: "/v1/events")
        #expect(big.code == .payloadTooLarge && !big.isTransient, "\(big)")
        #expect(ErrorMapping.retryAfter(" 2 ") == .seconds(2) && ErrorMapping.retryAfter("Wed, 21 Oct 2015 07:28:00 GMT") == nil)
    }

    @Test func projectionStatusBodiesDecode() throws {
        let json = #"{"projections":[{"name":"orders","mode":"async","status":"rebuilding","checkpoint":1040,"head":1042,"lag":2,"lastError":null},{"name":"totals","mode":"inline","status":"faulted","checkpoint":7,"head":9,"lag":2,"lastError":"boom"}]}"#
        let body = try JSONDecoder().decode(ProjectionListBody.self, from: Data(json.utf8))
        let statuses = body.projections.map(ProjectionStatus.init)
        #expect(statuses == [
            ProjectionStatus(name: "orders", mode: .async, state: .rebuilding, checkpoint: 1040, head: 1042, lag: 2),
            ProjectionStatus(name: "totals", mode: .inline, state: .faulted, checkpoint: 7, head: 9, lag: 2, lastError: "boom"),
        ])
    }
}

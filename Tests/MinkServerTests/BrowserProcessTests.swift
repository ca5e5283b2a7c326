import Foundation
import Mink
import MinkConfig
import MinkHTTP
import MinkWire
import Testing

/// What the real `minkd` writes to its log for browser tokens and traced requests: a token sent
/// as `?access_token=` never appears (it shows as `access_token=REDACTED`), and every request's
/// line carries the trace and span IDs that its response's `traceparent` names.
@Suite("minkd logs: tokens redacted, traces continued", .timeLimit(.minutes(3)))
struct BrowserProcessTests {
    /// One JSON log line as a dictionary of strings.
    static func lines(_ log: String) -> [[String: String]] {
        log.split(separator: "\n").compactMap { line in
            guard case .object(let o)? = try? JSONValue(jsonBytes: Array(line.utf8)) else { return nil }
            return o.compactMapValues { $0.stringValue }
        }
    }

    @Test func tokensNeverReachTheLogAndTraceIDsDo() async throws {
        let reader = "browser-secret-\(UUID().uuidString)", writer = "writer-secret-\(UUID().uuidString)"
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-browser-\(UUID()).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try """
        auth:
          enabled: true
          tokens:
            - name: "browser"
              sha256: "\(hashToken(reader))"
              tenant: "*"
              roles: [read]
              rateLimit: { perSecond: 1000, burst: 2000 }
            - name: "app"
              sha256: "\(hashToken(writer))"
              tenant: "*"
              roles: [read, write]
        """.write(to: file, atomically: true, encoding: .utf8)
        // `debug`: the span lines too, which carry the (redacted) query.
        let minkd = try MinkdProcess([
            "serve", "--config", file.path, "--storage", "memory", "--listen", "127.0.0.1:0", "--log-format", "json",
            "--log-level", "debug",
        ])
        let port = try await minkd.waitUntilReady()
        let client = HTTPClient()
        defer { client.shutdown() }
        func send(_ method: String, _ target: String, _ headers: [(String, String)], body: String = "") async throws -> HTTPClientResponse {
            var h = HTTPHeaders()
            for (n, v) in headers { h.add(name: n, value: v) }
            if !body.isEmpty { h.add(name: "Content-Type", value: "application/json") }
            return try await client.execute(HTTPClientRequest(
                method: method, host: "127.0.0.1", port: port, target: target, headers: h, body: Array(body.utf8)
            ))
        }

        // A GET and an event stream with the token in the URL; the GET continues a caller's trace.
        let callerTrace = "0af7651916cd43dd8448eb211c80319c"
        let get = try await send("GET", "/v1/events?after=0&access_token=\(reader)", [("traceparent", "00-\(callerTrace)-b7ad6b7169203331-01")])
        #expect(get.status == 200)
        let getSpan = try #require(get.headers["traceparent"]).split(separator: "-")
        #expect(getSpan[1] == callerTrace)
        let sse = try await RawConnection.open(port: port)
        try await sse.send("GET /v1/subscriptions/all?access_token=\(reader) HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try await sse.read(until: { $0.contains("caught-up") }, timeout: .seconds(5))
        // Refused on a write, with the token in the URL; then a traced append with the header.
        let refused = try await send("POST", "/v1/streams/b-1?access_token=\(writer)", [], body: #"{"events":[{"type":"X","data":{}}]}"#)
        #expect(refused.status == 401)
        let appendTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
        let append = try await send(
            "POST", "/v1/streams/b-1", [("Authorization", "Bearer \(writer)"), ("traceparent", "00-\(appendTrace)-00f067aa0ba902b7-01")],
            body: #"{"events":[{"type":"Traced","data":{}}]}"#
        )
        #expect(append.status == 201)
        let appendSpan = String(try #require(append.headers["traceparent"]).split(separator: "-")[2])
        _ = try await sse.read(until: { $0.contains("Traced") }, timeout: .seconds(5))
        // An unknown token in a URL.
        #expect(try await send("GET", "/v1/events?access_token=not-\(reader)", []).status == 401)

        kill(minkd.process.processIdentifier, SIGTERM)
        let (status, _, log) = try await minkd.finish()
        #expect(status == 0)
        for secret in [reader, writer, "not-\(reader)", hashToken(reader), hashToken(writer)] {
            #expect(!log.contains(secret), "a token reached the log")
        }
        #expect(log.contains("access_token=REDACTED"), "the span of a URL-token request shows the redacted query")
        let lines = Self.lines(log)

        // The access lines carry the trace of the request and its server span.
        let getLine = try #require(lines.first { $0["msg"] == "request" && $0["route"] == "/v1/events" && $0["status"] == "200" })
        #expect(getLine["trace_id"] == callerTrace && getLine["span_id"] == String(getSpan[2]))
        #expect(getLine["token"] == "browser")
        let appendLine = try #require(lines.first { $0["msg"] == "request" && $0["method"] == "POST" && $0["status"] == "201" })
        #expect(appendLine["trace_id"] == appendTrace && appendLine["span_id"] == appendSpan)
        let refusedLine = try #require(lines.first { $0["msg"] == "request" && $0["status"] == "401" && $0["method"] == "POST" })
        #expect(refusedLine["token"] == "(unknown)" && refusedLine["trace_id"]?.count == 32)

        // Spans: request → store append → storage commit, each the child of the one before.
        let spans = lines.filter { $0["msg"] == "span" && $0["trace_id"] == appendTrace }
        let server = try #require(spans.first { $0["kind"] == "server" }, "\(spans)")
        #expect(server["span_id"] == appendSpan && server["parent_span_id"] == "00f067aa0ba902b7")
        #expect(server["name"] == "POST /v1/streams/{streamId}")
        let store = try #require(spans.first { $0["name"] == "mink.append" }, "\(spans)")
        #expect(store["parent_span_id"] == appendSpan)
        let storage = try #require(spans.first { $0["name"] == "storage.append" }, "\(spans)")
        #expect(storage["parent_span_id"] == store["span_id"])
        #expect(storage["attr.mink.event_count"] == "1")
    }
}

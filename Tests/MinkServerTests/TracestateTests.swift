import Foundation
import Mink
import MinkHTTP
import MinkServer
import Testing

/// W3C `tracestate`: a server continuing the caller's trace keeps the caller's entries. minkd
/// keeps the request's `tracestate` in its server span's context and sends it back with the
/// response's `traceparent`.
@Suite("tracestate is kept", .timeLimit(.minutes(3)))
struct TracestateTests {
    static let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    /// A GET with the given headers, each added as is (repeated names stay separate fields).
    static func get(_ s: TestServer, _ headers: [(String, String)]) async throws -> HTTPClientResponse {
        var h = HTTPHeaders()
        for (n, v) in headers { h.add(name: n, value: v) }
        return try await s.client.execute(HTTPClientRequest(method: "GET", host: "127.0.0.1", port: s.port, target: "/v1/events/head", headers: h))
    }

    @Test func theCallersTracestateComesBackWithTheServerSpan() async throws {
        try await withServer { s in
            var r = try await Self.get(s, [("traceparent", Self.parent), ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")])
            #expect(r.status == 200)
            #expect(r.headers["traceparent"]?.contains("4bf92f3577b34da6a3ce929d0e0e4736") == true)
            #expect(r.headers["tracestate"] == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")

            // Several tracestate fields are one list, in order; optional whitespace goes.
            r = try await Self.get(s, [("traceparent", Self.parent), ("tracestate", "rojo=1 , congo=2"), ("tracestate", "acme@vendor=3")])
            #expect(r.headers.values(for: "tracestate") == ["rojo=1,congo=2,acme@vendor=3"])

            // An invalid tracestate is dropped; the trace is still continued.
            r = try await Self.get(s, [("traceparent", Self.parent), ("tracestate", "Rojo=1")])
            #expect(r.headers["tracestate"] == nil)
            #expect(r.headers["traceparent"]?.contains("4bf92f3577b34da6a3ce929d0e0e4736") == true)

            // Without a valid traceparent there is no trace to continue: tracestate is not read.
            r = try await Self.get(s, [("tracestate", "rojo=1")])
            #expect(r.headers["tracestate"] == nil && r.headers["traceparent"] != nil)
            r = try await Self.get(s, [("traceparent", "00-garbage"), ("tracestate", "rojo=1")])
            #expect(r.headers["tracestate"] == nil)

            // Errors carry it too, like traceparent.
            r = try await Self.get(s, [("traceparent", Self.parent), ("tracestate", "rojo=1"), ("Mink-Tenant", "NOT VALID")])
            #expect(r.status == 400 && r.headers["tracestate"] == "rojo=1")
        }
    }
}

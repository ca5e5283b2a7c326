import Foundation
import MinkHTTP
import Testing

@Suite("CORS", .timeLimit(.minutes(3)))
struct CORSTests {
    @Test func allowedOriginsGetHeadersOthersDoNot() async throws {
        try await withServer(configure: { $0.http.corsAllowedOrigins = ["https://app.example.com"] }) { s in
            let ok = try await s.request("GET", "/v1/events/head", headers: [("Origin", "https://app.example.com")])
            #expect(ok.headers["Access-Control-Allow-Origin"] == "https://app.example.com")
            #expect(ok.headers["Access-Control-Expose-Headers"]?.contains("X-Request-ID") == true)
            #expect(ok.headers.values(for: "Vary").contains { $0.contains("Origin") })
            let other = try await s.request("GET", "/v1/events/head", headers: [("Origin", "https://evil.example")])
            #expect(other.status == 200 && other.headers["Access-Control-Allow-Origin"] == nil)

            let preflight = try await s.request("OPTIONS", "/v1/streams/order-1", headers: [
                ("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type, authorization"),
            ])
            #expect(preflight.status == 204)
            #expect(preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com")
            #expect(preflight.headers["Access-Control-Allow-Methods"]?.contains("POST") == true)
            #expect(preflight.headers["Access-Control-Allow-Headers"]?.contains("Authorization") == true)
            let refused = try await s.request("OPTIONS", "/v1/streams/order-1", headers: [
                ("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST"),
            ])
            #expect(refused.headers["Access-Control-Allow-Origin"] == nil)
        }
    }

    @Test func wildcardAndDisabled() async throws {
        try await withServer(configure: { $0.http.corsAllowedOrigins = ["*"] }) { s in
            let r = try await s.request("GET", "/healthz", headers: [("Origin", "null")])
            #expect(r.headers["Access-Control-Allow-Origin"] == "*")
        }
        try await withServer { s in
            let r = try await s.request("GET", "/healthz", headers: [("Origin", "https://app.example.com")])
            #expect(r.headers["Access-Control-Allow-Origin"] == nil)
            let options = try await s.request("OPTIONS", "/v1/streams/order-1", headers: [
                ("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST"),
            ])
            #expect(options.status == 405, "CORS off: OPTIONS is not an API method")
        }
    }
}

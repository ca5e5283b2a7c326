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

    /// With auth off, a browser page of another origin cannot write (a `POST` without
    /// `Content-Type` needs no preflight, so CORS alone did not stop it): `403`, nothing written.
    /// Loopback pages (the console), listed origins and clients that send no `Origin` write as
    /// before; reads are not affected.
    @Test func crossOriginWritesAreRefusedWithoutAuth() async throws {
        let body = #"{"events":[{"type":"Planted","data":{}}]}"#
        try await withServer(configure: { $0.http.corsAllowedOrigins = ["https://app.example.com"] }) { s in
            for origin in ["https://evil.example", "null", "http://attacker.test:8080", "http://127.0.0.1.evil.example"] {
                let r = try await s.request("POST", "/v1/streams/csrf-1", json: body, headers: [("Origin", origin)])
                #expect(r.status == 403 && r.errorCode == "forbidden", "\(origin): \(r.status)")
                let d = try await s.request("DELETE", "/v1/streams/kept-1", headers: [("Origin", origin)])
                #expect(d.status == 403, "\(origin): DELETE \(d.status)")
            }
            #expect(try await s.request("GET", "/v1/streams/csrf-1").status == 404, "nothing was written")
            for origin in ["http://127.0.0.1:8080", "http://localhost:3000", "http://[::1]:9", "https://app.example.com"] {
                let r = try await s.request("POST", "/v1/streams/ok-1", json: body, headers: [("Origin", origin)])
                #expect(r.status == 201, "\(origin): \(r.status)")
            }
            #expect(try await s.request("POST", "/v1/streams/ok-1", json: body).status == 201, "no Origin: not a browser")
            let read = try await s.request("GET", "/v1/streams/ok-1", headers: [("Origin", "https://evil.example")])
            #expect(read.status == 200, "reads are not refused (the browser keeps the answer from the page)")
        }
        // With auth on, a page has no token to send: the usual 401, not this rule.
        try await withTenantServer(.memory, tokens: [TestToken.entry("w", tenant: "*", roles: [.write])]) { (s, _, _) async throws in
            let r = try await s.request("POST", "/v1/streams/t-1", json: body, headers: TestToken.headers("w") + [("Origin", "https://evil.example")])
            #expect(r.status == 201, "an authenticated write is the token's business")
        }
    }

    /// DNS rebinding: a page whose host name now points at 127.0.0.1 reads same-origin (no
    /// `Origin`), but its requests name its own host. With auth off, a browser request (with
    /// `Sec-Fetch-*`) for a host that is not loopback is refused; other clients are not affected.
    @Test func browserRequestsForAForeignHostAreRefusedWithoutAuth() async throws {
        let body = appendBody(["A"])
        try await withServer { s in
            #expect(try await s.request("POST", "/v1/streams/kept-1", json: body).status == 201)
            let browser = [("Sec-Fetch-Site", "same-origin"), ("Sec-Fetch-Mode", "cors")]
            for host in ["evil.example:\(s.port)", "evil.example", "10.0.0.5:\(s.port)", "127.0.0.1.evil.example", "[::2]:1"] {
                for target in ["/v1/streams/kept-1", "/v1/events?after=0", "/v1/events/head"] {
                    let r = try await s.request("GET", target, headers: [("Host", host)] + browser)
                    #expect(r.status == 403 && r.errorCode == "forbidden", "\(host) \(target): \(r.status) \(r.text)")
                }
                let w = try await s.request("POST", "/v1/streams/rebound-1", json: body, headers: [("Host", host), ("Sec-Fetch-Mode", "cors")])
                #expect(w.status == 403, "\(host): POST \(w.status)")
            }
            #expect(try await s.request("GET", "/v1/streams/rebound-1").status == 404, "nothing was written")
            for host in ["127.0.0.1:\(s.port)", "localhost:\(s.port)", "LOCALHOST", "app.localhost:1", "[::1]:\(s.port)", "127.1.2.3"] {
                let r = try await s.request("GET", "/v1/streams/kept-1", headers: [("Host", host)] + browser)
                #expect(r.status == 200, "\(host): \(r.status) \(r.text)")
            }
            // Not a browser (no Sec-Fetch-*): any Host is answered, as before.
            #expect(try await s.request("GET", "/v1/streams/kept-1", headers: [("Host", "evil.example")]).status == 200)
            #expect(try await s.request("GET", "/v1/streams/kept-1", headers: [("Host", "localhost.:\(s.port)")] + browser).status == 200)
        }
        // Behind a proxy that passes the public Host on: a host listed in allowedOrigins is answered.
        try await withServer(configure: { $0.http.corsAllowedOrigins = ["https://events.example.com"] }) { s in
            let browser = [("Sec-Fetch-Site", "same-origin"), ("Sec-Fetch-Mode", "navigate")]
            for (host, status) in [("events.example.com", 200), ("Events.Example.com:443", 200), ("evil.example", 403)] {
                let r = try await s.request("GET", "/v1/events/head", headers: [("Host", host)] + browser)
                #expect(r.status == status, "\(host): \(r.status) \(r.text)")
            }
        }
        // With auth on, a page has no token to send: the token decides, not this rule.
        try await withTenantServer(.memory, tokens: [TestToken.entry("r", tenant: "*", roles: [.read])]) { (s, _, _) async throws in
            let r = try await s.request(
                "GET", "/v1/events/head", headers: TestToken.headers("r") + [("Host", "evil.example"), ("Sec-Fetch-Site", "same-origin")]
            )
            #expect(r.status == 200, "\(r.status) \(r.text)")
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

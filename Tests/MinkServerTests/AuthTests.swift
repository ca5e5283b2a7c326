import Foundation
import Mink
import MinkConfig
import MinkHTTP
@testable import MinkServer
import MinkWire
import Testing

/// Access control (HTTP-API.md section 2): tokens, roles, open endpoints.
@Suite("Access control", .timeLimit(.minutes(3)))
struct AuthTests {
    /// One row per route: method, target, body, the role it needs (`nil`: open), whether it is an
    /// event stream.
    struct RouteCase: Sendable, CustomTestStringConvertible {
        var method: String
        var target: String
        var body: String?
        var role: MinkdConfiguration.Token.Role?
        var sse = false
        var testDescription: String { "\(method) \(target)" }
    }

    static let query = #"{"where":[[{"field":"status","op":"=","value":"open"}]]}"#
    static let routes: [RouteCase] = [
        RouteCase(method: "GET", target: "/healthz", role: nil),
        RouteCase(method: "GET", target: "/readyz", role: nil),
        RouteCase(method: "GET", target: "/metrics", role: nil),
        RouteCase(method: "GET", target: "/v1/info", role: .read),
        RouteCase(method: "POST", target: "/v1/streams/order-1", body: appendBody(["A"]), role: .write),
        RouteCase(method: "GET", target: "/v1/streams/order-1", role: .read),
        RouteCase(method: "HEAD", target: "/v1/streams/order-1", role: .read),
        RouteCase(method: "GET", target: "/v1/streams/order-1/info", role: .read),
        RouteCase(method: "GET", target: "/v1/streams/order-1/snapshot", role: .read),
        RouteCase(method: "PUT", target: "/v1/streams/order-1/snapshot", body: #"{"version":1,"state":{}}"#, role: .write),
        RouteCase(method: "GET", target: "/v1/events", role: .read),
        RouteCase(method: "GET", target: "/v1/events/head", role: .read),
        RouteCase(method: "GET", target: "/v1/subscriptions/all", role: .read, sse: true),
        RouteCase(method: "GET", target: "/v1/subscriptions/categories/order", role: .read, sse: true),
        RouteCase(method: "GET", target: "/v1/subscriptions/streams/order-1", role: .read, sse: true),
        RouteCase(method: "GET", target: "/v1/projections", role: .read),
        RouteCase(method: "GET", target: "/v1/projections/orders", role: .read),
        RouteCase(method: "POST", target: "/v1/projections/orders/rebuild", role: .admin),
        RouteCase(method: "POST", target: "/v1/projections/orders/pause", role: .admin),
        RouteCase(method: "POST", target: "/v1/projections/orders/resume", role: .admin),
        RouteCase(method: "GET", target: "/v1/readmodels/orders/o-1", role: .read),
        RouteCase(method: "GET", target: "/v1/readmodels/orders?orderBy=status", role: .read),
        RouteCase(method: "POST", target: "/v1/readmodels/orders/query", body: query, role: .read),
        RouteCase(method: "POST", target: "/v1/readmodels/orders/count", body: query, role: .read),
        RouteCase(method: "GET", target: "/v1/admin/tenants", role: .admin),
        RouteCase(method: "POST", target: "/v1/admin/tenants", body: #"{"id":"initech"}"#, role: .admin),
        RouteCase(method: "DELETE", target: "/v1/admin/tenants/initech?confirm=initech", role: .admin),
        RouteCase(method: "GET", target: "/v1/streams?limit=10", role: .read),
        RouteCase(method: "DELETE", target: "/v1/streams/order-1", role: .write),
        RouteCase(method: "GET", target: "/v1/streams/order-1/metadata", role: .read),
        RouteCase(method: "PUT", target: "/v1/streams/order-1/metadata", body: #"{"maxCount":5}"#, role: .write),
        RouteCase(method: "POST", target: "/v1/admin/scavenge", role: .admin),
    ]

    /// `*` tokens with exactly one role each.
    static let tokens: [MinkdConfiguration.Token] = [
        TestToken.entry("reader", tenant: "*", roles: [.read]),
        TestToken.entry("writer", tenant: "*", roles: [.write]),
        TestToken.entry("admin", tenant: "*", roles: [.admin]),
        TestToken.entry("acme-all", tenant: "acme", roles: [.read, .write, .admin]),
    ]

    /// Sends one route case with a token; for an allowed event stream, reads up to `caught-up`.
    static func send(_ s: TestServer, _ r: RouteCase, token: String?, extra: [(String, String)] = []) async throws -> Int {
        let headers = TestToken.headers(token) + extra
        if r.sse {
            // An allowed subscription stays open: probe with a raw connection and read the head.
            let c = try await RawConnection.open(port: s.port)
            var request = "GET \(r.target) HTTP/1.1\r\nHost: x\r\n"
            for (n, v) in headers { request += "\(n): \(v)\r\n" }
            try await c.send(request + "\r\n")
            let text = try await c.read(until: { $0.contains("\r\n\r\n") }, timeout: .seconds(5))
            return Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return try await s.request(r.method, r.target, json: r.body, headers: headers).status
    }

    @Test(arguments: routes)
    func rolesAreEnforcedOnEveryRoute(_ r: RouteCase) async throws {
        try await withTenantServer(.memory, tokens: Self.tokens) { (s, _, _) async throws in
            for (token, role) in [("reader", MinkdConfiguration.Token.Role.read), ("writer", .write), ("admin", .admin)] {
                let status = try await Self.send(s, r, token: token)
                if let needed = r.role, needed != role {
                    #expect(status == 403, "\(r.testDescription) with \(role): \(status)")
                } else {
                    // 0 means nothing answered: that must fail too.
                    #expect((200..<500).contains(status) && status != 401 && status != 403, "\(r.testDescription) with \(role): \(status)")
                }
            }
            // No token, a malformed header, an unknown token: 401 with the challenge (open routes answer).
            for extra in [[], [("Authorization", "Bearer nope")], [("Authorization", "Basic YTpi")], [("Authorization", "Bearer")]] {
                let status = try await Self.send(s, r, token: nil, extra: extra)
                #expect(r.role == nil ? status == 200 : status == 401, "\(r.testDescription) \(extra): \(status)")
            }
        }
    }

    @Test func unauthorizedCarriesTheChallengeAndEchoesNothing() async throws {
        try await withTenantServer(.memory, tokens: Self.tokens) { (s, _, _) async throws in
            let r = try await s.request("GET", "/v1/events", headers: [("Authorization", "Bearer secret-guess-123")])
            #expect(r.status == 401 && r.errorCode == "unauthorized")
            #expect(r.headers["WWW-Authenticate"] == "Bearer")
            #expect(!r.text.contains("secret-guess-123") && !r.text.contains(hashToken("secret-guess-123")))
            let denied = try await s.request("POST", "/v1/streams/x", json: appendBody(["A"]), headers: TestToken.headers("reader"))
            #expect(denied.status == 403 && denied.errorCode == "forbidden")
            #expect(!denied.text.contains(TestToken.secret("reader")) && !denied.text.contains(hashToken(TestToken.secret("reader"))))
            // The scheme is case-insensitive.
            let lower = try await s.request("GET", "/v1/events", headers: [("Authorization", "bearer \(TestToken.secret("reader"))")])
            #expect(lower.status == 200)
        }
    }

    /// `Expect: 100-continue` with no valid token (or the wrong role): the `401`/`403` comes
    /// instead of `100 Continue` and the connection closes — the client never uploads the body
    /// (it got `100` first, then the refusal after sending everything). With a valid token:
    /// `100 Continue`, then the request runs.
    @Test func expectContinueIsRefusedBeforeTheBodyWithoutAValidToken() async throws {
        try await withTenantServer(.memory, tokens: Self.tokens) { (s, _, _) async throws in
            func head(_ token: String?, length: Int) -> String {
                var text = "POST /v1/streams/order-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                for (n, v) in TestToken.headers(token) { text += "\(n): \(v)\r\n" }
                return text + "Expect: 100-continue\r\nContent-Length: \(length)\r\n\r\n"
            }
            for (token, status) in [(nil, 401), ("reader", 403)] as [(String?, Int)] {
                let c = try await RawConnection.open(port: s.port)
                try await c.send(head(token, length: 1_000_000))
                let text = try await c.read(until: { $0.contains("\r\n\r\n") }, timeout: .seconds(5))
                #expect(text.hasPrefix("HTTP/1.1 \(status) "), "\(token ?? "no token"): \(text.prefix(80))")
                #expect(!text.contains("100 Continue"))
                #expect(try await c.readUntilClosed(timeout: .seconds(5)), "the connection closes: the body is never read")
            }
            let body = appendBody(["A"])
            let c = try await RawConnection.open(port: s.port)
            try await c.send(head("writer", length: body.utf8.count))
            let interim = try await c.read(until: { $0.contains("\r\n\r\n") }, timeout: .seconds(5))
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n\r\n"), "\(interim.prefix(80))")
            try await c.send(body)
            let final = try await c.read(untilContains: "201 Created", timeout: .seconds(5))
            #expect(final.contains("HTTP/1.1 201 "), "\(final.prefix(200))")
        }
    }

    @Test func tenantAdministrationNeedsAWildcardToken() async throws {
        try await withTenantServer(.memory, tokens: Self.tokens) { (s, _, _) async throws in
            let h = TestToken.headers("acme-all")
            #expect(try await s.request("GET", "/v1/admin/tenants", headers: h).status == 403)
            #expect(try await s.request("POST", "/v1/admin/tenants", json: #"{"id":"x1"}"#, headers: h).status == 403)
            #expect(try await s.request("DELETE", "/v1/admin/tenants/acme?confirm=acme", headers: h).status == 403)
            // Projection control stays within its own tenant.
            #expect(try await s.request("POST", "/v1/projections/orders/pause", headers: h).status == 404)
        }
    }

    @Test func metricsNeedAReadTokenWhenConfigured() async throws {
        try await withTenantServer(.memory, tokens: Self.tokens, configure: { $0.metrics.requireToken = true }) { (s, _, _) async throws in
            let open = try await s.request("GET", "/metrics")
            #expect(open.status == 401 && open.headers["WWW-Authenticate"] == "Bearer")
            #expect(try await s.request("GET", "/metrics", headers: TestToken.headers("writer")).status == 403)
            #expect(try await s.request("GET", "/metrics", headers: TestToken.headers("reader")).status == 200)
            // The metrics are every tenant's activity: a token bound to one tenant may not read
            // them, whatever its roles; `Mink-Tenant` changes nothing for a `*` token.
            let bound = try await s.request("GET", "/metrics", headers: TestToken.headers("acme-all"))
            #expect(bound.status == 403 && bound.errorCode == "forbidden" && bound.text.contains("every tenant"))
            #expect(try await s.request("GET", "/metrics", headers: TestToken.headers("reader") + [("Mink-Tenant", "nope")]).status == 200)
            #expect(try await s.request("GET", "/healthz").status == 200)
            #expect(try await s.request("GET", "/readyz").status == 200)
        }
    }

    @Test func authDisabledUsesTheHeaderOrDefault() async throws {
        try await withServer { s in
            try await s.request("POST", "/v1/streams/a-1", json: appendBody(["A"]), headers: [("Mink-Tenant", "acme")])
            #expect(try await s.request("GET", "/v1/events/head", headers: [("Mink-Tenant", "acme")])["position"] == .int(1))
            #expect(try await s.request("GET", "/v1/events/head")["position"] == .int(0))
            // A token is ignored when auth is disabled.
            #expect(try await s.request("GET", "/v1/events/head", headers: [("Authorization", "Bearer whatever")]).status == 200)
        }
    }

    @Test func reloadReplacesTheTokenList() async throws {
        try await withTenantServer(.memory, tokens: [TestToken.entry("old", tenant: "*", roles: [.read])]) { (s, _, _) async throws in
            #expect(try await s.request("GET", "/v1/events", headers: TestToken.headers("old")).status == 200)
            #expect(try await s.request("GET", "/v1/events", headers: TestToken.headers("new")).status == 401)
            var next = s.server.configuration
            next.auth.tokens = [TestToken.entry("new", tenant: "*", roles: [.read])]
            next.limits.maxBodyBytes += 1
            next.retention.scavengeIntervalSeconds += 1
            let ignored = try s.server.reloadTokens(from: next)
            #expect(ignored == ["limits", "retention"], "every section but the tokens is reported as needing a restart")
            #expect(try await s.request("GET", "/v1/events", headers: TestToken.headers("new")).status == 200)
            #expect(try await s.request("GET", "/v1/events", headers: TestToken.headers("old")).status == 401)
        }
    }

    /// A reload that would leave authentication on (it changes only at a restart) with no token
    /// — the file emptied, or `auth.enabled: false` — is refused and the list kept: every
    /// request would get `401`, the state start-up refuses.
    @Test func aReloadToNoTokensIsRefusedWhileAuthIsOn() async throws {
        try await withTenantServer(.memory, tokens: [TestToken.entry("old", tenant: "*", roles: [.read])]) { (s, _, _) async throws in
            for enabled in [true, false] {
                var next = s.server.configuration
                next.auth.enabled = enabled
                next.auth.tokens = []
                #expect(throws: ConfigError.self) { try s.server.reloadTokens(from: next) }
                #expect(try await s.request("GET", "/v1/events", headers: TestToken.headers("old")).status == 200)
            }
        }
    }

    /// A token removed by a reload ends the event streams it opened (at their next message);
    /// streams of tokens still listed go on.
    @Test func aReloadEndsTheEventStreamsOfRemovedTokens() async throws {
        let tokens = [TestToken.entry("old", tenant: "*", roles: [.read, .write]), TestToken.entry("keep", tenant: "*", roles: [.read, .write])]
        try await withTenantServer(.memory, tokens: tokens) { (s, _, _) async throws in
            let gotEvent: @Sendable ([SSEEvent]) -> Bool = { $0.contains { $0.event == "message" } }
            async let old = s.sse("/v1/subscriptions/all", headers: TestToken.headers("old"), until: gotEvent)
            async let kept = s.sse("/v1/subscriptions/all", headers: TestToken.headers("keep"), until: gotEvent)
            // Both streams open before the reload.
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                let metrics = try await s.request("GET", "/metrics", headers: TestToken.headers("keep")).text
                if metrics.contains("minkd_sse_subscribers 2") { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            var next = s.server.configuration
            next.auth.tokens = [TestToken.entry("keep", tenant: "*", roles: [.read, .write])]
            try s.server.reloadTokens(from: next)
            let append = try await s.request("POST", "/v1/streams/r-1", json: appendBody(["A"]), headers: TestToken.headers("keep"))
            #expect(append.status == 201)
            let (oldEvents, keptEvents) = try await (old, kept)
            #expect(!oldEvents.contains { $0.event == "message" }, "the removed token's stream ended without the event: \(oldEvents)")
            #expect(keptEvents.contains { $0.event == "message" }, "\(keptEvents)")
            #expect(try await s.request("GET", "/v1/subscriptions/all", headers: TestToken.headers("old")).status == 401)
        }
    }

    @Test func bearerParsing() {
        // Exercised through the server above; here the edge cases of the header itself.
        let cases: [(String, String?)] = [
            ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER abc", "abc"),
            ("  Bearer   abc \t", "abc"),  // optional whitespace around the value and the token
            ("Bearer", nil), ("Bearer ", nil), ("Bearer   ", nil), ("Bearerabc", nil),
            ("Bearer\tabc", nil),  // the scheme is separated by a space (RFC 9110 section 11.4)
            ("Bearer a b", nil), ("Basic YTpi", nil), ("", nil), ("Token abc", nil),
        ]
        for (header, token) in cases {
            #expect(Authenticator.bearerToken(header) == token, "\(header.debugDescription)")
        }
        // Tokens are compared by their SHA-256 (FIPS 180-2 test vectors).
        #expect(hashToken("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hashToken("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}

/// A storage closed under a request (server shutdown, the tenant's deletion) is the contract's
/// transient `503`, not a `500`.
@Suite("Storage shut down under a request", .timeLimit(.minutes(1)))
struct CancelledStorageErrorTests {
    @Test func aCancelledStorageCallIs503WithRetryAfter() throws {
        let e = try #require(APIError.from(MinkError(.cancelled, "storage is shut down")))
        #expect(e.status == 503 && e.code == .unavailable)
        #expect(e.headers.contains { $0.0 == "Retry-After" && $0.1 == "1" })
    }
}

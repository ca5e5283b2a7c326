import Foundation
import Mink
import MinkConfig
import MinkHTTP
import MinkTestFixtures
import Testing

/// Section 2, revision 2: `?access_token=` on GETs (event streams included), per-token rate
/// limits, and the W3C trace context of every response; section 10's process series.
@Suite("Browser tokens, rate limits, trace context", .timeLimit(.minutes(3)))
struct BrowserAccessTests {
    static let reader = "reader-\(UUID().uuidString)"
    static let writer = "writer+/=&token"
    static let limited = "limited-\(UUID().uuidString)"

    static func auth(limit: MinkdConfiguration.Token.RateLimit? = nil) -> (inout MinkdConfiguration) -> Void {
        { c in
            c.auth.enabled = true
            c.auth.tokens = [
                .init(name: "reader", sha256: hashToken(reader), tenant: "*", roles: [.read]),
                .init(name: "writer", sha256: hashToken(writer), tenant: "*", roles: [.read, .write]),
                .init(name: "limited", sha256: hashToken(limited), tenant: "*", roles: [.read], rateLimit: limit),
            ]
        }
    }

    /// A token as a query value (percent-encoded as `encodeURIComponent` would).
    static func q(_ token: String) -> String {
        token.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.~")))!
    }

    @Test func accessTokenIsAcceptedOnGetsAndEventStreams() async throws {
        try await withServer(configure: Self.auth()) { s in
            #expect(try await s.request("GET", "/v1/events?after=0&access_token=\(Self.q(Self.reader))").status == 200)
            #expect(try await s.request("HEAD", "/v1/events/head?access_token=\(Self.q(Self.reader))").status == 200)
            // A token with reserved characters, percent-encoded.
            #expect(try await s.request("GET", "/v1/events?access_token=\(Self.q(Self.writer))&after=0").status == 200)
            let missing = try await s.request("GET", "/v1/events")
            #expect(missing.status == 401 && missing.headers["WWW-Authenticate"] == "Bearer")
            #expect(try await s.request("GET", "/v1/events?access_token=wrong").status == 401)
            #expect(try await s.request("GET", "/v1/events?access_token=").status == 401)
            // The header wins when both are sent.
            let both = try await s.request("GET", "/v1/events?access_token=\(Self.q(Self.reader))", headers: [("Authorization", "Bearer wrong")])
            #expect(both.status == 401)

            let sse = try await RawConnection.open(port: s.port)
            try await sse.send("GET /v1/subscriptions/all?after=0&access_token=\(Self.q(Self.reader)) HTTP/1.1\r\nHost: x\r\n\r\n")
            let head = try await sse.read(until: { $0.contains("caught-up") }, timeout: .seconds(5))
            #expect(head.hasPrefix("HTTP/1.1 200"))
            let appended = try await s.request(
                "POST", "/v1/streams/browser-1", json: #"{"events":[{"type":"Seen","data":{}}]}"#,
                headers: [("Authorization", "Bearer \(Self.writer)")]
            )
            #expect(appended.status == 201)
            let live = try await sse.read(until: { $0.contains("\"Seen\"") }, timeout: .seconds(5))
            #expect(live.contains("\"Seen\""))
        }
    }

    @Test func accessTokenIsRefusedOnOtherMethods() async throws {
        try await withServer(configure: Self.auth()) { s in
            let body = #"{"events":[{"type":"Nope","data":{}}]}"#
            let r = try await s.request("POST", "/v1/streams/browser-2?access_token=\(Self.q(Self.writer))", json: body)
            #expect(r.status == 401 && r.errorCode == "unauthorized" && r.headers["WWW-Authenticate"] == "Bearer")
            #expect(!r.text.contains(Self.writer) && !r.text.contains(Self.q(Self.writer)), "the token is not echoed")
            // Refused even with a valid header: a token does not belong in a write's URL.
            let withHeader = try await s.request(
                "POST", "/v1/streams/browser-2?access_token=\(Self.q(Self.writer))", json: body,
                headers: [("Authorization", "Bearer \(Self.writer)")]
            )
            #expect(withHeader.status == 401)
            let put = try await s.request(
                "PUT", "/v1/streams/browser-2/snapshot?access_token=x", json: #"{"version":1,"state":{}}"#,
                headers: [("Authorization", "Bearer \(Self.writer)")]
            )
            #expect(put.status == 401)
            // The parameter's name percent-encoded is the same parameter (it was not refused).
            let encoded = try await s.request(
                "POST", "/v1/streams/browser-2?access%5Ftoken=\(Self.q(Self.writer))", json: body,
                headers: [("Authorization", "Bearer \(Self.writer)")]
            )
            #expect(encoded.status == 401)
            // Nothing was written.
            let load = try await s.request("GET", "/v1/streams/browser-2", headers: [("Authorization", "Bearer \(Self.reader)")])
            #expect(load.status == 404)
        }
    }

    @Test func overTheLimitIs429WithRetryAfterThenRecovers() async throws {
        // One request per 10 s: a loaded machine cannot refill the bucket between the requests below
        // (and if it did, the loop only takes longer to reach the limit).
        try await withServer(configure: Self.auth(limit: .init(perSecond: 0.1, burst: 3))) { s in
            let auth = [("Authorization", "Bearer \(Self.limited)")]
            // An event stream counts once, when it starts, however long it stays open.
            let sse = try await RawConnection.open(port: s.port)
            try await sse.send("GET /v1/subscriptions/all?access_token=\(Self.q(Self.limited)) HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try await sse.read(until: { $0.contains("caught-up") }, timeout: .seconds(5))
            var served: [Int] = []
            var refusal: TestServer.Reply?
            for _ in 0..<10 {
                let r = try await s.request("GET", "/v1/events/head", headers: auth)
                if r.status == 429 { refusal = r; break }
                served.append(r.status)
            }
            let refused = try #require(refusal, "no 429 within 10 requests: \(served)")
            // The burst of 3, less the stream: 2 (more only if the bucket refilled meanwhile).
            #expect(served.count >= 2 && served.allSatisfy { $0 == 200 }, "\(served)")
            #expect(refused.errorCode == "too_many_requests")
            let retryAfter = try #require(refused.headers["Retry-After"].flatMap { Int($0) })
            #expect(retryAfter >= 1 && retryAfter <= 10)
            #expect(refused.json.objectValue?["error"]?.objectValue?["details"]?.objectValue?["retryAfterSeconds"] == .int(Int64(retryAfter)))
            // Other tokens are not limited by it.
            #expect(try await s.request("GET", "/v1/events/head", headers: [("Authorization", "Bearer \(Self.reader)")]).status == 200)
            // The open stream still delivers.
            #expect(try await s.request(
                "POST", "/v1/streams/limited-1", json: #"{"events":[{"type":"StillLive","data":{}}]}"#,
                headers: [("Authorization", "Bearer \(Self.writer)")]
            ).status == 201)
            _ = try await sse.read(until: { $0.contains("StillLive") }, timeout: .seconds(5))
            // After the wait the token is served again.
            try await Task.sleep(for: .seconds(retryAfter))
            #expect(try await s.request("GET", "/v1/events/head", headers: auth).status == 200)
        }
    }

    @Test func responsesCarryTheServerSpansTraceparent() async throws {
        try await withServer(configure: Self.auth()) { s in
            let auth = ("Authorization", "Bearer \(Self.reader)")
            let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            let continued = try await s.request("GET", "/v1/events/head", headers: [auth, ("traceparent", caller)])
            let parts = try #require(continued.headers["traceparent"]).split(separator: "-")
            #expect(parts.count == 4 && parts[0] == "00" && parts[1] == "4bf92f3577b34da6a3ce929d0e0e4736" && parts[3] == "01")
            #expect(parts[2].count == 16 && parts[2] != "00f067aa0ba902b7", "the server span is a new span of the caller's trace")
            // Refused requests and the synchronous routes carry one too.
            let refused = try await s.request("GET", "/v1/events/head", headers: [("traceparent", caller)])
            #expect(refused.status == 401 && refused.headers["traceparent"]?.contains("4bf92f3577b34da6a3ce929d0e0e4736") == true)
            let health = try await s.request("GET", "/healthz", headers: [("traceparent", caller)])
            #expect(health.headers["traceparent"]?.contains("4bf92f3577b34da6a3ce929d0e0e4736") == true)
            // Absent or invalid (uppercase hex, all-zero trace ID, version ff): a new trace each time.
            var traces = Set<String>()
            for header in [nil, "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"] {
                var headers = [auth]
                if let header { headers.append(("traceparent", header)) }
                let r = try await s.request("GET", "/v1/events/head", headers: headers)
                let value = try #require(r.headers["traceparent"])
                let p = value.split(separator: "-")
                #expect(value.count == 55 && p.count == 4 && p[0] == "00" && p[1] != "4bf92f3577b34da6a3ce929d0e0e4736", "\(value)")
                traces.insert(String(p[1]))
            }
            #expect(traces.count == 4)
        }
    }

    @Test func metricsCarryProcessSeriesAndBuildInfo() async throws {
        try await withServer { s in
            let text = try await s.request("GET", "/metrics").text
            func value(_ name: String) -> Double? {
                text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
            }
            #expect(try #require(value("process_cpu_seconds_total")) > 0)
            #expect(try #require(value("process_resident_memory_bytes")) > 1_000_000)
            let open = try #require(value("process_open_fds")), max = try #require(value("process_max_fds"))
            #expect(open >= 3 && open < max)
            let started = try #require(value("process_start_time_seconds"))
            #expect(abs(started - Date().timeIntervalSince1970) < 3600, "\(started)")
            #expect(text.contains("# TYPE process_cpu_seconds_total counter"))
            #expect(text.contains("minkd_build_info{version=\"0.1.0\"} 1\n"))
        }
    }
}

import Testing
@testable import MinkHTTP

@Suite(.timeLimit(.minutes(3))) struct HTTPConnectionStateMachineTests {
    typealias SM = HTTPConnectionStateMachine
    let ms: UInt64 = 1_000_000

    func config() -> SM.Configuration {
        SM.Configuration(headerTimeoutNanos: 1000 * ms, idleTimeoutNanos: 5000 * ms, bodyTimeoutNanos: 2000 * ms)
    }

    func dispatched(_ actions: [SM.Action]) -> [HTTPRequest] {
        actions.compactMap { if case .dispatch(let r, _) = $0 { return r } else { return nil } }
    }

    func writes(_ actions: [SM.Action]) -> [String] {
        actions.compactMap { if case .write(let b) = $0 { return String(decoding: b, as: UTF8.self) } else { return nil } }
    }

    func closes(_ actions: [SM.Action]) -> Bool {
        actions.contains { if case .close = $0 { return true } else { return false } }
    }

    @Test func pipelinedRequestsAreDispatchedOneAtATime() {
        var sm = SM(configuration: config(), now: 0)
        let a = sm.bytesReceived(Array("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n".utf8)[...], now: 1)
        #expect(dispatched(a).map(\.path) == ["/1"])
        #expect(sm.deadline == nil)
        let b = sm.responseSent(close: false, now: 2)
        #expect(dispatched(b).map(\.path) == ["/2"])
        let c = sm.responseSent(close: false, now: 3)
        #expect(c.isEmpty)
        #expect(sm.deadline == 3 + 5000 * ms)  // idle
    }

    @Test func slowHeadTimesOutWith408() {
        var sm = SM(configuration: config(), now: 0)
        #expect(sm.deadline == 1000 * ms)  // a new connection gets the header timeout
        _ = sm.bytesReceived(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)[...], now: 0)
        _ = sm.responseSent(close: false, now: 0)
        #expect(sm.deadline == 5000 * ms)  // idle
        _ = sm.bytesReceived(Array("GET / HT".utf8)[...], now: 100 * ms)
        #expect(sm.deadline == 1100 * ms)
        // More bytes do not extend the header deadline (slowloris).
        _ = sm.bytesReceived(Array("TP/1.1\r\n".utf8)[...], now: 900 * ms)
        #expect(sm.timerFired(now: 1000 * ms).isEmpty)
        let fired = sm.timerFired(now: 1100 * ms)
        #expect(writes(fired).first?.hasPrefix("HTTP/1.1 408") == true)
        #expect(closes(fired))
    }

    @Test func idleConnectionClosesSilently() {
        var sm = SM(configuration: config(), now: 0)
        _ = sm.bytesReceived(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)[...], now: 0)
        _ = sm.responseSent(close: false, now: 10 * ms)
        let fired = sm.timerFired(now: 5010 * ms)
        #expect(writes(fired).isEmpty)
        #expect(closes(fired))
    }

    @Test func keepAliveRules() {
        for (text, keep) in [
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", true),
            ("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false),
            ("GET / HTTP/1.0\r\n\r\n", false),
            ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
        ] {
            var sm = SM(configuration: config(), now: 0)
            let a = sm.bytesReceived(Array(text.utf8)[...], now: 0)
            guard case .dispatch(_, let k) = a.first else { Issue.record("no dispatch"); continue }
            #expect(k == keep, "\(text)")
            #expect(closes(sm.responseSent(close: false, now: 1)) == !keep)
        }
    }

    @Test func expectContinueIsSentOnceBeforeTheBody() {
        var sm = SM(configuration: config(), now: 0)
        let a = sm.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n".utf8)[...], now: 0)
        // The shell asks the responder (`refuseBeforeBody`), then writes `100 Continue`.
        guard a.count == 1, case .expectContinue(let head) = a[0] else {
            Issue.record("expected one expectContinue action, got \(a)")
            return
        }
        #expect(head.method == "POST" && head.body.isEmpty)
        #expect(sm.bytesReceived(Array("a".utf8)[...], now: 1).isEmpty)
        #expect(dispatched(sm.bytesReceived(Array("b".utf8)[...], now: 2)).first?.body == Array("ab".utf8))
    }

    /// Refused from its head alone: the connection closes, the body is never read.
    @Test func aRequestRefusedBeforeItsBodyCloses() {
        var sm = SM(configuration: config(), now: 0)
        let a = sm.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n".utf8)[...], now: 0)
        guard case .expectContinue = a.first else {
            Issue.record("expected expectContinue, got \(a)")
            return
        }
        #expect(closes(sm.refusedBeforeBody()))
        #expect(sm.isClosed)
        #expect(sm.bytesReceived(Array("ab".utf8)[...], now: 1).isEmpty, "nothing is dispatched after the refusal")
    }

    @Test func framingErrorAnswersAndCloses() {
        var sm = SM(configuration: config(), now: 0)
        let a = sm.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".utf8)[...], now: 0)
        #expect(writes(a).first?.hasPrefix("HTTP/1.1 400 Bad Request\r\n") == true)
        #expect(writes(a).first?.contains("Connection: close\r\n") == true)
        // Every response carries a trace context, transport errors too (a new trace).
        let traceparent = writes(a).first?.split(separator: "\r\n").first { $0.lowercased().hasPrefix("traceparent: ") }
        #expect(traceparent?.wholeMatch(of: /(?i)traceparent: 00-[0-9a-f]{32}-[0-9a-f]{16}-00/) != nil, "\(writes(a))")
        #expect(traceparent?.contains("-00000000000000000000000000000000-") == false)
        #expect(closes(a))
        #expect(sm.isClosed)
        #expect(sm.bytesReceived(Array("GET / HTTP/1.1\r\n\r\n".utf8)[...], now: 1).isEmpty)
    }

    @Test func gzipRequestBodyIsInflatedWithinTheLimit() throws {
        var c = config()
        c.limits.maxBodyBytes = 1000
        let small = try Gzip.compress(Array(repeating: 65, count: 1000))
        var sm = SM(configuration: c, now: 0)
        let a = sm.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: \(small.count)\r\n\r\n".utf8)[...] + small[...], now: 0)
        #expect(dispatched(a).first?.body.count == 1000)
        #expect(dispatched(a).first?.headers["Content-Encoding"] == nil)

        let big = try Gzip.compress(Array(repeating: 65, count: 1001))
        var sm2 = SM(configuration: c, now: 0)
        let b = sm2.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: \(big.count)\r\n\r\n".utf8)[...] + big[...], now: 0)
        #expect(writes(b).first?.hasPrefix("HTTP/1.1 413") == true)
        #expect(closes(b))
    }

    @Test func shutdownClosesIdleAndDrainsBusy() {
        var idle = SM(configuration: config(), now: 0)
        #expect(closes(idle.beginShutdown()))
        var busy = SM(configuration: config(), now: 0)
        _ = busy.bytesReceived(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)[...], now: 0)
        #expect(busy.beginShutdown().isEmpty)
        #expect(closes(busy.responseSent(close: false, now: 1)))
    }

    func bodyConfig() -> SM.Configuration {
        SM.Configuration(headerTimeoutNanos: 1000 * ms, idleTimeoutNanos: 5000 * ms, bodyIdleTimeoutNanos: 300 * ms, bodyTimeoutNanos: 2000 * ms)
    }

    @Test func stalledBodyTimesOutAtTheIdleTimeout() {
        var sm = SM(configuration: bodyConfig(), now: 0)
        _ = sm.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab".utf8)[...], now: 100 * ms)
        #expect(sm.deadline == 400 * ms)  // idle: 300 ms after the last byte
        _ = sm.bytesReceived(Array("c".utf8)[...], now: 350 * ms)
        #expect(sm.deadline == 650 * ms)
        #expect(sm.timerFired(now: 600 * ms).isEmpty)
        let fired = sm.timerFired(now: 650 * ms)
        #expect(writes(fired).first?.hasPrefix("HTTP/1.1 408") == true)
        #expect(writes(fired).first?.contains("\"details\":{}") == true)
        #expect(closes(fired))
    }

    @Test func tricklingBodyTimesOutAtTheTotalTimeout() {
        var sm = SM(configuration: bodyConfig(), now: 0)
        _ = sm.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".utf8)[...], now: 100 * ms)
        // A byte every 200 ms keeps the idle timer from firing; the total counts from the head.
        var now = 100 * ms
        while now < 1900 * ms {
            now += 200 * ms
            #expect(sm.timerFired(now: now).isEmpty)
            _ = sm.bytesReceived(Array("a".utf8)[...], now: now)
        }
        #expect(sm.deadline == 2100 * ms)
        let fired = sm.timerFired(now: 2100 * ms)
        #expect(writes(fired).first?.hasPrefix("HTTP/1.1 408") == true)
        #expect(closes(fired))
    }

    @Test func aCompleteBodyStopsTheBodyTimers() {
        var sm = SM(configuration: bodyConfig(), now: 0)
        _ = sm.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\na".utf8)[...], now: 0)
        let a = sm.bytesReceived(Array("b".utf8)[...], now: 1900 * ms)
        #expect(dispatched(a).first?.body == Array("ab".utf8))
        #expect(sm.deadline == nil)
        _ = sm.responseSent(close: false, now: 1950 * ms)
        // The next request's body gets its own total from its own head.
        _ = sm.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n".utf8)[...], now: 3000 * ms)
        #expect(sm.deadline == 3300 * ms)
    }

    @Test func aNewConnectionThatSendsNothingGets408() {
        var sm = SM(configuration: config(), now: 0)
        let fired = sm.timerFired(now: 1000 * ms)
        #expect(writes(fired).first?.hasPrefix("HTTP/1.1 408") == true)
        #expect(closes(fired))
    }

    /// Every transport-level error response carries an `X-Request-ID`: the client's when its head
    /// was read far enough to know it (framing errors found after the header fields, body
    /// errors and timeouts, unsupported codings), a generated one otherwise (an over-long request
    /// line, a head that never completed) — and never the previous request's.
    @Test func transportErrorsEchoTheRequestID() {
        func requestID(_ response: String?) -> String? {
            guard let response else { return nil }
            for line in response.split(separator: "\r\n") where line.lowercased().hasPrefix("x-request-id: ") {
                return String(line.dropFirst("x-request-id: ".count))
            }
            return nil
        }
        let echoed = [
            "POST / HTTP/1.1\r\nHost: x\r\nX-Request-ID: r-1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nX-Request-ID: r-1\r\nContent-Length: 1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nX-Request-ID: r-1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nX-Request-ID: r-1\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}",
            "POST / HTTP/1.1\r\nHost: x\r\nX-Request-ID: r-1\r\nContent-Length: 99999999999\r\n\r\n",
        ]
        for raw in echoed {
            var sm = SM(configuration: config(), now: 0)
            let a = sm.bytesReceived(Array(raw.utf8)[...], now: 0)
            #expect(writes(a).first?.hasPrefix("HTTP/1.1 4") == true, "\(raw)")
            #expect(requestID(writes(a).first) == "r-1", "\(raw)")
        }
        // A body that stops arriving: the 408 echoes the head's ID.
        var sm = SM(configuration: bodyConfig(), now: 0)
        _ = sm.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\nX-Request-ID: r-2\r\nContent-Length: 10\r\n\r\nab".utf8)[...], now: 0)
        let fired = sm.timerFired(now: 300 * ms)
        #expect(writes(fired).first?.hasPrefix("HTTP/1.1 408") == true && requestID(writes(fired).first) == "r-2")
        // A request line over the limit: no ID was read, one is generated (not the previous
        // request's, whose ID the parser must have forgotten).
        var c = config()
        c.limits.maxRequestLineBytes = 64
        var sm2 = SM(configuration: c, now: 0)
        _ = sm2.bytesReceived(Array("GET / HTTP/1.1\r\nHost: x\r\nX-Request-ID: r-3\r\n\r\n".utf8)[...], now: 0)
        _ = sm2.responseSent(close: false, now: 1)
        let long = sm2.bytesReceived(Array(("GET /" + String(repeating: "a", count: 100) + " HTTP/1.1\r\n").utf8)[...], now: 2)
        #expect(writes(long).first?.hasPrefix("HTTP/1.1 414") == true)
        let generated = requestID(writes(long).first)
        #expect(generated != nil && generated != "r-3" && generated?.utf8.count == 16)
        // A nonsense ID is not echoed (it would be a header injection or a log-forging vector).
        var sm3 = SM(configuration: config(), now: 0)
        let bad = sm3.bytesReceived(Array("POST / HTTP/1.1\r\nX-Request-ID: \u{7F}bad\r\nContent-Length: 1\r\n\r\n".utf8)[...], now: 0)
        #expect(requestID(writes(bad).first).map { $0.utf8.count == 16 } == true)
    }

    @Test func unknownContentEncodingIs415() {
        var sm = SM(configuration: config(), now: 0)
        let a = sm.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}".utf8)[...], now: 0)
        #expect(dispatched(a).isEmpty)
        #expect(writes(a).first?.hasPrefix("HTTP/1.1 415") == true)
        #expect(writes(a).first?.contains("unsupported_media_type") == true)
        #expect(closes(a))
        var sm2 = SM(configuration: config(), now: 0)
        let b = sm2.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}".utf8)[...], now: 0)
        #expect(dispatched(b).first?.headers["Content-Encoding"] == nil)
    }

    /// `Content-Encoding` on several lines is one list (RFC 9110 §5.3): `gzip` then `br` is two
    /// codings (`415`), not a gzip body; `identity` elements change nothing.
    @Test(arguments: [
        ("Content-Encoding: gzip\r\nContent-Encoding: br\r\n", 415),
        ("Content-Encoding: gzip\r\nContent-Encoding: gzip\r\n", 415),
        ("Content-Encoding: br, gzip\r\n", 415),
        ("Content-Encoding: identity\r\nContent-Encoding: gzip\r\n", 200),
        ("Content-Encoding: gzip, identity\r\n", 200),
        ("Content-Encoding: identity\r\nContent-Encoding: identity\r\n", 200),
    ])
    func contentEncodingLinesAreOneList(fields: String, status: Int) throws {
        let json = Array("{}".utf8)
        let body = fields.contains("gzip") ? try Gzip.compress(json) : json
        var sm = SM(configuration: config(), now: 0)
        let a = sm.bytesReceived(Array("POST / HTTP/1.1\r\nHost: x\r\n\(fields)Content-Length: \(body.count)\r\n\r\n".utf8)[...] + body[...], now: 0)
        if status == 415 {
            #expect(dispatched(a).isEmpty)
            #expect(writes(a).first?.hasPrefix("HTTP/1.1 415") == true)
        } else {
            #expect(dispatched(a).first?.body == json, "the body is decoded once, as gzip")
            #expect(dispatched(a).first?.headers["Content-Encoding"] == nil)
        }
    }
}

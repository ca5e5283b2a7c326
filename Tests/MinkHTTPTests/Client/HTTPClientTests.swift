import MinkTestFixtures
import Testing
@testable import MinkHTTP

@Suite(.timeLimit(.minutes(3))) struct HTTPClientTests {
    @Test func keepAliveReuseAndBodies() async throws {
        try await withTestServer { server, port in
            let client = HTTPClient()
            defer { client.shutdown() }
            for _ in 0..<5 {
                let r = try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/healthz"))
                #expect(r.status == 200)
                #expect(r.body == Array(#"{"status":"ok"}"#.utf8))
            }
            #expect(client.connectionsOpened == 1)

            let chunked = try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/chunked"))
            #expect(chunked.headers["Transfer-Encoding"] == "chunked")
            #expect(chunked.body == Array("part0;part1;part2;part3;part4;".utf8))

            let body = Array(#"{"events":[]}"#.utf8)
            let echo = try await client.execute(HTTPClientRequest(method: "POST", host: "127.0.0.1", port: port, target: "/echo", body: body))
            #expect(echo.body == body)

            let gz = try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/big", headers: ["Accept-Encoding": "gzip"]))
            #expect(gz.headers["Content-Encoding"] == "gzip")
            #expect(try gz.decodedBody().count == 4096)

            let head = try await client.execute(HTTPClientRequest(method: "HEAD", host: "127.0.0.1", port: port, target: "/big"))
            #expect(head.body.isEmpty)
            #expect(head.headers["Content-Length"] == "4096")
            #expect(client.connectionsOpened == 1)
            #expect(server.metrics.totalConnections == 1)
        }
    }

    @Test func staleIdleConnectionIsReplaced() async throws {
        try await withTestServer({ $0.idleTimeout = .milliseconds(100) }) { _, port in
            let client = HTTPClient()
            defer { client.shutdown() }
            _ = try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/healthz"))
            try await Task.sleep(for: .milliseconds(400))  // the server closes the idle connection
            let r = try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/healthz"))
            #expect(r.status == 200)
            #expect(client.connectionsOpened == 2)
        }
    }

    @Test func readTimeout() async throws {
        try await withTestServer { _, port in
            let client = HTTPClient(configuration: HTTPClientConfiguration(readTimeout: .milliseconds(100)))
            await #expect(throws: HTTPClientError.timeout) {
                _ = try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/delay?ms=1000"))
            }
        }
    }

    /// A pooled connection the server closed while idle is noticed before it is used (a peek at
    /// the socket), so even a `POST`, which is never sent twice, goes out on a fresh one (it
    /// failed with `connectionClosed` when the closed connection was only found by using it).
    @Test func aConnectionTheServerClosedIsNotReused() async throws {
        try await withTestServer({ $0.idleTimeout = .milliseconds(100) }) { _, port in
            let client = HTTPClient()
            defer { client.shutdown() }
            func stale() async throws {
                #expect(try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/healthz")).status == 200)
                try await Task.sleep(for: .milliseconds(600))  // the server closes the idle connection
            }
            try await stale()
            #expect(try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/healthz")).status == 200)
            try await stale()
            let post = try await client.execute(HTTPClientRequest(method: "POST", host: "127.0.0.1", port: port, target: "/echo", body: Array("x".utf8)))
            #expect(post.status == 200 && post.body == Array("x".utf8))
            try await stale()
            let idempotent = HTTPClientRequest(method: "POST", host: "127.0.0.1", port: port, target: "/echo", body: Array("x".utf8), isIdempotent: true)
            #expect(try await client.execute(idempotent).status == 200)
        }
    }

    /// A request's own read timeout replaces the client's (an import the server takes minutes to
    /// answer), both ways.
    @Test func aRequestsOwnReadTimeoutApplies() async throws {
        try await withTestServer { _, port in
            let client = HTTPClient(configuration: HTTPClientConfiguration(readTimeout: .milliseconds(200)))
            defer { client.shutdown() }
            await #expect(throws: HTTPClientError.self) {
                _ = try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/delay?ms=800"))
            }
            var patient = HTTPClientRequest(host: "127.0.0.1", port: port, target: "/delay?ms=800")
            patient.readTimeout = .seconds(10)
            let answer = try await client.execute(patient)
            #expect(answer.status == 200)
        }
    }

    @Test func aResponseOverTheLimitIsReportedAsSuch() async throws {
        try await withTestServer { _, port in
            let client = HTTPClient(configuration: HTTPClientConfiguration(maxResponseBytes: 1000))
            defer { client.shutdown() }
            await #expect(throws: HTTPClientError.responseTooLarge(limit: 1000)) {
                _ = try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/big"))
            }
        }
    }

    /// A host name is resolved off Swift's cooperative pool (getaddrinfo blocks on DNS); an
    /// address literal is used as is.
    @Test func namesAreResolvedAndLiteralsRecognised() async throws {
        #expect(Socket.isNumeric("127.0.0.1") && Socket.isNumeric("::1") && Socket.isNumeric("[::1]"))
        #expect(!Socket.isNumeric("localhost") && !Socket.isNumeric("db.internal") && !Socket.isNumeric("1.2.3"))
        try await withTestServer { _, port in
            let client = HTTPClient()
            defer { client.shutdown() }
            let r = try await client.execute(HTTPClientRequest(host: "localhost", port: port, target: "/healthz"))
            #expect(r.status == 200)
        }
    }

    /// A name with several addresses is tried address by address: one that refuses (a server
    /// listening on IPv6 only when the name's IPv4 address comes first, a replica that is down)
    /// does not fail the connection while another answers; when every one refuses, that error.
    @Test func everyAddressOfANameIsTriedInTurn() async throws {
        func address(_ port: Int) throws -> Socket.Address {
            let (storage, length) = try Socket.resolve(host: "127.0.0.1", port: port, passive: false)
            return Socket.Address(storage: storage, length: length)
        }
        // A port nobody listens on, held so that no test running alongside is given it.
        let held = try ClosedPort()
        defer { held.release() }
        let closedPort = held.port
        try await withTestServer { _, port in
            let deadline = ContinuousClock.now + .seconds(10)
            let connection = try await ClientConnection.connect(toFirstOf: [try address(closedPort), try address(port)], key: "test", deadline: deadline)
            connection.close()
            await #expect(throws: SocketError.self) {
                try await ClientConnection.connect(toFirstOf: [try address(closedPort), try address(closedPort)], key: "test", deadline: deadline)
            }
        }
    }

    /// `Host` names an IPv6 literal in brackets (minkd answered `Host: ::1:6465` with 400).
    @Test func hostHeaderBracketsAnIPv6Literal() {
        func host(_ h: String, _ port: Int) -> String? {
            let text = String(decoding: HTTPClientRequest(host: h, port: port, target: "/").encoded(), as: UTF8.self)
            return text.split(separator: "\r\n").first { $0.hasPrefix("Host: ") }.map { String($0.dropFirst(6)) }
        }
        #expect(host("::1", 6465) == "[::1]:6465")
        #expect(host("fe80::1", 80) == "[fe80::1]:80")
        #expect(host("127.0.0.1", 6465) == "127.0.0.1:6465")
        #expect(host("example.test", 8080) == "example.test:8080")
    }

    @Test func sseStream() async throws {
        try await withTestServer { _, port in
            let client = HTTPClient()
            var events: [SSEEvent] = []
            for try await e in client.events(host: "127.0.0.1", port: port, target: "/sse?n=3", readTimeout: .seconds(5)) {
                events.append(e)
            }
            #expect(events.count == 4)
            #expect(events.first == SSEEvent(event: "message", data: "{\"n\":1}\nline2", lastEventID: "1", hasID: true))
            #expect(events.last?.event == "caught-up")
            #expect(events.last?.lastEventID == "3")

            do {
                for try await _ in client.events(host: "127.0.0.1", port: port, target: "/nope") {}
                Issue.record("a 404 was read as an event stream")
            } catch HTTPClientError.unexpectedStatus(let status, let body, _) {
                #expect(status == 404)
                #expect(!body.isEmpty, "the refusal's body is kept, for its error code")
            }
        }
    }

    @Test func sseConsumerCanStopEarly() async throws {
        try await withTestServer { server, port in
            let client = HTTPClient()
            var count = 0
            for try await _ in client.events(host: "127.0.0.1", port: port, target: "/sse?n=100000") {
                count += 1
                if count == 3 { break }
            }
            #expect(count == 3)
            // The server notices the closed peer and ends the stream.
            for _ in 0..<100 where server.metrics.activeStreams > 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(server.metrics.activeStreams == 0)
        }
    }
}

/// The client connection's lifecycle through its real transitions: a wait that times out
/// leaves it open with no wait, a cancelled wait makes later waits fail, a close cancels both
/// sources and the last cancel handler closes the descriptor.
@Suite(.timeLimit(.minutes(3))) struct ClientConnectionLifecycleTests {
    static func hasNoWaits(_ l: ClientConnection.Lifecycle) -> Bool {
        if case .open(read: nil, write: nil) = l { return true }
        return false
    }

    @Test func timeoutThenCancellationThenClose() async throws {
        // The server must not close the idle connection meanwhile, however slow the machine.
        try await withTestServer({ $0.headerTimeout = .seconds(60) }) { _, port in
            let c = try await ClientConnection.connect(host: "127.0.0.1", port: port, timeout: .seconds(2))
            #expect(Self.hasNoWaits(await c.currentLifecycle))
            // Nothing to read: the wait times out and the read source is suspended again.
            await #expect(throws: HTTPClientError.timeout) { _ = try await c.read(timeout: .milliseconds(50)) }
            #expect(Self.hasNoWaits(await c.currentLifecycle))

            let reader = Task { try await c.read(timeout: .seconds(10)) }
            try await Task.sleep(for: .milliseconds(50))
            reader.cancel()
            await #expect(throws: CancellationError.self) { _ = try await reader.value }
            guard case .cancelled = await c.currentLifecycle else {
                Issue.record("expected cancelled")
                return
            }
            await #expect(throws: CancellationError.self, "later waits fail too") { _ = try await c.read(timeout: .seconds(1)) }

            c.close()
            let deadline = ContinuousClock.now + .seconds(2)
            var closed = false
            while ContinuousClock.now < deadline {
                if case .closed(sourcesOpen: 0) = await c.currentLifecycle { closed = true; break }
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(closed, "both sources cancelled, descriptor closed")
        }
    }
}

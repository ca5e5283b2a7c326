import Testing
@testable import MinkHTTP

@Suite struct HTTPClientTests {
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

            await #expect(throws: HTTPClientError.unexpectedStatus(404)) {
                for try await _ in client.events(host: "127.0.0.1", port: port, target: "/nope") {}
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

import Foundation
import Mink
import MinkHTTP
import MinkWire
import Synchronization
import Testing

/// Reads SSE events from a live subscription.
func collect(
    _ s: TestServer, _ target: String, lastEventID: String? = nil, until done: @escaping @Sendable ([SSEEvent]) -> Bool
) async throws -> [SSEEvent] {
    var out: [SSEEvent] = []
    for try await e in s.client.events(host: "127.0.0.1", port: s.port, target: target, lastEventID: lastEventID, readTimeout: .seconds(10)) {
        out.append(e)
        if done(out) { break }
    }
    return out
}

extension SSEEvent {
    var position: Int64? { (try? JSONValue(jsonString: data))?.objectValue?["globalPosition"]?.int64Value }
}

@Suite("Subscriptions over SSE", .timeLimit(.minutes(3)))
struct SubscriptionEndpointTests {
    @Test(arguments: StorageKind.allCases)
    func catchUpThenCaughtUpThenLive(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A", "B"]))
            try await s.request("POST", "/v1/streams/user-1", json: appendBody(["U"]))
            let conn = try await RawConnection.open(port: s.port)
            try await conn.send("GET /v1/subscriptions/all?after=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            let caughtUp = try await conn.read(until: { $0.contains("event: caught-up") }, timeout: .seconds(5))
            try await s.request("POST", "/v1/streams/order-2", json: appendBody(["C"]))
            let text = try await conn.read(until: { $0.contains("\nid: 4\n") }, timeout: .seconds(5))
            conn.close()
            let body = String(text[text.range(of: "\r\n\r\n")!.upperBound...])
            var parser = SSEParser()
            let events = parser.feed(Array(body.utf8))
            #expect(events.map(\.event) == ["message", "message", "caught-up", "message"], "\(caughtUp)")
            #expect(events.map(\.lastEventID).prefix(2) == ["2", "3"])
            #expect(events.count > 2 && events[2].data == #"{"position":3}"#)
            #expect(events.last?.position == 4)
        }
    }

    @Test(arguments: StorageKind.allCases)
    func categoryStreamAndTypeFilters(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A", "B"]))
            try await s.request("POST", "/v1/streams/user-1", json: appendBody(["A"]))
            try await s.request("POST", "/v1/streams/order-2", json: appendBody(["A"]))
            let cat = try await collect(s, "/v1/subscriptions/categories/order") { $0.last?.event == "caught-up" }
            #expect(cat.compactMap(\.position) == [1, 2, 4])
            let stream = try await collect(s, "/v1/subscriptions/streams/order-1?after=1") { $0.last?.event == "caught-up" }
            #expect(stream.map(\.lastEventID).first == "2", "stream subscriptions use versions as ids")
            #expect(stream.last?.data == #"{"position":2}"#)
            let typed = try await collect(s, "/v1/subscriptions/all?type=A") { $0.last?.event == "caught-up" }
            #expect(typed.compactMap(\.position) == [1, 3, 4])
        }
    }

    @Test(arguments: StorageKind.allCases)
    func lastEventIDResumesWithoutGapsWhileWritersAppend(_ kind: StorageKind) async throws {
        // Keepalives every 2 s keep each slice's connection inside the client's 10 s read
        // timeout while the writers are slow (a CI run starved them: no event for 10 s, and the
        // slice failed with `.timeout` though nothing was lost); the suite's limit bounds it.
        try await withServer(storage: try await kind.make(), keepalive: .seconds(2)) { s in
            let writers = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for w in 0..<4 {
                        group.addTask { for i in 0..<50 { try await s.request("POST", "/v1/streams/w\(w)-\(i % 3)", json: appendBody(["E"])) } }
                    }
                    try await group.waitForAll()
                }
            }
            var positions: [Int64] = []
            var last: String?
            // Read five slices of 37 events (185 of the 200 appended), reconnecting with
            // Last-Event-ID each time (it wins over `?after=0`); each slice waits for events
            // still being written.
            for _ in 0..<5 {
                let slice = try await collect(s, "/v1/subscriptions/all?after=0", lastEventID: last) { events in
                    events.filter { $0.event == "message" }.count == 37
                }
                let messages = slice.filter { $0.event == "message" }
                try #require(messages.count == 37, "a slice ended early: \(slice.map(\.event))")
                positions += messages.compactMap(\.position)
                last = messages.last?.lastEventID ?? last
            }
            try await writers.value
            let rest = try await collect(s, "/v1/subscriptions/all", lastEventID: last) { $0.last?.event == "caught-up" }
            positions += rest.filter { $0.event == "message" }.compactMap(\.position)
            #expect(positions == Array(1...200))
        }
    }

    /// Starts at the largest positions and versions are answered (caught up), never a crash.
    @Test func extremeStartPositions() async throws {
        try await withServer { s in
            try await s.request("POST", "/v1/streams/s-1", json: appendBody(["A"]))
            let max = String(Int64.max)
            for target in ["/v1/subscriptions/streams/s-1?after=\(max)", "/v1/subscriptions/all?after=\(max)", "/v1/subscriptions/categories/s?after=\(max)"] {
                let got = try await collect(s, target) { $0.last?.event == "caught-up" }
                #expect(got.map(\.event) == ["caught-up"], "\(target)")
            }
            let resumed = try await collect(s, "/v1/subscriptions/streams/s-1", lastEventID: max) { $0.last?.event == "caught-up" }
            #expect(resumed.map(\.event) == ["caught-up"])
            #expect(try await s.request("GET", "/v1/streams/s-1?from=\(max)")["events"]?.arrayValue?.isEmpty == true)
            #expect(try await s.request("GET", "/v1/events?after=\(max)")["events"]?.arrayValue?.isEmpty == true)
            #expect(try await s.request("GET", "/healthz").status == 200)
        }
    }

    @Test func keepaliveAfterIdle() async throws {
        try await withServer(keepalive: .milliseconds(200)) { s in
            let conn = try await RawConnection.open(port: s.port)
            try await conn.send("GET /v1/subscriptions/all HTTP/1.1\r\nHost: x\r\n\r\n")
            // The limit is generous (a keepalive is due every 200 ms): it returns as soon as one
            // arrives, and the full suite can starve the cooperative pool's timers for seconds.
            let text = try await conn.read(until: { $0.contains(": keepalive") }, timeout: .seconds(15))
            #expect(text.contains("retry: 2000"))
            #expect(text.contains("event: caught-up"))
            #expect(text.contains(": keepalive"))
            #expect(text.contains("Content-Type: text/event-stream\r\n"), "exactly the contract's media type")
            #expect(text.contains("Cache-Control: no-cache") && text.contains("X-Accel-Buffering: no"))
            conn.close()
        }
    }

    /// A subscriber that stops reading is switched to catch-up (fell-behind) and loses nothing;
    /// the server's memory for it stays bounded by the buffer.
    @Test(arguments: StorageKind.allCases)
    func slowSubscriberFallsBehindAndLosesNothing(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make(), configure: { $0.limits.subscriberBuffer = 50 }) { s in
            let conn = try await RawConnection.open(port: s.port, receiveBuffer: 4096)
            try await conn.send("GET /v1/subscriptions/all HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try await conn.read(until: { $0.contains("caught-up") }, timeout: .seconds(3))
            // 2,000 events (≈ 6.6 MB of SSE) while the client does not read: more than the
            // kernel's socket buffers (up to 4 MB on loopback) and the connection's write queue
            // can hold, so the server's writes must wait and the subscriber drops out of the
            // 50-event live buffer — a server that delivers fast would otherwise never fall behind.
            let padding = String(repeating: "p", count: 3000)
            let event = #"{"type":"E","data":{"p":"\#(padding)"}}"#
            let body = #"{"events":["# + Array(repeating: event, count: 50).joined(separator: ",") + "]}"
            for i in 0..<40 {
                try await s.request("POST", "/v1/streams/s-\(i)", json: body)
            }
            let text = try await conn.read(untilContains: "\nid: 2000\n", timeout: .seconds(60))
            let ids = text.split(separator: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
            #expect(ids == Array(1...2000), "every event once, in order (\(ids.count))")
            #expect(text.contains("event: fell-behind"))
            conn.close()
        }
    }

    @Test func shutdownEndsEventStreamsCleanly() async throws {
        // A stream that held shutdown up would be closed only when the grace period ends: a
        // long one tells the two apart even on a machine busy with other tests.
        let s = try await TestServer.start(configure: { $0.shutdown.graceSeconds = 30 })
        let conn = try await RawConnection.open(port: s.port)
        try await conn.send("GET /v1/subscriptions/all HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try await conn.read(until: { $0.contains("caught-up") }, timeout: .seconds(10))
        let started = ContinuousClock.now
        await s.stop()
        #expect(ContinuousClock.now - started < .seconds(15), "the stream does not hold up shutdown")
        let closed = try await conn.readUntilClosed(timeout: .seconds(3))
        #expect(closed)
    }
}

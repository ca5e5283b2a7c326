import Foundation
import MinkHTTP
import Testing

/// The operator's settings reach the transport: a real `minkd` started with a config file whose
/// `limits.*` and `http.*` values differ from the defaults, checked from outside over sockets.
/// (The in-process tests build the server with a constructor seam; this is the path a user takes.)
/// Every check fails with the default value: limits of 4 MiB / 10,000 / 8 KiB, timeouts of 75 s
/// and 10 s, keepalives every 15 s, gzip from 1 KiB.
@Suite("minkd configuration reaches the transport", .timeLimit(.minutes(3)))
struct ConfigWiringProcessTests {
    /// Limits; the idle timeout stays long, so that held connections stay held however slowly a
    /// loaded machine runs the test.
    static let limitsYAML = """
        limits:
          maxBodyBytes: 2000
          maxConnections: 4
          maxRequestLineBytes: 512
          maxHeaderBytes: 2048
        http:
          gzipMinBytes: 100
        """

    /// Timeouts and keepalives.
    static let timeoutsYAML = """
        http:
          idleTimeoutSeconds: 2
          headerTimeoutSeconds: 2
          sseKeepaliveSeconds: 1
        """

    /// Runs `body` with a minkd (memory storage) started on `yaml`.
    static func withMinkd(_ yaml: String, _ body: (Int) async throws -> Void) async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-wiring-\(UUID()).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let minkd = try MinkdProcess([
            "serve", "--config", file.path, "--storage", "memory", "--listen", "127.0.0.1:0", "--log-format", "json",
        ])
        let port = try await minkd.waitUntilReady()
        let handle = minkd.stderr
        Thread.detachNewThread { while !handle.availableData.isEmpty {} }  // never block minkd on a full pipe
        try await body(port)
        kill(minkd.process.processIdentifier, SIGTERM)
        #expect(try await minkd.finish().status == 0)
    }

    /// The status of the first response on a fresh connection after sending `request`.
    static func status(port: Int, _ request: [UInt8]) async throws -> (status: Int, text: String) {
        let c = try await RawConnection.open(port: port)
        defer { c.close() }
        try await c.send(request)
        let (bytes, _) = try await c.readResponses(until: { String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") && $0.count > 40 }, timeout: .seconds(10))
        let text = String(decoding: bytes, as: UTF8.self)
        return (Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0, text)
    }

    static func append(_ body: [UInt8], stream: String, gzip: Bool = false) -> [UInt8] {
        var head = "POST /v1/streams/\(stream) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        if gzip { head += "Content-Encoding: gzip\r\n" }
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    static func event(padding: Int) -> [UInt8] {
        Array(#"{"events":[{"type":"Padded","data":{"p":"\#(String(repeating: "x", count: padding))"}}]}"#.utf8)
    }

    @Test func limitsFromTheConfigFile() async throws {
        try await Self.withMinkd(Self.limitsYAML) { port in
            // limits.maxConnections: 4 connections held open (each answered once), the fifth is refused.
            var held: [RawConnection] = []
            for _ in 0..<4 {
                let c = try await RawConnection.open(port: port)
                try await c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                _ = try await c.read(until: { $0.contains("\r\n\r\n") }, timeout: .seconds(5))
                held.append(c)
            }
            let refused = try await Self.status(port: port, Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect(refused.status == 503 && refused.text.contains("too many connections"), "\(refused.text)")
            for c in held { c.close() }
            try await Task.sleep(for: .milliseconds(200))

            // limits.maxBodyBytes: 2000 — a larger body is 413, a smaller one is stored; a gzip
            // body counts its inflated size.
            #expect(try await Self.status(port: port, Self.append(Self.event(padding: 2100), stream: "s-1")).status == 413)
            #expect(try await Self.status(port: port, Self.append(Self.event(padding: 1500), stream: "s-1")).status == 201)
            let small = try Gzip.compress(Self.event(padding: 1500))
            #expect(try await Self.status(port: port, Self.append(small, stream: "s-2", gzip: true)).status == 201)
            let bomb = try Gzip.compress(Self.event(padding: 50_000))
            #expect(bomb.count < 2000)
            #expect(try await Self.status(port: port, Self.append(bomb, stream: "s-3", gzip: true)).status == 413)
            let load = try await Self.status(port: port, Array("GET /v1/streams/s-2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
            #expect(load.status == 200 && load.text.contains(String(repeating: "x", count: 1500)), "the gzip body was stored inflated")
            #expect(try await Self.status(port: port, Array("GET /v1/streams/s-3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)).status == 404)

            // limits.maxRequestLineBytes: 512, limits.maxHeaderBytes: 2048.
            let longTarget = "/v1/streams/" + String(repeating: "a", count: 600)
            #expect(try await Self.status(port: port, Array("GET \(longTarget) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)).status == 414)
            let bigHeader = "X-Big: " + String(repeating: "b", count: 3000)
            #expect(try await Self.status(port: port, Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\(bigHeader)\r\n\r\n".utf8)).status == 431)

            // http.gzipMinBytes: 100 — a ~1,600-byte answer is compressed for a client that accepts gzip.
            let zipped = try await Self.status(port: port, Array("GET /v1/streams/s-1 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n".utf8))
            #expect(zipped.status == 200 && zipped.text.lowercased().contains("content-encoding: gzip"), "\(zipped.text.prefix(300))")
        }
    }

    @Test func timeoutsAndKeepalivesFromTheConfigFile() async throws {
        try await Self.withMinkd(Self.timeoutsYAML) { port in
            // http.idleTimeoutSeconds: 2 — a connection idle after its request is closed in
            // seconds, not 75.
            let idle = try await RawConnection.open(port: port)
            defer { idle.close() }
            try await idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try await idle.read(until: { $0.contains("\r\n\r\n") }, timeout: .seconds(10))
            #expect(try await idle.readUntilClosed(timeout: .seconds(30)), "an idle connection stayed open for 30 s")

            // http.sseKeepaliveSeconds: 1 — an idle event stream gets `: keepalive` within seconds, not 15.
            let sse = try await RawConnection.open(port: port)
            defer { sse.close() }
            try await sse.send("GET /v1/subscriptions/all HTTP/1.1\r\nHost: x\r\n\r\n")
            let stream = try await sse.read(until: { $0.contains("caught-up") && $0.contains(": keepalive") }, timeout: .seconds(8))
            #expect(stream.contains(": keepalive"), "no keepalive within 8 s")

            // http.headerTimeoutSeconds: 2 — a request whose headers never end is cut off in seconds, not 10.
            let slow = try await RawConnection.open(port: port)
            defer { slow.close() }
            try await slow.send("GET /healthz HTTP/1.1\r\nHost: x\r\n")
            let cutAt = ContinuousClock.now
            #expect(try await slow.readUntilClosed(timeout: .seconds(9)), "incomplete headers held the connection for 9 s")
            #expect(ContinuousClock.now - cutAt < .seconds(9))
        }
    }
}

import Foundation
import Logging
import MinkConfig
import MinkServer
import Testing

/// Requests the transport refuses before routing (a target over the limit, a malformed head, a
/// connection beyond `limits.maxConnections`) have an access line like any request's (HTTP-API.md
/// section 1: the request ID "is logged with the request"), with the ID their response carried.
@Suite("Transport refusals are logged", .timeLimit(.minutes(1)))
struct TransportRefusalLogTests {
    @Test func everyRefusalHasAnAccessLineWithItsRequestID() async throws {
        let log = StorageOutageTraceTests.Lines()
        var config = MinkdConfiguration()
        config.listen.port = 0
        config.limits.maxConnections = 2
        let server = MinkServer(configuration: config, storage: .memory(), logger: log.logger)
        let port = try await server.start()
        do {
            func accessLine(_ id: String) -> StorageOutageTraceTests.Lines.Line? {
                log.lines.withLock { $0.first { $0.message == "request" && $0.metadata["request_id"] == id } }
            }
            func requestID(_ answer: String) throws -> String {
                try #require(answer.split(separator: "\r\n").first { $0.hasPrefix("X-Request-ID: ") }.map { String($0.dropFirst(14)) })
            }
            /// `id`: the client's, when the head was read far enough to know it.
            func refusal(_ request: String, _ id: String?, status: String) async throws {
                let c = try await RawConnection.open(port: port)
                defer { c.close() }
                try await c.send(request)
                let answer = try await c.read(untilContains: "\r\n\r\n", timeout: .seconds(10))
                #expect(answer.hasPrefix("HTTP/1.1 \(status) "), "\(answer)")
                let sent = try requestID(answer)
                if let id { #expect(sent == id, "\(answer)") }
                let line = try #require(accessLine(sent), "no access line for \(status)")
                #expect(line.metadata["status"] == status && line.metadata["route"] == "(transport)", "\(line)")
                #expect(line.level == .info && line.metadata["cause"] != nil && line.metadata["client"] != nil, "\(line)")
            }
            let long = String(repeating: "a", count: 9000)
            try await refusal("GET /v1/events?x=\(long) HTTP/1.1\r\nHost: x\r\n\r\n", nil, status: "414")
            try await refusal(
                "POST /v1/streams/s-1 HTTP/1.1\r\nHost: x\r\nX-Request-ID: t-400\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
                "t-400", status: "400")

            // Beyond the connection limit: `503` at `warning`, under the ID its response carried.
            // Two connections answered and kept open (the refused ones above may still count for
            // a moment while they close: then one of these is refused, and they are tried again).
            var held: [RawConnection] = []
            defer { held.forEach { $0.close() } }
            let deadline = ContinuousClock.now + .seconds(20)
            while held.isEmpty {
                let pair = [try await RawConnection.open(port: port), try await RawConnection.open(port: port)]
                var answered = 0
                for h in pair {
                    try await h.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    if try await h.read(untilContains: "\r\n\r\n", timeout: .seconds(10)).hasPrefix("HTTP/1.1 200 ") { answered += 1 }
                }
                if answered == 2 { held = pair } else {
                    pair.forEach { $0.close() }
                    try #require(ContinuousClock.now < deadline, "two connections were never both answered")
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            let extra = try await RawConnection.open(port: port)
            defer { extra.close() }
            let answer = try await extra.read(untilContains: "\r\n\r\n", timeout: .seconds(10))
            #expect(answer.hasPrefix("HTTP/1.1 503 "), "\(answer)")
            let line = try #require(accessLine(try requestID(answer)), "no access line for the connection refused")
            #expect(line.level == .warning && line.metadata["status"] == "503" && line.metadata["route"] == "(transport)", "\(line)")
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }
}

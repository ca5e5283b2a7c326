import Foundation
import Glibc
import Testing
@testable import MinkHTTP

/// Faults a client can cause: a trickling or stalled body, many of them at once, an unknown
/// `Content-Encoding` — and the contract's error shape (`details` always present) on every
/// transport-level error.
@Suite(.timeLimit(.minutes(3))) struct HTTPFaultTests {
    /// The parsed `error` object of a response body, or `nil`.
    static func errorObject(_ body: [UInt8]) -> [String: Any]? {
        let json = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
        return json?["error"] as? [String: Any]
    }

    static func expectContractError(_ r: (head: HTTPResponseHead, body: [UInt8])?, _ status: Int, _ code: String,
                                    sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r?.head.status == status, sourceLocation: sourceLocation)
        let error = r.flatMap { errorObject($0.body) }
        #expect(error?["code"] as? String == code, "\(String(decoding: r?.body ?? [], as: UTF8.self))", sourceLocation: sourceLocation)
        #expect(error?["message"] is String, sourceLocation: sourceLocation)
        #expect(error?["details"] is [String: Any], "no details object", sourceLocation: sourceLocation)
    }

    /// A body that keeps trickling (a byte every 200 ms, so the idle timer never fires) is cut
    /// off by the total body timeout: `408` and a close.
    @Test(.timeLimit(.minutes(1))) func tricklingBodyGets408AtTheTotalTimeout() async throws {
        try await withTestServer({ $0.bodyIdleTimeout = .seconds(1); $0.bodyTimeout = .seconds(2) }) { _, port in
            let c = try await RawClient.connect(port: port)
            await c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            let start = Date()
            var sent = 0
            while !c.closed, c.responses().isEmpty, sent < 999, Date().timeIntervalSince(start) < 30 {
                await c.send("a")
                sent += 1
                await c.read(timeout: 0.2)
            }
            await c.read(timeout: 2)
            Self.expectContractError(c.responses().first, 408, "request_timeout")
            #expect(c.closed)
            #expect(sent < 999, "the whole body was sent without a timeout")
        }
    }

    /// A body that stops sending gets `408` once the idle timeout passed (well before the total).
    @Test(.timeLimit(.minutes(1))) func stalledBodyGets408AtTheIdleTimeout() async throws {
        try await withTestServer({ $0.bodyIdleTimeout = .seconds(1); $0.bodyTimeout = .seconds(60) }) { _, port in
            let c = try await RawClient.connect(port: port)
            await c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
            let start = Date()
            await c.read(timeout: 30) { RawClient.parseResponses($0).count >= 1 }
            await c.read(timeout: 2)
            Self.expectContractError(c.responses().first, 408, "request_timeout")
            #expect(c.closed)
            #expect(Date().timeIntervalSince(start) < 30)
        }
    }

    /// 1,000 connections trickling bodies fill the connection limit; they cannot hold it past
    /// the body timeout, so a normal client is served (it retries on `503` meanwhile), and every
    /// trickler got `408`.
    @Test(.timeLimit(.minutes(2))) func thousandTricklersDoNotStopANormalClient() async throws {
        let n = 1000
        try await withTestServer({
            $0.maxConnections = n
            $0.bodyIdleTimeout = .seconds(2)
            $0.bodyTimeout = .seconds(4)
            $0.backlog = 2048
        }) { server, port in
            let fds: [Int32] = await onIOThread {
                var fds: [Int32] = []
                for _ in 0..<n {
                    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                    var addr = sockaddr_in()
                    addr.sin_family = sa_family_t(AF_INET)
                    addr.sin_port = UInt16(port).bigEndian
                    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
                    let rc = withUnsafePointer(to: &addr) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                    }
                    if rc != 0 { Glibc.close(fd); continue }
                    let head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\na"
                    _ = head.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                    fds.append(fd)
                }
                return fds
            }
            #expect(fds.count == n)
            defer { for fd in fds { Glibc.close(fd) } }
            // Trickle a byte per connection every 500 ms (the idle timer never fires) while a
            // normal client asks for /healthz until it is served.
            let trickling = Task.detached {
                while !Task.isCancelled {
                    for fd in fds { _ = Glibc.send(fd, "b", 1, Int32(MSG_NOSIGNAL)) }
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
            defer { trickling.cancel() }
            let start = Date()
            var served = false
            while !served, Date().timeIntervalSince(start) < 60 {
                let c = try await RawClient.connect(port: port)
                await c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                let r = await c.readResponses(1, timeout: 5)
                if r.first?.head.status == 200 {
                    served = true
                } else {
                    #expect(r.first?.head.status == 503, "\(String(describing: r.first?.head))")
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            #expect(served, "a normal client was not served within 60 s")
            trickling.cancel()
            // Every trickler was answered 408 (read what each received).
            let answered: Int = await onIOThread {
                var count = 0
                for fd in fds {
                    var buf = [UInt8](repeating: 0, count: 4096)
                    var got: [UInt8] = []
                    let until = Date().addingTimeInterval(5)
                    while Date() < until {
                        let r = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                        if r > 0 { got += buf[0..<r]; if got.count > 12 { break } } else if r == 0 { break } else { usleep(1000) }
                    }
                    if got.starts(with: Array("HTTP/1.1 408".utf8)) { count += 1 }
                }
                return count
            }
            #expect(answered == n)
            let until = Date().addingTimeInterval(10)
            while server.metrics.openConnections > 0, Date() < until { try await Task.sleep(for: .milliseconds(50)) }
            #expect(server.metrics.openConnections == 0)
        }
    }

    /// `Content-Encoding: br` (or anything but gzip and identity) is `415`, never read as plain
    /// JSON; `identity` is the body as is.
    @Test func unknownContentEncodingIs415() async throws {
        try await withTestServer { _, port in
            for coding in ["br", "deflate", "gzip, br", "compress"] {
                let c = try await RawClient.connect(port: port)
                await c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: \(coding)\r\nContent-Length: 2\r\n\r\n{}")
                await c.read(timeout: 3)
                Self.expectContractError(c.responses().first, 415, "unsupported_media_type")
                #expect(c.closed)
            }
            let c = try await RawClient.connect(port: port)
            await c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}")
            let r = await c.readResponses(1)
            #expect(r.first?.head.status == 200)
            #expect(r.first?.body == Array("{}".utf8))
        }
    }

    /// Every transport-level error has the contract's shape with `details`: 414, 431, 413 (body
    /// and gzip bomb), 400 (bad gzip, framing), 408, 415 and the connection-limit 503.
    @Test func everyTransportErrorBodyHasDetails() async throws {
        let bomb = try Gzip.compress([UInt8](repeating: 0, count: 10 * 1024 * 1024), level: 9)
        // The header deadline of 1 s only for the 408 case: under a loaded machine (a CI build
        // alongside) the other cases' bytes once arrived after it, and got 408 instead of 414.
        try await withTestServer { _, port in
            let cases: [([UInt8], Int, String)] = [
                (Array("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n".utf8), 414, "uri_too_long"),
                (Array("GET / HTTP/1.1\r\nHost: x\r\nX: \(String(repeating: "b", count: 17000))\r\n\r\n".utf8), 431, "header_fields_too_large"),
                (Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n".utf8), 413, "payload_too_large"),
                (Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: \(bomb.count)\r\n\r\n".utf8) + bomb, 413, "payload_too_large"),
                (Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc".utf8), 400, "bad_request"),
                (Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".utf8), 400, "bad_request"),
                (Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}".utf8), 415, "unsupported_media_type"),
            ]
            for (bytes, status, code) in cases {
                let c = try await RawClient.connect(port: port)
                await c.send(bytes)
                await c.read(timeout: 10) { RawClient.parseResponses($0).count >= 1 }
                Self.expectContractError(c.responses().first, status, code)
            }
        }
        try await withTestServer({ $0.headerTimeout = .seconds(1) }) { _, port in
            let c = try await RawClient.connect(port: port)
            await c.send(Array("GET /healthz HTTP/1.1\r\nHo".utf8))
            await c.read(timeout: 10) { RawClient.parseResponses($0).count >= 1 }
            Self.expectContractError(c.responses().first, 408, "request_timeout")
        }
        try await withTestServer({ $0.maxConnections = 1 }) { _, port in
            let a = try await RawClient.connect(port: port)
            await a.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await a.readResponses(1).first?.head.status == 200)
            let b = try await RawClient.connect(port: port)
            await b.read(timeout: 3)
            Self.expectContractError(b.responses().first, 503, "unavailable")
            #expect(b.responses().first?.head.headers["Retry-After"] == "1")
        }
    }
}

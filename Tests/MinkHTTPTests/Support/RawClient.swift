import Dispatch
import Foundation
import Glibc
import Testing
@testable import MinkHTTP

/// Runs blocking work on a thread of its own: never on Swift's cooperative pool
/// (which runs the server's responders) nor on Dispatch's worker pool (which runs
/// the server's event-loop queues) — blocking either would starve the server.
func onIOThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { c in
        let thread = Thread { c.resume(returning: work()) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// A blocking TCP client for tests: sends raw bytes, reads raw responses.
final class RawClient: @unchecked Sendable {
    // Invariant: used by one test at a time, its calls awaited in sequence.
    let fd: Int32
    var received: [UInt8] = []
    var closed = false
    /// How the peer's close showed: "EOF", or the errno of the failed `recv` (a reset, say).
    var closeReason: String?
    private var released = false

    private init(fd: Int32) { self.fd = fd }

    deinit { if !released { Glibc.close(fd) } }

    /// Closes with a reset (`SO_LINGER` 0): the server sees `ECONNRESET`, not a FIN.
    func reset() {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        Glibc.close(fd)
        released = true
    }

    static func connect(port: Int, receiveBuffer: Int32? = nil) async throws -> RawClient {
        let result: Result<Int32, SocketError> = await onIOThread {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            if let receiveBuffer {
                var size = receiveBuffer
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4)
            }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = UInt16(port).bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if rc != 0 { let e = errno; Glibc.close(fd); return .failure(SocketError(call: "connect", errno: e)) }
            var tv = timeval(tv_sec: 0, tv_usec: 50_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            return .success(fd)
        }
        return RawClient(fd: try result.get())
    }

    func send(_ bytes: [UInt8]) async {
        let fd = self.fd
        _ = await onIOThread {
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return false }
                off += n
            }
            return true
        }
    }

    func send(_ text: String) async { await send(Array(text.utf8)) }

    /// Reads until `done(received)` holds, the peer closes, or `timeout` passes.
    /// Returns whether the connection was closed by the peer.
    @discardableResult
    func read(timeout: Double = 3, until done: @escaping @Sendable ([UInt8]) -> Bool = { _ in false }) async -> Bool {
        let fd = self.fd
        let start = received
        let (bytes, closed, reason) = await onIOThread { () -> ([UInt8], Bool, String?) in
            var buf = [UInt8](repeating: 0, count: 65536)
            var all = start
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if done(all) { return (all, false, nil) }
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 { all.append(contentsOf: buf[0..<n]); continue }
                if n == 0 { return (all, true, "EOF") }
                let e = errno
                if e == EAGAIN || e == EWOULDBLOCK || e == EINTR { continue }
                return (all, true, "errno \(e)")  // ECONNRESET and friends
            }
            return (all, false, nil)
        }
        received = bytes
        if closed { self.closed = true; closeReason = reason }
        return closed
    }

    /// Parses what has been received into complete responses.
    func responses(heads: [Bool] = []) -> [(head: HTTPResponseHead, body: [UInt8])] {
        RawClient.parseResponses(received, heads: heads, eof: closed)
    }

    static func parseResponses(_ bytes: [UInt8], heads: [Bool] = [], eof: Bool = false) -> [(head: HTTPResponseHead, body: [UInt8])] {
        var parser = HTTPResponseParser()
        for h in heads { parser.requestSent(isHead: h) }
        parser.feed(bytes)
        var out: [(HTTPResponseHead, [UInt8])] = []
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        func drain() throws {
            while let e = try parser.next() {
                switch e {
                case .head(let h): head = h; body = []
                case .body(let b): body += b
                case .end: if let h = head { out.append((h, body)) }; head = nil
                }
            }
        }
        do {
            try drain()
        } catch {
            // The server must never send bytes that are not HTTP/1.1 responses.
            Issue.record("unparseable response bytes after \(out.count) response(s): \(error)")
            return out
        }
        // At EOF, a response without a length ends with the connection; one cut short
        // (a truncated body) is not a response, and is left out.
        if eof, let e = try? parser.finish(), e == .end, let h = head { out.append((h, body)) }
        return out
    }

    /// Reads until `count` complete responses have arrived (or close/timeout).
    func readResponses(_ count: Int, heads: [Bool] = [], timeout: Double = 3) async -> [(head: HTTPResponseHead, body: [UInt8])] {
        await read(timeout: timeout) { RawClient.parseResponses($0, heads: heads).count >= count }
        return responses(heads: heads)
    }
}

import Foundation
import Glibc

/// A blocking TCP connection for tests, driven on its own threads (never Swift's cooperative
/// pool, which serves the server under test).
final class RawConnection: @unchecked Sendable {
    // Invariant: used by one test at a time, each call awaited before the next.
    let fd: Int32
    private var buffer: [UInt8] = []

    private init(fd: Int32) { self.fd = fd }
    deinit { Glibc.close(fd) }

    static func open(port: Int, receiveBuffer: Int32? = nil) async throws -> RawConnection {
        try await onThread {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = UInt16(port).bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else { Glibc.close(fd); throw POSIXError(.ECONNREFUSED) }
            var tv = timeval(tv_sec: 0, tv_usec: 50_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            return RawConnection(fd: fd)
        }
    }

    func send(_ text: String) async throws { try await send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) async throws {
        let fd = fd
        try await onThread {
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { throw POSIXError(.EPIPE) }
                off += n
            }
        }
    }

    /// Reads until `done(text so far)` or the timeout; returns everything read so far.
    func read(until done: @escaping @Sendable (String) -> Bool, timeout: Duration) async throws -> String {
        let fd = fd, start = buffer
        let deadline = ContinuousClock.now + timeout
        let (bytes, _) = try await onThread { () -> ([UInt8], Bool) in
            var all = start
            var chunk = [UInt8](repeating: 0, count: 65536)
            while ContinuousClock.now < deadline {
                if done(String(decoding: all, as: UTF8.self)) { return (all, false) }
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 { all += chunk[0..<n] } else if n == 0 { return (all, true) }
            }
            return (all, false)
        }
        buffer = bytes
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads until `marker` has arrived (looking only at the newly received bytes, so that
    /// megabytes arrive in linear time), the peer closes, or the timeout; returns everything read
    /// so far.
    func read(untilContains marker: String, timeout: Duration) async throws -> String {
        let fd = fd, start = buffer
        let needle = Array(marker.utf8)
        let deadline = ContinuousClock.now + timeout
        let bytes = try await onThread { () -> [UInt8] in
            var all = start
            var searched = 0  // every occurrence starting before this was looked for
            var chunk = [UInt8](repeating: 0, count: 65536)
            while ContinuousClock.now < deadline {
                if all.count >= needle.count {
                    var i = searched
                    while i + needle.count <= all.count {
                        if all[i] == needle[0], all[i..<(i + needle.count)].elementsEqual(needle) { return all }
                        i += 1
                    }
                    searched = all.count - needle.count + 1
                }
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 { all += chunk[0..<n] } else if n == 0 { return all }
            }
            return all
        }
        buffer = bytes
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads raw bytes until `done(bytes)`, the peer closes, or the timeout; returns the bytes
    /// and whether the peer closed.
    func readResponses(until done: @escaping @Sendable ([UInt8]) -> Bool, timeout: Duration) async throws -> ([UInt8], Bool) {
        let fd = fd
        let deadline = ContinuousClock.now + timeout
        return try await onThread {
            var all: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while ContinuousClock.now < deadline {
                if done(all) { return (all, false) }
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 { all += chunk[0..<n] } else if n == 0 { return (all, true) }
                else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { return (all, true) }
            }
            return (all, false)
        }
    }

    /// Reads until the peer closes; returns whether it did within the timeout.
    func readUntilClosed(timeout: Duration) async throws -> Bool {
        let fd = fd
        let deadline = ContinuousClock.now + timeout
        return try await onThread {
            var chunk = [UInt8](repeating: 0, count: 65536)
            while ContinuousClock.now < deadline {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n == 0 { return true }
                if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { return true }
            }
            return false
        }
    }

    func close() { shutdown(fd, Int32(SHUT_RDWR)) }
}

/// Runs blocking work on a new thread.
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        let t = Thread { c.resume(with: Result { try work() }) }
        t.stackSize = 1 << 20
        t.start()
    }
}

import Foundation

/// A TCP socket bound to a free port of 127.0.0.1 (closed on `close()`), for tests that need a
/// port nobody serves: to hand to another server, or to listen without ever accepting (a peer
/// that completes the handshake and then never answers).
struct LoopbackSocket {
    struct Failure: Error { var errno: Int32 }

    let fd: Int32
    let port: Int

    /// Binds a new socket to `127.0.0.1:0`; with `listening`, also listens (backlog 8).
    init(listening: Bool = false) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(errno: errno) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound, !listening || listen(fd, 8) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw Failure(errno: e)
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: addr.sin_port))
    }

    func close() { _ = Glibc.close(fd) }
}

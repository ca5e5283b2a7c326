import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin wrappers over the BSD socket calls used by the server and the client.
/// Every call goes through ``syscall(_:_:)``.
enum Socket {
    #if canImport(Glibc)
    static let streamType = Int32(SOCK_STREAM.rawValue)
    static let sendFlags = Int32(MSG_NOSIGNAL)
    /// Socket-type flag making a new descriptor close-on-exec atomically (see ``cloexecType``).
    static let cloexecFlag = Int32(SOCK_CLOEXEC.rawValue)
    static let nonBlockFlag = Int32(SOCK_NONBLOCK.rawValue)
    #else
    static let streamType = SOCK_STREAM
    static let sendFlags: Int32 = 0
    static let cloexecFlag: Int32 = 0
    static let nonBlockFlag: Int32 = 0
    #endif

    /// The type passed to `socket(2)`: a stream socket that is close-on-exec from birth.
    ///
    /// Why: without `SOCK_CLOEXEC` every socket open at the moment another thread of the
    /// process starts a child (`posix_spawn`, `Process`, `pg_ctl start`, ...) is inherited by
    /// that child and by whatever it leaves running. The kernel then keeps the connection (or
    /// the listener) alive after we close our descriptor: the peer never sees EOF, and a port
    /// whose server was shut down keeps accepting connections into a backlog nobody drains.
    /// Setting `FD_CLOEXEC` with `fcntl` afterwards would leave a window for such a fork.
    static let cloexecType = streamType | cloexecFlag

    /// Resolves `host:port` (numeric or a name such as `localhost`) to one address: IPv4 when
    /// the name has both (loopback tests, "localhost"); `passive` for a listener (an empty host is
    /// every interface).
    static func resolve(host: String, port: Int, passive: Bool) throws(SocketError) -> (storage: sockaddr_storage, length: socklen_t) {
        guard let first = try resolveAll(host: host, port: port, passive: passive).first else {
            throw SocketError(call: "getaddrinfo(\(host))", errno: EAI_NONAME)
        }
        return (first.storage, first.length)
    }

    /// Creates a non-blocking listening socket with `SO_REUSEADDR`.
    /// - Returns: the descriptor and the bound port (useful with port 0).
    static func listen(host: String, port: Int, backlog: Int32) throws(SocketError) -> (fd: Int32, port: Int) {
        var (storage, length) = try resolve(host: host, port: port, passive: true)
        let fd = try syscallBlocking("socket") { socket(Int32(storage.ss_family), cloexecType, 0) }
        do {
            var one: Int32 = 1
            try syscallBlocking("setsockopt(SO_REUSEADDR)") {
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            try syscallBlocking("bind") {
                withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            }
            try syscallBlocking("listen") { Glibc.listen(fd, backlog) }
            try setNonBlocking(fd)
            return (fd, try localPort(fd))
        } catch {
            _ = Glibc.close(fd)
            throw error
        }
    }

    static func localPort(_ fd: Int32) throws(SocketError) -> Int {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        try syscallBlocking("getsockname") {
            withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        }
        return describe(storage).port
    }

    /// Formats an address as (host, port).
    static func describe(_ storage: sockaddr_storage) -> (host: String, port: Int) {
        var storage = storage
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var addr = sin.pointee.sin_addr
                    inet_ntop(AF_INET, &addr, &buf, socklen_t(buf.count))
                    return (cStringToString(buf), Int(UInt16(bigEndian: sin.pointee.sin_port)))
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                    var addr = sin.pointee.sin6_addr
                    inet_ntop(AF_INET6, &addr, &buf, socklen_t(buf.count))
                    return ("[" + cStringToString(buf) + "]", Int(UInt16(bigEndian: sin.pointee.sin6_port)))
                }
            }
        default:
            return ("?", 0)
        }
    }

    /// Accepts one connection, made non-blocking and close-on-exec, with `TCP_NODELAY`.
    /// - Returns: nil when no connection is pending.
    static func accept(_ listener: Int32) throws(SocketError) -> (fd: Int32, address: String)? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = try syscall("accept") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { addr in
                    if let accept4 = accept4Function {
                        // Close-on-exec and non-blocking atomically (see `cloexecType`).
                        return accept4(listener, addr, &len, cloexecFlag | nonBlockFlag)
                    }
                    return Glibc.accept(listener, addr, &len)
                }
            }
        }
        guard case .done(let fd) = r else { return nil }
        do {
            if accept4Function == nil {
                try setNonBlocking(fd)
                try setCloseOnExec(fd)
            }
            try setNoDelay(fd)
        } catch {
            _ = Glibc.close(fd)
            throw error
        }
        let (host, port) = describe(storage)
        return (fd, "\(host):\(port)")
    }

    typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32

    /// glibc's `accept4(2)`, looked up at run time: the Glibc module does not export it
    /// (it is declared only under `_GNU_SOURCE`). Nil where it does not exist.
    static let accept4Function: Accept4? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "accept4") else { return nil }
        return unsafeBitCast(symbol, to: Accept4.self)
        #else
        return nil
        #endif
    }()

    static func setCloseOnExec(_ fd: Int32) throws(SocketError) {
        let flags = try syscallBlocking("fcntl(F_GETFD)") { fcntl(fd, F_GETFD) }
        try syscallBlocking("fcntl(F_SETFD)") { fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }

    static func setNonBlocking(_ fd: Int32) throws(SocketError) {
        let flags = try syscallBlocking("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
        try syscallBlocking("fcntl(F_SETFL)") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Disables Nagle: a response written in one `send` leaves at once.
    static func setNoDelay(_ fd: Int32) throws(SocketError) {
        var one: Int32 = 1
        try syscallBlocking("setsockopt(TCP_NODELAY)") {
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// Reads into `buffer`; `.done(0)` is end of input.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> IOResult<Int> {
        try syscall("recv") { recv(fd, buffer.baseAddress, buffer.count, 0) }
    }

    /// Writes from `buffer` without raising `SIGPIPE`.
    static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SocketError) -> IOResult<Int> {
        try syscall("send") { send(fd, buffer.baseAddress, buffer.count, sendFlags) }
    }

    /// Starts a non-blocking connect.
    /// - Returns: the descriptor and whether the connection is already established.
    static func connect(host: String, port: Int) throws(SocketError) -> (fd: Int32, connected: Bool) {
        let (storage, length) = try resolve(host: host, port: port, passive: false)
        return try connect(to: Address(storage: storage, length: length))
    }

    /// A resolved address, to hand from the thread that resolved it to the one that connects.
    struct Address: @unchecked Sendable {
        var storage: sockaddr_storage
        var length: socklen_t
    }

    /// Whether `host` is an IP address literal (`127.0.0.1`, `::1`): resolving it never blocks.
    static func isNumeric(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return inet_pton(AF_INET, bare, &v4) == 1 || inet_pton(AF_INET6, bare, &v6) == 1
    }

    /// Every address `host:port` resolves to, IPv4 first, each once, in the resolver's order
    /// otherwise (`passive`: for a listener).
    static func resolveAll(host: String, port: Int, passive: Bool = false) throws(SocketError) -> [Address] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = streamType
        hints.ai_flags = passive ? AI_PASSIVE : 0
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &result)
        guard rc == 0, result != nil else { throw SocketError(call: "getaddrinfo(\(host))", errno: rc) }
        defer { freeaddrinfo(result) }
        var v4: [Address] = [], other: [Address] = []
        var seen = Set<[UInt8]>()
        var p = result
        while let cur = p {
            p = cur.pointee.ai_next
            guard let sa = cur.pointee.ai_addr else { continue }
            let length = cur.pointee.ai_addrlen
            let bytes = Array(UnsafeRawBufferPointer(start: sa, count: Int(length)))
            guard seen.insert(bytes).inserted else { continue }
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
            let address = Address(storage: storage, length: length)
            if cur.pointee.ai_family == AF_INET { v4.append(address) } else { other.append(address) }
        }
        return v4 + other
    }

    /// Resolves a name on a Dispatch thread: `getaddrinfo` blocks (on DNS, for as long as the
    /// resolver's own timeouts), and must not hold a thread of Swift's cooperative pool.
    /// - Returns: every address of the name (``resolveAll(host:port:)``), at least one.
    static func resolveOffPool(host: String, port: Int) async throws -> [Address] {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<[Address], any Error>) in
            DispatchQueue.global().async {
                do {
                    let all = try resolveAll(host: host, port: port)
                    guard !all.isEmpty else { throw SocketError(call: "getaddrinfo(\(host))", errno: EAI_NONAME) }
                    c.resume(returning: all)
                } catch {
                    c.resume(throwing: error)
                }
            }
        }
    }

    static func connect(to address: Address) throws(SocketError) -> (fd: Int32, connected: Bool) {
        var storage = address.storage
        let length = address.length
        let fd = try syscallBlocking("socket") { socket(Int32(storage.ss_family), cloexecType, 0) }
        do {
            try setNonBlocking(fd)
            try setNoDelay(fd)
            let r = try syscall("connect") {
                withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) } }
            }
            if case .done = r { return (fd, true) }
            return (fd, false)
        } catch {
            _ = Glibc.close(fd)
            throw error
        }
    }

    /// The pending error of a socket (`SO_ERROR`), 0 when none.
    static func pendingError(_ fd: Int32) -> Int32 {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        return err
    }

    /// Whether a connecting socket is done (writable, or failed): `poll(2)` without waiting.
    static func isWritableOrFailed(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let n = Glibc.poll(&p, 1, 0)
        return n > 0 && p.revents & Int16(POLLOUT | POLLERR | POLLHUP) != 0
    }

    static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    static func close(_ fd: Int32) {
        // close(2) is not retried on EINTR: on Linux the descriptor is released anyway.
        _ = Glibc.close(fd)
    }
}

/// Decodes a NUL-terminated C string held in an array.
func cStringToString(_ buf: [CChar]) -> String {
    let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

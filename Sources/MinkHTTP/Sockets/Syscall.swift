#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: its name and `errno`.
public struct SocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name of the call, e.g. `bind`.
    public var call: String
    /// The `errno` value.
    public var errno: Int32

    /// Creates an error.
    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// `bind: Address already in use (errno 98)`; a `getaddrinfo` code is its own kind (`EAI_*`,
    /// `gai_strerror`): `getaddrinfo(x.invalid): Name or service not known (EAI -2)`.
    public var description: String {
        if isAddressLookup { return "\(call): \(String(cString: gai_strerror(errno))) (EAI \(errno))" }
        return "\(call): \(String(cString: strerror(errno))) (errno \(errno))"
    }

    /// A failed host name lookup (`errno` holds a `getaddrinfo` code).
    public var isAddressLookup: Bool { call.hasPrefix("getaddrinfo") }
}

/// The result of a non-blocking call.
enum IOResult<T> {
    case done(T)
    case wouldBlock
}

/// Runs a system call returning -1 on failure: retries `EINTR`, maps `EAGAIN` /
/// `EWOULDBLOCK` (and `EINPROGRESS` for connect) to ``IOResult/wouldBlock``, and
/// throws ``SocketError`` with the call's name and errno otherwise.
@inline(__always)
func syscall<T: FixedWidthInteger>(_ name: String, _ body: () -> T) throws(SocketError) -> IOResult<T> {
    while true {
        let r = body()
        if r != -1 { return .done(r) }
        let e = errno
        switch e {
        case EINTR: continue
        case EAGAIN, EWOULDBLOCK, EINPROGRESS: return .wouldBlock
        default: throw SocketError(call: name, errno: e)
        }
    }
}

/// Like ``syscall(_:_:)`` for calls that never legitimately block.
@inline(__always)
@discardableResult
func syscallBlocking<T: FixedWidthInteger>(_ name: String, _ body: () -> T) throws(SocketError) -> T {
    switch try syscall(name, body) {
    case .done(let r): return r
    case .wouldBlock: throw SocketError(call: name, errno: EAGAIN)
    }
}

/// Ignores `SIGPIPE` for the process, once.
///
/// Why: writing to a socket whose peer has gone raises `SIGPIPE`, whose default
/// action kills the process. Writes also pass `MSG_NOSIGNAL`, but other code in the
/// process (libpq, a pipe to a child) may not, so the signal is ignored as well.
let ignoreSIGPIPE: Void = {
    _ = signal(SIGPIPE, SIG_IGN)
}()

/// Monotonic nanoseconds (`CLOCK_MONOTONIC`).
@inline(__always)
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Writes one line to standard error (descriptor 2), where the transport reports a problem
/// when no log was given to it. (`write(2)` rather than `stderr`: the C global is shared
/// mutable state to Swift 6.)
func writeLineToStandardError(_ message: String) {
    var line = Array(message.utf8)
    line.append(UInt8(ascii: "\n"))
    line.withUnsafeBytes { b in _ = write(2, b.baseAddress, b.count) }
}

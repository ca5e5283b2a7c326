#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A request route whose body is not held in memory but spooled to a temporary file as it
/// arrives (an import of millions of events): the general body limit does not apply to it,
/// `maxBytes` does.
public struct SpooledBodyRoute: Sendable, Equatable {
    /// The method, e.g. `POST`.
    public var method: String
    /// The exact raw path, e.g. `/v1/admin/import`.
    public var path: String
    /// The most body bytes accepted as sent (before any decompression); 0: no limit.
    public var maxBytes: Int

    /// Creates a route.
    public init(method: String, path: String, maxBytes: Int) {
        self.method = method
        self.path = path
        self.maxBytes = maxBytes
    }
}

/// A request body written to an unlinked temporary file while it is received, read back by the
/// responder piece by piece. The file disappears when the last reference goes.
///
/// The body stays exactly as sent (still gzip-encoded if it was): the responder decodes it as
/// it reads, with its own limit on the decoded size.
public final class HTTPBodySpool: @unchecked Sendable {
    // Invariant for @unchecked Sendable: the parser writes (on the connection's loop) until it
    // hands the request over; only then does the responder read, from one task at a time.
    private let fd: Int32
    /// Bytes written.
    public private(set) var count = 0
    private var readOffset: off_t = 0

    /// Creates an empty spool file in the temporary directory (`TMPDIR` or `/tmp`), mode 0600,
    /// unlinked at once so that nothing remains after a crash.
    /// - Throws: `HTTPParseError` 500 when no file can be created.
    init() throws(HTTPParseError) {
        let dir = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(dir)/minkd-body-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw HTTPParseError(status: 500, reason: "cannot spool the request body") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        fchmod(fd, 0o600)
        self.fd = fd
    }

    deinit { close(fd) }

    func write(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) {
        var done = 0
        let total = bytes.count
        let failed: Bool = bytes.withUnsafeBytes { raw in
            while done < total {
                let n = Glibc.write(fd, raw.baseAddress! + done, total - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return true
                }
                done += n
            }
            return false
        }
        if failed { throw HTTPParseError(status: 503, reason: "cannot spool the request body (disk full?)") }
        count += total
    }

    /// Reads the next bytes of the body, at most `max`; an empty array at the end.
    /// - Throws: `POSIXError` when the file cannot be read.
    public func read(max: Int = 256 * 1024) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: max)
        while true {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, max, readOffset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            readOffset += off_t(n)
            out.removeLast(max - n)
            return out
        }
    }
}

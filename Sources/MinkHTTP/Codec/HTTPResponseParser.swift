/// The status line and headers of a received response.
public struct HTTPResponseHead: Sendable, Equatable {
    /// The status code.
    public var status: Int
    /// The reason phrase as sent.
    public var reason: String
    /// The protocol version of the status line.
    public var version: HTTPVersion
    /// The header fields.
    public var headers: HTTPHeaders

    /// Creates a head.
    public init(status: Int, reason: String = "", version: HTTPVersion = .http1_1, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
    }

    /// Whether the server keeps the connection open after this response.
    public var isKeepAlive: Bool {
        if headers.containsToken("close", in: "Connection") { return false }
        if version == .http1_1 { return true }
        return headers.containsToken("keep-alive", in: "Connection")
    }
}

/// An error reading a response.
public struct HTTPResponseParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public var reason: String
    /// Creates an error.
    public init(_ reason: String) { self.reason = reason }
    /// The reason.
    public var description: String { reason }
}

/// An incremental client-side response parser: a pure value fed byte chunks.
///
/// Handles `Content-Length`, chunked and close-delimited bodies, responses without a
/// body (to HEAD, 204, 304) and skips interim 1xx responses. Bodies are delivered
/// in pieces as they arrive (``Event/body(_:)``) so event streams can be consumed live.
public struct HTTPResponseParser: Sendable {
    /// A piece of a response.
    public enum Event: Sendable, Equatable {
        /// The status line and headers of a final (non-1xx) response.
        case head(HTTPResponseHead)
        /// Body bytes, de-chunked.
        case body([UInt8])
        /// The response is complete.
        case end
    }

    private enum State: Sendable {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case failed(HTTPResponseParseError)
    }

    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var state: State = .head
    private var headRequests: [Bool] = []
    /// Maximum bytes of a response head.
    public var maxHeadBytes: Int

    /// Creates a parser.
    public init(maxHeadBytes: Int = 64 * 1024) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// Declares that the next unanswered request (in order) was a `HEAD`, whose
    /// response has no body whatever its headers say. Call once per request sent
    /// (`false` for other methods) when pipelining HEAD requests; when never called,
    /// every response is read as one to a GET.
    public mutating func requestSent(isHead: Bool) {
        headRequests.append(isHead)
    }

    /// Appends received bytes.
    public mutating func feed(_ bytes: ArraySlice<UInt8>) {
        if readIndex > 0 && readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        } else if readIndex > 64 * 1024 {
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Appends received bytes.
    public mutating func feed(_ bytes: [UInt8]) { feed(bytes[...]) }

    /// Whether a response is partly received.
    /// Whether bytes beyond the responses parsed so far are buffered (an answer nobody asked
    /// for): such a connection must not be reused, or the next request would read them.
    public var hasUnreadBytes: Bool { readIndex < buffer.count }

    public var isMidResponse: Bool {
        switch state {
        case .head: return buffer.count > readIndex
        case .failed: return false
        default: return true
        }
    }

    /// Whether the current body is delimited by the connection closing.
    public var isCloseDelimited: Bool {
        if case .untilClose = state { return true }
        return false
    }

    /// Returns the next event, or `nil` when more bytes are needed.
    public mutating func next() throws(HTTPResponseParseError) -> Event? {
        if let end = takePendingEnd() { return end }
        do {
            return try step()
        } catch {
            state = .failed(error)
            throw error
        }
    }

    /// The connection reached end of input: ends a close-delimited body.
    /// - Returns: `.end` when a close-delimited body was in progress (after any
    ///   buffered bytes have been returned by ``next()``), `nil` when idle.
    /// - Throws: when a response was cut short.
    public mutating func finish() throws(HTTPResponseParseError) -> Event? {
        switch state {
        case .untilClose:
            state = .head
            return .end
        case .head where buffer.count == readIndex:
            return nil
        case .failed(let e):
            throw e
        default:
            let e = HTTPResponseParseError("connection closed before the response was complete")
            state = .failed(e)
            throw e
        }
    }

    private mutating func takeBody(_ n: Int) -> [UInt8] {
        let bytes = Array(buffer[readIndex..<readIndex + n])
        readIndex += n
        return bytes
    }

    private mutating func step() throws(HTTPResponseParseError) -> Event? {
        while true {
            switch state {
            case .failed(let e):
                throw e
            case .head:
                guard let (head, length) = try parseHead() else { return nil }
                if head.status < 200 {
                    continue  // interim response: skipped
                }
                let isHead = headRequests.isEmpty ? false : headRequests.removeFirst()
                if isHead || head.status == 204 || head.status == 304 {
                    state = .head
                    pendingEnd = true  // the caller sees .end next
                    return .head(head)
                }
                if let te = head.headers["Transfer-Encoding"] {
                    if asciiCaseInsensitiveEquals(trimOWS(te.split(separator: ",").last ?? ""), "chunked") {
                        state = .chunkSize
                    } else {
                        state = .untilClose
                    }
                } else if let cl = head.headers["Content-Length"] {
                    guard let n = Int(trimOWS(cl)), n >= 0 else { throw HTTPResponseParseError("invalid Content-Length") }
                    if n == 0 {
                        pendingEnd = true
                        state = .head
                    } else {
                        state = .fixed(remaining: n)
                    }
                } else {
                    state = .untilClose
                }
                _ = length
                return .head(head)
            case .fixed(let remaining):
                let n = min(remaining, buffer.count - readIndex)
                if n == 0 { return nil }
                let bytes = takeBody(n)
                if remaining == n {
                    state = .head
                    pendingEnd = true
                } else {
                    state = .fixed(remaining: remaining - n)
                }
                return .body(bytes)
            case .chunkSize:
                guard let lineEnd = findCRLF() else {
                    if buffer.count - readIndex > 4096 { throw HTTPResponseParseError("chunk-size line too long") }
                    return nil
                }
                var size = 0
                var digits = 0
                var i = readIndex
                while i < lineEnd, let h = ByteClass.hexValue(buffer[i]) {
                    size = size << 4 | h
                    digits += 1
                    if size > (1 << 48) { throw HTTPResponseParseError("chunk too large") }
                    i += 1
                }
                guard digits > 0 else { throw HTTPResponseParseError("invalid chunk size") }
                readIndex = lineEnd + 2
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let n = min(remaining, buffer.count - readIndex)
                if n == 0 { return nil }
                let bytes = takeBody(n)
                state = remaining == n ? .chunkDataEnd : .chunkData(remaining: remaining - n)
                return .body(bytes)
            case .chunkDataEnd:
                guard buffer.count - readIndex >= 2 else { return nil }
                guard buffer[readIndex] == ByteClass.cr, buffer[readIndex + 1] == ByteClass.lf else {
                    throw HTTPResponseParseError("chunk not followed by CRLF")
                }
                readIndex += 2
                state = .chunkSize
            case .trailers:
                guard let lineEnd = findCRLF() else { return nil }
                let empty = lineEnd == readIndex
                readIndex = lineEnd + 2
                if empty {
                    state = .head
                    return .end
                }
            case .untilClose:
                let n = buffer.count - readIndex
                if n == 0 { return nil }
                return .body(takeBody(n))
            }
        }
    }

    private var pendingEnd = false

    /// Returns `.end` once after a response whose end is known from its head/length.
    private mutating func takePendingEnd() -> Event? {
        if pendingEnd {
            pendingEnd = false
            return .end
        }
        return nil
    }

    private func findCRLF() -> Int? {
        var i = readIndex
        while i + 1 < buffer.count {
            if buffer[i] == ByteClass.cr && buffer[i + 1] == ByteClass.lf { return i }
            i += 1
        }
        return nil
    }

    private mutating func parseHead() throws(HTTPResponseParseError) -> (HTTPResponseHead, Int)? {
        // Find CRLFCRLF.
        var i = readIndex
        var end: Int?
        while i + 3 < buffer.count {
            if buffer[i] == ByteClass.cr && buffer[i + 1] == ByteClass.lf && buffer[i + 2] == ByteClass.cr && buffer[i + 3] == ByteClass.lf {
                end = i
                break
            }
            i += 1
        }
        guard let end else {
            if buffer.count - readIndex > maxHeadBytes { throw HTTPResponseParseError("response head too large") }
            return nil
        }
        let lines = buffer[readIndex..<end].split(separator: ByteClass.lf, omittingEmptySubsequences: false)
            .map { $0.last == ByteClass.cr ? $0.dropLast() : $0 }
        guard let statusLine = lines.first, statusLine.count >= 12 else { throw HTTPResponseParseError("invalid status line") }
        let s = Array(statusLine)
        guard s.starts(with: Array("HTTP/1.".utf8)), s[8] == ByteClass.sp,
              let status = Int(String(s[9..<12])) else { throw HTTPResponseParseError("invalid status line") }
        let version = HTTPVersion(major: 1, minor: Int(s[7]) - 0x30)
        let reason = s.count > 13 ? String(s[13...]) : ""
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ByteClass.colon) else { throw HTTPResponseParseError("invalid header line") }
            headers.add(name: String(line[line.startIndex..<colon]), value: String(trimOWS(String(line[(colon + 1)...]))))
        }
        let length = end + 4 - readIndex
        readIndex = end + 4
        return (HTTPResponseHead(status: status, reason: reason, version: version, headers: headers), length)
    }
}


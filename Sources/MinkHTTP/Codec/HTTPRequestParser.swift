/// An incremental HTTP/1.x request parser: a pure value fed byte chunks.
///
/// Feed bytes with ``feed(_:)-(ArraySlice<UInt8>)`` as they arrive, then call ``next()`` until it returns `nil`;
/// each call returns one complete request (head and de-chunked body). The result does
/// not depend on how the input is split into chunks.
///
/// The parser is strict where leniency enables request smuggling: line ends must be
/// CRLF (a bare CR or LF is `400`), obs-fold and whitespace before a colon are `400`,
/// `Content-Length` must be a single run of digits and may not be combined with
/// `Transfer-Encoding`, and the only transfer coding accepted is exactly `chunked`.
/// Every error is sticky: once ``next()`` has thrown, it throws the same error again.
public struct HTTPRequestParser: Sendable {
    /// The limits checked while parsing.
    public let limits: HTTPParserLimits

    private var buffer: [UInt8] = []
    /// Start of unconsumed bytes in `buffer`.
    private var readIndex = 0
    private var state: State = .head(HeadScan())
    private var body: [UInt8] = []
    /// Where the body of a spooled route goes instead of `body` (see ``SpooledBodyRoute``).
    private var spool: HTTPBodySpool?
    /// The body limit of the request being read: ``HTTPParserLimits/maxBodyBytes``, or its
    /// spooled route's own.
    private var bodyLimit = 0
    /// Body bytes received for the request being read.
    private var bodyCount = 0
    /// The head of the request whose body is being read, if any.
    public private(set) var pendingHead: HTTPRequest?
    /// The client's `X-Request-ID` (if sane, ``RequestID/sanitized(_:)``) of the last head whose
    /// header fields were read — kept after an error in that head or its body, so that the error
    /// response can echo it.
    public private(set) var headRequestID: String?

    private struct HeadScan: Sendable {
        /// Offsets are relative to `readIndex`, which stays at the head's first byte.
        var scanned = 0
        var lineStart = 0
        var requestLineEnd: Int? = nil
        var headerLines = 0
    }

    private enum State: Sendable {
        case head(HeadScan)
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        case failed(HTTPParseError)
    }

    /// Creates a parser with the given limits.
    public init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
    }

    /// Appends received bytes.
    public mutating func feed(_ bytes: ArraySlice<UInt8>) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// Appends received bytes.
    public mutating func feed(_ bytes: [UInt8]) {
        feed(bytes[...])
    }

    /// Appends received bytes from a raw buffer (e.g. straight from `read(2)`).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// The number of received bytes not yet consumed by a returned request.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// Whether a request has started (bytes of a head, or a head awaiting its body)
    /// but is not complete. Leading empty lines do not count once skipped.
    public var isMidRequest: Bool {
        if case .head = state { return buffer.count > readIndex }
        if case .failed = state { return false }
        return true
    }

    /// Whether the parser has failed; ``next()`` will throw.
    public var hasFailed: Bool {
        if case .failed = state { return true }
        return false
    }

    private mutating func compact() {
        if readIndex == 0 { return }
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        } else if readIndex >= 16 * 1024 && readIndex * 2 >= buffer.count {
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
    }

    /// Returns the next complete request, or `nil` when more bytes are needed.
    ///
    /// - Throws: ``HTTPParseError`` carrying the status to answer (400, 413, 414, 431,
    ///   501, 505); the connection must then be closed after that answer.
    public mutating func next() throws(HTTPParseError) -> HTTPRequest? {
        do {
            return try step()
        } catch {
            state = .failed(error)
            pendingHead = nil
            throw error
        }
    }

    private mutating func step() throws(HTTPParseError) -> HTTPRequest? {
        while true {
            switch state {
            case .failed(let error):
                throw error
            case .head(var scan):
                guard try scanHead(&scan) else {
                    state = .head(scan)
                    return nil
                }
                // scan.scanned is now the length of the head including the final CRLF.
                let headLength = scan.scanned
                let (request, framing) = try parseHead(requestLineEnd: scan.requestLineEnd!, headLength: headLength)
                readIndex += headLength
                body = []
                bodyCount = 0
                spool = nil
                if case .none = framing {} else if spooledRoute(of: request) != nil { spool = try HTTPBodySpool() }
                switch framing {
                case .none:
                    state = .head(HeadScan())
                    headRequestID = nil
                    return request
                case .length(let n):
                    if n == 0 {
                        state = .head(HeadScan())
                        headRequestID = nil
                        return request
                    }
                    if spool == nil { body.reserveCapacity(min(n, 1 << 20)) }
                    pendingHead = request
                    state = .fixedBody(remaining: n)
                case .chunked:
                    pendingHead = request
                    state = .chunkSize
                }
            case .fixedBody(let remaining):
                let n = min(remaining, buffer.count - readIndex)
                if n > 0 {
                    try takeBody(buffer[readIndex..<readIndex + n])
                    readIndex += n
                }
                if remaining - n > 0 {
                    state = .fixedBody(remaining: remaining - n)
                    return nil
                }
                return finishRequest()
            case .chunkSize:
                guard let size = try parseChunkSizeLine() else { return nil }
                if size == 0 {
                    state = .trailers(bytes: 0)
                } else {
                    if size > bodyLimit - bodyCount {
                        throw HTTPParseError(status: 413, reason: "request body too large")
                    }
                    state = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let n = min(remaining, buffer.count - readIndex)
                if n > 0 {
                    try takeBody(buffer[readIndex..<readIndex + n])
                    readIndex += n
                }
                if remaining - n > 0 {
                    state = .chunkData(remaining: remaining - n)
                    return nil
                }
                state = .chunkDataEnd
            case .chunkDataEnd:
                guard buffer.count - readIndex >= 2 else {
                    if buffer.count > readIndex, buffer[readIndex] != ByteClass.cr {
                        throw .bad("chunk data not followed by CRLF")
                    }
                    return nil
                }
                guard buffer[readIndex] == ByteClass.cr, buffer[readIndex + 1] == ByteClass.lf else {
                    throw .bad("chunk data not followed by CRLF")
                }
                readIndex += 2
                state = .chunkSize
            case .trailers(let bytes):
                guard let lineEnd = try findCRLF(from: readIndex, limit: limits.maxHeaderBytes - bytes + 2, overLimit: HTTPParseError(status: 431, reason: "trailer fields too large")) else {
                    return nil
                }
                let length = lineEnd - readIndex
                if length == 0 {
                    readIndex += 2
                    return finishRequest()
                }
                try validateFieldLine(start: readIndex, end: lineEnd)
                readIndex = lineEnd + 2
                let total = bytes + length + 2
                if total > limits.maxHeaderBytes {
                    throw HTTPParseError(status: 431, reason: "trailer fields too large")
                }
                state = .trailers(bytes: total)
            }
        }
    }

    /// Keeps body bytes: in memory, or in the spool file of a spooled route.
    private mutating func takeBody(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) {
        bodyCount += bytes.count
        if let spool { try spool.write(bytes) } else { body.append(contentsOf: bytes) }
    }

    /// The spooled route a request matches, if any.
    private func spooledRoute(of request: HTTPRequest) -> SpooledBodyRoute? {
        if limits.spooledBodyRoutes.isEmpty { return nil }
        return limits.spooledBodyRoutes.first { $0.method == request.method && $0.path == request.path }
    }

    private mutating func finishRequest() -> HTTPRequest {
        var request = pendingHead!
        pendingHead = nil
        request.body = body
        request.bodySpool = spool
        spool = nil
        body = []
        state = .head(HeadScan())
        headRequestID = nil
        return request
    }

    // MARK: - Head

    /// Scans for the end of the head, checking line endings and limits on the way.
    /// Returns true when the complete head is buffered.
    private mutating func scanHead(_ scan: inout HeadScan) throws(HTTPParseError) -> Bool {
        let limits = self.limits
        var skip = 0
        let result: Result<Bool, HTTPParseError> = buffer.withUnsafeBufferPointer { all in
            var base = readIndex
            let end = all.count
            var i = base + scan.scanned
            while i < end {
                // Limits are checked per byte, before the byte is examined, so that the
                // error depends only on the input, never on how it was split.
                if let rle = scan.requestLineEnd {
                    if i - base - (rle + 2) > limits.maxHeaderBytes {
                        return .failure(HTTPParseError(status: 431, reason: "header fields too large"))
                    }
                } else if i - base > limits.maxRequestLineBytes {
                    return .failure(HTTPParseError(status: 414, reason: "request line too long"))
                }
                let b = all[i]
                if b == ByteClass.cr {
                    if i + 1 == end { break }
                    if all[i + 1] != ByteClass.lf { return .failure(.bad("bare CR in request head")) }
                    let lineLength = i - base - scan.lineStart
                    if scan.requestLineEnd == nil {
                        if lineLength == 0 {
                            // RFC 9112 2.2: ignore empty lines before the request line.
                            base += 2
                            skip += 2
                            i = base
                            scan.lineStart = 0
                            continue
                        }
                        scan.requestLineEnd = i - base
                    } else if lineLength == 0 {
                        scan.scanned = i + 2 - base
                        return .success(true)
                    } else {
                        scan.headerLines += 1
                        if scan.headerLines > limits.maxHeaderCount {
                            return .failure(HTTPParseError(status: 431, reason: "too many header fields"))
                        }
                    }
                    i += 2
                    scan.lineStart = i - base
                    continue
                }
                if b == ByteClass.lf { return .failure(.bad("bare LF in request head")) }
                i += 1
            }
            scan.scanned = i - base
            return .success(false)
        }
        readIndex += skip
        return try result.get()
    }

    private enum Framing { case none, length(Int), chunked }

    private mutating func parseHead(requestLineEnd: Int, headLength: Int) throws(HTTPParseError) -> (HTTPRequest, Framing) {
        headRequestID = nil
        let start = readIndex
        let lineEnd = start + requestLineEnd
        // Request line: method SP target SP version.
        var i = start
        while i < lineEnd, ByteClass.isToken(buffer[i]) { i += 1 }
        guard i > start, i < lineEnd, buffer[i] == ByteClass.sp else { throw .bad("invalid method") }
        let method = String(buffer[start..<i])
        i += 1
        let targetStart = i
        while i < lineEnd, ByteClass.isTargetByte(buffer[i]) { i += 1 }
        guard i > targetStart, i < lineEnd, buffer[i] == ByteClass.sp else { throw .bad("invalid request target") }
        let targetEnd = i
        i += 1
        let version = try parseVersion(buffer[i..<lineEnd])

        if method == "CONNECT" {
            throw HTTPParseError(status: 501, reason: "CONNECT is not supported")
        }
        let first = buffer[targetStart]
        if first == UInt8(ascii: "/") {
            // origin-form
        } else if targetEnd - targetStart == 1 && first == UInt8(ascii: "*") {
            guard method == "OPTIONS" else { throw .bad("asterisk-form target is only for OPTIONS") }
        } else if hasSchemePrefix(targetStart, targetEnd) {
            // absolute-form
        } else {
            throw .bad("invalid request target")
        }
        // A fragment is never sent (RFC 9112 §3.2: the target is absolute-path [ "?" query ]).
        if buffer[targetStart..<targetEnd].contains(UInt8(ascii: "#")) { throw .bad("a request target has no fragment (#)") }
        let target = String(buffer[targetStart..<targetEnd])

        // Header fields.
        var headers = HTTPHeaders()
        headers.storage.reserveCapacity(8)
        var hostCount = 0
        var contentTypeCount = 0
        var contentLength: [String] = []
        var transferEncoding: [String] = []
        var lineStart = lineEnd + 2
        let headEnd = start + headLength - 2
        while lineStart < headEnd {
            var e = lineStart
            while buffer[e] != ByteClass.cr { e += 1 }
            let (name, value) = try parseFieldLine(start: lineStart, end: e)
            switch name.utf8.count {
            case 4 where asciiCaseInsensitiveEquals(name, "host"):
                hostCount += 1
                // RFC 9112 §3.2: a Host with an invalid value is `400`, like a missing or a repeated one.
                guard Self.isValidHost(value) else { throw .bad("invalid Host header") }
            case 14 where asciiCaseInsensitiveEquals(name, "content-length"): contentLength.append(value)
            case 17 where asciiCaseInsensitiveEquals(name, "transfer-encoding"): transferEncoding.append(value)
            case 12 where asciiCaseInsensitiveEquals(name, "content-type"):
                // One body, one media type (RFC 9110 §8.3 allows one field): with two, a proxy
                // and minkd could read the body differently.
                contentTypeCount += 1
                if contentTypeCount > 1 { throw .bad("more than one Content-Type header") }
            default: break
            }
            headers.storage.append((name: name, value: value))
            lineStart = e + 2
        }

        headRequestID = RequestID.sanitized(headers["X-Request-ID"])
        if version == .http1_1 {
            if hostCount == 0 { throw .bad("missing Host header") }
        }
        if hostCount > 1 { throw .bad("more than one Host header") }

        var request = HTTPRequest(method: method, target: target, version: version, headers: headers)
        request.headers = headers
        if let route = spooledRoute(of: request) {
            bodyLimit = route.maxBytes > 0 ? route.maxBytes : Int.max
        } else {
            bodyLimit = limits.maxBodyBytes
        }

        if !transferEncoding.isEmpty {
            if !contentLength.isEmpty { throw .bad("both Content-Length and Transfer-Encoding") }
            if version == .http1_0 { throw .bad("Transfer-Encoding in an HTTP/1.0 request") }
            guard transferEncoding.count == 1, asciiCaseInsensitiveEquals(transferEncoding[0], "chunked") else {
                throw .bad("unsupported transfer coding")
            }
            return (request, .chunked)
        }
        if !contentLength.isEmpty {
            guard contentLength.count == 1 else { throw .bad("repeated Content-Length") }
            let digits = contentLength[0].utf8
            guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw .bad("invalid Content-Length")
            }
            var n = 0
            for d in digits {
                // Checked before multiplying: a spooled route may have no limit (Int.max).
                if n > (Int.max - 9) / 10 { throw HTTPParseError(status: 413, reason: "request body too large") }
                n = n * 10 + Int(d - 0x30)
                if n > bodyLimit {
                    throw HTTPParseError(status: 413, reason: "request body too large")
                }
            }
            return (request, .length(n))
        }
        return (request, .none)
    }

    private func hasSchemePrefix(_ start: Int, _ end: Int) -> Bool {
        for scheme in ["http://", "https://"] {
            let s = Array(scheme.utf8)
            if end - start > s.count {
                var ok = true
                for k in 0..<s.count where buffer[start + k] | 0x20 != s[k] { ok = false; break }
                if ok { return true }
            }
        }
        return false
    }

    private func parseVersion(_ v: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPVersion {
        let b = v.startIndex
        guard v.count == 8, v[b] == UInt8(ascii: "H"), v[b + 1] == UInt8(ascii: "T"), v[b + 2] == UInt8(ascii: "T"),
              v[b + 3] == UInt8(ascii: "P"), v[b + 4] == UInt8(ascii: "/"), v[b + 6] == UInt8(ascii: "."),
              (0x30...0x39).contains(v[b + 5]), (0x30...0x39).contains(v[b + 7])
        else {
            // `HTTP/2`, `HTTP/3`, `HTTP/10.0`: a version, though not RFC 9112's one-digit form —
            // one this server does not speak (505), where anything else is a malformed line (400).
            if Self.isOtherVersion(v) { throw HTTPParseError(status: 505, reason: "HTTP version not supported") }
            throw .bad("invalid HTTP version")
        }
        let version = HTTPVersion(major: Int(v[b + 5] - 0x30), minor: Int(v[b + 7] - 0x30))
        guard version == .http1_1 || version == .http1_0 else {
            throw HTTPParseError(status: 505, reason: "HTTP version not supported")
        }
        return version
    }

    /// `HTTP/` then digits, optionally `.` and digits (at most 16 bytes in all).
    static func isOtherVersion(_ v: ArraySlice<UInt8>) -> Bool {
        guard v.count <= 16, v.starts(with: "HTTP/".utf8) else { return false }
        let rest = v.dropFirst(5)
        let parts = rest.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), rest.last != UInt8(ascii: ".") else { return false }
        return parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { (0x30...0x39).contains($0) } }
    }

    /// Parses `name: OWS value OWS` between `start` and `end` (the CR).
    private func parseFieldLine(start: Int, end: Int) throws(HTTPParseError) -> (String, String) {
        var i = start
        while i < end, ByteClass.isToken(buffer[i]) { i += 1 }
        guard i < end, buffer[i] == ByteClass.colon else {
            let b = buffer[start]
            if b == ByteClass.sp || b == ByteClass.htab { throw .bad("obsolete line folding") }
            throw .bad("invalid header field name")
        }
        guard i > start else { throw .bad("empty header field name") }
        let name = String(buffer[start..<i])
        var vs = i + 1
        var ve = end
        while vs < ve, buffer[vs] == ByteClass.sp || buffer[vs] == ByteClass.htab { vs += 1 }
        while ve > vs, buffer[ve - 1] == ByteClass.sp || buffer[ve - 1] == ByteClass.htab { ve -= 1 }
        for k in vs..<ve where !ByteClass.fieldValue[Int(buffer[k])] {
            throw .bad("invalid character in header field value")
        }
        return (name, String(buffer[vs..<ve]))
    }

    /// Whether `value` is a valid `Host` field value (RFC 9110 §7.2): `uri-host [ ":" port ]`, where
    /// `uri-host` is an IP literal in brackets or a reg-name/IPv4 address (unreserved characters,
    /// percent-encodings and sub-delimiters), and `port` digits. Empty is valid (a target without
    /// an authority).
    static func isValidHost(_ value: String) -> Bool {
        let v = Array(value.utf8)
        var i = 0
        func isUnreservedOrSubDelim(_ b: UInt8) -> Bool {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): true
            case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
                 UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="): true
            default: false
            }
        }
        func isHex(_ b: UInt8) -> Bool {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): true
            default: false
            }
        }
        if i < v.count, v[i] == UInt8(ascii: "[") {
            // IP-literal: IPvFuture (`v…`), or IPv6 — hex digits, colons, dots (an embedded
            // IPv4), then perhaps a zone ID after `%` (RFC 6874, `[fe80::1%25eth0]`).
            i += 1
            let start = i
            let future = i < v.count && (v[i] == UInt8(ascii: "v") || v[i] == UInt8(ascii: "V"))
            var zone = false
            while i < v.count, v[i] != UInt8(ascii: "]") {
                let b = v[i]
                if b == UInt8(ascii: "%") { zone = true }
                let ok = future || zone
                    ? isUnreservedOrSubDelim(b) || b == UInt8(ascii: ":") || b == UInt8(ascii: "%")
                    : isHex(b) || b == UInt8(ascii: ":") || b == UInt8(ascii: ".")
                guard ok else { return false }
                i += 1
            }
            guard i < v.count, i > start else { return false }
            i += 1
        } else {
            while i < v.count, v[i] != UInt8(ascii: ":") {
                if v[i] == UInt8(ascii: "%") {
                    guard i + 2 < v.count, isHex(v[i + 1]), isHex(v[i + 2]) else { return false }
                    i += 3
                    continue
                }
                guard isUnreservedOrSubDelim(v[i]) else { return false }
                i += 1
            }
        }
        if i == v.count { return true }
        guard v[i] == UInt8(ascii: ":") else { return false }
        i += 1
        while i < v.count {
            guard v[i] >= UInt8(ascii: "0"), v[i] <= UInt8(ascii: "9") else { return false }
            i += 1
        }
        return true
    }

    private func validateFieldLine(start: Int, end: Int) throws(HTTPParseError) {
        _ = try parseFieldLine(start: start, end: end)
    }

    // MARK: - Chunked

    /// Finds the CRLF ending the line that starts at `from`; rejects bare CR/LF.
    private func findCRLF(from: Int, limit: Int, overLimit: HTTPParseError) throws(HTTPParseError) -> Int? {
        var i = from
        let end = buffer.count
        while i < end {
            // Checked before each byte so the outcome does not depend on chunking.
            if i - from > limit { throw overLimit }
            let b = buffer[i]
            if b == ByteClass.cr {
                if i + 1 == end { break }
                guard buffer[i + 1] == ByteClass.lf else { throw .bad("bare CR") }
                return i
            }
            if b == ByteClass.lf { throw .bad("bare LF") }
            i += 1
        }
        return nil
    }

    /// Parses `chunk-size [ ";" chunk-ext ] CRLF`; returns the size once the line is complete.
    private mutating func parseChunkSizeLine() throws(HTTPParseError) -> Int? {
        guard let lineEnd = try findCRLF(from: readIndex, limit: limits.maxChunkLineBytes, overLimit: .bad("chunk-size line too long")) else {
            return nil
        }
        var i = readIndex
        var size = 0
        var digits = 0
        while i < lineEnd, let h = ByteClass.hexValue(buffer[i]) {
            size = size << 4 | h
            digits += 1
            // Leading zeros are fine; more than 15 significant hex digits overflow.
            if size > (1 << 56) { throw HTTPParseError(status: 413, reason: "chunk too large") }
            i += 1
        }
        guard digits > 0 else { throw .bad("invalid chunk size") }
        if i < lineEnd {
            guard buffer[i] == UInt8(ascii: ";") else { throw .bad("invalid chunk size") }
            for k in (i + 1)..<lineEnd {
                let b = buffer[k]
                guard b == ByteClass.htab || (b >= 0x20 && b != 0x7F) else { throw .bad("invalid chunk extension") }
            }
        }
        readIndex = lineEnd + 2
        return size
    }
}

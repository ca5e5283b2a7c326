/// How a response body is delimited on the wire.
public enum HTTPBodyFraming: Sendable, Equatable {
    /// `Content-Length: n`, then exactly `n` bytes (also used for HEAD, with no bytes).
    case contentLength(Int)
    /// `Transfer-Encoding: chunked`.
    case chunked
    /// No length: the body ends when the connection closes (used for event streams).
    case closeDelimited
    /// No body and no length header (1xx, 204, 304).
    case none
}

/// Serialises response heads and bodies into one contiguous buffer.
public enum HTTPResponseEncoder {
    /// Header names the encoder always writes itself; copies from the caller are dropped.
    static func isManaged(_ name: String) -> Bool {
        switch name.utf8.count {
        case 4: return asciiCaseInsensitiveEquals(name, "date")
        case 10: return asciiCaseInsensitiveEquals(name, "connection")
        case 14: return asciiCaseInsensitiveEquals(name, "content-length")
        case 17: return asciiCaseInsensitiveEquals(name, "transfer-encoding")
        default: return false
        }
    }

    /// Appends `HTTP/1.1 status reason`, the caller's headers, `Date`, the framing
    /// header, a `Connection` header when needed, and the empty line to `out`.
    ///
    /// - Parameters:
    ///   - status: the status code.
    ///   - headers: the caller's headers; `Date`, `Connection`, `Content-Length` and
    ///     `Transfer-Encoding` among them are replaced by the encoder's own.
    ///   - framing: how the body is delimited.
    ///   - connection: `close`, `keep-alive` (for HTTP/1.0 peers) or `nil` to omit.
    ///   - out: the buffer to append to.
    public static func encodeHead(
        status: Int, headers: HTTPHeaders, framing: HTTPBodyFraming, connection: String?, into out: inout [UInt8]
    ) {
        out.append(contentsOf: statusLine(status))
        for field in headers where !isManaged(field.name) {
            out.append(contentsOf: field.name.utf8)
            out.append(UInt8(ascii: ":"))
            out.append(0x20)
            out.append(contentsOf: field.value.utf8)
            out.append(0x0D)
            out.append(0x0A)
        }
        out.append(contentsOf: dateName)
        out.append(contentsOf: HTTPDate.now())
        out.append(0x0D)
        out.append(0x0A)
        switch framing {
        case .contentLength(let n):
            out.append(contentsOf: contentLengthName)
            appendDecimal(n, to: &out)
            out.append(0x0D)
            out.append(0x0A)
        case .chunked:
            out.append(contentsOf: "Transfer-Encoding: chunked\r\n".utf8)
        case .closeDelimited, .none:
            break
        }
        if let connection {
            out.append(contentsOf: "Connection: ".utf8)
            out.append(contentsOf: connection.utf8)
            out.append(0x0D)
            out.append(0x0A)
        }
        out.append(0x0D)
        out.append(0x0A)
    }

    /// Encodes a complete response with a `Content-Length` body in one buffer.
    ///
    /// - Parameter includeBody: `false` for HEAD: the length of `body` is announced
    ///   but its bytes are not written.
    public static func encode(
        status: Int, headers: HTTPHeaders, body: [UInt8], connection: String? = nil, includeBody: Bool = true
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + headers.count * 32 + (includeBody ? body.count : 0))
        let framing: HTTPBodyFraming = bodyForbidden(status) ? .none : .contentLength(body.count)
        encodeHead(status: status, headers: headers, framing: framing, connection: connection, into: &out)
        if includeBody && framing != .none { out.append(contentsOf: body) }
        return out
    }

    /// Whether a response with this status never has a body (1xx, 204, 304).
    public static func bodyForbidden(_ status: Int) -> Bool {
        status < 200 || status == 204 || status == 304
    }

    private static let dateName = Array("Date: ".utf8)
    private static let contentLengthName = Array("Content-Length: ".utf8)

    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value == 0 { out.append(0x30); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var v = value
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 {
                d[n] = UInt8(0x30 + v % 10)
                v /= 10
                n += 1
            }
            while n > 0 {
                n -= 1
                out.append(d[n])
            }
        }
    }

    private static let commonStatusLines: [Int: [UInt8]] = {
        var d: [Int: [UInt8]] = [:]
        for s in [100, 200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 408, 409, 413, 414, 415, 422, 429, 431, 500, 501, 503, 505] {
            d[s] = Array("HTTP/1.1 \(s) \(reasonPhrase(s))\r\n".utf8)
        }
        return d
    }()

    static func statusLine(_ status: Int) -> [UInt8] {
        if let line = commonStatusLines[status] { return line }
        return Array("HTTP/1.1 \(status) \(reasonPhrase(status))\r\n".utf8)
    }

    /// The standard reason phrase of a status code (empty when unknown).
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 406: return "Not Acceptable"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 412: return "Precondition Failed"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 417: return "Expectation Failed"
        case 422: return "Unprocessable Content"
        case 428: return "Precondition Required"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return ""
        }
    }
}

/// Frames body bytes as `Transfer-Encoding: chunked` chunks.
public enum ChunkedEncoder {
    /// One chunk (`size CRLF data CRLF`); empty input gives no bytes (an empty chunk
    /// would end the body).
    public static func chunk(_ data: [UInt8]) -> [UInt8] {
        if data.isEmpty { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 12)
        appendChunk(data, to: &out)
        return out
    }

    /// Appends one chunk to `out`.
    public static func appendChunk(_ data: [UInt8], to out: inout [UInt8]) {
        if data.isEmpty { return }
        out.append(contentsOf: String(data.count, radix: 16).utf8)
        out.append(0x0D)
        out.append(0x0A)
        out.append(contentsOf: data)
        out.append(0x0D)
        out.append(0x0A)
    }

    /// The last chunk with no trailers: `0 CRLF CRLF`.
    public static let end: [UInt8] = Array("0\r\n\r\n".utf8)
}

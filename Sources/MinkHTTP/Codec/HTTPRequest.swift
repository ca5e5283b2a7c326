/// A complete HTTP request as handed to an ``HTTPResponder``.
public struct HTTPRequest: Sendable {
    /// The method token, e.g. `GET` (case-sensitive, as sent).
    public var method: String
    /// The request target exactly as sent on the request line.
    public var target: String
    /// The path part of the target, raw (percent-encoding is not decoded). For an
    /// absolute-form target (`http://host/p?q`) this is `/p`; for `*` it is `*`.
    public var path: String
    /// The query part after the first `?`, without the `?`, or `nil`.
    public var query: String?
    /// The protocol version of the request line.
    public var version: HTTPVersion
    /// The header fields in the order received (trailer fields are not included).
    public var headers: HTTPHeaders
    /// The body, already de-chunked and (in the server) decompressed.
    public var body: [UInt8]
    /// The peer's address as `host:port`, filled in by the server.
    public var remoteAddress: String
    /// The body, when its route spools bodies to a file (``SpooledBodyRoute``): then ``body`` is
    /// empty and the body is read from here, still encoded as sent (`Content-Encoding` kept).
    public var bodySpool: HTTPBodySpool?

    /// Creates a request; `path` and `query` are derived from `target`.
    public init(
        method: String, target: String, version: HTTPVersion = .http1_1,
        headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], remoteAddress: String = ""
    ) {
        self.method = method
        self.target = target
        (self.path, self.query) = HTTPRequest.split(target: target)
        self.version = version
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// Whether the method is `GET` or `HEAD`: a read, whose work may stop when nobody is left
    /// to read its answer.
    public var isSafe: Bool { method == "GET" || method == "HEAD" }

    /// Whether the client asked for `Expect: 100-continue`.
    public var expectsContinue: Bool {
        guard let e = headers["Expect"] else { return false }
        return asciiCaseInsensitiveEquals(trimOWS(e), "100-continue")
    }

    /// Whether the connection may stay open after this request, from the version and
    /// the `Connection` header alone (RFC 9112 9.3).
    public var isKeepAlive: Bool {
        if headers.containsToken("close", in: "Connection") { return false }
        if version == .http1_1 { return true }
        return headers.containsToken("keep-alive", in: "Connection")
    }

    static func split(target: String) -> (path: String, query: String?) {
        // On UTF-8 bytes: the target is visible ASCII (the parser checks), and a byte scan
        // avoids grapheme breaking. Origin-form (`/p?q`) is the common case.
        let u = target.utf8
        var start = u.startIndex
        if u.first != UInt8(ascii: "/"), let colon = u.firstIndex(of: UInt8(ascii: ":")),
           u[colon...].starts(with: "://".utf8) {
            // absolute-form: drop scheme and authority.
            let authority = u.index(colon, offsetBy: 3)
            guard let slash = u[authority...].firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }) else {
                return ("/", nil)
            }
            if u[slash] == UInt8(ascii: "?") {
                return ("/", String(target[u.index(after: slash)...]))
            }
            start = slash
        }
        if let q = u[start...].firstIndex(of: UInt8(ascii: "?")) {
            return (String(target[start..<q]), String(target[u.index(after: q)...]))
        }
        if start == u.startIndex { return (target, nil) }
        return (String(target[start...]), nil)
    }
}

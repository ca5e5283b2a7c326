/// Turns a responder's ``HTTPResponse`` into wire bytes for a given request: framing,
/// `Connection`, gzip, HEAD. Pure; runs in the request's task, off the event loop.
enum ResponsePreparer {
    enum Prepared {
        /// A complete response in one buffer.
        case complete([UInt8], close: Bool)
        /// A head, then the body from the closure framed as `framing`.
        case stream(head: [UInt8], framing: HTTPBodyFraming, close: Bool,
                    body: @Sendable (any HTTPBodyWriter) async throws -> Void)
    }

    static func prepare(_ response: HTTPResponse, for request: HTTPRequest, keepAlive: Bool, gzipMinBytes: Int) -> Prepared {
        let isHead = request.method == "HEAD"
        var headers = response.headers
        var close = !keepAlive || headers.containsToken("close", in: "Connection")
        switch response.body {
        case .bytes(var body):
            // `Vary: Accept-Encoding` on every body this server could have compressed, small ones
            // included: the same resource, grown past `gzipMinBytes`, would be answered by encoding,
            // and a cache must not serve one client's encoding to another.
            let encodable = !HTTPResponseEncoder.bodyForbidden(response.status) && !body.isEmpty
                && !headers.contains("Content-Encoding")
            if encodable { addVary(&headers) }
            if encodable, body.count >= gzipMinBytes {
                if Gzip.isAccepted(by: request.headers["Accept-Encoding"]),
                   let compressed = try? Gzip.compress(body, level: body.count > 256 * 1024 ? 1 : 6),
                   compressed.count < body.count {
                    body = compressed
                    headers.add(name: "Content-Encoding", value: "gzip")
                }
            }
            let bytes = HTTPResponseEncoder.encode(
                status: response.status, headers: headers, body: body,
                connection: connectionHeader(close: close, request: request), includeBody: !isHead)
            return .complete(bytes, close: close)
        case .stream(let body):
            let isEventStream = headers["Content-Type"].map {
                trimOWS($0.split(separator: ";").first ?? "").lowercased() == "text/event-stream"
            } ?? false
            let framing: HTTPBodyFraming
            if isEventStream || request.version == .http1_0 {
                framing = .closeDelimited
                close = true
            } else {
                framing = .chunked
            }
            var head: [UInt8] = []
            HTTPResponseEncoder.encodeHead(
                status: response.status, headers: headers, framing: framing,
                connection: connectionHeader(close: close, request: request), into: &head)
            // `HEAD`: the head a `GET` would get (its framing and `Connection` included), no body;
            // the stream's producer never runs.
            if isHead {
                return .complete(head, close: close)
            }
            return .stream(head: head, framing: framing, close: close, body: body)
        }
    }

    static func connectionHeader(close: Bool, request: HTTPRequest) -> String? {
        if close { return "close" }
        return request.version == .http1_0 ? "keep-alive" : nil
    }

    static func addVary(_ headers: inout HTTPHeaders) {
        if let vary = headers["Vary"] {
            if !headers.containsToken("Accept-Encoding", in: "Vary"), trimOWS(vary) != "*" {
                headers.replace(name: "Vary", value: vary + ", Accept-Encoding")
            }
        } else {
            headers.add(name: "Vary", value: "Accept-Encoding")
        }
    }
}

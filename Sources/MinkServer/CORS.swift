import MinkHTTP

/// Cross-origin access for browsers (`http.cors.allowedOrigins`): an allowed `Origin` gets
/// `Access-Control-Allow-Origin` on every response (so `EventSource` and `fetch` from a web app
/// work), and preflight `OPTIONS` requests are answered without authentication, as browsers
/// send them without credentials. An origin not in the list gets no CORS headers, so the
/// browser refuses the response; nothing else changes for it. Empty list: CORS off.
struct CORS: Sendable {
    let allowedOrigins: Set<String>
    let allowsAny: Bool

    /// The hosts of the listed origins (`https://events.example.com:8443` → `events.example.com`),
    /// lowercased: names the operator put minkd behind (a TLS proxy passing `Host` on).
    let allowedHosts: Set<String>

    init(allowedOrigins: [String]) {
        self.allowedOrigins = Set(allowedOrigins.filter { $0 != "*" })
        allowsAny = allowedOrigins.contains("*")
        allowedHosts = Set(self.allowedOrigins.compactMap { APIHandler.host(ofOrigin: $0)?.lowercased() })
    }

    var isEnabled: Bool { allowsAny || !allowedOrigins.isEmpty }


    /// The value of `Access-Control-Allow-Origin` for a request's `Origin`, or `nil`.
    func allowOrigin(for request: HTTPRequest) -> String? {
        guard isEnabled, let origin = request.headers["Origin"] else { return nil }
        if allowedOrigins.contains(origin) { return origin }
        return allowsAny ? "*" : nil
    }

    /// Adds the CORS headers of an actual (non-preflight) response.
    func decorate(_ response: inout HTTPResponse, for request: HTTPRequest) {
        guard let allow = allowOrigin(for: request) else { return }
        response.headers.replace(name: "Access-Control-Allow-Origin", value: allow)
        response.headers.replace(name: "Access-Control-Expose-Headers", value: "X-Request-ID, Retry-After, WWW-Authenticate, traceparent, tracestate")
        if allow != "*" { response.headers.add(name: "Vary", value: "Origin") }
    }

    /// The answer to a preflight request (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`), or `nil` when the request is not one.
    func preflight(_ request: HTTPRequest) -> HTTPResponse? {
        guard isEnabled, request.method == "OPTIONS", request.headers["Access-Control-Request-Method"] != nil,
            request.headers["Origin"] != nil
        else { return nil }
        var response = HTTPResponse(status: 204)
        guard let allow = allowOrigin(for: request) else { return response }
        response.headers.add(name: "Access-Control-Allow-Origin", value: allow)
        if allow != "*" { response.headers.add(name: "Vary", value: "Origin") }
        response.headers.add(name: "Access-Control-Allow-Methods", value: "GET, HEAD, POST, PUT, DELETE")
        response.headers.add(
            name: "Access-Control-Allow-Headers",
            value: "Authorization, Content-Type, Content-Encoding, Mink-Tenant, Last-Event-ID, X-Request-ID, traceparent, tracestate"
        )
        response.headers.add(name: "Access-Control-Max-Age", value: "600")
        return response
    }
}

import Foundation
import Logging
import Mink
import MinkConfig
import MinkHTTP
import MinkWire
import Prometheus
import Synchronization
import Tracing

/// Everything a handler needs about the request it serves.
struct RequestContext: Sendable {
    let request: HTTPRequest
    let requestID: String
    let route: Route
    /// The tenant the request runs in (HTTP-API.md section 2).
    let tenant: String
    /// The tenant's store.
    let store: EventStore
    let query: QueryParameters
    /// Who sent it (``Principal/anonymous`` with auth off; `nil` only where no route needs one).
    var principal: Principal? = nil
}

/// The server's ``HTTPResponder``: routing, tenant resolution, error mapping, access logs and
/// request metrics around the handlers.
final class APIHandler: HTTPResponder {
    /// What the handlers serve from. Held directly: the API does not refer back to the
    /// listener or to the ``MinkServer`` that owns both.
    let api: API

    init(api: API) {
        self.api = api
    }

    /// Routes the request once, on the connection's event loop (``HTTPResponder/route(_:)``),
    /// and answers there what needs no waiting: CORS preflights, requests the router refuses
    /// (`404`, `405`, `400`), and the routes whose handler needs no storage and never waits
    /// (``Route/isSynchronous``), through the same steps as every other request (request ID,
    /// access control, tenant, query, span, metrics, access log), none of which waits. Every
    /// other request goes to ``respond(to:routed:)`` in a task with its route.
    func route(_ request: HTTPRequest) -> HTTPRouting<Route> {
        let server = api
        if request.method == "OPTIONS", var preflight = server.cors.preflight(request) {
            preflight.headers.replace(name: "X-Request-ID", value: RequestID.from(request))
            return .answered(preflight)
        }
        let routing = Result { () throws(RouteFailure) -> Route in try Router.route(method: request.method, path: request.path) }
        if case .success(let route) = routing, !route.isSynchronous { return .inTask(route) }
        let start = ContinuousClock.now
        let requestID = RequestID.from(request)
        var template = "unmatched"
        var tokenName: String?
        var cause: String?
        var response: HTTPResponse
        let span = serverSpan(request, server: server)
        do {
            let (route, principal, tenant) = try admission(request, server: server, routing: routing, template: &template, tokenName: &tokenName)
            // No lease to take: a synchronous route uses no tenant's storage (`admit` would
            // return at once).
            let context = RequestContext(
                request: request, requestID: requestID, route: route, tenant: tenant,
                store: try server.store(forTenant: tenant), query: try QueryParameters(request.query), principal: principal
            )
            response = try server.handleSynchronously(context)
        } catch {
            (response, cause) = errorResponse(error, requestID: requestID, trace: span.trace, server: server)
        }
        return .answered(finish(response, request: request, requestID: requestID, template: template, tokenName: tokenName,
                                cause: cause, start: start, span: span, server: server))
    }

    /// The storage's executor for a request that makes one short storage call (an append, a
    /// stream read, its info or metadata, a snapshot, the log's head, a read-model document)
    /// while the storage is quiet; `nil` (the global executor) for every other request — an
    /// event stream, for one, must not hold a connection's queue, nor a page of a listing or an
    /// export.
    func executor(for route: Route) -> (any TaskExecutor)? {
        switch route {
        case .append, .load, .streamInfo, .getStreamMetadata, .getSnapshot, .putSnapshot, .head, .readModelDocument:
            api.storage.requestExecutor?()
        default: nil
        }
    }

    /// Runs work inline on the storage's executor when it can (``InlineTaskExecutor``: a
    /// PostgreSQL connection's queue), so that the HTTP loop's thread can answer a lone request
    /// itself.
    func inlineRunner(for executor: any TaskExecutor) -> (@Sendable (() -> Void) -> Void)? {
        guard let inline = executor as? any InlineTaskExecutor else { return nil }
        return { body in inline.runInline(body) }
    }

    /// The access line of a request the transport refused before routing (a bad or oversized
    /// head, a body too slow or too large, a connection beyond `http.maxConnections`): such
    /// requests had none, so an operator could not see slow clients or the connection limit
    /// biting (a black-box audit, session 23). Same keys and levels as a routed request's line
    /// (`503` at `warning`), `route` `(transport)`, the response's message as `cause`; counted
    /// in `minkd_http_requests_total` under that route.
    func refused(_ refusal: HTTPRefusal, client: String) {
        let server = api
        let method = refusal.method ?? "-"
        server.metrics.recordRequest(route: "(transport)", method: method, status: refusal.status, duration: .zero)
        let level: Logger.Level = refusal.status == 503 ? .warning : refusal.status >= 500 ? .error : .info
        let logger = server.logger
        guard logger.logLevel <= level else { return }
        logger.log(level: level, "request", metadata: [
            "request_id": "\(refusal.requestID)", "method": "\(method)", "route": "(transport)", "status": "\(refusal.status)",
            "client": "\(client)", "cause": "\(refusal.message)",
        ])
    }

    /// Answers a request ``route(_:)`` sent to a task, with the route it found.
    func respond(to request: HTTPRequest, routed route: Route) async -> HTTPResponse {
        let server = api
        let start = ContinuousClock.now
        let requestID = RequestID.from(request)
        var template = route.template
        var tokenName: String?
        var cause: String?
        var response: HTTPResponse
        let span = serverSpan(request, server: server)
        // The tenant's deletions when the request began: a storage error met while its tenant is
        // deleted is that deletion's doing, not an outage (no outage logged for it).
        let deletionMark = server.tenants.deletionMark
        var admitted: String?
        do {
            let (route, principal, tenant) = try admission(request, server: server, routing: .success(route), template: &template, tokenName: &tokenName)
            admitted = tenant
            // Existence rules before any storage is touched; writes hold a lease so that a
            // deletion of the tenant waits for them.
            // The query string is checked before the tenant may be created (a 400 creates nothing).
            let query = try QueryParameters(request.query)
            let lease = try await server.tenants.admit(tenant, use: route.tenantUse) { try server.checkInput(route, request) }
            defer { lease?.release() }
            // A read whose connection closed while it waited for its turn is not started.
            if request.isSafe, Task.isCancelled { throw ClientClosedRequest() }
            let context = RequestContext(
                request: request, requestID: requestID, route: route, tenant: tenant,
                store: try server.store(forTenant: tenant), query: query, principal: principal
            )
            // The handler runs in the server span's context, so the store's spans are its
            // children and an outgoing call could continue the trace.
            do {
                response = try await ServiceContext.withValue(span.context) {
                    try await server.handle(context)
                }
            } catch let gone as MinkError where gone.underlying is TenantStorageGone {
                // Its storage is gone: deleted through another process this one has not heard
                // from yet. Forgotten here now; the existence rules answer (and apply to the
                // next request: with `autoCreate` it creates the tenant afresh).
                throw await server.tenants.storageGone(tenant)
            }
            // Its connection closed meanwhile: the answer (a page of 10,000 events, say) is
            // dropped now rather than kept until the task ends.
            if request.isSafe, Task.isCancelled { throw ClientClosedRequest() }
            // An answer that came from storage ends an outage; an event stream has not touched
            // it yet (its catch-up runs later), so it proves nothing.
            if response.status < 500, server.storageOutage.inOutage {
                if case .stream = response.body {} else { server.storageOutage.succeeded(write: route.writes, trace: span.trace) }
            }
            if case .stream(let produce) = response.body, tenant != TenantID.default {
                // Event streams end when their tenant is deleted.
                let lifetime = server.tenants.lifetime(of: tenant)
                response.body = .stream { writer in try await lifetime.run(produce, writer: writer) }
            }
        } catch where request.isSafe && Task.isCancelled {
            // Whatever stopped it (a storage wait ends with `CancellationError` too), the
            // connection is gone: never sent, what the access log and the metrics record.
            response = HTTPResponse(status: ClientClosedRequest.status)
        } catch {
            let deleted = admitted.map { server.tenants.wasDeleting($0, since: deletionMark) } ?? false
            (response, cause) = errorResponse(
                error, requestID: requestID, trace: span.trace, server: server, write: route.writes, tenantDeleted: deleted
            )
        }
        return finish(response, request: request, requestID: requestID, template: template, tokenName: tokenName,
                      cause: cause, start: start, span: span, server: server)
    }

    /// Answers one request: routed here, then at once or as in a task. The server never calls
    /// this (it calls ``route(_:)`` once and then ``respond(to:routed:)``); it is for callers that
    /// have only a request.
    func respond(to request: HTTPRequest) async -> HTTPResponse {
        switch route(request) {
        case .answered(let response): return response
        case .inTask(let route): return await respond(to: request, routed: route)
        }
    }

    /// Access control and the tenant, which need no waiting, after the router's verdict.
    /// `template` and `tokenName` are set as soon as they are known, so that the access line of
    /// a request refused here (`401`, `403`, `405`) still names the route tried and the token
    /// presented.
    private func admission(
        _ request: HTTPRequest, server: API, routing: Result<Route, RouteFailure>, template: inout String, tokenName: inout String?,
        countsAgainstRateLimit: Bool = true
    ) throws -> (Route, Principal?, String) {
        let route: Route
        switch routing {
        case .success(let r):
            route = r
        case .failure(.notFound):
            throw APIError.noSuchEndpoint("no such endpoint: \(request.method) \(request.path.prefix(200))")
        case .failure(.methodNotAllowed(let allow, let tried)):
            template = tried
            var e = APIError(.methodNotAllowed, "\(request.method) is not allowed here; allowed: \(allow.joined(separator: ", "))")
            e.headers = [("Allow", allow.joined(separator: ", "))]
            throw e
        case .failure(.badPath(let message)):
            throw APIError(.badRequest, message)
        case .failure(.invalidStreamID(let message)):
            throw APIError(.invalidStreamID, message)
        }
        template = route.template
        try refuseCrossOriginWriteWithoutAuth(request, server: server)
        try refuseRebindingWithoutAuth(request, server: server)
        let principal = try authorize(
            request, route: route, server: server, tokenName: &tokenName, countsAgainstRateLimit: countsAgainstRateLimit
        )
        let tenant = try resolveTenant(request, route: route, principal: principal)
        return (route, principal, tenant)
    }

    /// A head that asks `Expect: 100-continue` (``HTTPResponder/refuseBeforeBody(_:)``): the
    /// answer when routing, the token or the tenant already refuse the request — sent instead of
    /// `100 Continue`, so that a client never uploads a body (an import of gigabytes, say) to be
    /// told it has no valid token — or `nil`. The rate limit is not counted here (the request,
    /// once its body has come, is). Logged and counted like any other refused request.
    func refuseBeforeBody(_ head: HTTPRequest) -> HTTPResponse? {
        let server = api
        let routing = Result { () throws(RouteFailure) -> Route in try Router.route(method: head.method, path: head.path) }
        var template = "unmatched"
        var tokenName: String?
        do {
            _ = try admission(head, server: server, routing: routing, template: &template, tokenName: &tokenName, countsAgainstRateLimit: false)
            return nil
        } catch {
            let start = ContinuousClock.now
            let requestID = RequestID.from(head)
            let span = serverSpan(head, server: server)
            let (response, cause) = errorResponse(error, requestID: requestID, trace: span.trace, server: server)
            return finish(response, request: head, requestID: requestID, template: template, tokenName: tokenName,
                          cause: cause, start: start, span: span, server: server)
        }
    }

    /// The contract's answer for an error, and its cause for the log when it is a `5xx` (the
    /// body of a `500` names only the request ID; the log line of that request ID has the rest).
    /// `trace`: the request's server span, for the outage's log line.
    private func errorResponse(
        _ error: any Error, requestID: String, trace: TraceContext, server: API, write: Bool = false, tenantDeleted: Bool = false
    ) -> (HTTPResponse, cause: String?) {
        if let mink = error as? MinkError, mink.code == .unavailable, !tenantDeleted {
            server.storageOutage.failed(cause: String(reflecting: mink), write: write, trace: trace)
            // `/readyz` asks the storage again rather than repeat a probe taken before the fault.
            if write { server.writeProbe?.invalidate() }
        }
        if let api = APIError.from(error) {
            return (api.response(requestID: requestID), api.status >= 500 ? String(reflecting: error) : nil)
        }
        return (APIError(.internal, "internal error").response(requestID: requestID), String(reflecting: error))
    }

    /// The request's server span: a child of the caller's `traceparent` when it sent a valid one,
    /// else the first span of a new trace. Named by the route once it is known.
    private func serverSpan(_ request: HTTPRequest, server: API) -> LogSpan {
        var context = ServiceContext.topLevel
        server.tracer.extract(request.headers, into: &context, using: HeaderExtractor())
        // Named when it ends (``finish``), once the route is known, and only if it is written.
        let span = server.tracer.startSpan("HTTP", context: context, ofKind: .server)
        if span.isRecording {
            span.attributes["http.request.method"] = request.method
            // Never the raw target: a browser's token is in it (section 2).
            span.attributes["url.path"] = request.path
            if let query = request.query { span.attributes["url.query"] = AccessToken.redacting(query) }
        }
        return span
    }

    /// Adds `X-Request-ID` and `traceparent`, ends the server span, records the request's metrics
    /// and writes the access log line.
    private func finish(
        _ response: HTTPResponse, request: HTTPRequest, requestID: String, template: String, tokenName: String?,
        cause: String?, start: ContinuousClock.Instant, span: LogSpan, server: API
    ) -> HTTPResponse {
        var response = response
        response.headers.replace(name: "X-Request-ID", value: requestID)
        // The server span's context, so that a caller can name this request in its own trace.
        response.headers.replace(name: "traceparent", value: span.trace.traceparent)
        if let state = span.trace.tracestate { response.headers.replace(name: "tracestate", value: state) }
        if span.isRecording {
            span.operationName = "\(request.method) \(template)"
            span.attributes["http.route"] = template
            span.attributes["http.response.status_code"] = response.status
            if response.status >= 500 { span.setStatus(SpanStatus(code: .error)) }
        }
        span.end()
        server.cors.decorate(&response, for: request)
        let duration = ContinuousClock.now - start
        server.metrics.recordRequest(route: template, method: request.method, status: response.status, duration: duration)
        // The access log names the route template and the token's configured name: never the
        // raw path, the token, its hash or a tenant's data. Its metadata is built only when
        // the line is logged. Levels: 5xx at `warning` (`503`: storage or shutdown) or `error`
        // (a fault of ours), with the cause; refused access (401, 403) at `notice`, so that an
        // incident's lines survive a `warning`/`notice` log level; everything else at `info`.
        let status = response.status
        let level: Logger.Level = switch status {
        case 503: .warning
        case 500...: .error
        case 401, 403: .notice
        default: .info
        }
        let logger = server.logger
        if logger.logLevel <= level {
            var metadata: Logger.Metadata = [
                "request_id": "\(requestID)", "method": "\(request.method)", "route": "\(template)", "status": "\(status)",
                "trace_id": "\(span.trace.traceID)", "span_id": "\(span.trace.spanIDHex)",
                "client": "\(request.remoteAddress)",
                "duration_ms": "\(Double(duration.components.attoseconds / 1_000_000_000_000) / 1000 + Double(duration.components.seconds) * 1000)",
            ]
            if server.authenticator.isEnabled {
                if let tokenName {
                    metadata["token"] = "\(tokenName)"
                } else if status == 401 || status == 403 || status == 405 {
                    // Which kind of failure, never the token: none sent, or one that matches no hash.
                    let presented = request.headers["Authorization"] != nil || AccessToken.isPresent(in: request.query)
                    metadata["token"] = presented ? "(unknown)" : "(none)"
                }
            }
            if let cause { metadata["cause"] = "\(cause)" }
            logger.log(level: level, "request", metadata: metadata)
        }
        return response
    }

    /// With authentication off (the loopback default), any web page the machine's browser opens
    /// could write: a `POST` without `Content-Type` (read as JSON) or with `text/plain` needs no
    /// CORS preflight, and the browser sends it (a black-box audit, 2026-12-07). Browsers name
    /// the page's origin in `Origin` on every such request; a write (any method but `GET`,
    /// `HEAD`, `OPTIONS`) whose `Origin` is neither a loopback page (the console, a local tool)
    /// nor listed in `http.cors.allowedOrigins` is refused `403`. Clients that are not browsers
    /// send no `Origin` and are not affected; with auth on, a page has no token to send; with
    /// `--insecure` (no auth on purpose, beyond loopback) nothing is checked.
    private func refuseCrossOriginWriteWithoutAuth(_ request: HTTPRequest, server: API) throws(APIError) {
        guard !server.authenticator.isEnabled, !server.configuration.insecure, !request.isSafe, request.method != "OPTIONS",
              let origin = request.headers["Origin"]
        else { return }
        if server.cors.allowOrigin(for: request) != nil { return }
        if let host = Self.host(ofOrigin: origin), ListenAddress.isLoopback(host: host) { return }
        throw APIError(
            .forbidden,
            "a write from a browser page of another origin is refused while authentication is off; "
                + "turn auth on, or list the origin in http.cors.allowedOrigins"
        )
    }

    /// DNS rebinding: a page whose own host name the attacker re-points at 127.0.0.1 is
    /// same-origin in the browser's eyes, so its reads carry no `Origin` and the rule above does
    /// not see them — but its requests name the page's host in `Host`. With authentication off
    /// (and no `--insecure`), a request from a browser (it sends `Sec-Fetch-Site`/`Sec-Fetch-Mode`,
    /// as every current browser does) for a `Host` that is not a loopback name or address
    /// (`localhost`, `*.localhost`, `127.x.x.x`, `[::1]`) is refused `403`. Clients that are not
    /// browsers send no `Sec-Fetch-*` and are not affected, whatever their `Host`.
    private func refuseRebindingWithoutAuth(_ request: HTTPRequest, server: API) throws(APIError) {
        guard !server.authenticator.isEnabled, !server.configuration.insecure,
              request.headers.contains("Sec-Fetch-Site") || request.headers.contains("Sec-Fetch-Mode"),
              let hostHeader = request.headers["Host"]
        else { return }
        if var host = Self.host(ofAuthority: Substring(hostHeader)) {
            if host.hasSuffix("."), host.count > 1 { host.removeLast() }  // `localhost.`: the same name
            if ListenAddress.isLoopback(host: host) { return }
            // A name the operator listed in `http.cors.allowedOrigins`: minkd behind a proxy that
            // passes the public `Host` on (deploy/nginx/minkd.conf), its console opened there.
            if server.cors.allowedHosts.contains(host.lowercased()) { return }
        }
        throw APIError(
            .forbidden,
            "a browser request for host \"\(hostHeader.prefix(100))\" is refused while authentication is off "
                + "(a page re-pointing its own name at this machine could read the log); "
                + "open minkd as http://127.0.0.1:PORT or http://localhost:PORT, list the origin in http.cors.allowedOrigins, "
                + "or turn auth on"
        )
    }

    /// The host of an `Origin` value (`http://127.0.0.1:8080` → `127.0.0.1`, `http://[::1]` →
    /// `[::1]`), or `nil` (`null`, malformed).
    static func host(ofOrigin origin: String) -> String? {
        guard let schemeEnd = origin.range(of: "://") else { return nil }
        return host(ofAuthority: origin[schemeEnd.upperBound...].prefix { $0 != "/" })
    }

    /// The host of an authority (`127.0.0.1:8080` → `127.0.0.1`, `[::1]:9` → `[::1]`), or `nil`.
    static func host(ofAuthority authority: Substring) -> String? {
        if authority.isEmpty || authority.contains("@") { return nil }
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            return String(authority[...close])
        }
        return String(authority.prefix { $0 != ":" })
    }

    /// Section 2's access control: `nil` for an open route, otherwise the caller's principal.
    /// - Throws: `401` (with `WWW-Authenticate: Bearer`) for a missing or unknown token; `403`
    ///   for a token without the route's role, or a tenant-bound token on tenant administration.
    private func authorize(
        _ request: HTTPRequest, route: Route, server: API, tokenName: inout String?, countsAgainstRateLimit: Bool = true
    ) throws(APIError) -> Principal? {
        guard case .role(let role) = route.requiredAccess(metricsRequireToken: server.configuration.metrics.requireToken) else {
            return nil
        }
        if !AccessToken.isAllowed(on: request.method), server.authenticator.isEnabled, AccessToken.isPresent(in: request.query) {
            // Section 2 takes a token in the URL on GETs only; elsewhere it is no way to send one,
            // so the request is refused as unauthenticated — even with a valid header, so that a
            // client that leaks tokens into URLs learns at once. The token is not echoed. The
            // access log names the header's token when it is valid (`(unknown)` would read as a
            // guess, and hide which client leaks tokens into URLs).
            tokenName = server.authenticator.principal(for: request)?.name
            var e = APIError(
                .unauthorized,
                "the access_token query parameter is accepted on GET and HEAD only; send Authorization: Bearer <token>",
                details: ["parameter": .string(AccessToken.parameter)]
            )
            e.headers = [("WWW-Authenticate", "Bearer")]
            throw e
        }
        // One credential per request: with two `Authorization` headers, minkd and a proxy that
        // reads the other one would disagree on who is asking.
        let authorizations = request.headers.values(for: "Authorization").count
        if server.authenticator.isEnabled, authorizations > 1 {
            throw APIError(.badRequest, "Authorization appears \(authorizations) times; send it once")
        }
        guard let principal = server.authenticator.principal(for: request) else {
            // One message for missing, malformed and unknown tokens: nothing about the token is echoed.
            var e = APIError(.unauthorized, "a valid bearer token is required (Authorization: Bearer <token>)")
            e.headers = [("WWW-Authenticate", "Bearer")]
            throw e
        }
        tokenName = principal.name
        // Every request a valid token makes counts, an event stream once, when it starts.
        if countsAgainstRateLimit, let limiter = principal.rateLimiter, let retryAfter = limiter.acquire() {
            var e = APIError(
                .tooManyRequests,
                "this token's rate limit (\(limiter.limit.perSecond) requests per second, burst \(limiter.limit.burst)) is exceeded; retry after \(retryAfter) s",
                details: ["retryAfterSeconds": .int(Int64(retryAfter))]
            )
            e.headers = [("Retry-After", "\(retryAfter)")]
            throw e
        }
        guard principal.roles.contains(role) else {
            throw APIError(.forbidden, "this token lacks the \(role.rawValue) role needed here")
        }
        if route.spansTenants, principal.tenant != nil {
            let what = route.isTenantAdministration ? "tenant administration" : "the process's metrics (every tenant's activity)"
            throw APIError(.forbidden, "\(what) needs a token valid for every tenant (tenant: \"*\")")
        }
        return principal
    }

    /// Section 2's tenant rules (see ``TenantRouter/resolve(principal:header:)``); open routes
    /// and tenant administration run in `default` and ignore `Mink-Tenant`.
    private func resolveTenant(_ request: HTTPRequest, route: Route, principal: Principal?) throws(APIError) -> String {
        guard let principal, !route.spansTenants else { return TenantID.default }
        // One tenant per request: a second `Mink-Tenant` (a proxy adding its own, say) is refused
        // rather than one of them silently chosen, as a repeated query parameter is.
        let values = request.headers.values(for: "Mink-Tenant")
        guard values.count <= 1 else {
            throw APIError(.invalidTenant, "Mink-Tenant appears \(values.count) times; send it once")
        }
        return try TenantRouter.resolve(principal: principal, header: values.first)
    }
}

/// Reads trace context headers (`traceparent`, `tracestate`) from a request; several headers of
/// one name are one comma-separated list (RFC 9110), which is how W3C combines `tracestate`.
struct HeaderExtractor: Extractor {
    func extract(key: String, from carrier: HTTPHeaders) -> String? {
        guard key == "tracestate" else { return carrier[key] }
        let values = carrier.values(for: key)
        return values.count > 1 ? values.joined(separator: ",") : values.first
    }
}

/// Helpers to build responses.
enum Reply {
    static func json(_ body: some JSONWritable, status: Int = 200) -> HTTPResponse {
        var writer = JSONWriter(capacity: 512)
        body.write(to: &writer)
        return json(bytes: writer.bytes, status: status)
    }

    static func json(bytes: [UInt8], status: Int = 200) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        return HTTPResponse(status: status, headers: headers, bytes: bytes)
    }
}

/// A `GET` or `HEAD` whose connection closed before its answer was ready: its work stops, and the
/// access log and `mink_http_requests_total` record status `499` (nginx's "client closed
/// request"; no client ever receives it).
struct ClientClosedRequest: Error {
    static let status = 499
}

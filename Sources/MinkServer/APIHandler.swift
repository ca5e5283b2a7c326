import Foundation
import Logging
import Mink
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
}

/// The server's ``HTTPResponder``: routing, tenant resolution, error mapping, access logs and
/// request metrics around the handlers.
final class APIHandler: HTTPResponder {
    /// What the handlers serve from. Held directly: the API does not refer back to the
    /// listener or to the ``MinkServer`` that owns both.
    let api: API

    /// Whether a tracing instrument was bootstrapped when the server was created (as
    /// swift-distributed-tracing asks: once, at the start of the program). Without one a
    /// span records nothing, so none is made; checked once rather than per request.
    private let tracingEnabled = !(InstrumentationSystem.instrument is NoOpInstrument)

    init(api: API) {
        self.api = api
    }

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        let server = api
        let start = ContinuousClock.now
        let requestID = RequestID.from(request)
        var template = "unmatched"
        var tokenName: String?
        var cause: String?
        var response: HTTPResponse
        do {
            let (route, _, tenant) = try admission(request, server: server, template: &template, tokenName: &tokenName)
            // Existence rules before any storage is touched; writes hold a lease so that a
            // deletion of the tenant waits for them.
            let lease = try await server.tenants.admit(tenant, use: route.tenantUse)
            defer { lease?.release() }
            let context = RequestContext(
                request: request, requestID: requestID, route: route, tenant: tenant,
                store: try server.store(forTenant: tenant), query: try QueryParameters(request.query)
            )
            response = try await withRequestSpan(request, template: template) {
                try await server.handle(context)
            }
            // An answer that came from storage ends an outage; an event stream has not touched
            // it yet (its catch-up runs later), so it proves nothing.
            if response.status < 500, server.storageOutage.inOutage {
                if case .stream = response.body {} else { server.storageOutage.succeeded() }
            }
            if case .stream(let produce) = response.body, tenant != TenantID.default {
                // Event streams end when their tenant is deleted.
                let lifetime = server.tenants.lifetime(of: tenant)
                response.body = .stream { writer in try await lifetime.run(produce, writer: writer) }
            }
        } catch {
            (response, cause) = errorResponse(error, requestID: requestID, server: server)
        }
        return finish(response, request: request, requestID: requestID, template: template, tokenName: tokenName,
                      cause: cause, start: start, server: server)
    }

    /// Answers CORS preflights and the routes whose handler needs no storage and never waits
    /// (``Route/isSynchronous``) on the connection's event loop, without a task: the same steps
    /// as ``respond(to:)`` (request ID, routing, access control, tenant, query, span, metrics,
    /// access log), none of which waits. Every other request returns `nil` and goes to
    /// ``respond(to:)``; so does one the router rejects, which answers it there.
    func respondImmediately(to request: HTTPRequest) -> HTTPResponse? {
        let server = api
        if request.method == "OPTIONS", var preflight = server.cors.preflight(request) {
            preflight.headers.replace(name: "X-Request-ID", value: RequestID.from(request))
            return preflight
        }
        guard let route = try? Router.route(method: request.method, path: request.path), route.isSynchronous else { return nil }
        let start = ContinuousClock.now
        let requestID = RequestID.from(request)
        var template = route.template
        var tokenName: String?
        var cause: String?
        var response: HTTPResponse
        do {
            let (_, _, tenant) = try admission(request, server: server, route: route, template: &template, tokenName: &tokenName)
            // No lease to take: a synchronous route uses no tenant's storage (`admit` would
            // return at once).
            let context = RequestContext(
                request: request, requestID: requestID, route: route, tenant: tenant,
                store: try server.store(forTenant: tenant), query: try QueryParameters(request.query)
            )
            response = try withSyncRequestSpan(request, template: template) { try server.handleSynchronously(context) }
        } catch {
            (response, cause) = errorResponse(error, requestID: requestID, server: server)
        }
        return finish(response, request: request, requestID: requestID, template: template, tokenName: tokenName,
                      cause: cause, start: start, server: server)
    }

    /// Routing, access control and the tenant, which need no waiting. `template` and `tokenName`
    /// are set as soon as they are known, so that the access line of a request refused here
    /// (`401`, `403`, `405`) still names the route tried and the token presented.
    private func admission(
        _ request: HTTPRequest, server: API, route known: Route? = nil, template: inout String, tokenName: inout String?
    ) throws -> (Route, Principal?, String) {
        let route: Route
        if let known {
            route = known
        } else {
            do {
                route = try Router.route(method: request.method, path: request.path)
            } catch .notFound {
                throw APIError(.notFound, "no such endpoint: \(request.method) \(request.path.prefix(200))")
            } catch .methodNotAllowed(let allow, let tried) {
                template = tried
                var e = APIError(.methodNotAllowed, "\(request.method) is not allowed here; allowed: \(allow.joined(separator: ", "))")
                e.headers = [("Allow", allow.joined(separator: ", "))]
                throw e
            } catch .badPath(let message) {
                throw APIError(.badRequest, message)
            } catch .invalidStreamID(let message) {
                throw APIError(.invalidStreamID, message)
            }
        }
        template = route.template
        let principal = try authorize(request, route: route, server: server, tokenName: &tokenName)
        let tenant = try resolveTenant(request, route: route, principal: principal)
        return (route, principal, tenant)
    }

    /// The contract's answer for an error, and its cause for the log when it is a `5xx` (the
    /// body of a `500` names only the request ID; the log line of that request ID has the rest).
    private func errorResponse(_ error: any Error, requestID: String, server: API) -> (HTTPResponse, cause: String?) {
        if let mink = error as? MinkError, mink.code == .unavailable {
            server.storageOutage.failed(cause: String(reflecting: mink))
        }
        if let api = APIError.from(error) {
            return (api.response(requestID: requestID), api.status >= 500 ? String(reflecting: error) : nil)
        }
        return (APIError(.internal, "internal error").response(requestID: requestID), String(reflecting: error))
    }

    /// Adds `X-Request-ID`, records the request's metrics and writes the access log line.
    private func finish(
        _ response: HTTPResponse, request: HTTPRequest, requestID: String, template: String, tokenName: String?,
        cause: String?, start: ContinuousClock.Instant, server: API
    ) -> HTTPResponse {
        var response = response
        response.headers.replace(name: "X-Request-ID", value: requestID)
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
                "client": "\(request.remoteAddress)",
                "duration_ms": "\(Double(duration.components.attoseconds / 1_000_000_000_000) / 1000 + Double(duration.components.seconds) * 1000)",
            ]
            if server.authenticator.isEnabled {
                if let tokenName {
                    metadata["token"] = "\(tokenName)"
                } else if status == 401 || status == 403 || status == 405 {
                    // Which kind of failure, never the token: none sent, or one that matches no hash.
                    metadata["token"] = request.headers["Authorization"] == nil ? "(none)" : "(unknown)"
                }
            }
            if let cause { metadata["cause"] = "\(cause)" }
            logger.log(level: level, "request", metadata: metadata)
        }
        return response
    }

    /// Section 2's access control: `nil` for an open route, otherwise the caller's principal.
    /// - Throws: `401` (with `WWW-Authenticate: Bearer`) for a missing or unknown token; `403`
    ///   for a token without the route's role, or a tenant-bound token on tenant administration.
    private func authorize(_ request: HTTPRequest, route: Route, server: API, tokenName: inout String?) throws(APIError) -> Principal? {
        guard case .role(let role) = route.requiredAccess(metricsRequireToken: server.configuration.metrics.requireToken) else {
            return nil
        }
        guard let principal = server.authenticator.principal(for: request) else {
            // One message for missing, malformed and unknown tokens: nothing about the token is echoed.
            var e = APIError(.unauthorized, "a valid bearer token is required (Authorization: Bearer <token>)")
            e.headers = [("WWW-Authenticate", "Bearer")]
            throw e
        }
        tokenName = principal.name
        guard principal.roles.contains(role) else {
            throw APIError(.forbidden, "this token lacks the \(role.rawValue) role needed here")
        }
        if route.isTenantAdministration, principal.tenant != nil {
            throw APIError(.forbidden, "tenant administration needs a token valid for every tenant (tenant: \"*\")")
        }
        return principal
    }

    /// Section 2's tenant rules (see ``TenantRouter/resolve(principal:header:)``); open routes
    /// and tenant administration run in `default` and ignore `Mink-Tenant`.
    private func resolveTenant(_ request: HTTPRequest, route: Route, principal: Principal?) throws(APIError) -> String {
        guard let principal, !route.isTenantAdministration else { return TenantID.default }
        return try TenantRouter.resolve(principal: principal, header: request.headers["Mink-Tenant"])
    }

    /// ``withRequestSpan(_:template:_:)`` for a synchronous handler.
    /// Without an instrument (the default) a span records nothing, so none is made.
    private func withSyncRequestSpan(_ request: HTTPRequest, template: String, _ body: () throws -> HTTPResponse) throws -> HTTPResponse {
        if !tracingEnabled { return try body() }
        var context = ServiceContext.current ?? .topLevel
        InstrumentationSystem.instrument.extract(request.headers, into: &context, using: HeaderExtractor())
        return try withSpan("\(request.method) \(template)", context: context, ofKind: .server) { span in
            span.attributes["http.request.method"] = request.method
            span.attributes["http.route"] = template
            let response = try body()
            span.attributes["http.response.status_code"] = response.status
            return response
        }
    }

    /// Runs the handler in a span, continuing the caller's trace from `traceparent`.
    private func withRequestSpan(_ request: HTTPRequest, template: String, _ body: () async throws -> HTTPResponse) async throws -> HTTPResponse {
        if !tracingEnabled { return try await body() }
        var context = ServiceContext.current ?? .topLevel
        InstrumentationSystem.instrument.extract(request.headers, into: &context, using: HeaderExtractor())
        return try await withSpan("\(request.method) \(template)", context: context, ofKind: .server) { span in
            span.attributes["http.request.method"] = request.method
            span.attributes["http.route"] = template
            let response = try await body()
            span.attributes["http.response.status_code"] = response.status
            return response
        }
    }
}

/// Reads trace context headers (`traceparent`, `tracestate`) from a request.
struct HeaderExtractor: Extractor {
    func extract(key: String, from carrier: HTTPHeaders) -> String? { carrier[key] }
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

import Foundation
import Logging
import Mink
import MinkHTTP
import MinkWire
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
    /// Set once, right after the server is created (the two refer to each other).
    let server = Mutex<MinkServer?>(nil)

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        guard let server = server.withLock({ $0 }) else { return HTTPResponse(status: 503) }
        let start = ContinuousClock.now
        let requestID = RequestID.from(request)
        var template = "unmatched"
        var response: HTTPResponse
        do {
            let route: Route
            do {
                route = try Router.route(method: request.method, path: request.path)
            } catch .notFound {
                throw APIError(.notFound, "no such endpoint: \(request.method) \(request.path.prefix(200))")
            } catch .methodNotAllowed(let allow) {
                var e = APIError(.methodNotAllowed, "\(request.method) is not allowed here; allowed: \(allow.joined(separator: ", "))")
                e.headers = [("Allow", allow.joined(separator: ", "))]
                throw e
            } catch .badPath(let message) {
                throw APIError(.badRequest, message)
            }
            template = route.template
            let tenant = try resolveTenant(request)
            let context = RequestContext(
                request: request, requestID: requestID, route: route, tenant: tenant,
                store: try server.store(forTenant: tenant), query: try QueryParameters(request.query)
            )
            response = try await withRequestSpan(request, template: template) {
                try await server.handle(context)
            }
        } catch {
            if let api = APIError.from(error) {
                response = api.response(requestID: requestID)
            } else {
                server.logger.error("request failed", metadata: ["request_id": "\(requestID)", "error": "\(error)"])
                response = APIError(.internal, "internal error").response(requestID: requestID)
            }
        }
        response.headers.replace(name: "X-Request-ID", value: requestID)
        let duration = ContinuousClock.now - start
        server.metrics.recordRequest(route: template, method: request.method, status: response.status, duration: duration)
        server.logger.info("request", metadata: [
            "request_id": "\(requestID)", "method": "\(request.method)", "route": "\(template)", "status": "\(response.status)",
            "duration_ms": "\(Double(duration.components.attoseconds / 1_000_000_000_000) / 1000 + Double(duration.components.seconds) * 1000)",
        ])
        return response
    }

    /// Section 2, with authentication off: the `Mink-Tenant` header, or `default`.
    private func resolveTenant(_ request: HTTPRequest) throws -> String {
        guard let header = request.headers["Mink-Tenant"] else { return Mink.TenantID.default }
        guard MinkWire.TenantID.isValid(header) else {
            throw APIError(.invalidTenant, "invalid tenant ID in Mink-Tenant: it must match ^[a-z0-9][a-z0-9_-]{0,62}$")
        }
        return header
    }

    /// Runs the handler in a span, continuing the caller's trace from `traceparent`.
    private func withRequestSpan(_ request: HTTPRequest, template: String, _ body: () async throws -> HTTPResponse) async throws -> HTTPResponse {
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

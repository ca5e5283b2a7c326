import Foundation
import Mink
import MinkHTTP
import MinkWire

/// A response with a 2xx status.
struct SuccessResponse: Sendable {
    var status: Int
    var body: [UInt8]
}

extension MinkClient {
    /// The header fields every request carries: credentials, tenant, content negotiation, and
    /// the trace context of the calling task (`traceparent` from the current `ServiceContext`),
    /// so that minkd's spans continue the caller's trace.
    func commonHeaders() -> HTTPHeaders {
        var headers = HTTPHeaders()
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let tenant { headers.add(name: "Mink-Tenant", value: tenant) }
        headers.add(name: "User-Agent", value: "MinkClient/\(MinkClient.version)")
        for (name, value) in TraceContext.currentHeaders() { headers.add(name: name, value: value) }
        return headers
    }

    /// The version of this client, sent in `User-Agent`.
    public static let version = "0.1.0"

    /// The origin-form target for already percent-encoded path segments and a query.
    func target(_ segments: [String], query: [(String, String)] = []) -> String {
        var t = basePath + "/" + segments.joined(separator: "/")
        if !query.isEmpty {
            t += "?" + query.map { "\(PathEncoding.encode($0.0))=\(PathEncoding.encode($0.1))" }.joined(separator: "&")
        }
        return t
    }

    /// Sends one request, retrying it under ``retryPolicy`` when it is idempotent and the failure
    /// is transient (a transport error, `503`, `429`); honours `Retry-After`.
    ///
    /// - Parameters:
    ///   - idempotent: whether sending the request twice has the effect of sending it once. Appends
    ///     are, because every event carries a client-made ID (the server answers a repeat with the
    ///     original result).
    ///   - streamID: the stream concerned, for the details of errors.
    /// - Returns: the status and the (gunzipped) body of a `2xx` response.
    /// - Throws: the ``Mink/MinkError`` the error body maps to; `.unavailable` (transient) for
    ///   transport failures; `.cancelled` when the task is cancelled.
    func send(
        _ method: String, _ target: String, body: [UInt8]? = nil, idempotent: Bool, streamID: String? = nil
    ) async throws -> SuccessResponse {
        var headers = commonHeaders()
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "Accept-Encoding", value: "gzip")
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        let request = HTTPClientRequest(
            method: method, host: host, port: port, target: target, headers: headers, body: body ?? [], isIdempotent: idempotent
        )
        let attempts = idempotent ? retryPolicy.maxAttempts : 1
        var attempt = 1
        while true {
            if Task.isCancelled { throw MinkError(.cancelled, "\(method) \(target) was cancelled") }
            let failure: MinkError
            var retryAfter: Duration?
            do {
                let response = try await http.execute(request)
                let bytes: [UInt8]
                do { bytes = try response.decodedBody() } catch GzipError.tooLarge(let limit) {
                    throw ErrorMapping.tooLarge(method: method, target: target, limit: limit)
                } catch {
                    throw MinkError(.unavailable, "cannot decode the response to \(method) \(target): \(error)", isTransient: true)
                }
                if (200..<300).contains(response.status) { return SuccessResponse(status: response.status, body: bytes) }
                failure = ErrorMapping.error(status: response.status, body: bytes, streamID: streamID)
                retryAfter = ErrorMapping.retryAfter(response.headers["Retry-After"])
            } catch let error as MinkError {
                failure = error
            } catch is CancellationError {
                throw MinkError(.cancelled, "\(method) \(target) was cancelled")
            } catch {
                failure = ErrorMapping.transportError(error, method: method, target: target)
            }
            guard failure.isTransient, attempt < attempts, !Task.isCancelled else { throw failure }
            var wait = retryPolicy.backoff(afterAttempt: attempt)
            if let retryAfter {
                // The server said when to come back; a wait longer than we accept ends the retries.
                guard retryAfter <= maxRetryAfter else { throw failure }
                wait = max(wait, retryAfter)
            }
            do { try await Task.sleep(for: wait) } catch { throw MinkError(.cancelled, "\(method) \(target) was cancelled") }
            attempt += 1
        }
    }

    /// Sends a request and decodes a `JSONReadable` body.
    func fetch<T: JSONReadable>(
        _ type: T.Type, _ method: String, _ target: String, body: [UInt8]? = nil, idempotent: Bool, streamID: String? = nil
    ) async throws -> (status: Int, value: T) {
        let response = try await send(method, target, body: body, idempotent: idempotent, streamID: streamID)
        return (response.status, try ErrorMapping.decode(T.self, from: response.body, what: "\(method) \(target)"))
    }

    /// Sends a request and decodes a `Decodable` body (for bodies without a `JSONReader` path).
    func fetchDecodable<T: Decodable>(
        _ type: T.Type, _ method: String, _ target: String, body: [UInt8]? = nil, idempotent: Bool
    ) async throws -> T {
        let response = try await send(method, target, body: body, idempotent: idempotent)
        do { return try JSONDecoder().decode(T.self, from: Data(response.body)) } catch {
            throw MinkError(.serializationFailed, "unexpected response to \(method) \(target): \(error)")
        }
    }
}

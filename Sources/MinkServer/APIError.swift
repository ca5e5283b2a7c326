import Mink
import MinkHTTP
import MinkWire

/// An error answered with the contract's error shape: `{"error": {"code", "message", "details"}}`.
///
/// The one mapping from domain errors to HTTP statuses lives in ``init(_:)-(any Error)`` and in
/// `ErrorCode.httpStatus`; anything unmapped becomes `500 internal` with only the request ID.
struct APIError: Error, Sendable {
    var code: ErrorCode
    var message: String
    var details: [String: JSONValue] = [:]
    var headers: [(String, String)] = []

    /// `404 not_found` for a path no route answers, told apart from a resource that is absent by
    /// `details.reason = "no_such_endpoint"` (a client behind a wrong base path must not read it
    /// as "no such document").
    static func noSuchEndpoint(_ message: String) -> APIError {
        APIError(.notFound, message, details: ["reason": .string("no_such_endpoint")])
    }

    init(_ code: ErrorCode, _ message: String, details: [String: JSONValue] = [:]) {
        self.code = code
        self.message = message
        self.details = details
    }

    var status: Int { code.httpStatus }

    /// Maps any error to the contract's codes.
    static func from(_ error: any Error) -> APIError? {
        switch error {
        case let e as APIError: return e
        case let e as WireError: return APIError(e.code, e.message)
        case let e as JSONError: return APIError(WireError(e).code, e.message)
        case let e as MinkError: return from(e)
        default: return nil
        }
    }

    private static func from(_ e: MinkError) -> APIError? {
        switch e.code {
        case .concurrencyConflict:
            var details: [String: JSONValue] = [:]
            if let s = e.streamID { details["streamId"] = .string(s) }
            if let v = e.expectedVersion { details["expectedVersion"] = .int(v) }
            if let v = e.actualVersion { details["actualVersion"] = .int(v) }
            return APIError(.concurrencyConflict, e.message, details: details)
        case .duplicateEventID:
            var details: [String: JSONValue] = [:]
            if let s = e.streamID { details["streamId"] = .string(s) }
            return APIError(.duplicateEventID, e.message, details: details)
        case .streamNotFound:
            var details: [String: JSONValue] = [:]
            if let s = e.streamID { details["streamId"] = .string(s) }
            return APIError(.streamNotFound, e.message, details: details)
        case .streamDeleted:
            var details: [String: JSONValue] = [:]
            if let s = e.streamID { details["streamId"] = .string(s) }
            return APIError(.streamDeleted, e.message, details: details)
        case .projectionNotFound: return APIError(.projectionNotFound, e.message)
        case .notFound, .eventNotFound: return APIError(.notFound, e.message)
        case .validationFailed, .serializationFailed, .eventTypeNotRegistered, .projectionFailed:
            return APIError(.validationFailed, e.message)
        case .invalidQuery: return APIError(.invalidQuery, e.message)
        case .invalidTenant: return APIError(.invalidTenant, e.message)
        case .adapterNotSupported: return APIError(.badRequest, e.message)
        case .tenantNotEmpty: return APIError(.tenantNotEmpty, e.message)
        case .invalidImport: return APIError(.badRequest, e.message)
        case .unavailable:
            var a = APIError(.unavailable, "storage is unavailable; retry later")
            a.headers = [("Retry-After", "1")]
            return a
        case .cancelled:
            // The storage the request used was closed under it: the server is stopping, or the
            // tenant is being deleted (its pool closed). Transient for the client, as the
            // contract's 503 says; it was a `500` (a black-box audit: an append racing a tenant
            // deletion through another process, 6 runs of 6).
            var a = APIError(.unavailable, "the storage this request used is shutting down (server shutdown or tenant deletion); retry later")
            a.headers = [("Retry-After", "1")]
            return a
        default: return nil
        }
    }

    /// The response for this error.
    func response(requestID: String) -> HTTPResponse {
        var body = ErrorBody(code: code, message: message, details: details)
        if code == .internal { body = ErrorBody.internal(requestID: requestID) }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        for (n, v) in self.headers { headers.add(name: n, value: v) }
        var writer = JSONWriter()
        body.write(to: &writer)
        return HTTPResponse(status: status, headers: headers, bytes: writer.bytes)
    }
}

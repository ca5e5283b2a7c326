import Foundation
import Mink
import MinkHTTP
import MinkWire

extension MinkError.Code {
    /// `400 bad_request`, `invalid_json` and `invalid_stream_id` from the server: the request was
    /// malformed (the message says what and where).
    public static let badRequest = MinkError.Code(rawValue: "bad_request")
    /// `401 unauthorized`: no token, or a token the server does not know.
    public static let unauthorized = MinkError.Code(rawValue: "unauthorized")
    /// `403 forbidden`: the token lacks the role, or may not use that tenant.
    public static let forbidden = MinkError.Code(rawValue: "forbidden")
    /// `413 payload_too_large`: the body, the number of events or one event is over a limit.
    public static let payloadTooLarge = MinkError.Code(rawValue: "payload_too_large")
    /// `429 too_many_requests`: slow down (transient).
    public static let tooManyRequests = MinkError.Code(rawValue: "too_many_requests")
}

/// The one mapping from minkd's answers (HTTP-API.md section 3) and transport failures to
/// ``Mink/MinkError``, so callers handle remote and embedded errors alike.
enum ErrorMapping {
    /// The error for a non-2xx response.
    ///
    /// | wire code | `MinkError.Code` |
    /// |---|---|
    /// | `concurrency_conflict` | `.concurrencyConflict` with `streamID`, `expectedVersion`, `actualVersion` from the details |
    /// | `duplicate_event_id` | `.duplicateEventID` |
    /// | `stream_not_found` | `.streamNotFound` |
    /// | `stream_deleted` | `.streamDeleted` |
    /// | `not_found` | `.notFound` |
    /// | `projection_not_found` | `.projectionNotFound` |
    /// | `invalid_query` | `.invalidQuery` |
    /// | `invalid_tenant` | `.invalidTenant` |
    /// | `validation_failed` | `.validationFailed` |
    /// | `unavailable` | `.unavailable` (transient) |
    /// | `too_many_requests` | `.tooManyRequests` (transient) |
    /// | `internal` | `.internalError` |
    /// | `bad_request`, `invalid_json`, `invalid_stream_id`, `method_not_allowed`, `unsupported_media_type` | `.badRequest` |
    /// | `unauthorized`, `forbidden`, `payload_too_large` | the same code |
    ///
    /// A body that is not the error shape (a proxy's page) maps by status: 502–504 transient
    /// `.unavailable`, 408 transient `request_timeout`, 422 `.validationFailed`, other 4xx — 404
    /// included: it is not minkd saying "absent" — `.badRequest`, anything else `.internalError`.
    static func error(status: Int, body: [UInt8], streamID: String?) -> MinkError {
        guard let parsed = try? ErrorBody(jsonBytes: body) else { return byStatus(status, body: body, streamID: streamID) }
        let detail = parsed.error
        let details = detail.details
        let message = detail.message
        let detailStream = details["streamId"]?.stringValue ?? streamID
        let error: MinkError
        switch detail.code {
        case .concurrencyConflict:
            error = MinkError(
                .concurrencyConflict, message, streamID: detailStream,
                expectedVersion: details["expectedVersion"].flatMap(expectedVersion), actualVersion: details["actualVersion"]?.int64Value
            )
        case .duplicateEventID: error = MinkError(.duplicateEventID, message, streamID: detailStream)
        case .streamNotFound: error = MinkError(.streamNotFound, message, streamID: detailStream)
        case .streamDeleted: error = MinkError(.streamDeleted, message, streamID: detailStream)
        case .notFound where details["reason"]?.stringValue == "no_such_endpoint":
            // minkd has no such route: a wrong base path, not an absent resource (never nil).
            error = MinkError(.badRequest, "\(message) (a wrong base URL path?)", streamID: streamID)
        case .notFound: error = MinkError(.notFound, message, streamID: streamID)
        case .projectionNotFound:
            error = MinkError(.projectionNotFound, message, projectionName: details["name"]?.stringValue)
        case .invalidQuery: error = MinkError(.invalidQuery, message)
        case .invalidTenant: error = MinkError(.invalidTenant, message)
        case .validationFailed: error = MinkError(.validationFailed, message, streamID: streamID)
        case .unavailable: error = MinkError(.unavailable, message, isTransient: true)
        case .tooManyRequests: error = MinkError(.tooManyRequests, message, isTransient: true)
        case .internal: error = MinkError(.internalError, message)
        case .unauthorized: error = MinkError(.unauthorized, message)
        case .forbidden: error = MinkError(.forbidden, message)
        case .payloadTooLarge: error = MinkError(.payloadTooLarge, message, streamID: streamID)
        case "request_timeout":
            // The server gave up waiting for the request's bytes (a stalled network): sending it
            // again may succeed.
            error = MinkError(MinkError.Code(rawValue: detail.code.rawValue), message, streamID: streamID, isTransient: true)
        case .badRequest, .invalidJSON, .invalidStreamID, .methodNotAllowed, .unsupportedMediaType:
            error = MinkError(.badRequest, "\(detail.code): \(message)", streamID: streamID)
        default:
            // A code this client does not know yet: keep it, so callers can still switch over it.
            error = MinkError(MinkError.Code(rawValue: detail.code.rawValue), message, streamID: streamID, isTransient: status == 503)
        }
        return error
    }

    /// The expected version of a conflict's details: an integer, or `"no_stream"` (0).
    private static func expectedVersion(_ value: JSONValue) -> Int64? {
        if let v = value.int64Value { return v }
        if value.stringValue == "no_stream" { return 0 }
        return nil
    }

    private static func byStatus(_ status: Int, body: [UInt8], streamID: String?) -> MinkError {
        let snippet = String(decoding: body.prefix(200), as: UTF8.self)
        let message = "HTTP \(status)" + (snippet.isEmpty ? "" : ": \(snippet)")
        switch status {
        case 429: return MinkError(.tooManyRequests, message, isTransient: true)
        case 502, 503, 504: return MinkError(.unavailable, message, isTransient: true)
        case 401: return MinkError(.unauthorized, message)
        case 403: return MinkError(.forbidden, message)
        case 404:
            // Not minkd's `not_found` (that one has its error body): a proxy's page or a wrong
            // base path. Never read as "absent" (`loadSnapshot`/`get` would answer nil).
            return MinkError(.badRequest, message + " (no minkd error body: a proxy, or a wrong base URL path?)", streamID: streamID)
        case 408: return MinkError(MinkError.Code(rawValue: "request_timeout"), message, streamID: streamID, isTransient: true)
        case 413: return MinkError(.payloadTooLarge, message, streamID: streamID)
        case 422: return MinkError(.validationFailed, message, streamID: streamID)
        case 400..<500: return MinkError(.badRequest, message, streamID: streamID)
        default: return MinkError(.internalError, message)
        }
    }

    /// A transport failure (refused, reset, timed out, malformed response): transient
    /// `.unavailable`, since the same request may succeed on a new connection.
    static func transportError(_ error: any Error, method: String, target: String) -> MinkError {
        if case HTTPClientError.responseTooLarge(let limit)? = error as? HTTPClientError {
            return tooLarge(method: method, target: target, limit: limit)
        }
        if case HTTPClientError.invalidHeaderValue(let name)? = error as? HTTPClientError {
            // Nothing was sent, and sending again cannot help: the client's own settings.
            if name == "Mink-Tenant" { return MinkError(.invalidTenant, "the client's tenant holds a line break or NUL") }
            return MinkError.validation("the client's \(name) header value holds a line break or NUL; nothing was sent")
        }
        return MinkError(.unavailable, "\(method) \(target) failed: \(error)", isTransient: true)
    }

    /// An answer larger than the client holds: not transient (the same request gets the same
    /// answer), so never retried.
    static func tooLarge(method: String, target: String, limit: Int) -> MinkError {
        MinkError(
            .payloadTooLarge,
            "the answer to \(method) \(target) is larger than the client's \(limit / (1024 * 1024)) MiB: ask for smaller pages (limit)",
            isTransient: false
        )
    }

    /// `Retry-After` in seconds (the HTTP-date form is not used by minkd and is ignored).
    static func retryAfter(_ value: String?) -> Duration? {
        guard let value, let seconds = Int(value.trimmingCharacters(in: .whitespaces)), seconds >= 0 else { return nil }
        return .seconds(seconds)
    }

    /// Decodes a success body, turning a shape error into `.serializationFailed`.
    static func decode<T: JSONReadable>(_ type: T.Type, from body: [UInt8], what: String) throws -> T {
        do { return try T(jsonBytes: body) } catch {
            throw MinkError(.serializationFailed, "unexpected response to \(what): \(error)")
        }
    }
}

/// Percent-encoding of path segments and query components (RFC 3986).
///
/// Everything but the unreserved characters `A-Z a-z 0-9 - . _ ~` is encoded byte by byte, so a
/// `/` inside a stream ID travels as `%2F`, `%` as `%25`, `+` as `%2B` (the server reads `+` in a
/// query as a space) and unicode as its UTF-8 bytes. A segment made only of dots is encoded too,
/// so that no proxy takes it for a `.`/`..` path step.
enum PathEncoding {
    private static let hex: [UInt8] = Array("0123456789ABCDEF".utf8)

    static func encode(_ text: String) -> String {
        let allDots = !text.isEmpty && text.utf8.allSatisfy { $0 == UInt8(ascii: ".") }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for b in text.utf8 {
            if isUnreserved(b) && !allDots {
                out.append(b)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}

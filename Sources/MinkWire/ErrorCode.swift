import Mink

/// The machine-readable `code` of an error body (HTTP-API.md section 3).
///
/// A struct rather than an enum so that a client built against this version can
/// still decode codes a newer server adds.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The code as it appears on the wire, e.g. `concurrency_conflict`.
    public let rawValue: String

    /// Creates a code from its wire spelling.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Creates a code from a string literal.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// Decodes the code from a JSON string.
    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    /// Encodes the code as a JSON string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// The wire spelling.
    public var description: String { rawValue }

    /// `400`: malformed input that is not more specifically classified.
    public static let badRequest: ErrorCode = "bad_request"
    /// `400`: the body is not well-formed JSON.
    public static let invalidJSON: ErrorCode = "invalid_json"
    /// `400`: a stream ID that is empty, too long or contains control characters.
    public static let invalidStreamID: ErrorCode = "invalid_stream_id"
    /// `400`: a tenant ID that does not match `^[a-z0-9][a-z0-9_-]{0,62}$`.
    public static let invalidTenant: ErrorCode = "invalid_tenant"
    /// `400`: a read-model query with an unknown operator or a bad field path.
    public static let invalidQuery: ErrorCode = "invalid_query"
    /// `401`: no token or an unknown token.
    public static let unauthorized: ErrorCode = "unauthorized"
    /// `403`: the token lacks the role, or names another tenant.
    public static let forbidden: ErrorCode = "forbidden"
    /// `404`: the stream does not exist.
    public static let streamNotFound: ErrorCode = "stream_not_found"
    /// `404`: the resource does not exist.
    public static let notFound: ErrorCode = "not_found"
    /// `404`: no projection of that name.
    public static let projectionNotFound: ErrorCode = "projection_not_found"
    /// `410`: the stream was hard-deleted (a tombstone).
    public static let streamDeleted: ErrorCode = "stream_deleted"
    /// `405`: the route exists but not for this method (the response has `Allow`).
    public static let methodNotAllowed: ErrorCode = "method_not_allowed"
    /// `409`: the expected version did not match; details carry `streamId`,
    /// `expectedVersion`, `actualVersion`.
    public static let concurrencyConflict: ErrorCode = "concurrency_conflict"
    /// `409`: an event id was reused for a different event in the stream.
    public static let duplicateEventID: ErrorCode = "duplicate_event_id"
    /// `413`: body, event count or event size over the limit.
    public static let payloadTooLarge: ErrorCode = "payload_too_large"
    /// `415`: a body that is not JSON.
    public static let unsupportedMediaType: ErrorCode = "unsupported_media_type"
    /// `422`: well-formed JSON that breaks a rule (no events, empty type, ...).
    public static let validationFailed: ErrorCode = "validation_failed"
    /// `429`: rate limited (the response has `Retry-After`).
    public static let tooManyRequests: ErrorCode = "too_many_requests"
    /// `503`: storage unreachable or shutting down (the response has `Retry-After`).
    public static let unavailable: ErrorCode = "unavailable"
    /// `500`: a bug; the message carries the request ID only.
    public static let `internal`: ErrorCode = "internal"

    /// Every code HTTP-API.md defines, in the order of its table.
    public static let allKnown: [ErrorCode] = [
        .badRequest, .invalidJSON, .invalidStreamID, .invalidTenant, .invalidQuery,
        .unauthorized, .forbidden, .streamNotFound, .notFound, .projectionNotFound,
        .streamDeleted, .methodNotAllowed, .concurrencyConflict, .duplicateEventID, .payloadTooLarge,
        .unsupportedMediaType, .validationFailed, .tooManyRequests, .unavailable, .internal,
    ]

    /// The HTTP status that goes with this code; `500` for a code this version does not know.
    public var httpStatus: Int {
        switch self {
        case .badRequest, .invalidJSON, .invalidStreamID, .invalidTenant, .invalidQuery: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .streamNotFound, .notFound, .projectionNotFound: 404
        case .methodNotAllowed: 405
        case .streamDeleted: 410
        case .concurrencyConflict, .duplicateEventID, .tenantNotEmpty: 409
        case .payloadTooLarge: 413
        case .unsupportedMediaType: 415
        case .validationFailed: 422
        case .tooManyRequests: 429
        case .unavailable: 503
        default: 500
        }
    }
}

import Mink

/// The body of every error response (HTTP-API.md section 3):
/// `{"error": {"code": "...", "message": "...", "details": {...}}}`.
public struct ErrorBody: Codable, Hashable, Sendable {
    /// The error.
    public var error: Detail

    /// The content of the `error` member.
    public struct Detail: Codable, Hashable, Sendable {
        /// The machine-readable code.
        public var code: ErrorCode
        /// A human sentence saying what is wrong and where.
        public var message: String
        /// Structured details (for `concurrency_conflict`: `streamId`, `expectedVersion`, `actualVersion`).
        public var details: [String: JSONValue]

        /// Creates the detail.
        public init(code: ErrorCode, message: String, details: [String: JSONValue] = [:]) {
            self.code = code
            self.message = message
            self.details = details
        }

        /// Decodes the detail; absent `details` are empty.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            code = try container.decode(ErrorCode.self, forKey: .code)
            message = try container.decode(String.self, forKey: .message)
            details = try container.decodeIfPresent([String: JSONValue].self, forKey: .details) ?? [:]
        }
    }

    /// Creates an error body.
    public init(code: ErrorCode, message: String, details: [String: JSONValue] = [:]) {
        error = Detail(code: code, message: message, details: details)
    }

    /// The HTTP status for this body's code.
    public var httpStatus: Int { error.code.httpStatus }

    /// The `409 concurrency_conflict` body with its three details.
    public static func concurrencyConflict(streamId: String, expectedVersion: ExpectedVersion, actualVersion: Int64) -> ErrorBody {
        ErrorBody(
            code: .concurrencyConflict,
            message: "stream \"\(streamId)\" is at version \(actualVersion), expected \(expectedVersion.jsonValue.jsonString())",
            details: ["streamId": .string(streamId), "expectedVersion": expectedVersion.jsonValue, "actualVersion": .int(actualVersion)]
        )
    }

    /// The `500 internal` body: it names the request ID and nothing of the failure itself.
    public static func `internal`(requestID: String) -> ErrorBody {
        ErrorBody(code: .internal, message: "internal error (request \(requestID))")
    }
}

extension ErrorBody: JSONWritable, JSONReadable {
    /// Writes `{"error":{"code":…,"message":…,"details":{…}}}`; details in sorted key order.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("error")
        writer.beginObject()
        writer.key("code")
        writer.string(error.code.rawValue)
        writer.key("message")
        writer.string(error.message)
        writer.key("details")
        JSONValue.object(error.details).write(to: &writer)
        writer.endObject()
        writer.endObject()
    }

    /// Reads an error body; unknown keys are skipped.
    public init(from reader: inout JSONReader) throws {
        var detail: Detail?
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, _ in
            guard key == "error" else { return false }
            var code: String?
            var message: String?
            var details: [String: JSONValue] = [:]
            try reader.readObject(at: "error", rejectUnknown: false) { reader, key, _ in
                switch key {
                case "code": code = try reader.readString()
                case "message": message = try reader.readString()
                case "details":
                    if try !reader.readNullIfPresent() {
                        guard case .object(let members) = try reader.readValue() else {
                            throw WireError(code: .badRequest, message: "expected an object")
                        }
                        details = members
                    }
                default: return false
                }
                return true
            }
            guard let code else { throw missingKey("error.code") }
            guard let message else { throw missingKey("error.message") }
            detail = Detail(code: ErrorCode(rawValue: code), message: message, details: details)
            return true
        }
        guard let detail else { throw missingKey("error") }
        error = detail
    }
}

/// Context carried by every event (seed: `Metadata`). Empty fields are omitted on the wire.
public struct Metadata: Sendable, Hashable, Codable {
    /// Groups the events of one business flow.
    public var correlationID: String?
    /// The event or command that caused this one.
    public var causationID: String?
    /// Who caused the event.
    public var userID: String?
    /// The tenant the event belongs to; stamped by the store, never trusted from input.
    public var tenantID: String?
    /// Anything else, as string pairs.
    public var custom: [String: String]

    /// Creates metadata; every field is optional.
    public init(
        correlationID: String? = nil, causationID: String? = nil, userID: String? = nil,
        tenantID: String? = nil, custom: [String: String] = [:]
    ) {
        self.correlationID = correlationID
        self.causationID = causationID
        self.userID = userID
        self.tenantID = tenantID
        self.custom = custom
    }

    /// Whether every field is empty.
    public var isEmpty: Bool {
        (correlationID ?? "").isEmpty && (causationID ?? "").isEmpty && (userID ?? "").isEmpty
            && (tenantID ?? "").isEmpty && custom.isEmpty
    }

    /// This metadata with the fields of `other` filled in where this one has none
    /// (an event's own metadata wins over the append's).
    public func merged(over other: Metadata) -> Metadata {
        Metadata(
            correlationID: nonEmpty(correlationID) ?? other.correlationID,
            causationID: nonEmpty(causationID) ?? other.causationID,
            userID: nonEmpty(userID) ?? other.userID,
            tenantID: nonEmpty(tenantID) ?? other.tenantID,
            custom: other.custom.merging(custom, uniquingKeysWith: { _, mine in mine })
        )
    }

    enum CodingKeys: String, CodingKey {
        case correlationID = "correlationId", causationID = "causationId", userID = "userId", tenantID = "tenantId", custom
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        correlationID = try c.decodeIfPresent(String.self, forKey: .correlationID)
        causationID = try c.decodeIfPresent(String.self, forKey: .causationID)
        userID = try c.decodeIfPresent(String.self, forKey: .userID)
        tenantID = try c.decodeIfPresent(String.self, forKey: .tenantID)
        custom = try c.decodeIfPresent([String: String].self, forKey: .custom) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if let v = nonEmpty(correlationID) { try c.encode(v, forKey: .correlationID) }
        if let v = nonEmpty(causationID) { try c.encode(v, forKey: .causationID) }
        if let v = nonEmpty(userID) { try c.encode(v, forKey: .userID) }
        if let v = nonEmpty(tenantID) { try c.encode(v, forKey: .tenantID) }
        if !custom.isEmpty { try c.encode(custom, forKey: .custom) }
    }
}

private func nonEmpty(_ s: String?) -> String? {
    guard let s, !s.isEmpty else { return nil }
    return s
}

extension Metadata {
    /// The custom pairs as the JSON text storage adapters keep: an object of strings, keys sorted
    /// (written with ``JSONWriter``: a `JSONEncoder` per append was most of a metadata-carrying
    /// event's encoding time).
    public static func customJSON(_ custom: [String: String]) -> [UInt8] {
        var w = JSONWriter(capacity: 32 + custom.count * 32)
        w.sortedObject(custom)
        return w.bytes
    }

    /// Custom pairs from the text ``customJSON(_:)`` writes — any JSON object of strings, so text
    /// written by Foundation's `JSONEncoder` (escaped slashes) reads too.
    /// - Throws: `.serializationFailed` when the text is not a JSON object of strings.
    public static func custom(fromJSON bytes: [UInt8]) throws -> [String: String] {
        do {
            var r = JSONReader(bytes)
            var custom: [String: String] = [:]
            try r.beginObject()
            while let key = try r.nextKey() { custom[key] = try r.readString() }
            try r.finish()
            return custom
        } catch {
            throw MinkError(.serializationFailed, "stored event metadata is not a JSON object of strings")
        }
    }
}

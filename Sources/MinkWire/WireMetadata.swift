/// An event's metadata as it travels (HTTP-API.md section 4). Every field is
/// optional; empty ones are omitted from the JSON.
public struct WireMetadata: Codable, Hashable, Sendable {
    /// Ties together every event caused by one original request.
    public var correlationId: String?
    /// The ID of the event or command that caused this event.
    public var causationId: String?
    /// The user on whose behalf the event was written.
    public var userId: String?
    /// The tenant the event belongs to.
    public var tenantId: String?
    /// Application-defined string pairs.
    public var custom: [String: String]

    /// Creates metadata.
    public init(
        correlationId: String? = nil, causationId: String? = nil, userId: String? = nil,
        tenantId: String? = nil, custom: [String: String] = [:]
    ) {
        self.correlationId = correlationId
        self.causationId = causationId
        self.userId = userId
        self.tenantId = tenantId
        self.custom = custom
    }

    /// Whether every field is empty (the JSON would be `{}`).
    public var isEmpty: Bool {
        correlationId.isNilOrEmpty && causationId.isNilOrEmpty && userId.isNilOrEmpty
            && tenantId.isNilOrEmpty && custom.isEmpty
    }

    /// This metadata with the fields it lacks taken from `base`.
    ///
    /// Used for an append's top-level metadata: the event's own fields win,
    /// and `custom` is merged key by key (the event's value wins).
    public func merged(over base: WireMetadata?) -> WireMetadata {
        guard let base else { return self }
        var result = self
        if result.correlationId.isNilOrEmpty { result.correlationId = base.correlationId }
        if result.causationId.isNilOrEmpty { result.causationId = base.causationId }
        if result.userId.isNilOrEmpty { result.userId = base.userId }
        if result.tenantId.isNilOrEmpty { result.tenantId = base.tenantId }
        result.custom.merge(base.custom) { own, _ in own }
        return result
    }

    private enum CodingKeys: String, CodingKey {
        case correlationId, causationId, userId, tenantId, custom
    }

    /// Decodes metadata; absent fields are empty.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        correlationId = try container.decodeIfPresent(String.self, forKey: .correlationId)
        causationId = try container.decodeIfPresent(String.self, forKey: .causationId)
        userId = try container.decodeIfPresent(String.self, forKey: .userId)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        custom = try container.decodeIfPresent([String: String].self, forKey: .custom) ?? [:]
    }

    /// Encodes metadata, omitting empty fields.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if let correlationId, !correlationId.isEmpty { try container.encode(correlationId, forKey: .correlationId) }
        if let causationId, !causationId.isEmpty { try container.encode(causationId, forKey: .causationId) }
        if let userId, !userId.isEmpty { try container.encode(userId, forKey: .userId) }
        if let tenantId, !tenantId.isEmpty { try container.encode(tenantId, forKey: .tenantId) }
        if !custom.isEmpty { try container.encode(custom, forKey: .custom) }
    }
}

extension WireMetadata: JSONWritable, JSONReadable {
    /// Writes the metadata object, omitting empty fields; `custom` in sorted key order.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        if let correlationId, !correlationId.isEmpty {
            writer.key("correlationId")
            writer.string(correlationId)
        }
        if let causationId, !causationId.isEmpty {
            writer.key("causationId")
            writer.string(causationId)
        }
        if let userId, !userId.isEmpty {
            writer.key("userId")
            writer.string(userId)
        }
        if let tenantId, !tenantId.isEmpty {
            writer.key("tenantId")
            writer.string(tenantId)
        }
        if !custom.isEmpty {
            writer.key("custom")
            writer.beginObject()
            for key in custom.keys.sorted() {
                writer.key(key)
                writer.string(custom[key]!)
            }
            writer.endObject()
        }
        writer.endObject()
    }

    /// Reads metadata, skipping unknown keys (use `read(from:at:rejectUnknown:)` to reject them).
    public init(from reader: inout JSONReader) throws {
        self = try WireMetadata.read(from: &reader, at: "", rejectUnknown: false)
    }

    /// Reads metadata with error messages prefixed by `path`.
    static func read(from reader: inout JSONReader, at path: String, rejectUnknown: Bool) throws -> WireMetadata {
        var metadata = WireMetadata()
        try reader.readObject(at: path, rejectUnknown: rejectUnknown) { reader, key, keyPath in
            switch key {
            case "correlationId": metadata.correlationId = try reader.readOptionalString()
            case "causationId": metadata.causationId = try reader.readOptionalString()
            case "userId": metadata.userId = try reader.readOptionalString()
            case "tenantId": metadata.tenantId = try reader.readOptionalString()
            case "custom":
                if try reader.readNullIfPresent() { return true }
                try reader.readObject(at: keyPath, rejectUnknown: false) { reader, key, _ in
                    metadata.custom[key] = try reader.readString()
                    return true
                }
            default: return false
            }
            return true
        }
        return metadata
    }
}

extension JSONReader {
    /// Reads a string, or nil for `null`.
    mutating func readOptionalString() throws -> String? {
        try readNullIfPresent() ? nil : readString()
    }
}

extension Optional where Wrapped == String {
    var isNilOrEmpty: Bool { self?.isEmpty ?? true }
}

import Foundation
import Mink

// The wire form of the core's model: an event, its metadata and an append's expected version
// as HTTP-API.md sections 4 and 5 write them. MinkWire declares no event or metadata type of its
// own: the server writes the store's `Event` and the client reads straight into one.

extension Event {
    /// Writes the event in the order of HTTP-API.md section 4; `metadata` is always present
    /// (`{}` when empty), `data` is written byte for byte as appended.
    ///
    /// `id` is written as a lowercase UUID: an ID that is not a UUID (one an embedding program
    /// chose) is written as ``wireID(of:)``, so API clients always see UUIDs.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("id")
        writer.uuid(Event.wireID(of: id))
        writer.key("streamId")
        writer.string(streamID)
        writer.key("type")
        writer.string(type)
        writer.key("data")
        writer.raw(RawJSON(unchecked: [UInt8](data)))
        writer.key("metadata")
        metadata.write(to: &writer)
        writer.key("version")
        writer.int(version)
        writer.key("globalPosition")
        writer.int(Int64(clamping: globalPosition))
        writer.key("timestamp")
        writer.timestamp(timestamp)
        writer.endObject()
    }

    /// The event as JSON bytes.
    public func jsonBytes() -> [UInt8] {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.bytes
    }

    /// The UUID an event ID is written as: the ID itself when it is a UUID, else a stable UUID
    /// made from its hashes (the same ID always gives the same UUID).
    public static func wireID(of id: String) -> UUID {
        UUID(uuidString: id) ?? UUID(nameBasedOn: id)
    }

    /// Reads an event, keeping `data` exact; unknown keys are skipped. `id` must be a UUID and
    /// is kept in lowercase.
    /// - Throws: `WireError` (`bad_request`, `invalid_json`).
    public init(from reader: inout JSONReader) throws {
        try self.init(from: &reader, at: "")
    }

    /// Reads a whole document as an event.
    /// - Throws: `WireError`.
    public init(jsonBytes: [UInt8]) throws {
        var reader = JSONReader(jsonBytes)
        try self.init(from: &reader)
        try reader.finishBody()
    }

    /// Reads a whole document, given as a string, as an event.
    /// - Throws: `WireError`.
    public init(jsonString: String) throws {
        try self.init(jsonBytes: Array(jsonString.utf8))
    }

    /// Reads an event with error messages prefixed by `path`.
    init(from reader: inout JSONReader, at path: String, rejectUnknown: Bool = false) throws {
        var id: UUID?, streamID: String?, type: String?, data: RawJSON?, version: Int64?, position: Int64?
        var timestamp: WireTimestamp?
        var metadata = Metadata()
        try reader.readObject(at: path, rejectUnknown: rejectUnknown) { reader, key, keyPath in
            switch key {
            case "id": id = try reader.readUUID()
            case "streamId": streamID = try reader.readString()
            case "type": type = try reader.readString()
            case "data": data = try reader.readRaw()
            case "metadata":
                if try !reader.readNullIfPresent() {
                    metadata = try Metadata.read(from: &reader, at: keyPath, rejectUnknown: rejectUnknown)
                }
            case "version": version = try reader.readInt()
            case "globalPosition": position = try reader.readInt()
            case "timestamp": timestamp = try WireTimestamp(from: &reader)
            default: return false
            }
            return true
        }
        func key(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }
        guard let id else { throw missingKey(key("id")) }
        guard let streamID else { throw missingKey(key("streamId")) }
        guard let type else { throw missingKey(key("type")) }
        guard let data else { throw missingKey(key("data")) }
        guard let version else { throw missingKey(key("version")) }
        guard let position else { throw missingKey(key("globalPosition")) }
        guard position >= 0 else { throw WireError(code: .badRequest, message: "must be ≥ 0").prefixed(key("globalPosition")) }
        guard let timestamp else { throw missingKey(key("timestamp")) }
        self.init(
            id: id.uuidString.lowercased(), streamID: streamID, type: type, data: Data(data.bytes), metadata: metadata,
            version: version, globalPosition: UInt64(position), timestamp: timestamp.date
        )
    }
}

extension UUID {
    /// A stable UUID for a non-UUID event ID (written by a library user): its bytes are two
    /// 64-bit hashes of the ID — FNV-1a, and a second mix seeded differently — so the same ID
    /// always maps to the same UUID.
    init(nameBasedOn name: String) {
        let h1 = FNV1a.hash64(name)
        // Not FNV-1a: a differently seeded mix for the other 8 bytes, kept as it was so the
        // UUIDs already handed to clients do not change.
        var h2: UInt64 = 0x8422_2325_cbf2_9ce4
        for b in name.utf8 { h2 = (h2 ^ UInt64(b)) &* FNV1a.prime64 &+ 7 }
        let b1 = withUnsafeBytes(of: h1.bigEndian, Array.init), b2 = withUnsafeBytes(of: h2.bigEndian, Array.init)
        let u = b1 + b2
        self.init(uuid: (u[0], u[1], u[2], u[3], u[4], u[5], (u[6] & 0x0f) | 0x80, u[7], (u[8] & 0x3f) | 0x80, u[9], u[10], u[11], u[12], u[13], u[14], u[15]))
    }
}

extension JSONWriter {
    /// Writes an array of events.
    public mutating func events(_ events: [Event]) {
        beginArray()
        for event in events { event.write(to: &self) }
        endArray()
    }
}

extension JSONReader {
    /// Reads an array of events at `path`.
    mutating func readEvents(at path: String) throws -> [Event] {
        var events: [Event] = []
        try readArray(at: path) { reader, _, keyPath in
            events.append(try Event(from: &reader, at: keyPath))
        }
        return events
    }
}

extension Metadata {
    /// Writes the metadata object (HTTP-API.md section 4), omitting empty fields; `custom` in
    /// sorted key order.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        if let correlationID, !correlationID.isEmpty {
            writer.key("correlationId")
            writer.string(correlationID)
        }
        if let causationID, !causationID.isEmpty {
            writer.key("causationId")
            writer.string(causationID)
        }
        if let userID, !userID.isEmpty {
            writer.key("userId")
            writer.string(userID)
        }
        if let tenantID, !tenantID.isEmpty {
            writer.key("tenantId")
            writer.string(tenantID)
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

    /// The metadata as JSON bytes.
    public func jsonBytes() -> [UInt8] {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.bytes
    }

    /// Reads metadata, skipping unknown keys.
    /// - Throws: `WireError`.
    public init(from reader: inout JSONReader) throws {
        self = try Metadata.read(from: &reader, at: "", rejectUnknown: false)
    }

    /// Reads metadata with error messages prefixed by `path`.
    static func read(from reader: inout JSONReader, at path: String, rejectUnknown: Bool) throws -> Metadata {
        var metadata = Metadata()
        try reader.readObject(at: path, rejectUnknown: rejectUnknown) { reader, key, keyPath in
            switch key {
            case "correlationId": metadata.correlationID = try reader.readOptionalString()
            case "causationId": metadata.causationID = try reader.readOptionalString()
            case "userId": metadata.userID = try reader.readOptionalString()
            case "tenantId": metadata.tenantID = try reader.readOptionalString()
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

extension ExpectedVersion {
    /// The JSON form (HTTP-API.md section 5): the integer, or `"any"`, `"no_stream"`,
    /// `"stream_exists"`.
    public var jsonValue: JSONValue {
        switch self {
        case .any: .string("any")
        case .noStream: .string("no_stream")
        case .streamExists: .string("stream_exists")
        case .exact(let version): .int(version)
        }
    }

    /// Parses the string forms; nil for any other string.
    public init?(keyword: String) {
        switch keyword {
        case "any": self = .any
        case "no_stream": self = .noStream
        case "stream_exists": self = .streamExists
        default: return nil
        }
    }

    static let wireRule = #"must be an integer ≥ 0, "any", "no_stream" or "stream_exists""#

    /// Reads the value, answering `bad_request` with the rule for anything else.
    /// - Throws: `WireError`.
    public init(from reader: inout JSONReader) throws {
        let start = reader.offset
        switch try reader.peek() {
        case .number:
            let text = try reader.readNumberText()
            guard let version = Int64(text), version >= 0 else {
                throw WireError(code: .badRequest, message: "\(Self.wireRule), found \(text)", offset: start)
            }
            self = .exact(version)
        case .string:
            let text = try reader.readString()
            guard let value = Self(keyword: text) else {
                throw WireError(code: .badRequest, message: "\(Self.wireRule), found \"\(text)\"", offset: start)
            }
            self = value
        default:
            let range = try reader.skipValue()
            let found = String(decoding: reader.bytes[range].prefix(40), as: UTF8.self)
            throw WireError(code: .badRequest, message: "\(Self.wireRule), found \(found)", offset: start)
        }
    }
}

import Foundation

/// An event as every endpoint returns it (HTTP-API.md section 4).
///
/// `data` is the client's JSON, byte for byte. Use `write(to:)` to produce
/// response bodies and `init(from:)` with a `JSONReader` to read them: both keep
/// `data` exact. The `Codable` conformance is a convenience with the precision
/// caveats of `RawJSON`.
public struct WireEvent: Codable, Hashable, Sendable {
    /// The event's unique ID (written in lowercase).
    public var id: UUID
    /// The stream the event belongs to.
    public var streamId: String
    /// The event type, e.g. `OrderCreated`.
    public var type: String
    /// The payload: any JSON value, exactly as sent.
    public var data: RawJSON
    /// The metadata; empty fields are omitted.
    public var metadata: WireMetadata
    /// The event's position in its stream; the first event is 1.
    public var version: Int64
    /// The event's position in the tenant's whole log.
    public var globalPosition: Int64
    /// When the event was committed.
    public var timestamp: WireTimestamp

    /// Creates an event.
    public init(
        id: UUID, streamId: String, type: String, data: RawJSON, metadata: WireMetadata = WireMetadata(),
        version: Int64, globalPosition: Int64, timestamp: WireTimestamp
    ) {
        self.id = id
        self.streamId = streamId
        self.type = type
        self.data = data
        self.metadata = metadata
        self.version = version
        self.globalPosition = globalPosition
        self.timestamp = timestamp
    }

    private enum CodingKeys: String, CodingKey {
        case id, streamId, type, data, metadata, version, globalPosition, timestamp
    }

    /// Decodes an event; absent metadata is empty.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(UUID.self, forKey: .id)
        streamId = try container.decode(String.self, forKey: .streamId)
        type = try container.decode(String.self, forKey: .type)
        data = try container.decode(RawJSON.self, forKey: .data)
        metadata = try container.decodeIfPresent(WireMetadata.self, forKey: .metadata) ?? WireMetadata()
        version = try container.decode(Int64.self, forKey: .version)
        globalPosition = try container.decode(Int64.self, forKey: .globalPosition)
        timestamp = try container.decode(WireTimestamp.self, forKey: .timestamp)
    }

    /// Encodes an event with a lowercase `id`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.uuidString.lowercased(), forKey: .id)
        try container.encode(streamId, forKey: .streamId)
        try container.encode(type, forKey: .type)
        try container.encode(data, forKey: .data)
        try container.encode(metadata, forKey: .metadata)
        try container.encode(version, forKey: .version)
        try container.encode(globalPosition, forKey: .globalPosition)
        try container.encode(timestamp, forKey: .timestamp)
    }
}

extension WireEvent: JSONWritable, JSONReadable {
    /// Writes the event in the order of HTTP-API.md section 4; `metadata` is always present (`{}` when empty).
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("id")
        writer.uuid(id)
        writer.key("streamId")
        writer.string(streamId)
        writer.key("type")
        writer.string(type)
        writer.key("data")
        writer.raw(data)
        writer.key("metadata")
        metadata.write(to: &writer)
        writer.key("version")
        writer.int(version)
        writer.key("globalPosition")
        writer.int(globalPosition)
        writer.key("timestamp")
        writer.timestamp(timestamp)
        writer.endObject()
    }

    /// Reads an event, keeping `data` exact; unknown keys are skipped.
    public init(from reader: inout JSONReader) throws {
        try self.init(from: &reader, at: "")
    }

    /// Reads an event with error messages prefixed by `path`.
    init(from reader: inout JSONReader, at path: String) throws {
        var id: UUID?, streamId: String?, type: String?, data: RawJSON?, version: Int64?, position: Int64?
        var timestamp: WireTimestamp?
        var metadata = WireMetadata()
        try reader.readObject(at: path, rejectUnknown: false) { reader, key, keyPath in
            switch key {
            case "id": id = try reader.readUUID()
            case "streamId": streamId = try reader.readString()
            case "type": type = try reader.readString()
            case "data": data = try reader.readRaw()
            case "metadata":
                if try !reader.readNullIfPresent() {
                    metadata = try WireMetadata.read(from: &reader, at: keyPath, rejectUnknown: false)
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
        guard let streamId else { throw missingKey(key("streamId")) }
        guard let type else { throw missingKey(key("type")) }
        guard let data else { throw missingKey(key("data")) }
        guard let version else { throw missingKey(key("version")) }
        guard let position else { throw missingKey(key("globalPosition")) }
        guard let timestamp else { throw missingKey(key("timestamp")) }
        self.init(
            id: id, streamId: streamId, type: type, data: data, metadata: metadata,
            version: version, globalPosition: position, timestamp: timestamp
        )
    }
}

extension JSONWriter {
    /// Writes an array of events.
    public mutating func events(_ events: [WireEvent]) {
        beginArray()
        for event in events { event.write(to: &self) }
        endArray()
    }
}

extension JSONReader {
    /// Reads an array of events at `path`.
    mutating func readEvents(at path: String) throws -> [WireEvent] {
        var events: [WireEvent] = []
        try readArray(at: path) { reader, _, keyPath in
            events.append(try WireEvent(from: &reader, at: keyPath))
        }
        return events
    }
}

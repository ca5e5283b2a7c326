import Mink

/// The body of `GET /v1/streams` (HTTP-API.md section 5): `{"streams": [...], "next": "id"|null}`.
public struct StreamListBody: Hashable, Sendable {
    /// The streams of this page, bytewise ascending by ID.
    public var streams: [StreamInfoBody]
    /// The `after` of the following page, or `nil` on the last page.
    public var next: String?

    /// Creates the body.
    public init(streams: [StreamInfoBody], next: String?) {
        self.streams = streams
        self.next = next
    }
}

extension StreamInfoBody {
    /// The body of a stream's info.
    public init(_ info: StreamInfo) {
        self.init(
            streamId: info.streamID, category: info.category, version: info.version, eventCount: info.eventCount,
            createdAt: WireTimestamp(info.createdAt), updatedAt: WireTimestamp(info.updatedAt)
        )
    }
}

extension StreamInfoBody: JSONReadable {
    /// Reads the body; unknown keys are skipped.
    public init(from reader: inout JSONReader) throws {
        var streamId: String?, category: String?, version: Int64?, eventCount: Int64?
        var createdAt: WireTimestamp?, updatedAt: WireTimestamp?
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, _ in
            switch key {
            case "streamId": streamId = try reader.readString()
            case "category": category = try reader.readString()
            case "version": version = try reader.readInt()
            case "eventCount": eventCount = try reader.readInt()
            case "createdAt": createdAt = try WireTimestamp(from: &reader)
            case "updatedAt": updatedAt = try WireTimestamp(from: &reader)
            default: return false
            }
            return true
        }
        guard let streamId else { throw missingKey("streamId") }
        guard let version else { throw missingKey("version") }
        guard let createdAt else { throw missingKey("createdAt") }
        guard let updatedAt else { throw missingKey("updatedAt") }
        self.init(
            streamId: streamId, category: category ?? StreamID.category(of: streamId), version: version,
            eventCount: eventCount ?? version, createdAt: createdAt, updatedAt: updatedAt
        )
    }
}

extension StreamListBody: JSONWritable, JSONReadable {
    /// Writes the body; `next` is `null` on the last page.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("streams")
        writer.beginArray()
        for s in streams { s.write(to: &writer) }
        writer.endArray()
        writer.key("next")
        writer.string(next)
        writer.endObject()
    }

    /// Reads the body; unknown keys are skipped.
    public init(from reader: inout JSONReader) throws {
        var streams: [StreamInfoBody]?, next: String?
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, keyPath in
            switch key {
            case "streams":
                var list: [StreamInfoBody] = []
                try reader.readArray(at: keyPath) { reader, _, _ in list.append(try StreamInfoBody(from: &reader)) }
                streams = list
            case "next": next = try reader.readNullIfPresent() ? nil : reader.readString()
            default: return false
            }
            return true
        }
        guard let streams else { throw missingKey("streams") }
        self.init(streams: streams, next: next)
    }
}

/// The body of `DELETE /v1/streams/{streamId}` (HTTP-API.md section 5).
public struct StreamDeletionBody: Hashable, Sendable {
    /// The deleted stream.
    public var streamId: String
    /// How many events were removed.
    public var deletedEvents: Int64
    /// The stream's version when deleted.
    public var lastVersion: Int64
    /// Whether a tombstone was left.
    public var hard: Bool
    /// The global position of the `$StreamDeleted` record.
    public var position: Int64

    /// Creates the body.
    public init(streamId: String, deletedEvents: Int64, lastVersion: Int64, hard: Bool, position: Int64) {
        self.streamId = streamId
        self.deletedEvents = deletedEvents
        self.lastVersion = lastVersion
        self.hard = hard
        self.position = position
    }

    /// The body of a deletion.
    public init(_ d: StreamDeletion) {
        self.init(streamId: d.streamID, deletedEvents: d.deletedEvents, lastVersion: d.lastVersion, hard: d.hard, position: Int64(d.position))
    }

    /// The deletion this body describes.
    public var deletion: StreamDeletion {
        StreamDeletion(streamID: streamId, deletedEvents: deletedEvents, lastVersion: lastVersion, hard: hard, position: UInt64(max(0, position)))
    }
}

extension StreamDeletionBody: JSONWritable, JSONReadable {
    /// Writes `{"streamId","deletedEvents","lastVersion","hard","position"}`.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("streamId"); writer.string(streamId)
        writer.key("deletedEvents"); writer.int(deletedEvents)
        writer.key("lastVersion"); writer.int(lastVersion)
        writer.key("hard"); writer.bool(hard)
        writer.key("position"); writer.int(position)
        writer.endObject()
    }

    /// Reads the body; unknown keys are skipped.
    public init(from reader: inout JSONReader) throws {
        var streamId: String?, deleted: Int64?, last: Int64?, hard: Bool?, position: Int64?
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, _ in
            switch key {
            case "streamId": streamId = try reader.readString()
            case "deletedEvents": deleted = try reader.readInt()
            case "lastVersion": last = try reader.readInt()
            case "hard": hard = try reader.readBool()
            case "position": position = try reader.readInt()
            default: return false
            }
            return true
        }
        guard let streamId else { throw missingKey("streamId") }
        self.init(streamId: streamId, deletedEvents: deleted ?? 0, lastVersion: last ?? 0, hard: hard ?? false, position: position ?? 0)
    }
}

/// The body of `GET`/`PUT /v1/streams/{streamId}/metadata` (HTTP-API.md section 5):
/// `{"maxCount", "maxAgeSeconds", "truncateBefore"}`, each optional (`null` or absent: no rule).
public struct StreamMetadataBody: Hashable, Sendable {
    /// The rules.
    public var retention: StreamRetention

    /// Creates the body.
    public init(_ retention: StreamRetention) { self.retention = retention }

    /// Reads and checks a `PUT` body.
    /// - Throws: `WireError`: `invalid_json`; `bad_request` (not an object, an unknown key, a
    ///   value that is not an integer or `null`); `validation_failed` (an integer below 1).
    public static func decode(_ body: [UInt8]) throws -> StreamMetadataBody {
        var reader = JSONReader(body)
        var r = StreamRetention()
        try reader.readObject(at: "", rejectUnknown: true) { reader, key, _ in
            func value() throws -> Int64? {
                if try reader.readNullIfPresent() { return nil }
                let v = try reader.readInt()
                guard v >= 1 else { throw WireError(code: .validationFailed, message: "must be an integer ≥ 1 or null") }
                return v
            }
            switch key {
            case "maxCount": r.maxCount = try value()
            case "maxAgeSeconds": r.maxAgeSeconds = try value()
            case "truncateBefore": r.truncateBefore = try value()
            default: return false
            }
            return true
        }
        try reader.finishBody()
        return StreamMetadataBody(r)
    }
}

extension StreamMetadataBody: JSONWritable, JSONReadable {
    /// Writes the rules that are set (`{}` when none).
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        if let v = retention.maxCount { writer.key("maxCount"); writer.int(v) }
        if let v = retention.maxAgeSeconds { writer.key("maxAgeSeconds"); writer.int(v) }
        if let v = retention.truncateBefore { writer.key("truncateBefore"); writer.int(v) }
        writer.endObject()
    }

    /// Reads the body; unknown keys are skipped.
    public init(from reader: inout JSONReader) throws {
        var r = StreamRetention()
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, _ in
            func value() throws -> Int64? { try reader.readNullIfPresent() ? nil : reader.readInt() }
            switch key {
            case "maxCount": r.maxCount = try value()
            case "maxAgeSeconds": r.maxAgeSeconds = try value()
            case "truncateBefore": r.truncateBefore = try value()
            default: return false
            }
            return true
        }
        self.init(r)
    }
}

/// The body of `POST /v1/admin/scavenge` (HTTP-API.md section 9): `{"deletedEvents": N}`.
public struct ScavengeBody: Hashable, Sendable, JSONWritable, JSONReadable {
    /// How many events the pass removed.
    public var deletedEvents: Int64

    /// Creates the body.
    public init(deletedEvents: Int64) { self.deletedEvents = deletedEvents }

    /// Writes the body.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("deletedEvents"); writer.int(deletedEvents)
        writer.endObject()
    }

    /// Reads the body; unknown keys are skipped.
    public init(from reader: inout JSONReader) throws {
        var n: Int64?
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, _ in
            guard key == "deletedEvents" else { return false }
            n = try reader.readInt()
            return true
        }
        guard let n else { throw missingKey("deletedEvents") }
        self.init(deletedEvents: n)
    }
}

import Mink

/// The body of `GET /v1/streams/{streamId}` (HTTP-API.md section 5).
public struct StreamPage: Hashable, Sendable {
    /// The stream read.
    public var streamId: String
    /// The stream's current version.
    public var version: Int64
    /// The events of this page.
    public var events: [Event]
    /// The `from` of the following page, or nil at the end.
    public var next: Int64?

    /// Creates a page.
    public init(streamId: String, version: Int64, events: [Event], next: Int64?) {
        self.streamId = streamId
        self.version = version
        self.events = events
        self.next = next
    }
}

extension StreamPage: JSONWritable, JSONReadable {
    /// Writes the page; `next` is `null` at the end.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("streamId")
        writer.string(streamId)
        writer.key("version")
        writer.int(version)
        writer.key("events")
        writer.events(events)
        writer.key("next")
        writer.int(next)
        writer.endObject()
    }

    /// Reads a page, keeping each event's `data` exact; unknown keys are skipped.
    public init(from reader: inout JSONReader) throws {
        var streamId: String?, version: Int64?, events: [Event]?, next: Int64?
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, keyPath in
            switch key {
            case "streamId": streamId = try reader.readString()
            case "version": version = try reader.readInt()
            case "events": events = try reader.readEvents(at: keyPath)
            case "next": next = try reader.readNullIfPresent() ? nil : reader.readInt()
            default: return false
            }
            return true
        }
        guard let streamId else { throw missingKey("streamId") }
        guard let version else { throw missingKey("version") }
        guard let events else { throw missingKey("events") }
        self.init(streamId: streamId, version: version, events: events, next: next)
    }
}

/// The body of `GET /v1/streams/{streamId}/info` (HTTP-API.md section 5).
public struct StreamInfoBody: Codable, Hashable, Sendable {
    /// The stream.
    public var streamId: String
    /// The part of the ID before the first `-` (the whole ID if it has none).
    public var category: String
    /// The stream's current version.
    public var version: Int64
    /// How many events the stream holds.
    public var eventCount: Int64
    /// When the first event was committed.
    public var createdAt: WireTimestamp
    /// When the last event was committed.
    public var updatedAt: WireTimestamp

    /// Creates the body.
    public init(streamId: String, category: String, version: Int64, eventCount: Int64, createdAt: WireTimestamp, updatedAt: WireTimestamp) {
        self.streamId = streamId
        self.category = category
        self.version = version
        self.eventCount = eventCount
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

extension StreamInfoBody: JSONWritable {
    /// Writes the body.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("streamId")
        writer.string(streamId)
        writer.key("category")
        writer.string(category)
        writer.key("version")
        writer.int(version)
        writer.key("eventCount")
        writer.int(eventCount)
        writer.key("createdAt")
        writer.timestamp(createdAt)
        writer.key("updatedAt")
        writer.timestamp(updatedAt)
        writer.endObject()
    }
}

/// The body of `GET`/`PUT /v1/streams/{streamId}/snapshot` (HTTP-API.md section 5).
public struct SnapshotBody: Codable, Hashable, Sendable {
    /// The stream version the state reflects.
    public var version: Int64
    /// The aggregate state, exactly as sent.
    public var state: RawJSON

    /// Creates the body.
    public init(version: Int64, state: RawJSON) {
        self.version = version
        self.state = state
    }

    /// Reads and checks a `PUT` body: `version` an integer, `state` any JSON value.
    /// - Throws: `WireError`: `invalid_json`, `bad_request` (unknown key, wrong type),
    ///   `validation_failed` (a missing key).
    public static func decode(_ body: [UInt8]) throws -> SnapshotBody {
        var reader = JSONReader(body)
        var version: Int64?, state: RawJSON?
        try reader.readObject(at: "", rejectUnknown: true) { reader, key, _ in
            switch key {
            case "version":
                // Its range (1…2^53 − 1) is the server's check: `422`, as for 0 and too large.
                version = try reader.readInt()
            case "state": state = try reader.readRaw()
            default: return false
            }
            return true
        }
        try reader.finishBody()
        guard let version else { throw missingKey("version", code: .validationFailed) }
        guard let state else { throw missingKey("state", code: .validationFailed) }
        return SnapshotBody(version: version, state: state)
    }
}

extension SnapshotBody: JSONWritable, JSONReadable {
    /// Writes `{"version":…,"state":…}` with the state's bytes unchanged.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("version")
        writer.int(version)
        writer.key("state")
        writer.raw(state)
        writer.endObject()
    }

    /// Reads the body; unknown keys are skipped (use `decode(_:)` for requests).
    public init(from reader: inout JSONReader) throws {
        var version: Int64?, state: RawJSON?
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, _ in
            switch key {
            case "version": version = try reader.readInt()
            case "state": state = try reader.readRaw()
            default: return false
            }
            return true
        }
        guard let version else { throw missingKey("version") }
        guard let state else { throw missingKey("state") }
        self.init(version: version, state: state)
    }
}

/// The body of `GET /v1/events` (HTTP-API.md section 6).
public struct EventsPage: Hashable, Sendable {
    /// The events of this page.
    public var events: [Event]
    /// The `after` for the following page: the last position returned, or the request's `after` when empty.
    public var next: Int64

    /// Creates a page.
    public init(events: [Event], next: Int64) {
        self.events = events
        self.next = next
    }
}

extension EventsPage: JSONWritable, JSONReadable {
    /// Writes the page.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("events")
        writer.events(events)
        writer.key("next")
        writer.int(next)
        writer.endObject()
    }

    /// Reads a page, keeping each event's `data` exact; unknown keys are skipped.
    public init(from reader: inout JSONReader) throws {
        var events: [Event]?, next: Int64?
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, keyPath in
            switch key {
            case "events": events = try reader.readEvents(at: keyPath)
            case "next": next = try reader.readInt()
            default: return false
            }
            return true
        }
        guard let events else { throw missingKey("events") }
        guard let next else { throw missingKey("next") }
        self.init(events: events, next: next)
    }
}

/// `{"position": N}`: the body of `GET /v1/events/head` and the payload of the
/// `caught-up` and `fell-behind` SSE messages (HTTP-API.md sections 6 and 7).
public struct PositionBody: Codable, Hashable, Sendable {
    /// A global position (or a stream version on a stream subscription).
    public var position: Int64

    /// Creates the body.
    public init(position: Int64) {
        self.position = position
    }
}

extension PositionBody: JSONWritable, JSONReadable {
    /// Writes `{"position":N}`.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("position")
        writer.int(position)
        writer.endObject()
    }

    /// Reads `{"position":N}`; unknown keys are skipped.
    public init(from reader: inout JSONReader) throws {
        var position: Int64?
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, _ in
            guard key == "position" else { return false }
            position = try reader.readInt()
            return true
        }
        guard let position else { throw missingKey("position") }
        self.init(position: position)
    }
}

/// The body of `GET /v1/events/head`.
public typealias HeadBody = PositionBody
/// The payload of the SSE `caught-up` message: the last position delivered.
public typealias CaughtUp = PositionBody
/// The payload of the SSE `fell-behind` message: the last position delivered.
public typealias FellBehind = PositionBody

/// The SSE `event:` names of HTTP-API.md section 7 (events themselves carry none).
public enum SSEEventName {
    /// Sent once the catch-up from storage has reached the live feed.
    public static let caughtUp = "caught-up"
    /// Sent when a slow subscriber's live buffer overflowed.
    public static let fellBehind = "fell-behind"
}

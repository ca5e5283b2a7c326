import Foundation
import Mink

/// The limits checked while an append body is read (HTTP-API.md section 1).
public struct AppendLimits: Hashable, Sendable {
    /// At most this many events per append (`413` beyond).
    public var maxEvents: Int
    /// At most this many bytes of `data` per event (`413` beyond).
    public var maxEventBytes: Int
    /// At most this many bytes of UTF-8 in an event type (`422` beyond).
    public var maxTypeBytes: Int

    /// Creates limits; the defaults are the API's.
    public init(maxEvents: Int = 1000, maxEventBytes: Int = 1_048_576, maxTypeBytes: Int = 256) {
        self.maxEvents = maxEvents
        self.maxEventBytes = maxEventBytes
        self.maxTypeBytes = maxTypeBytes
    }
}

/// The body of `POST /v1/streams/{streamId}` (HTTP-API.md section 5).
public struct AppendBody: Hashable, Sendable {
    /// The optimistic concurrency check; `.any` when absent.
    public var expectedVersion: ExpectedVersion
    /// Metadata merged into every event's own (the event's fields win).
    public var metadata: Metadata?
    /// The events, in order; at least one.
    public var events: [Event]

    /// One event to append.
    public struct Event: Hashable, Sendable {
        /// The client's ID for idempotent retries; the server assigns one when absent.
        public var id: UUID?
        /// The event type: 1 to 256 bytes.
        public var type: String
        /// The payload, exactly as sent.
        public var data: RawJSON
        /// The event's own metadata.
        public var metadata: Metadata?

        /// Creates an event to append.
        public init(id: UUID? = nil, type: String, data: RawJSON, metadata: Metadata? = nil) {
            self.id = id
            self.type = type
            self.data = data
            self.metadata = metadata
        }
    }

    /// Creates a request.
    public init(expectedVersion: ExpectedVersion = .any, metadata: Metadata? = nil, events: [Event]) {
        self.expectedVersion = expectedVersion
        self.metadata = metadata
        self.events = events
    }

    /// The metadata of event `index` with the top-level metadata merged in.
    public func effectiveMetadata(ofEvent index: Int) -> Metadata {
        (events[index].metadata ?? Metadata()).merged(over: metadata ?? Metadata())
    }

    /// Reads and checks an append body.
    ///
    /// The body is scanned once: each event's `data` is validated and kept as its
    /// exact bytes, never decoded. Unknown keys are rejected, because a
    /// misspelt `expectedVersion` silently meaning "any" would defeat the check.
    ///
    /// - Parameters:
    ///   - body: the request body.
    ///   - limits: the event count, event size and type length limits.
    ///   - minifyData: strip insignificant whitespace from each `data` (so a
    ///     pretty-printed payload carries no line breaks into SSE lines or logs).
    /// - Throws: `WireError`: `invalid_json` (syntax, with the byte offset),
    ///   `bad_request` (wrong types, unknown keys, bad `expectedVersion` or `id`),
    ///   `payload_too_large` (too many events, `data` too big),
    ///   `validation_failed` (no events, empty or long `type`, missing `type` or
    ///   `data`, the same `id` twice).
    public static func decode(_ body: [UInt8], limits: AppendLimits = AppendLimits(), minifyData: Bool = true) throws -> AppendBody {
        var reader = JSONReader(body)
        var expectedVersion = ExpectedVersion.any
        var metadata: Metadata?
        var events: [Event]?
        try reader.readObject(at: "", rejectUnknown: true) { reader, key, keyPath in
            switch key {
            case "expectedVersion":
                if try !reader.readNullIfPresent() { expectedVersion = try ExpectedVersion(from: &reader) }
            case "metadata":
                if try !reader.readNullIfPresent() {
                    metadata = try Metadata.read(from: &reader, at: keyPath, rejectUnknown: true)
                }
            case "events":
                events = try readEvents(&reader, limits: limits, minifyData: minifyData)
            default:
                return false
            }
            return true
        }
        try reader.finishBody()
        guard let events, !events.isEmpty else {
            throw WireError(code: .validationFailed, message: "events: at least one event is required")
        }
        return AppendBody(expectedVersion: expectedVersion, metadata: metadata, events: events)
    }

    private static func readEvents(_ reader: inout JSONReader, limits: AppendLimits, minifyData: Bool) throws -> [Event] {
        var events: [Event] = []
        var seenIDs: [UUID: Int] = [:]
        try reader.readArray(at: "events") { reader, index, path in
            guard index < limits.maxEvents else {
                throw WireError(
                    code: .payloadTooLarge,
                    message: "more than \(limits.maxEvents) events in one append", offset: reader.offset
                ).prefixed("events")
            }
            var id: UUID?, type: String?, data: RawJSON?, metadata: Metadata?
            try reader.readObject(at: path, rejectUnknown: true) { reader, key, keyPath in
                switch key {
                case "id":
                    if try !reader.readNullIfPresent() { id = try reader.readUUID() }
                case "type":
                    type = try reader.readString()
                case "data":
                    let start = reader.offset
                    let raw = try reader.readRaw()
                    guard raw.bytes.count <= limits.maxEventBytes else {
                        throw WireError(
                            code: .payloadTooLarge,
                            message: "\(raw.bytes.count) bytes, over the limit of \(limits.maxEventBytes)", offset: start
                        )
                    }
                    data = minifyData ? raw.minified() : raw
                case "metadata":
                    if try !reader.readNullIfPresent() {
                        metadata = try Metadata.read(from: &reader, at: keyPath, rejectUnknown: true)
                    }
                default:
                    return false
                }
                return true
            }
            guard let type else { throw missingKey("\(path).type", code: .validationFailed) }
            guard !type.isEmpty else {
                throw WireError(code: .validationFailed, message: "must not be empty").prefixed("\(path).type")
            }
            guard type.utf8.count <= limits.maxTypeBytes else {
                throw WireError(code: .validationFailed, message: "longer than \(limits.maxTypeBytes) bytes")
                    .prefixed("\(path).type")
            }
            if let problem = StreamID.typeProblem(type) {
                throw WireError(code: .validationFailed, message: problem).prefixed("\(path).type")
            }
            guard let data else { throw missingKey("\(path).data", code: .validationFailed) }
            if let id {
                if let earlier = seenIDs[id] {
                    throw WireError(code: .validationFailed, message: "the same id as events[\(earlier)]")
                        .prefixed("\(path).id")
                }
                seenIDs[id] = index
            }
            events.append(Event(id: id, type: type, data: data, metadata: metadata))
        }
        return events
    }
}

extension AppendBody: JSONWritable {
    /// Writes the request (for the client), keeping every `data` exact.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("expectedVersion")
        expectedVersion.jsonValue.write(to: &writer)
        if let metadata, !metadata.isEmpty {
            writer.key("metadata")
            metadata.write(to: &writer)
        }
        writer.key("events")
        writer.beginArray()
        for event in events {
            writer.beginObject()
            if let id = event.id {
                writer.key("id")
                writer.uuid(id)
            }
            writer.key("type")
            writer.string(event.type)
            writer.key("data")
            writer.raw(event.data)
            if let metadata = event.metadata, !metadata.isEmpty {
                writer.key("metadata")
                metadata.write(to: &writer)
            }
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
    }
}

/// The `201`/`200` body of an append (HTTP-API.md section 5).
public struct AppendResponse: Codable, Hashable, Sendable {
    /// The stream appended to.
    public var streamId: String
    /// The version of the first event written.
    public var fromVersion: Int64
    /// The version of the last event written (the stream's new version).
    public var toVersion: Int64
    /// The global position of the first event written.
    public var fromPosition: Int64
    /// The global position of the last event written.
    public var toPosition: Int64

    /// Creates the body.
    public init(streamId: String, fromVersion: Int64, toVersion: Int64, fromPosition: Int64, toPosition: Int64) {
        self.streamId = streamId
        self.fromVersion = fromVersion
        self.toVersion = toVersion
        self.fromPosition = fromPosition
        self.toPosition = toPosition
    }
}

extension AppendResponse: JSONWritable, JSONReadable {
    /// Writes the body.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("streamId")
        writer.string(streamId)
        writer.key("fromVersion")
        writer.int(fromVersion)
        writer.key("toVersion")
        writer.int(toVersion)
        writer.key("fromPosition")
        writer.int(fromPosition)
        writer.key("toPosition")
        writer.int(toPosition)
        writer.endObject()
    }

    /// Reads the body; unknown keys are skipped.
    public init(from reader: inout JSONReader) throws {
        var streamId: String?, fromVersion: Int64?, toVersion: Int64?, fromPosition: Int64?, toPosition: Int64?
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, _ in
            switch key {
            case "streamId": streamId = try reader.readString()
            case "fromVersion": fromVersion = try reader.readInt()
            case "toVersion": toVersion = try reader.readInt()
            case "fromPosition": fromPosition = try reader.readInt()
            case "toPosition": toPosition = try reader.readInt()
            default: return false
            }
            return true
        }
        guard let streamId else { throw missingKey("streamId") }
        guard let fromVersion else { throw missingKey("fromVersion") }
        guard let toVersion else { throw missingKey("toVersion") }
        guard let fromPosition else { throw missingKey("fromPosition") }
        guard let toPosition else { throw missingKey("toPosition") }
        self.init(
            streamId: streamId, fromVersion: fromVersion, toVersion: toVersion,
            fromPosition: fromPosition, toPosition: toPosition
        )
    }
}

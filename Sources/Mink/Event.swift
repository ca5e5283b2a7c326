import Foundation

/// A stored event, as loaded from a stream or read from the global log (seed: `Event`).
///
/// `data` holds the event's JSON bytes exactly as they were appended: the store never decodes
/// and re-encodes them. Decode them into a Swift type with ``decode(_:using:)`` or through an
/// ``EventRegistry``.
public struct Event: Sendable, Hashable {
    /// The event's unique ID (a UUID unless the appender chose one).
    public var id: String
    /// The stream the event belongs to.
    public var streamID: String
    /// The event type name (e.g. `OrderCreated`).
    public var type: String
    /// The event's JSON payload, byte for byte as appended.
    public var data: Data
    /// Correlation, causation, user, tenant and custom metadata.
    public var metadata: Metadata
    /// The position in its stream; the first event is 1.
    public var version: Int64
    /// The position in the tenant's whole log; strictly increasing in commit order.
    public var globalPosition: UInt64
    /// When the event was committed.
    public var timestamp: Date

    /// Creates a stored event (adapters and test builders use this).
    public init(
        id: String, streamID: String, type: String, data: Data, metadata: Metadata = Metadata(),
        version: Int64, globalPosition: UInt64, timestamp: Date
    ) {
        self.id = id
        self.streamID = streamID
        self.type = type
        self.data = data
        self.metadata = metadata
        self.version = version
        self.globalPosition = globalPosition
        self.timestamp = timestamp
    }

    /// The category of the event's stream: the part of the stream ID before the first `-`.
    public var category: String { StreamID.category(of: streamID) }

    /// Decodes `data` as `T`.
    /// - Throws: `.serializationFailed` when the bytes do not decode as `T`.
    public func decode<T: Decodable>(_ type: T.Type, using serializer: any EventSerializer = JSONEventSerializer()) throws -> T {
        try serializer.deserialize(data, as: T.self)
    }
}

/// An event to append: its type name, serialized payload and optional ID and metadata.
///
/// This is what adapters receive: they never need the Swift type of an event.
public struct EventData: Sendable, Hashable {
    /// The event ID; the store assigns a UUID when `nil`. Reusing the IDs of an earlier append makes
    /// a retry idempotent.
    public var id: String?
    /// The event type name; must not be empty.
    public var type: String
    /// The JSON payload.
    public var data: Data
    /// Event-specific metadata (merged over the append's metadata).
    public var metadata: Metadata

    /// Creates an event to append.
    public init(id: String? = nil, type: String, data: Data, metadata: Metadata = Metadata()) {
        self.id = id
        self.type = type
        self.data = data
        self.metadata = metadata
    }
}

/// Helpers for stream IDs.
public enum StreamID {
    /// The most bytes a stream ID may have.
    public static let maxBytes = 256

    /// The category of a stream: the part of its ID before the first `-` (`order-123` → `order`);
    /// an ID without `-` is its own category.
    public static func category(of streamID: String) -> String {
        if let dash = streamID.firstIndex(of: "-") { return String(streamID[..<dash]) }
        return streamID
    }

    /// Whether `scalar` is a control character a stream ID may not hold: Unicode's category Cc,
    /// that is C0 (U+0000–U+001F), DEL (U+007F) and C1 (U+0080–U+009F).
    ///
    /// Why C1 too: HTTP-API.md says "without control characters", and U+0085 (NEL) is a line
    /// break to some readers, so a stream ID holding it could split a log line or an SSE field.
    public static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (scalar.value >= 0x7F && scalar.value <= 0x9F)
    }

    /// What is wrong with a stream ID, or `nil` when it is valid: 1 to 256 bytes of UTF-8 without
    /// control characters (see ``isForbidden(_:)``). The one stream-ID rule of the library, the
    /// server and the client.
    public static func problem(_ streamID: String) -> String? {
        let count = streamID.utf8.count
        if count == 0 { return "stream ID must not be empty" }
        if count > maxBytes { return "stream ID is \(count) bytes, longer than \(maxBytes)" }
        if let scalar = streamID.unicodeScalars.first(where: isForbidden) {
            let hex = String(scalar.value, radix: 16, uppercase: true)
            return "stream ID contains the control character U+\(String(repeating: "0", count: max(0, 4 - hex.count)))\(hex)"
        }
        return nil
    }

    /// What is wrong with an event type's characters, or `nil`: like a stream ID, a type holds no
    /// control character (``isForbidden(_:)``) — it is an identifier, shown in logs and SSE, and
    /// PostgreSQL cannot store U+0000 in text at all (every storage answers the same).
    public static func typeProblem(_ type: String) -> String? {
        guard let scalar = type.unicodeScalars.first(where: isForbidden) else { return nil }
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "must not contain the control character U+\(String(repeating: "0", count: max(0, 4 - hex.count)))\(hex)"
    }

    /// Checks that a stream ID is 1 to 256 bytes of UTF-8 without control characters.
    /// - Throws: `.validationFailed` saying what is wrong.
    public static func validate(_ streamID: String) throws {
        if let problem = problem(streamID) { throw MinkError.validation(problem) }
    }
}

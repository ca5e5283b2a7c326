import Foundation
import Mink

/// In-memory stores for tests (seed: `NewInMemoryStore()`).
public enum InMemoryStore {
    /// A fresh `EventStore` over empty in-memory storage, with snapshots (every 100 events) kept
    /// in the same storage.
    public static func make(
        registry: EventRegistry = EventRegistry(), middleware: [Middleware] = [], snapshotPolicy: SnapshotPolicy = .everyNEvents(100)
    ) -> EventStore {
        let storage = InMemoryStorage()
        return EventStore(adapter: storage, registry: registry, middleware: middleware, snapshots: (storage, snapshotPolicy))
    }
}

/// Builds stored events for tests (seed: `EventBuilder`, `NewEvent(type)`).
///
/// ```swift
/// let event = try EventBuilder("OrderCreated").withData(OrderCreated(customerID: "c-1")).build()
/// ```
public struct EventBuilder: Sendable {
    private var event: Event

    /// Starts an event of a type, in stream `test-1` at version 1 and position 1.
    public init(_ eventType: String) {
        event = Event(
            id: UUID().uuidString.lowercased(), streamID: "test-1", type: eventType, data: Data("{}".utf8),
            version: 1, globalPosition: 1, timestamp: Date()
        )
    }

    /// Sets the payload, serialized as JSON (seed: `WithData`).
    /// - Throws: the serializer's error for a payload that cannot be encoded (a `Double.nan`, a
    ///   custom `encode(to:)` that throws) — never a silent `null` payload.
    public func withData(_ data: some Encodable) throws -> EventBuilder {
        var b = self
        b.event.data = try JSONEventSerializer().serialize(data)
        return b
    }

    /// Sets the payload's raw JSON bytes.
    public func withJSON(_ json: String) -> EventBuilder {
        var b = self
        b.event.data = Data(json.utf8)
        return b
    }

    /// Sets the metadata (seed: `WithMetadata`).
    public func withMetadata(_ metadata: Metadata) -> EventBuilder {
        var b = self
        b.event.metadata = metadata
        return b
    }

    /// Sets the stream.
    public func withStreamID(_ streamID: String) -> EventBuilder {
        var b = self
        b.event.streamID = streamID
        return b
    }

    /// Sets the version and global position.
    public func at(version: Int64, position: UInt64) -> EventBuilder {
        var b = self
        b.event.version = version
        b.event.globalPosition = position
        return b
    }

    /// The event (seed: `Build`).
    public func build() -> Event { event }
}

/// A failed test-kit assertion; throwing it fails the surrounding test in any test framework.
public struct AssertionFailure: Error, CustomStringConvertible {
    /// What was expected and what was found.
    public let description: String
    init(_ message: String, file: StaticString, line: UInt) { description = "\(message) (\(file):\(line))" }
}

/// Checks the types of stored events, in order (seed: `AssertEventTypes`).
public func assertEventTypes(_ events: [Event], _ types: String..., file: StaticString = #filePath, line: UInt = #line) throws {
    let actual = events.map(\.type)
    if actual != types { throw AssertionFailure("expected event types \(types), got \(actual)", file: file, line: line) }
}

/// Checks the types of payloads — e.g. an aggregate's uncommitted events — by their registered
/// name, or their Swift type name when unregistered.
public func assertEventTypes(
    _ events: [any EventPayload], _ types: String..., registry: EventRegistry = EventRegistry(), file: StaticString = #filePath,
    line: UInt = #line
) throws {
    let actual = events.map { registry.name(for: $0) }
    if actual != types { throw AssertionFailure("expected event types \(types), got \(actual)", file: file, line: line) }
}

/// Checks a stream's current version; a missing stream has version 0 (seed: `AssertStreamVersion`).
public func assertStreamVersion(
    _ store: EventStore, _ streamID: String, _ version: Int64, file: StaticString = #filePath, line: UInt = #line
) async throws {
    let actual = try await store.streamInfo(streamID)?.version ?? 0
    if actual != version {
        throw AssertionFailure("expected stream \(streamID) at version \(version), got \(actual)", file: file, line: line)
    }
}

/// Checks a read model's state (seed: `AssertProjectionState`).
public func assertProjectionState<R: Repository>(
    _ repository: R, _ id: String, _ expected: R.Model, file: StaticString = #filePath, line: UInt = #line
) async throws where R.Model: Equatable {
    let actual = try await repository.get(id)
    if actual != expected {
        throw AssertionFailure("expected read model \(id) to be \(expected), got \(actual.map { "\($0)" } ?? "nothing")", file: file, line: line)
    }
}

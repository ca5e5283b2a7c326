import Foundation
import Synchronization

/// A Swift event payload: any `Codable & Sendable` value.
public typealias EventPayload = Codable & Sendable

/// Maps event type names to Swift types (seed: `EventRegistry`).
///
/// Appending uses it to name a payload's type; loading aggregates uses it to decode stored events
/// into Swift values. Thread-safe; register types at start-up.
public final class EventRegistry: Sendable {
    private struct Entry: Sendable {
        let name: String
        let type: any EventPayload.Type
    }

    private let state = Mutex<(byName: [String: Entry], byType: [ObjectIdentifier: String])>(([:], [:]))

    /// Creates an empty registry.
    public init() {}

    /// Registers `type` under `eventType`.
    public func register<T: EventPayload>(_ eventType: String, _ type: T.Type) {
        state.withLock {
            $0.byName[eventType] = Entry(name: eventType, type: type)
            $0.byType[ObjectIdentifier(type)] = eventType
        }
    }

    /// Registers each type under its type name (`String(describing:)`, e.g. `OrderCreated`).
    public func registerAll(_ types: any EventPayload.Type...) {
        for type in types { registerErased(type) }
    }

    private func registerErased(_ type: any EventPayload.Type) {
        let name = String(describing: type)
        state.withLock {
            $0.byName[name] = Entry(name: name, type: type)
            $0.byType[ObjectIdentifier(type)] = name
        }
    }

    /// The Swift type registered under `eventType`.
    public func lookup(_ eventType: String) -> (any EventPayload.Type)? {
        state.withLock { $0.byName[eventType]?.type }
    }

    /// The registered names, sorted.
    public var registeredTypes: [String] { state.withLock { $0.byName.keys.sorted() } }

    /// The type name for a payload: its registered name, or its Swift type name when unregistered.
    public func name(for payload: any EventPayload) -> String {
        let type = Swift.type(of: payload)
        return state.withLock { $0.byType[ObjectIdentifier(type)] } ?? String(describing: type)
    }

    /// Decodes a stored event into its registered Swift type.
    /// - Throws: `.eventTypeNotRegistered` for an unknown type, `.serializationFailed` for bad data.
    public func decode(_ event: Event, using serializer: any EventSerializer = JSONEventSerializer()) throws -> any EventPayload {
        guard let type = lookup(event.type) else {
            throw MinkError(
                .eventTypeNotRegistered,
                "event type \"\(event.type)\" is not registered; call registry.register(\"\(event.type)\", YourType.self)",
                streamID: event.streamID
            )
        }
        return try serializer.deserialize(event.data, as: type)
    }
}

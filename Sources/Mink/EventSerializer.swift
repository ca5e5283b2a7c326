import Foundation

/// Turns event payloads into bytes and back (seed: `Serializer`).
public protocol EventSerializer: Sendable {
    /// Encodes a payload.
    func serialize(_ value: some Encodable) throws -> Data
    /// Decodes a payload.
    func deserialize<T: Decodable>(_ data: Data, as type: T.Type) throws -> T
}

/// The default serializer: JSON through Foundation's `JSONEncoder`/`JSONDecoder`,
/// dates as ISO 8601, keys sorted so equal payloads give equal bytes.
public struct JSONEventSerializer: EventSerializer {
    /// Creates the serializer.
    public init() {}

    public func serialize(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        do { return try encoder.encode(value) } catch {
            throw MinkError(.serializationFailed, "cannot encode \(type(of: value)): \(error)")
        }
    }

    public func deserialize<T: Decodable>(_ data: Data, as type: T.Type) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do { return try decoder.decode(T.self, from: data) } catch {
            throw MinkError(.serializationFailed, "cannot decode \(T.self): \(error)")
        }
    }
}

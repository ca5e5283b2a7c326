import Foundation

/// A decoded JSON value: read-model documents, `Query` operands, error details and other small
/// payloads whose content the store, the server or the client inspects.
///
/// Numbers keep their literal text (`.number("12345678901234567")`), so nothing is rounded
/// until a caller asks for ``int64Value`` or ``doubleValue``; queries compare numbers as
/// `Double`, the precision every storage adapter's JSON functions compare them with. Objects
/// are dictionaries: member order is not kept (use ``RawJSON`` where it matters). The project's
/// only JSON value type: read with ``JSONReader``, written with ``JSONWriter``.
public enum JSONValue: Hashable, Sendable {
    /// `null`
    case null
    /// `true` or `false`
    case bool(Bool)
    /// A number, as its JSON literal text.
    case number(String)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object.
    case object([String: JSONValue])

    /// An integer number.
    public static func int(_ value: Int64) -> JSONValue { .number(String(value)) }

    /// A floating-point number, written as ``JSONWriter/double(_:)`` writes it (a whole number
    /// up to 2^53 as an integer); non-finite values become `null`.
    public static func double(_ value: Double) -> JSONValue {
        guard value.isFinite else { return .null }
        var writer = JSONWriter(capacity: 24)
        writer.double(value)
        return .number(writer.string)
    }

    /// The number as an `Int64`, when it is an integer literal in range.
    public var int64Value: Int64? {
        if case .number(let text) = self { return Int64(text) }
        return nil
    }

    /// The number as a `Double` (possibly rounded, or infinite for `1e400`).
    public var doubleValue: Double? {
        if case .number(let text) = self { return Double(text) }
        return nil
    }

    /// The string, when this is a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The boolean, when this is a boolean.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The elements, when this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The members, when this is an object.
    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// Whether this is `null`.
    public var isNull: Bool { self == .null }

    /// Parses a whole JSON document (RFC 8259; nesting limited to 512 levels).
    /// - Throws: `MinkError` with code `.serializationFailed` naming the byte offset of the problem.
    public init(json data: Data) throws {
        do {
            var reader = JSONReader([UInt8](data))
            self = try reader.readValue()
            try reader.finish()
        } catch let error as JSONError {
            throw MinkError(.serializationFailed, error.message)
        }
    }

    /// Compact JSON bytes with sorted keys (deterministic, so equal values encode equally).
    public func jsonData() -> Data {
        Data(jsonBytes())
    }

    /// The value at a dotted path (`address.city`), or `nil` when any step is missing.
    public func value(at path: FieldPath) -> JSONValue? {
        var current = self
        for component in path.components {
            guard case .object(let o) = current, let next = o[component] else { return nil }
            current = next
        }
        return current
    }
}

extension JSONValue: JSONWritable, JSONReadable {
    /// Writes the value; object members in sorted key order so output is deterministic.
    public func write(to writer: inout JSONWriter) {
        switch self {
        case .null: writer.null()
        case .bool(let value): writer.bool(value)
        case .number(let text): writer.raw(RawJSON(unchecked: Array(text.utf8)))
        case .string(let value): writer.string(value)
        case .array(let elements):
            writer.beginArray()
            for element in elements { element.write(to: &writer) }
            writer.endArray()
        case .object(let members):
            writer.beginObject()
            for key in members.keys.sorted() {
                writer.key(key)
                members[key]!.write(to: &writer)
            }
            writer.endObject()
        }
    }

    /// Reads any JSON value.
    public init(from reader: inout JSONReader) throws {
        self = try reader.readValue()
    }
}

extension JSONValue: Codable {
    /// Decodes any JSON value from a `Decoder`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(UInt64.self) {
            self = .number(String(value))
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    /// Encodes the value; a number is encoded as an integer when it is one, else as a `Double`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let text):
            if let value = Int64(text) {
                try container.encode(value)
            } else if let value = UInt64(text) {
                try container.encode(value)
            } else {
                try container.encode(Double(text) ?? .nan)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    /// `null`
    public init(nilLiteral: ()) { self = .null }
    /// A boolean.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// An integer.
    public init(integerLiteral value: Int64) { self = .int(value) }
    /// A double.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// A string.
    public init(stringLiteral value: String) { self = .string(value) }
    /// An array.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// An object.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

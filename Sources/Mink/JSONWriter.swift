import Foundation

/// A fast, append-only JSON byte writer: the project's one JSON writer (response bodies, stored
/// read-model documents, the client's request bodies).
///
/// `JSONEncoder` cannot embed raw bytes (an event's `data` is stored and
/// returned as the exact bytes the client sent) and costs several times more
/// than writing bytes directly, so every response body on a hot path is
/// produced with this writer. Commas are inserted automatically: call `key(_:)`
/// before each member value of an object, and the value methods in order.
///
///     var writer = JSONWriter()
///     writer.beginObject()
///     writer.key("position"); writer.int(42)
///     writer.endObject()
///     // writer.bytes == Array(#"{"position":42}"#.utf8)
public struct JSONWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]
    /// Whether the next value or key needs a `,` before it.
    private var needsComma = false

    /// Creates an empty writer.
    /// - Parameter capacity: bytes to reserve up front.
    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// The bytes written so far as a string (for tests and logs).
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    @inline(__always)
    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        needsComma = true
    }

    /// Ends a top-level value with a line feed (NDJSON, one value per line): the next value
    /// starts the next line, without a comma.
    public mutating func endLine() {
        bytes.append(0x0A)
        needsComma = false
    }

    /// Writes `{`.
    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    /// Writes `}`.
    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    /// Writes `[`.
    public mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    /// Writes `]`.
    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// Writes an object member name and its `:`; the next call writes the value.
    public mutating func key(_ key: String) {
        separate()
        appendQuoted(key)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    /// Writes a string value, escaped per RFC 8259.
    public mutating func string(_ value: String) {
        separate()
        appendQuoted(value)
    }

    /// Writes an object of strings, its members in key order (the same text for the same
    /// pairs, whatever the dictionary's order).
    public mutating func sortedObject(_ pairs: [String: String]) {
        beginObject()
        for (key, value) in pairs.sorted(by: { $0.key < $1.key }) {
            self.key(key)
            string(value)
        }
        endObject()
    }

    /// Writes an integer value.
    public mutating func int(_ value: Int64) {
        separate()
        appendInteger(value)
    }

    /// Writes an integer value.
    public mutating func int(_ value: Int) {
        int(Int64(value))
    }

    /// The largest magnitude a whole double is written as an integer at: 2^53. Up to it every
    /// integer is a `Double`, so the digits are exact and read back as the same double; above it
    /// the shortest round-trip form (`1e+16`) is written, rather than digits that claim a
    /// precision the value does not have.
    public static let largestIntegerDouble: Double = 9_007_199_254_740_992

    /// Writes a double value; a non-finite one (not representable in JSON) is written as `null`.
    /// A whole number of magnitude at most ``largestIntegerDouble`` is written as an integer
    /// (`3`, not `3.0`); anything else in the shortest form that reads back as the same double.
    public mutating func double(_ value: Double) {
        guard value.isFinite else { return null() }
        separate()
        if value == value.rounded(.towardZero), abs(value) <= Self.largestIntegerDouble {
            appendInteger(Int64(value))
        } else {
            bytes.append(contentsOf: value.description.utf8)
        }
    }

    /// Writes `true` or `false`.
    public mutating func bool(_ value: Bool) {
        separate()
        bytes.append(contentsOf: value ? Self.trueBytes : Self.falseBytes)
    }

    /// Writes `null`.
    public mutating func null() {
        separate()
        bytes.append(contentsOf: Self.nullBytes)
    }

    /// Writes already-valid JSON bytes as one value, unchanged.
    public mutating func raw(_ value: RawJSON) {
        separate()
        bytes.append(contentsOf: value.bytes)
    }

    /// Writes a UUID as a lowercase string (`Foundation.UUID.uuidString` is uppercase).
    public mutating func uuid(_ value: UUID) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        appendUUID(value)
        bytes.append(UInt8(ascii: "\""))
    }

    /// Writes a string value whose bytes `body` appends, with no escaping: for values such as
    /// timestamps whose characters never need it.
    public mutating func unescapedString(_ body: (inout [UInt8]) -> Void) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        body(&bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// Writes a string, or `null` when `value` is nil.
    public mutating func string(_ value: String?) {
        if let value { string(value) } else { null() }
    }

    /// Writes an integer, or `null` when `value` is nil.
    public mutating func int(_ value: Int64?) {
        if let value { int(value) } else { null() }
    }

    /// Writes a value that knows how to write itself.
    public mutating func value(_ value: some JSONWritable) {
        value.write(to: &self)
    }

    // MARK: - Bytes

    private static let trueBytes: [UInt8] = Array("true".utf8)
    private static let falseBytes: [UInt8] = Array("false".utf8)
    private static let nullBytes: [UInt8] = Array("null".utf8)
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func appendInteger(_ value: Int64) {
        if value == 0 {
            bytes.append(UInt8(ascii: "0"))
            return
        }
        // Work on the magnitude as UInt64 so that Int64.min does not overflow.
        var magnitude = value.magnitude
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            var count = 0
            while magnitude > 0 {
                buffer[count] = UInt8(ascii: "0") &+ UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            }
            while count > 0 {
                count -= 1
                bytes.append(buffer[count])
            }
        }
    }

    private mutating func appendUUID(_ value: UUID) {
        withUnsafeBytes(of: value.uuid) { raw in
            for (index, byte) in raw.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { bytes.append(UInt8(ascii: "-")) }
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0x0F)])
            }
        }
    }

    /// Appends `"value"`, escaping `"`, `\`, the control characters U+0000–U+001F,
    /// and U+2028/U+2029 (valid JSON, but line terminators in JavaScript source,
    /// so escaping them keeps the output safe to embed in a script).
    private mutating func appendQuoted(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            var start = 0
            var index = 0
            let count = utf8.count
            while index < count {
                let byte = utf8[index]
                if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") && byte != 0xE2 {
                    index += 1
                    continue
                }
                if byte == 0xE2 {
                    // U+2028 is E2 80 A8, U+2029 is E2 80 A9.
                    guard index + 2 < count, utf8[index + 1] == 0x80,
                          utf8[index + 2] == 0xA8 || utf8[index + 2] == 0xA9
                    else {
                        index += 1
                        continue
                    }
                    bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                    bytes.append(contentsOf: utf8[index + 2] == 0xA8 ? Self.lineSeparator : Self.paragraphSeparator)
                    index += 3
                    start = index
                    continue
                }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
                case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
                default:
                    bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                    bytes.append(Self.hexDigits[Int(byte >> 4)])
                    bytes.append(Self.hexDigits[Int(byte & 0x0F)])
                }
                index += 1
                start = index
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<count]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static let lineSeparator: [UInt8] = Array(#"\u2028"#.utf8)
    private static let paragraphSeparator: [UInt8] = Array(#"\u2029"#.utf8)
}

/// A value that writes itself as JSON with a `JSONWriter` (the fast path for responses).
public protocol JSONWritable {
    /// Writes this value as one JSON value.
    func write(to writer: inout JSONWriter)
}

extension JSONWritable {
    /// This value as JSON bytes.
    public func jsonBytes() -> [UInt8] {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.bytes
    }

    /// This value as a JSON string (for tests and logs).
    public func jsonString() -> String {
        String(decoding: jsonBytes(), as: UTF8.self)
    }
}

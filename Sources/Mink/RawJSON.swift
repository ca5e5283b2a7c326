/// One JSON value held as its exact bytes, never decoded and re-encoded.
///
/// Event `data`, snapshot `state` and read-model documents travel as `RawJSON`:
/// numbers such as `12345678901234567890` or `1e400` that a `Double` would
/// mangle, escapes and key order all survive byte for byte. Build one with
/// `init(validating:)` from untrusted input; `JSONWriter.raw(_:)` embeds it.
///
/// The `Codable` conformance exists for convenience (tests, tools) and goes
/// through `JSONValue`, so with `JSONEncoder`/`JSONDecoder` numbers pass through
/// `Double`/`Int64` and key order is not kept; the hand-written
/// `JSONWriter`/`JSONReader` paths are exact.
public struct RawJSON: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The UTF-8 bytes of one valid JSON value.
    public let bytes: [UInt8]

    /// Wraps bytes already known to be one valid JSON value (from `JSONReader.readRaw()` or storage).
    public init(unchecked bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Validates `bytes` as exactly one JSON value (surrounding whitespace is dropped).
    /// - Throws: `JSONError` (`.syntax`) with the byte offset of the problem.
    public init(validating bytes: [UInt8], maxDepth: Int = 512) throws {
        var reader = JSONReader(bytes, maxDepth: maxDepth)
        let range = try reader.skipValue()
        try reader.finish()
        self.bytes = range.count == bytes.count ? bytes : Array(bytes[range])
    }

    /// Validates the UTF-8 of `string` as exactly one JSON value.
    /// - Throws: `JSONError` (`.syntax`).
    public init(validating string: String) throws {
        try self.init(validating: Array(string.utf8))
    }

    /// `null`
    public static let null = RawJSON(unchecked: Array("null".utf8))
    /// `{}`
    public static let emptyObject = RawJSON(unchecked: Array("{}".utf8))

    /// The bytes as a string.
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    /// The bytes as a string.
    public var description: String { string }

    /// The value decoded into a `JSONValue` tree.
    /// - Throws: `JSONError` if the bytes are not valid JSON (only for `unchecked` input).
    public func decoded() throws -> JSONValue {
        var reader = JSONReader(bytes)
        let value = try reader.readValue()
        try reader.finish()
        return value
    }

    /// The same value without insignificant whitespace (spaces, tabs and line
    /// breaks outside strings); everything else is kept byte for byte.
    ///
    /// Why: a value sent pretty-printed would otherwise carry line breaks into
    /// places where a line break means something, such as an SSE `data:` line.
    public func minified() -> RawJSON {
        var hasWhitespace = false
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else if byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
                hasWhitespace = true
                break
            }
        }
        guard hasWhitespace else { return self }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        inString = false
        escaped = false
        for byte in bytes {
            if inString {
                output.append(byte)
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
                continue
            } else {
                if byte == UInt8(ascii: "\"") { inString = true }
                output.append(byte)
            }
        }
        return RawJSON(unchecked: output)
    }

    /// Decodes any JSON value through `JSONValue` (see the type's note on precision).
    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        self.init(unchecked: value.jsonBytes())
    }

    /// Encodes the value through `JSONValue` (see the type's note on precision).
    public func encode(to encoder: any Encoder) throws {
        try decoded().encode(to: encoder)
    }
}

extension RawJSON: JSONWritable, JSONReadable {
    /// Writes the bytes unchanged.
    public func write(to writer: inout JSONWriter) {
        writer.raw(self)
    }

    /// Reads and validates one value, keeping its bytes.
    public init(from reader: inout JSONReader) throws {
        self = try reader.readRaw()
    }
}

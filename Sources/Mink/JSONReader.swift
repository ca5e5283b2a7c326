/// The kind of the next JSON value, as told by its first byte.
public enum JSONKind: Sendable, Hashable {
    /// `{`
    case object
    /// `[`
    case array
    /// `"`
    case string
    /// `-` or a digit
    case number
    /// `true` or `false`
    case bool
    /// `null`
    case null
}

/// A strict, validating pull parser over JSON bytes (RFC 8259).
///
/// Callers walk the document: `beginObject()` then `nextKey()` until it returns
/// nil, reading each member's value with one of the `read…` methods or
/// `skipValue()`. `readRaw()` validates a value completely and returns its exact
/// bytes without decoding it, which is how event `data` crosses the server.
///
/// Strictness, because data is stored as sent and other readers (PostgreSQL's
/// `jsonb`, browsers) must accept it later: no trailing commas, no comments, no
/// `NaN`/`Infinity`, no leading zeros, only the escapes RFC 8259 lists, no
/// unpaired surrogate escapes, unescaped control characters rejected, UTF-8
/// validated (no overlong forms, no surrogates, nothing above U+10FFFF), and
/// nesting limited to `maxDepth`. Every error is a ``JSONError``: `.syntax`
/// naming the byte offset (the HTTP API answers `invalid_json`), or `.unexpectedValue`
/// for a well-formed value of the wrong type ("expected a string"; `bad_request`).
///
/// The project's one JSON parser: request and response bodies, read-model documents in
/// every storage adapter, and the client all read JSON through it.
public struct JSONReader: Sendable {
    /// The document.
    public let bytes: [UInt8]
    /// The offset of the next unread byte.
    public private(set) var offset: Int
    /// The deepest nesting of arrays and objects accepted.
    public let maxDepth: Int
    /// For each open container: whether its next element is the first.
    private var firstInContainer: [Bool] = []

    /// Creates a reader at the start of `bytes`.
    /// - Parameters:
    ///   - bytes: the JSON document.
    ///   - maxDepth: the deepest nesting accepted (default 512).
    public init(_ bytes: [UInt8], maxDepth: Int = 512) {
        self.bytes = bytes
        self.offset = 0
        self.maxDepth = maxDepth
    }

    /// Creates a reader over the UTF-8 of `string`.
    public init(_ string: String, maxDepth: Int = 512) {
        self.init(Array(string.utf8), maxDepth: maxDepth)
    }

    // MARK: - Structure

    /// Returns the kind of the next value without consuming it.
    /// - Throws: `invalid_json` at the end of input or on a byte no value starts with.
    public mutating func peek() throws -> JSONKind {
        skipWhitespace()
        guard offset < bytes.count else { throw JSONError.syntax("unexpected end of input", at: offset) }
        switch bytes[offset] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: throw unexpectedByte()
        }
    }

    /// Consumes `{`.
    /// - Throws: `bad_request` when the next value is not an object; `invalid_json` on bad syntax.
    public mutating func beginObject() throws {
        try expectKind(.object, "an object")
        try enterContainer()
    }

    /// The part of reading a member name that ``nextKey()`` and ``nextKey(among:)`` share:
    /// consumes the closing `}` (returning `false`), or the `,` before a member that is not the
    /// first, and leaves `offset` at the name's opening quote.
    /// - Throws: `invalid_json` on a missing comma, a trailing comma, or a name not in quotes.
    @inline(__always)
    private mutating func enterMemberName() throws -> Bool {
        skipWhitespace()
        guard offset < bytes.count else { throw JSONError.syntax("unexpected end of input inside an object", at: offset) }
        let first = firstInContainer[firstInContainer.count - 1]
        // A `}` here never follows a comma: `,` is consumed below together with the next key.
        if bytes[offset] == UInt8(ascii: "}") {
            offset += 1
            firstInContainer.removeLast()
            return false
        }
        if !first {
            guard bytes[offset] == UInt8(ascii: ",") else {
                throw JSONError.syntax("expected ',' or '}' in an object", at: offset)
            }
            offset += 1
            skipWhitespace()
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
                throw JSONError.syntax("trailing comma in an object", at: offset)
            }
        }
        firstInContainer[firstInContainer.count - 1] = false
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else {
            throw JSONError.syntax("expected a member name in double quotes", at: offset)
        }
        return true
    }

    /// Reads the next member name of the current object and its `:`, or consumes
    /// the closing `}` and returns nil.
    /// - Throws: `invalid_json` on a missing comma, a trailing comma, or a bad key.
    public mutating func nextKey() throws -> String? {
        guard try enterMemberName() else { return nil }
        let key = try scanString(decode: true)!
        skipWhitespace()
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else {
            throw JSONError.syntax("expected ':' after a member name", at: offset)
        }
        offset += 1
        return key
    }

    /// Consumes `[`.
    /// - Throws: `bad_request` when the next value is not an array; `invalid_json` on bad syntax.
    public mutating func beginArray() throws {
        try expectKind(.array, "an array")
        try enterContainer()
    }

    /// Prepares to read the next element of the current array (returns true), or
    /// consumes the closing `]` (returns false).
    /// - Throws: `invalid_json` on a missing or trailing comma.
    public mutating func nextElement() throws -> Bool {
        skipWhitespace()
        guard offset < bytes.count else { throw JSONError.syntax("unexpected end of input inside an array", at: offset) }
        let first = firstInContainer[firstInContainer.count - 1]
        if bytes[offset] == UInt8(ascii: "]") {
            offset += 1
            firstInContainer.removeLast()
            return false
        }
        if !first {
            guard bytes[offset] == UInt8(ascii: ",") else {
                throw JSONError.syntax("expected ',' or ']' in an array", at: offset)
            }
            offset += 1
            skipWhitespace()
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
                throw JSONError.syntax("trailing comma in an array", at: offset)
            }
        }
        firstInContainer[firstInContainer.count - 1] = false
        return true
    }

    /// Checks that only whitespace follows the value read.
    /// - Throws: `invalid_json` on anything else.
    public mutating func finish() throws {
        skipWhitespace()
        guard offset == bytes.count else {
            throw JSONError.syntax("unexpected data after the JSON value", at: offset)
        }
    }

    // MARK: - Values

    /// Reads a string value.
    /// - Throws: `bad_request` when the value is not a string; `invalid_json` on bad syntax.
    public mutating func readString() throws -> String {
        try expectKind(.string, "a string")
        return try scanString(decode: true)!
    }

    /// Reads an integer value (no fraction, no exponent) that fits in `Int64`.
    /// - Throws: `bad_request` for another type, a fraction or an out-of-range integer.
    public mutating func readInt() throws -> Int64 {
        try expectKind(.number, "an integer")
        let start = offset
        try scanNumber()
        var negative = false
        var index = start
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        var magnitude: UInt64 = 0
        while index < offset {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else {
                throw JSONError(.unexpectedValue, "expected an integer, found \(text(start..<offset))", offset: start)
            }
            let (times, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw outOfRange(start) }
            magnitude = sum
            index += 1
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw outOfRange(start) }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw outOfRange(start) }
        return Int64(magnitude)
    }

    /// Reads a number value as its literal text (exact, no rounding).
    /// - Throws: `bad_request` when the value is not a number; `invalid_json` on bad syntax.
    public mutating func readNumberText() throws -> String {
        try expectKind(.number, "a number")
        let start = offset
        try scanNumber()
        return text(start..<offset)
    }

    /// Reads `true` or `false`.
    /// - Throws: `bad_request` when the value is not a boolean.
    public mutating func readBool() throws -> Bool {
        try expectKind(.bool, "true or false")
        if bytes[offset] == UInt8(ascii: "t") {
            try scanLiteral("true")
            return true
        }
        try scanLiteral("false")
        return false
    }

    /// Consumes `null` and returns true when the next value is `null`; otherwise consumes nothing.
    /// - Throws: `invalid_json` at the end of input or on a misspelled literal.
    public mutating func readNullIfPresent() throws -> Bool {
        guard try peek() == .null else { return false }
        try scanLiteral("null")
        return true
    }

    /// Validates the next value completely and returns the range of its bytes.
    /// - Throws: `invalid_json` naming the byte offset of the first problem.
    @discardableResult
    public mutating func skipValue() throws -> Range<Int> {
        skipWhitespace()
        let start = offset
        try scanValue(depth: firstInContainer.count)
        return start..<offset
    }

    /// Validates the next value and returns its exact bytes, undecoded.
    /// - Throws: `invalid_json` naming the byte offset of the first problem.
    public mutating func readRaw() throws -> RawJSON {
        let range = try skipValue()
        return RawJSON(unchecked: Array(bytes[range]))
    }

    /// Reads the next value into a `JSONValue` tree (numbers keep their literal text).
    /// - Throws: `invalid_json` on bad syntax or nesting deeper than `maxDepth`.
    public mutating func readValue() throws -> JSONValue {
        switch try peek() {
        case .null:
            try scanLiteral("null")
            return .null
        case .bool:
            return .bool(try readBool())
        case .number:
            return .number(try readNumberText())
        case .string:
            return .string(try readString())
        case .array:
            try beginArray()
            var elements: [JSONValue] = []
            while try nextElement() { elements.append(try readValue()) }
            return .array(elements)
        case .object:
            try beginObject()
            var members: [String: JSONValue] = [:]
            while let key = try nextKey() { members[key] = try readValue() }
            return .object(members)
        }
    }

    // MARK: - Scanning

    private mutating func enterContainer() throws {
        guard firstInContainer.count < maxDepth else {
            throw JSONError.syntax("nesting deeper than \(maxDepth) levels", at: offset)
        }
        offset += 1
        firstInContainer.append(true)
    }

    private mutating func expectKind(_ kind: JSONKind, _ what: String) throws {
        let found = try peek()
        guard found == kind else {
            // A value of the wrong kind, unless it is no valid value at all: `nul`, `tru`,
            // `nullgarbage` are syntax errors (`invalid_json` with the offset), not "found null".
            var whole = self
            try whole.skipValue()
            whole.skipWhitespace()
            if whole.offset < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}")].contains(bytes[whole.offset]) {
                throw whole.unexpectedByte()
            }
            throw JSONError(.unexpectedValue, "expected \(what), found \(Self.name(of: found))", offset: offset)
        }
    }

    private static func name(of kind: JSONKind) -> String {
        switch kind {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }

    private func outOfRange(_ start: Int) -> JSONError {
        JSONError(.unexpectedValue, "integer \(text(start..<offset)) is out of range", offset: start)
    }

    private func text(_ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }

    private func unexpectedByte() -> JSONError {
        let byte = bytes[offset]
        if byte >= 0x21 && byte < 0x7F {
            return .syntax("unexpected character '\(Character(Unicode.Scalar(byte)))'", at: offset)
        }
        return .syntax("unexpected byte 0x\(String(byte, radix: 16, uppercase: true))", at: offset)
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x0A, 0x0D, 0x09: offset += 1
            default: return
            }
        }
    }

    /// Validates one value starting at `offset` (after whitespace) and moves past it.
    private mutating func scanValue(depth: Int) throws {
        skipWhitespace()
        guard offset < bytes.count else { throw JSONError.syntax("unexpected end of input", at: offset) }
        switch bytes[offset] {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { throw JSONError.syntax("nesting deeper than \(maxDepth) levels", at: offset) }
            offset += 1
            skipWhitespace()
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
                offset += 1
                return
            }
            while true {
                skipWhitespace()
                guard offset < bytes.count else { throw JSONError.syntax("unexpected end of input inside an object", at: offset) }
                guard bytes[offset] == UInt8(ascii: "\"") else {
                    if bytes[offset] == UInt8(ascii: "}") { throw JSONError.syntax("trailing comma in an object", at: offset) }
                    throw JSONError.syntax("expected a member name in double quotes", at: offset)
                }
                _ = try scanString(decode: false)
                skipWhitespace()
                guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else {
                    throw JSONError.syntax("expected ':' after a member name", at: offset)
                }
                offset += 1
                try scanValue(depth: depth + 1)
                skipWhitespace()
                guard offset < bytes.count else { throw JSONError.syntax("unexpected end of input inside an object", at: offset) }
                if bytes[offset] == UInt8(ascii: ",") {
                    offset += 1
                    continue
                }
                guard bytes[offset] == UInt8(ascii: "}") else {
                    throw JSONError.syntax("expected ',' or '}' in an object", at: offset)
                }
                offset += 1
                return
            }
        case UInt8(ascii: "["):
            guard depth < maxDepth else { throw JSONError.syntax("nesting deeper than \(maxDepth) levels", at: offset) }
            offset += 1
            skipWhitespace()
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
                offset += 1
                return
            }
            while true {
                skipWhitespace()
                if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
                    throw JSONError.syntax("trailing comma in an array", at: offset)
                }
                try scanValue(depth: depth + 1)
                skipWhitespace()
                guard offset < bytes.count else { throw JSONError.syntax("unexpected end of input inside an array", at: offset) }
                if bytes[offset] == UInt8(ascii: ",") {
                    offset += 1
                    continue
                }
                guard bytes[offset] == UInt8(ascii: "]") else {
                    throw JSONError.syntax("expected ',' or ']' in an array", at: offset)
                }
                offset += 1
                return
            }
        case UInt8(ascii: "\""):
            _ = try scanString(decode: false)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try scanNumber()
        case UInt8(ascii: "t"):
            try scanLiteral("true")
        case UInt8(ascii: "f"):
            try scanLiteral("false")
        case UInt8(ascii: "n"):
            try scanLiteral("null")
        default:
            throw unexpectedByte()
        }
    }

    private mutating func scanLiteral(_ literal: StaticString) throws {
        let count = literal.utf8CodeUnitCount
        let start = offset
        guard offset + count <= bytes.count else { throw JSONError.syntax("invalid literal", at: start) }
        let matches = literal.withUTF8Buffer { expected in
            for index in 0..<count where bytes[start + index] != expected[index] { return false }
            return true
        }
        guard matches else { throw JSONError.syntax("invalid literal", at: start) }
        offset += count
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    private mutating func scanNumber() throws {
        let start = offset
        if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        guard offset < bytes.count, isDigit(bytes[offset]) else {
            throw JSONError.syntax("expected a digit after '-'", at: offset)
        }
        if bytes[offset] == UInt8(ascii: "0") {
            offset += 1
            if offset < bytes.count, isDigit(bytes[offset]) {
                throw JSONError.syntax("leading zeros are not allowed in numbers", at: start)
            }
        } else {
            while offset < bytes.count, isDigit(bytes[offset]) { offset += 1 }
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            offset += 1
            guard offset < bytes.count, isDigit(bytes[offset]) else {
                throw JSONError.syntax("expected a digit after the decimal point", at: offset)
            }
            while offset < bytes.count, isDigit(bytes[offset]) { offset += 1 }
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard offset < bytes.count, isDigit(bytes[offset]) else {
                throw JSONError.syntax("expected a digit in the exponent", at: offset)
            }
            while offset < bytes.count, isDigit(bytes[offset]) { offset += 1 }
        }
    }

    @inline(__always)
    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// Scans a string starting at its opening quote, validating escapes and
    /// UTF-8; returns the decoded string when `decode` is true.
    private mutating func scanString(decode: Bool) throws -> String? {
        let open = offset
        offset += 1
        var decoded: [UInt8]? = nil
        var runStart = offset
        while true {
            guard offset < bytes.count else { throw JSONError.syntax("unterminated string", at: open) }
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                let result: String?
                if decode {
                    if var buffer = decoded {
                        buffer.append(contentsOf: bytes[runStart..<offset])
                        result = String(decoding: buffer, as: UTF8.self)
                    } else {
                        result = String(decoding: bytes[runStart..<offset], as: UTF8.self)
                    }
                } else {
                    result = nil
                }
                offset += 1
                return result
            }
            if byte < 0x20 {
                throw JSONError.syntax("unescaped control character 0x\(String(byte, radix: 16, uppercase: true)) in a string", at: offset)
            }
            if byte < 0x80 {
                if byte == UInt8(ascii: "\\") {
                    let before = offset
                    let scalar = try scanEscape()
                    if decode {
                        if decoded == nil { decoded = [] }
                        decoded!.append(contentsOf: bytes[runStart..<before])
                        if let unicode = Unicode.Scalar(scalar) { decoded!.append(contentsOf: UTF8.encode(unicode)!) }
                    }
                    runStart = offset
                    continue
                }
                offset += 1
                continue
            }
            try scanUTF8Sequence()
        }
    }

    /// Scans one escape sequence at `offset` (its backslash) and returns the code point it stands for.
    private mutating func scanEscape() throws -> UInt32 {
        let start = offset
        offset += 1
        guard offset < bytes.count else { throw JSONError.syntax("unterminated escape", at: start) }
        let byte = bytes[offset]
        offset += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): return UInt32(byte)
        case UInt8(ascii: "b"): return 0x08
        case UInt8(ascii: "f"): return 0x0C
        case UInt8(ascii: "n"): return 0x0A
        case UInt8(ascii: "r"): return 0x0D
        case UInt8(ascii: "t"): return 0x09
        case UInt8(ascii: "u"): break
        default: throw JSONError.syntax("invalid escape sequence", at: start)
        }
        var scalar = try scanHex4(escapeStart: start)
        if scalar >= 0xD800 && scalar <= 0xDBFF {
            // A high surrogate must be followed by an escaped low surrogate.
            guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u") else {
                throw JSONError.syntax("unpaired surrogate in \\u escape", at: start)
            }
            let lowStart = offset
            offset += 2
            let low = try scanHex4(escapeStart: lowStart)
            guard low >= 0xDC00 && low <= 0xDFFF else {
                throw JSONError.syntax("unpaired surrogate in \\u escape", at: start)
            }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
            throw JSONError.syntax("unpaired surrogate in \\u escape", at: start)
        }
        return scalar
    }

    private mutating func scanHex4(escapeStart: Int) throws -> UInt32 {
        guard offset + 4 <= bytes.count else { throw JSONError.syntax("incomplete \\u escape", at: escapeStart) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw JSONError.syntax("invalid hex digit in \\u escape", at: offset)
            }
            value = value << 4 | UInt32(digit)
            offset += 1
        }
        return value
    }

    /// Validates one multi-byte UTF-8 sequence at `offset` (Unicode 15, table 3-7).
    private mutating func scanUTF8Sequence() throws {
        let start = offset
        let lead = bytes[offset]
        let length: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upper = 0x9F  // excludes the surrogates U+D800–U+DFFF
        case 0xF0: length = 4; lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upper = 0x8F  // nothing above U+10FFFF
        default: throw JSONError.syntax("invalid UTF-8 byte 0x\(String(lead, radix: 16, uppercase: true))", at: start)
        }
        guard start + length <= bytes.count else { throw JSONError.syntax("truncated UTF-8 sequence", at: start) }
        let second = bytes[start + 1]
        guard second >= lower && second <= upper else { throw JSONError.syntax("invalid UTF-8 sequence", at: start) }
        for index in 2..<max(2, length) {
            let byte = bytes[start + index]
            guard byte >= 0x80 && byte <= 0xBF else { throw JSONError.syntax("invalid UTF-8 sequence", at: start) }
        }
        offset += length
    }
}

/// A value that reads itself from a `JSONReader` (the fast path for request and response bodies).
public protocol JSONReadable {
    /// Reads one JSON value from `reader` as this type.
    init(from reader: inout JSONReader) throws
}

extension JSONReadable {
    /// Reads a whole document as this type; only whitespace may follow the value.
    /// - Throws: `JSONError` (`.syntax`, or `.unexpectedValue` for shape).
    public init(jsonBytes: [UInt8]) throws {
        var reader = JSONReader(jsonBytes)
        self = try Self(from: &reader)
        try reader.finish()
    }

    /// Reads a whole document given as a string.
    /// - Throws: `JSONError`.
    public init(jsonString: String) throws {
        try self.init(jsonBytes: Array(jsonString.utf8))
    }
}

/// What ``JSONReader/nextKey(among:)`` found.
public enum JSONMemberName: Sendable, Hashable {
    /// The name at this index of the list.
    case listed(Int)
    /// A name not in the list.
    case other
}

extension JSONReader {
    /// Like ``nextKey()``, but compares the member name with `names` (UTF-8 bytes) instead of
    /// returning it: no `String` is made for a name the caller does not want (the projection fold
    /// reads a few members of every event's `data` this way). The name is validated exactly as
    /// `nextKey()` validates it, and an escaped name is compared after unescaping.
    /// - Returns: `nil` after consuming the closing `}`.
    /// - Throws: `invalid_json` as ``nextKey()`` does.
    public mutating func nextKey(among names: [[UInt8]]) throws -> JSONMemberName? {
        guard try enterMemberName() else { return nil }
        let open = offset
        _ = try scanString(decode: false)
        let name = (open + 1)..<(offset - 1)
        var match = JSONMemberName.other
        if bytes[name].contains(UInt8(ascii: "\\")) {
            // Rare: compare the unescaped name.
            let end = offset
            offset = open
            let decoded = Array(try scanString(decode: true)!.utf8)
            offset = end
            if let i = names.firstIndex(of: decoded) { match = .listed(i) }
        } else {
            let count = name.count
            for (i, candidate) in names.enumerated() where candidate.count == count && candidate.elementsEqual(bytes[name]) {
                match = .listed(i)
                break
            }
        }
        skipWhitespace()
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else {
            throw JSONError.syntax("expected ':' after a member name", at: offset)
        }
        offset += 1
        return match
    }
}

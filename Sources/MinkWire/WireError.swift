import Foundation
import Mink

/// An error found while reading or checking a request body.
///
/// It carries the `ErrorCode` the server answers with, so the mapping from a
/// decoding failure to an HTTP status lives in one place (`ErrorCode.httpStatus`).
/// The message is safe to show to the client: it names what is wrong and where
/// (a key path such as `events[2].type`, or a byte offset for syntax errors).
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The error code for the response body.
    public var code: ErrorCode
    /// A one-line human sentence naming the problem and its place.
    public var message: String
    /// The byte offset in the body where the problem was found, when known.
    public var offset: Int?
    /// Whether the message already starts with its key path (so outer readers do not add theirs).
    var hasPath = false

    /// Creates an error.
    public init(code: ErrorCode, message: String, offset: Int? = nil) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    /// The message.
    public var description: String { message }

    /// Errors are equal when code, message and offset are.
    public static func == (lhs: WireError, rhs: WireError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.offset == rhs.offset
    }

    /// Hashes code, message and offset.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
        hasher.combine(offset)
    }

    /// The HTTP API's error for a ``JSONError`` of the one JSON reader: `invalid_json` for
    /// syntax, `bad_request` for a value of the wrong type.
    public init(_ error: JSONError) {
        self.init(code: error.kind == .syntax ? .invalidJSON : .badRequest, message: error.message, offset: error.offset)
    }

    /// The error as a response body.
    public var body: ErrorBody { ErrorBody(code: code, message: message) }

    /// A syntax error at a byte offset.
    static func syntax(_ what: String, at offset: Int) -> WireError {
        WireError(code: .invalidJSON, message: "invalid JSON at byte \(offset): \(what)", offset: offset)
    }

    /// The same error with `path` prefixed to the message (syntax errors are left as they are).
    func prefixed(_ path: String) -> WireError {
        guard code != .invalidJSON, !hasPath, !path.isEmpty else { return self }
        var copy = self
        copy.message = "\(path): \(message)"
        copy.hasPath = true
        return copy
    }
}

/// Runs `body`, prefixing the key path to any `WireError` it throws (a reader's `JSONError`
/// becomes its `WireError` first).
@inline(__always)
func at<T>(_ path: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as WireError {
        throw error.prefixed(path())
    } catch let error as JSONError {
        throw WireError(error).prefixed(path())
    }
}

extension JSONReader {
    /// Reads an object member by member. `member` reads the value of each key it
    /// knows and returns true; for any other key the reader rejects it
    /// (`bad_request`, "unknown key") when `rejectUnknown`, else skips it.
    /// Duplicate keys are rejected. Errors are prefixed with the key path.
    mutating func readObject(
        at path: String,
        rejectUnknown: Bool,
        _ member: (inout JSONReader, _ key: String, _ keyPath: String) throws -> Bool
    ) throws {
        try MinkWire.at(path) { try beginObject() }
        var seen = Set<String>()
        while let key = try nextKey() {
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            guard seen.insert(key).inserted else {
                throw WireError(code: .badRequest, message: "duplicate key", offset: offset).prefixed(keyPath)
            }
            let handled = try MinkWire.at(keyPath) { try member(&self, key, keyPath) }
            if !handled {
                if rejectUnknown {
                    throw WireError(code: .badRequest, message: "unknown key", offset: offset).prefixed(keyPath)
                }
                try skipValue()
            }
        }
    }

    /// Reads an array element by element, calling `element` with each index and its key path.
    mutating func readArray(at path: String, _ element: (inout JSONReader, _ index: Int, _ keyPath: String) throws -> Void) throws {
        try MinkWire.at(path) { try beginArray() }
        var index = 0
        while try nextElement() {
            let keyPath = "\(path)[\(index)]"
            try MinkWire.at(keyPath) { try element(&self, index, keyPath) }
            index += 1
        }
    }

    /// Checks that only whitespace follows the value read (a ``JSONError`` becomes its `WireError`).
    mutating func finishBody() throws {
        try MinkWire.at("") { try finish() }
    }

    /// Reads a UUID string.
    mutating func readUUID() throws -> UUID {
        let start = offset
        let text = try readString()
        guard let uuid = UUID(uuidString: text) else {
            throw WireError(code: .badRequest, message: "not a UUID: \"\(text)\"", offset: start)
        }
        return uuid
    }
}

/// The error for a required key that is absent.
func missingKey(_ keyPath: String, code: ErrorCode = .badRequest) -> WireError {
    WireError(code: code, message: "required", offset: nil).prefixed(keyPath)
}

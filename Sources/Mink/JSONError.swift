/// A problem found by ``JSONReader``: bad syntax, or a well-formed value of the wrong type.
///
/// The message is safe to show to a client; it names the byte offset for syntax errors. Layers
/// above give it their own code (the HTTP API answers `invalid_json` for `.syntax` and
/// `bad_request` for `.unexpectedValue`; the core answers `.serializationFailed`).
public struct JSONError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem it is.
    public enum Kind: Sendable, Hashable {
        /// The bytes are not JSON (RFC 8259), or nest deeper than allowed.
        case syntax
        /// Valid JSON, but not the type or range asked for.
        case unexpectedValue
    }

    /// What kind of problem it is.
    public var kind: Kind
    /// A one-line sentence naming the problem and its place.
    public var message: String
    /// The byte offset where the problem was found, when known.
    public var offset: Int?

    /// Creates an error.
    public init(_ kind: Kind, _ message: String, offset: Int? = nil) {
        self.kind = kind
        self.message = message
        self.offset = offset
    }

    /// The message.
    public var description: String { message }

    /// A syntax error at a byte offset.
    static func syntax(_ what: String, at offset: Int) -> JSONError {
        JSONError(.syntax, "invalid JSON at byte \(offset): \(what)", offset: offset)
    }
}

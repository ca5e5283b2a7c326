/// An HTTP protocol version as sent on the request line.
public struct HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    /// The major version digit.
    public var major: Int
    /// The minor version digit.
    public var minor: Int

    /// Creates a version from its two digits.
    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// `HTTP/1.1`.
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)
    /// `HTTP/1.0`.
    public static let http1_0 = HTTPVersion(major: 1, minor: 0)

    /// The version as written on the wire, e.g. `HTTP/1.1`.
    public var description: String { "HTTP/\(major).\(minor)" }
}

/// An ordered list of header fields with case-insensitive name lookup.
///
/// Names keep the spelling they were added with; repeated names are kept as separate
/// entries in order (use ``values(for:)`` to read them all).
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral, Equatable {
    /// One header field.
    public typealias Element = (name: String, value: String)

    @usableFromInline var storage: [(name: String, value: String)]

    /// Creates an empty header list.
    public init() { storage = [] }

    /// Creates a header list from `(name, value)` pairs, keeping their order.
    public init(_ fields: [(String, String)]) {
        storage = fields.map { (name: $0.0, value: $0.1) }
    }

    /// Creates a header list from a dictionary literal, keeping the literal's order.
    public init(dictionaryLiteral elements: (String, String)...) {
        storage = elements.map { (name: $0.0, value: $0.1) }
    }

    /// The number of fields (repeated names counted separately).
    public var count: Int { storage.count }

    /// Whether there are no fields.
    public var isEmpty: Bool { storage.isEmpty }

    /// The first value of the field `name` (case-insensitive), or `nil`.
    public subscript(name: String) -> String? {
        for field in storage where asciiCaseInsensitiveEquals(field.name, name) {
            return field.value
        }
        return nil
    }

    /// Every value of the field `name` (case-insensitive), in order.
    public func values(for name: String) -> [String] {
        storage.filter { asciiCaseInsensitiveEquals($0.name, name) }.map(\.value)
    }

    /// The content coding of a request body, from every `Content-Encoding` line as one list
    /// (RFC 9110 §5.3: `gzip` on one line and `br` on the next is the list `gzip, br`):
    /// `identity` when absent or only `identity`, `gzip` (or `x-gzip`) when that is the one
    /// coding, `unsupported` for anything else — another coding or several codings, which
    /// would be misread as plain or singly-compressed bytes.
    public var requestContentCoding: RequestContentCoding {
        var coding = RequestContentCoding.identity
        for field in storage where asciiCaseInsensitiveEquals(field.name, "content-encoding") {
            for element in field.value.split(separator: ",", omittingEmptySubsequences: false) {
                let c = trimOWS(element)
                if c.isEmpty || asciiCaseInsensitiveEquals(c, "identity") { continue }
                guard coding == .identity, asciiCaseInsensitiveEquals(c, "gzip") || asciiCaseInsensitiveEquals(c, "x-gzip") else {
                    return .unsupported
                }
                coding = .gzip
            }
        }
        return coding
    }

    /// Whether a field named `name` (case-insensitive) is present.
    public func contains(_ name: String) -> Bool {
        storage.contains { asciiCaseInsensitiveEquals($0.name, name) }
    }

    /// Appends a field, keeping any existing ones with the same name.
    public mutating func add(name: String, value: String) {
        storage.append((name: name, value: value))
    }

    /// Sets the field `name` to `value`: the first field of that name takes the value (the
    /// others are removed), or one is appended when there is none.
    public mutating func replace(name: String, value: String) {
        // In place when the field is there (no reallocation; a hot path sets `X-Request-ID`
        // this way), later duplicates removed; appended otherwise.
        guard let i = storage.firstIndex(where: { asciiCaseInsensitiveEquals($0.name, name) }) else {
            storage.append((name: name, value: value))
            return
        }
        storage[i] = (name: name, value: value)
        var j = i + 1
        while j < storage.count {
            if asciiCaseInsensitiveEquals(storage[j].name, name) { storage.remove(at: j) } else { j += 1 }
        }
    }

    /// Removes every field named `name` (case-insensitive).
    public mutating func remove(name: String) {
        storage.removeAll { asciiCaseInsensitiveEquals($0.name, name) }
    }

    /// Whether the comma-separated list in the fields named `name` contains `token`
    /// (case-insensitive, surrounding whitespace ignored), e.g. `Connection: close`.
    public func containsToken(_ token: String, in name: String) -> Bool {
        for field in storage where asciiCaseInsensitiveEquals(field.name, name) {
            for part in field.value.split(separator: ",") {
                if asciiCaseInsensitiveEquals(trimOWS(part), token) { return true }
            }
        }
        return false
    }

    /// Iterates over the fields in order.
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        storage.makeIterator()
    }

    /// Fields are equal when names (case-insensitively) and values match in order.
    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        guard lhs.storage.count == rhs.storage.count else { return false }
        for (a, b) in zip(lhs.storage, rhs.storage) {
            guard asciiCaseInsensitiveEquals(a.name, b.name), a.value == b.value else { return false }
        }
        return true
    }
}

/// What a request body is encoded with (``HTTPHeaders/requestContentCoding``).
public enum RequestContentCoding: Sendable, Equatable {
    case identity
    case gzip
    case unsupported
}

/// Compares two strings byte-wise, folding ASCII letters only.
@inlinable
func asciiCaseInsensitiveEquals<A: StringProtocol, B: StringProtocol>(_ a: A, _ b: B) -> Bool {
    let au = a.utf8, bu = b.utf8
    guard au.count == bu.count else { return false }
    for (x, y) in zip(au, bu) where x != y {
        let lx = (x >= 0x41 && x <= 0x5A) ? x | 0x20 : x
        let ly = (y >= 0x41 && y <= 0x5A) ? y | 0x20 : y
        if lx != ly { return false }
    }
    return true
}

/// Strips spaces and horizontal tabs from both ends.
func trimOWS<S: StringProtocol>(_ s: S) -> Substring {
    var sub = Substring(s)
    while let f = sub.first, f == " " || f == "\t" { sub.removeFirst() }
    while let l = sub.last, l == " " || l == "\t" { sub.removeLast() }
    return sub
}

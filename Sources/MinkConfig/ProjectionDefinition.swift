/// A projection declared in the config file (`projections[i]`, CONFIG.md).
///
/// This is the parsed, validated structure only; compiling it into a running
/// projection is the server's job.
public struct ProjectionDefinition: Hashable, Sendable {
    /// When the projection runs.
    public enum Mode: String, Hashable, Sendable, CaseIterable {
        /// After commit, in the background (the default).
        case async
        /// In the append's transaction.
        case inline
    }

    /// `name`: unique, `^[a-z][a-z0-9_]{0,62}$`.
    public var name: String
    /// `mode` (default `async`).
    public var mode: Mode
    /// `readModel`: the read model written (default: the projection's name).
    public var readModel: String
    /// `indexes`: document fields the storage should index.
    public var indexes: [String]
    /// `handlers`: one per event type, in file order.
    public var handlers: [Handler]

    /// Creates a definition.
    public init(name: String, mode: Mode = .async, readModel: String? = nil, indexes: [String] = [], handlers: [Handler]) {
        self.name = name
        self.mode = mode
        self.readModel = readModel ?? name
        self.indexes = indexes
        self.handlers = handlers
    }

    /// What to do with one event type (`handlers[j]`).
    public struct Handler: Hashable, Sendable {
        /// `event`: the event type handled.
        public var event: String
        /// `id`: where the document's ID comes from (a path or a literal string or number).
        public var id: ProjectionValue
        /// `set`: field → value, in file order; creates the document if missing.
        public var set: [FieldAssignment]
        /// `increment`: field → number added (a missing field counts as 0).
        public var increment: [FieldAssignment]
        /// `unset`: fields removed.
        public var unset: [String]
        /// `append`: field → value appended to the array at that field.
        public var append: [FieldAssignment]
        /// `delete: true` removes the document.
        public var delete: Bool

        /// Creates a handler.
        public init(
            event: String, id: ProjectionValue, set: [FieldAssignment] = [], increment: [FieldAssignment] = [],
            unset: [String] = [], append: [FieldAssignment] = [], delete: Bool = false
        ) {
            self.event = event
            self.id = id
            self.set = set
            self.increment = increment
            self.unset = unset
            self.append = append
            self.delete = delete
        }
    }
}

/// One `field: value` of `set`, `increment` or `append`.
public struct FieldAssignment: Hashable, Sendable {
    /// A dotted path in the document (`address.city`).
    public var field: String
    /// The value.
    public var value: ProjectionValue

    /// Creates an assignment.
    public init(_ field: String, _ value: ProjectionValue) {
        self.field = field
        self.value = value
    }
}

/// A value in a projection handler: a path into the event, or a literal JSON
/// value. Arrays and objects may hold paths themselves
/// (`append: {items: {sku: "$.data.sku"}}`).
///
/// In YAML, a string starting with `$.` is a path; to write a literal string
/// that starts with `$`, double it (`"$$.5"` is the string `$.5`).
public indirect enum ProjectionValue: Hashable, Sendable {
    /// A path into the event; an absent path yields `null`.
    case path(EventPath)
    /// `null`
    case null
    /// `true` or `false`
    case bool(Bool)
    /// An integer.
    case int(Int64)
    /// A floating-point number.
    case double(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([ProjectionValue])
    /// An object, members in file order.
    case object([Member])

    /// One member of an object value.
    public struct Member: Hashable, Sendable {
        /// The key.
        public var key: String
        /// The value.
        public var value: ProjectionValue

        /// Creates a member.
        public init(_ key: String, _ value: ProjectionValue) {
            self.key = key
            self.value = value
        }
    }

    /// Whether the value is a number or a path (what `increment` accepts).
    public var isNumberOrPath: Bool {
        switch self {
        case .int, .double, .path: true
        default: false
        }
    }

    /// Whether the value contains no path (it is the same for every event).
    public var isConstant: Bool {
        switch self {
        case .path: false
        case .array(let elements): elements.allSatisfy(\.isConstant)
        case .object(let members): members.allSatisfy(\.value.isConstant)
        default: true
        }
    }
}

/// A path into an event as the API returns it: `$.data.x.y`, `$.streamId`,
/// `$.version`, `$.globalPosition`, `$.timestamp`, `$.type`, `$.id`,
/// `$.metadata.<field>` (`correlationId`, `causationId`, `userId`, `tenantId`,
/// `custom.<key>`).
public struct EventPath: Hashable, Sendable, CustomStringConvertible {
    /// The top-level member of the event.
    public enum Root: String, Hashable, Sendable, CaseIterable {
        /// `$.id`
        case id
        /// `$.streamId`
        case streamId
        /// `$.type`
        case type
        /// `$.data…`
        case data
        /// `$.metadata…`
        case metadata
        /// `$.version`
        case version
        /// `$.globalPosition`
        case globalPosition
        /// `$.timestamp`
        case timestamp
    }

    /// The top-level member.
    public var root: Root
    /// The members below it (`$.data.order.id` → `["order", "id"]`); a segment
    /// of digits indexes an array.
    public var segments: [String]

    /// The path as written (`$.data.order.id`).
    public var description: String {
        (["$", root.rawValue] + segments).joined(separator: ".")
    }

    /// Creates a path.
    public init(root: Root, segments: [String] = []) {
        self.root = root
        self.segments = segments
    }

    /// The metadata fields a path may name.
    public static let metadataFields = ["correlationId", "causationId", "userId", "tenantId", "custom"]

    /// Parses and checks a path.
    /// - Throws: `ConfigError` at `keyPath` saying what is wrong.
    public init(parsing text: String, keyPath: String) throws {
        func fail(_ why: String) -> ConfigError {
            ConfigError(keyPath: keyPath, message: "invalid path \"\(text)\": \(why)")
        }
        guard text.hasPrefix("$.") else { throw fail("must start with \"$.\"") }
        let parts = text.dropFirst(2).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        for part in parts {
            guard !part.isEmpty else { throw fail("empty segment") }
            guard part.utf8.allSatisfy({ byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }) else { throw fail("segment \"\(part)\" may hold only letters, digits, '_' and '-'") }
        }
        guard let root = Root(rawValue: parts[0]) else {
            throw fail("unknown event member \"\(parts[0])\" (expected one of \(Root.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let rest = Array(parts.dropFirst())
        switch root {
        case .data:
            break
        case .metadata:
            if let field = rest.first {
                guard Self.metadataFields.contains(field) else {
                    throw fail("unknown metadata field \"\(field)\" (expected one of \(Self.metadataFields.joined(separator: ", ")))")
                }
                if field == "custom" {
                    guard rest.count <= 2 else { throw fail("$.metadata.custom takes one key") }
                } else {
                    guard rest.count == 1 else { throw fail("$.metadata.\(field) has no members") }
                }
            }
        default:
            guard rest.isEmpty else { throw fail("$.\(root.rawValue) has no members") }
        }
        self.init(root: root, segments: rest)
    }
}

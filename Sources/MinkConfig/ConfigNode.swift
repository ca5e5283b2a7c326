import Yams

/// A YAML node with its key path, and typed accessors whose errors name that path.
struct ConfigNode {
    let node: Node
    let path: String

    init(_ node: Node, path: String) {
        self.node = node
        self.path = path
    }

    private func error(_ message: String) -> ConfigError {
        ConfigError(keyPath: path.isEmpty ? "(top level)" : path, message: message)
    }

    /// Whether the node is a YAML null (`~`, `null`, or nothing).
    var isNull: Bool {
        if case .scalar = node { return node.tagName == .null }
        return false
    }

    /// A short description of the node for "found …" in messages.
    var found: String {
        switch node {
        case .scalar(let scalar):
            if node.tagName == .null { return "null" }
            return node.tagName == .str ? "\"\(scalar.string)\"" : scalar.string
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// The members of a mapping, in file order; a null node is an empty mapping.
    /// - Parameter allowing: the keys accepted; any other is "unknown key". Nil accepts any key.
    func mapping(allowing allowed: [String]?) throws -> [(String, ConfigNode)] {
        if isNull { return [] }
        guard case .mapping(let mapping) = node else { throw error("expected a mapping, found \(found)") }
        var members: [(String, ConfigNode)] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode, keyNode.tagName != .null else {
                throw error("keys must be plain strings")
            }
            let key = scalar.string
            let childPath = path.isEmpty ? key : "\(path).\(key)"
            if let allowed, !allowed.contains(key) {
                throw ConfigError(keyPath: childPath, message: "unknown key")
            }
            if members.contains(where: { $0.0 == key }) {
                throw ConfigError(keyPath: childPath, message: "duplicate key")
            }
            members.append((key, ConfigNode(value, path: childPath)))
        }
        return members
    }

    /// The members of a mapping with any keys.
    func mapping() throws -> [(String, ConfigNode)] {
        try mapping(allowing: nil)
    }

    /// The elements of a list; a null node is an empty list.
    /// - Parameter orScalar: also accept a single scalar as a one-element list.
    func sequence(orScalar: Bool = false) throws -> [ConfigNode] {
        if isNull { return [] }
        switch node {
        case .sequence(let sequence):
            return sequence.enumerated().map { ConfigNode($1, path: "\(path)[\($0)]") }
        case .scalar where orScalar:
            return [self]
        default:
            throw error("expected a list, found \(found)")
        }
    }

    /// A scalar's text; numbers and booleans are accepted as their text, null is not.
    func string() throws -> String {
        guard case .scalar(let scalar) = node, !isNull else { throw error("expected a string, found \(found)") }
        return scalar.string
    }

    /// A non-empty string.
    func nonEmptyString() throws -> String {
        let value = try string()
        guard !value.isEmpty else { throw error("must not be empty") }
        return value
    }

    /// Whether the value is written as a number (a quoted `"5"` is a string).
    var isNumber: Bool { node.tagName == .int || node.tagName == .float }

    /// An integer no smaller than `minimum`.
    func int(atLeast minimum: Int, atMost maximum: Int = ConfigLimits.maxInteger) throws -> Int {
        guard node.tagName == .int, let value = node.int else { throw error("expected an integer, found \(found)") }
        // YAML 1.1 reads `010` as octal 8, and takes `0x10`, `1_000`, `+5`: a number written
        // any way but plain decimal is refused rather than read as something the operator did
        // not mean.
        if case .scalar(let scalar) = node {
            let text = scalar.string
            let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits == "0" || !digits.hasPrefix("0") else {
                throw error("expected a decimal integer, found \(found)")
            }
        }
        guard value >= minimum else {
            throw error(minimum == 1 ? "must be positive, found \(value)" : "must be ≥ \(minimum), found \(value)")
        }
        guard value <= maximum else { throw error("must be at most \(maximum), found \(value)") }
        return value
    }

    /// A number of seconds: at least `minimum`, at most ``ConfigLimits/maxSeconds``.
    func seconds(atLeast minimum: Int) throws -> Int {
        try int(atLeast: minimum, atMost: ConfigLimits.maxSeconds)
    }

    /// `true` or `false`.
    func bool() throws -> Bool {
        guard node.tagName == .bool, let value = node.bool else { throw error("expected true or false, found \(found)") }
        return value
    }
}

extension Node {
    /// The resolved tag's name (`Tag.name` itself is not public in Yams).
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}

/// Upper bounds of the configuration's integers: far above any sensible setting, and low enough
/// that no arithmetic on them (seconds to nanoseconds, sums of byte counts) can overflow.
public enum ConfigLimits {
    /// Any integer: 2^53 − 1 (what every JSON and YAML reader reads exactly).
    public static let maxInteger = (1 << 53) - 1
    /// Any number of seconds: ten years.
    public static let maxSeconds = 315_360_000
}

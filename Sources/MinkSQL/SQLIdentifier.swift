import Mink

/// A checked SQL identifier (table, column, index or schema name), rendered quoted.
///
/// Only `^[A-Za-z_][A-Za-z0-9_]{0,62}$` is accepted, so quoting can never be escaped and the name
/// fits PostgreSQL's 63-byte limit.
public struct SQLIdentifier: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The name as given.
    public let name: String

    /// Checks a name.
    /// - Throws: `.validationFailed` when it is not a plain identifier.
    public init(_ name: String) throws {
        guard SQLIdentifier.isValid(name) else {
            throw MinkError(.validationFailed, "invalid SQL identifier \"\(name.prefix(80))\": it must match ^[A-Za-z_][A-Za-z0-9_]{0,62}$")
        }
        self.name = name
    }

    /// A literal identifier written in code; a bad literal is a programming error and traps.
    public init(stringLiteral value: String) {
        precondition(SQLIdentifier.isValid(value), "invalid SQL identifier literal \(value)")
        self.name = value
    }

    /// Whether `name` matches `^[A-Za-z_][A-Za-z0-9_]{0,62}$`.
    public static func isValid(_ name: String) -> Bool {
        isPlainName(name, maxBytes: 63)
    }

    /// Whether `name` is a plain name: a letter or `_`, then letters, digits or `_`, at most `maxBytes`.
    static func isPlainName(_ name: String, maxBytes: Int) -> Bool {
        let u = Array(name.utf8)
        func letter(_ b: UInt8) -> Bool { (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 }
        guard let first = u.first, u.count <= maxBytes, letter(first) else { return false }
        return u.allSatisfy { letter($0) || ($0 >= 48 && $0 <= 57) }
    }

    /// The identifier in double quotes, as both dialects read it.
    public var quoted: String { "\"\(name)\"" }

    public var description: String { quoted }
}

/// A table name, optionally schema-qualified (PostgreSQL's per-tenant schemas).
public struct SQLTableName: Sendable, Hashable, CustomStringConvertible {
    /// The schema, or `nil` for the default one.
    public var schema: SQLIdentifier?
    /// The table.
    public var name: SQLIdentifier

    /// Creates a table name from checked parts.
    public init(_ name: SQLIdentifier, schema: SQLIdentifier? = nil) {
        self.name = name
        self.schema = schema
    }

    /// `"schema"."name"` or `"name"`.
    public var quoted: String { schema.map { "\($0.quoted).\(name.quoted)" } ?? name.quoted }

    public var description: String { quoted }
}

/// Quoting of constant SQL string literals.
///
/// Generators use it only for text they produced from checked parts (JSON paths built from
/// `FieldPath` components, model names checked for index definitions); values from callers are
/// always bound instead.
public enum SQLLiteral {
    /// `text` in single quotes, with quotes doubled.
    public static func quoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }
}

import Foundation

/// A value bound to a statement parameter. Values never appear in SQL text.
public enum SQLBind: Sendable, Hashable, CustomStringConvertible {
    /// UTF-8 text, bound with its explicit byte length (so NUL bytes survive).
    case text(String)
    /// A 64-bit integer.
    case int(Int64)
    /// A double.
    case double(Double)
    /// Raw bytes, bound with their explicit length.
    case blob(Data)
    /// SQL `NULL`.
    case null

    public var description: String {
        switch self {
        case .text(let s): return "text(\(String(reflecting: s)))"
        case .int(let i): return "int(\(i))"
        case .double(let d): return "double(\(d))"
        case .blob(let b): return "blob(\(b.count) bytes)"
        case .null: return "null"
        }
    }
}

/// A piece of SQL with the values its placeholders stand for, in placeholder order.
public struct SQLFragment: Sendable, Hashable, CustomStringConvertible {
    /// The SQL text; every value in it is a placeholder.
    public var sql: String
    /// The values of the placeholders: `binds[0]` is the first `?` (SQLite) or `$1` (PostgreSQL).
    public var binds: [SQLBind]

    /// Creates a fragment.
    public init(sql: String, binds: [SQLBind] = []) {
        self.sql = sql
        self.binds = binds
    }

    public var description: String { "\(sql) -- \(binds)" }
}

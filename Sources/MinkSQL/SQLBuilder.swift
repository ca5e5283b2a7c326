/// Collects binds while SQL text is being written and hands out their placeholders.
///
/// The builder knows the dialect, so a generator never writes `?` or `$n` itself:
///
/// ```swift
/// var b = SQLBuilder(dialect: .postgres)
/// let sql = "tenant_id = \(b.bind(.text(tenant)))"   // "tenant_id = $1"
/// ```
public struct SQLBuilder: Sendable {
    /// The dialect placeholders are written for.
    public let dialect: SQLDialect
    /// The binds so far, in placeholder order.
    public private(set) var binds: [SQLBind] = []
    /// The number of the first PostgreSQL placeholder (to append to a statement that already has some).
    public let firstParameter: Int

    /// Creates an empty builder.
    /// - Parameters:
    ///   - dialect: the placeholder style.
    ///   - firstParameter: the number the first `$n` gets (PostgreSQL only; default 1).
    public init(dialect: SQLDialect, firstParameter: Int = 1) {
        self.dialect = dialect
        self.firstParameter = firstParameter
    }

    /// Records a value and returns its placeholder: `?` for SQLite; `$n` for PostgreSQL, followed
    /// by `::cast` when `postgresCast` is given (libpq sends untyped text parameters, so a cast
    /// tells the server how to read them).
    public mutating func bind(_ value: SQLBind, postgresCast: String? = nil) -> String {
        binds.append(value)
        switch dialect {
        case .sqlite: return "?"
        case .postgres:
            let n = "$\(firstParameter + binds.count - 1)"
            return postgresCast.map { "\(n)::\($0)" } ?? n
        }
    }

    /// A fragment of `sql` with the binds collected so far.
    public func fragment(_ sql: String) -> SQLFragment { SQLFragment(sql: sql, binds: binds) }
}

import Mink

/// Renders read-model queries (`Query`) as SQL over a documents table, for one dialect.
///
/// The table holds one row per document: `(tenant_id, model, id, doc)`, where `doc` is JSON text
/// (SQLite) or JSONB (PostgreSQL). The generated SQL reproduces `Query.matches(_:)` and
/// `Query.apply(to:)` exactly (see `Query+Evaluation.swift` in Mink):
///
/// - every value is a bound parameter; field paths are re-checked against
///   `^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$` and rendered as quoted JSON-path
///   literals (`'$.a.b'`, `'{a,b}'`) — literals rather than binds so that an expression index on
///   the same path matches the query's expression;
/// - a missing field is `NULL`; comparisons only match values of the operand's JSON type;
///   `!=`/`not in` match present values of other types;
/// - `like` is case-sensitive (SQLite: translated to `GLOB`; PostgreSQL: `LIKE … ESCAPE '\'`);
/// - sorting ranks null < bool < number < string < array/object, ties by ID ascending, binary
///   string order (`COLLATE "C"` on PostgreSQL).
///
/// ```swift
/// let sql = ReadModelSQL(dialect: .sqlite)
/// let statement = try sql.find("orders", tenantID: "default", query: Query().where("total", ">", 100))
/// // statement.sql: SELECT "id", "doc" FROM "mink_documents" WHERE "tenant_id" = ? AND ...
/// ```
public struct ReadModelSQL: Sendable {
    /// The column names of the documents table.
    public struct Columns: Sendable, Hashable {
        /// The tenant column; `nil` when the table holds one tenant only (schema or database per tenant).
        public var tenantID: SQLIdentifier?
        /// The model (collection) name column.
        public var model: SQLIdentifier
        /// The document ID column (text).
        public var id: SQLIdentifier
        /// The JSON document column.
        public var document: SQLIdentifier
        /// The columns `find` selects, in order.
        public var selected: [SQLIdentifier]

        /// Creates column names; the defaults are `tenant_id`, `model`, `id`, `doc`, selecting `id, doc`.
        public init(
            tenantID: SQLIdentifier? = "tenant_id", model: SQLIdentifier = "model", id: SQLIdentifier = "id",
            document: SQLIdentifier = "doc", selected: [SQLIdentifier] = ["id", "doc"]
        ) {
            self.tenantID = tenantID
            self.model = model
            self.id = id
            self.document = document
            self.selected = selected
        }
    }

    /// The dialect rendered.
    public let dialect: SQLDialect
    /// The documents table.
    public let table: SQLTableName
    /// Its columns.
    public let columns: Columns
    /// Whether model names that are plain names (``isIndexableModelName(_:)``) are written as quoted
    /// literals instead of bound. SQLite needs this to use a partial index `WHERE model = 'orders'`:
    /// its planner cannot prove that a bound `model = ?` implies the index's condition. Other
    /// model names are always bound.
    public let inlinesModelNames: Bool

    /// Creates a generator.
    public init(
        dialect: SQLDialect, table: SQLTableName = SQLTableName("mink_documents"), columns: Columns = Columns(),
        inlinesModelNames: Bool = false
    ) {
        self.dialect = dialect
        self.table = table
        self.columns = columns
        self.inlinesModelNames = inlinesModelNames
    }

    /// Whether a model name may appear as a literal in SQL (an index condition, or inlined by
    /// ``inlinesModelNames``): `^[A-Za-z_][A-Za-z0-9_]{0,39}$`.
    public static func isIndexableModelName(_ model: String) -> Bool {
        SQLIdentifier.isPlainName(model, maxBytes: 40)
    }

    // MARK: Statements

    /// `SELECT <selected> FROM <table> WHERE … ORDER BY … LIMIT … OFFSET …`.
    /// - Parameters:
    ///   - model: the model name (bound).
    ///   - tenantID: the tenant (bound); ignored when the table has no tenant column.
    ///   - query: the query; its recorded problem, if any, is thrown first.
    /// - Throws: `.invalidQuery` before any SQL is built when the query or a field path is invalid.
    public func find(_ model: String, tenantID: String?, query: Query) throws -> SQLFragment {
        let query = try query.validated()
        var b = SQLBuilder(dialect: dialect)
        let selected = columns.selected.map(\.quoted).joined(separator: ", ")
        let order = try orderByClause(for: query)
        let filter = try whereClause(model, tenantID: tenantID, query: query, into: &b)
        var sql = "SELECT \(selected) FROM \(table.quoted) WHERE \(filter) ORDER BY \(order)"
        sql += pagingClause(for: query, into: &b)
        return b.fragment(sql)
    }

    /// `SELECT COUNT(*) FROM <table> WHERE …` (limit and offset ignored).
    /// - Throws: `.invalidQuery` before any SQL is built when the query or a field path is invalid.
    public func count(_ model: String, tenantID: String?, query: Query) throws -> SQLFragment {
        let query = try query.validated()
        var b = SQLBuilder(dialect: dialect)
        let filter = try whereClause(model, tenantID: tenantID, query: query, into: &b)
        return b.fragment("SELECT COUNT(*) FROM \(table.quoted) WHERE \(filter)")
    }

    // MARK: Clauses

    /// The `WHERE` condition (without the keyword): tenant, model, then the query's filters.
    public func whereClause(_ model: String, tenantID: String?, query: Query, into b: inout SQLBuilder) throws -> String {
        let query = try query.validated()
        try checkPaths(query)
        var parts: [String] = []
        if let column = columns.tenantID, let tenantID {
            parts.append("\(column.quoted) = \(b.bind(.text(tenantID), postgresCast: "text"))")
        }
        if inlinesModelNames, Self.isIndexableModelName(model) {
            parts.append("\(columns.model.quoted) = \(SQLLiteral.quoted(model))")
        } else {
            parts.append("\(columns.model.quoted) = \(b.bind(.text(model), postgresCast: "text"))")
        }
        if let filters = try condition(for: query, into: &b) { parts.append(filters) }
        return parts.joined(separator: " AND ")
    }

    /// The query's filters as one condition: `(a AND b) OR (c)`; `nil` when the query has none.
    public func condition(for query: Query, into b: inout SQLBuilder) throws -> String? {
        let query = try query.validated()
        try checkPaths(query)
        if query.groups.isEmpty { return nil }
        let groups = query.groups.map { group in
            "(" + group.map { condition(for: $0, into: &b) }.joined(separator: " AND ") + ")"
        }
        return groups.count == 1 ? groups[0] : "(" + groups.joined(separator: " OR ") + ")"
    }

    /// `ORDER BY` keys (without the keyword), ending with the ID tie-break.
    public func orderByClause(for query: Query) throws -> String {
        try checkPaths(query)
        var keys: [String] = []
        for order in query.ordering {
            let f = field(order.field)
            let dir = order.descending ? "DESC" : "ASC"
            switch dialect {
            case .sqlite:
                keys.append("CASE \(f.type) WHEN 'true' THEN 1 WHEN 'false' THEN 1 WHEN 'integer' THEN 2 WHEN 'real' THEN 2 WHEN 'text' THEN 3 WHEN 'array' THEN 4 WHEN 'object' THEN 4 ELSE 0 END \(dir)")
                keys.append("CASE \(f.type) WHEN 'array' THEN NULL WHEN 'object' THEN NULL ELSE \(f.value) END \(dir)")
            case .postgres:
                let nulls = order.descending ? "NULLS LAST" : "NULLS FIRST"
                keys.append("CASE \(f.type) WHEN 'boolean' THEN 1 WHEN 'number' THEN 2 WHEN 'string' THEN 3 WHEN 'array' THEN 4 WHEN 'object' THEN 4 ELSE 0 END \(dir)")
                keys.append("(CASE WHEN \(f.type) = 'boolean' THEN (\(f.value))::boolean END) \(dir) \(nulls)")
                keys.append("\(f.number) \(dir) \(nulls)")
                keys.append("\(f.string) COLLATE \"C\" \(dir) \(nulls)")
            }
        }
        switch dialect {
        case .sqlite: keys.append("\(columns.id.quoted) ASC")
        case .postgres: keys.append("\(columns.id.quoted) COLLATE \"C\" ASC")
        }
        return keys.joined(separator: ", ")
    }

    /// ` LIMIT … OFFSET …` (with a leading space), or `""` when the query is unpaged.
    public func pagingClause(for query: Query, into b: inout SQLBuilder) -> String {
        var sql = ""
        switch dialect {
        case .sqlite:
            if let limit = query.limitCount {
                sql += " LIMIT \(b.bind(.int(Int64(limit))))"
            } else if query.offsetCount > 0 {
                sql += " LIMIT -1"
            }
            if query.offsetCount > 0 { sql += " OFFSET \(b.bind(.int(Int64(query.offsetCount))))" }
        case .postgres:
            if let limit = query.limitCount { sql += " LIMIT \(b.bind(.int(Int64(limit)), postgresCast: "bigint"))" }
            if query.offsetCount > 0 { sql += " OFFSET \(b.bind(.int(Int64(query.offsetCount)), postgresCast: "bigint"))" }
        }
        return sql
    }

    /// The expression that extracts a field: `json_extract("doc", '$.a.b')` (SQLite) or
    /// `("doc" #> '{a,b}')` (PostgreSQL) — the expression an index on the field must use.
    /// - Throws: `.invalidQuery` if a path component is not a plain name.
    public func fieldExpression(_ path: FieldPath) throws -> String {
        try Self.checkPath(path)
        return field(path).value
    }

    /// The JSON path literal of a field, quoted: `'$.a.b'` (SQLite) or `'{a,b}'` (PostgreSQL).
    /// - Throws: `.invalidQuery` if a path component is not a plain name.
    public func jsonPathLiteral(_ path: FieldPath) throws -> String {
        try Self.checkPath(path)
        return field(path).path
    }

    // MARK: Filters

    /// One filter as a condition that is never `NULL` for a present field.
    func condition(for filter: QueryFilter, into b: inout SQLBuilder) -> String {
        let f = field(filter.field)
        switch filter.op {
        case .isNull: return f.absent
        case .isNotNull: return f.present
        case .equal: return equal(f, filter.value, &b) ?? "FALSE"
        case .notEqual: return negation(f, equal(f, filter.value, &b))
        case .greaterThan, .greaterThanOrEqual, .lessThan, .lessThanOrEqual:
            return ordered(f, filter.op.rawValue, filter.value, &b) ?? "FALSE"
        case .in: return anyOf(f, filter.value.arrayValue ?? [], &b) ?? "FALSE"
        case .notIn: return negation(f, anyOf(f, filter.value.arrayValue ?? [], &b))
        case .between:
            guard let bounds = filter.value.arrayValue, bounds.count == 2 else { return "FALSE" }
            return between(f, bounds[0], bounds[1], &b) ?? "FALSE"
        case .like:
            guard let pattern = filter.value.stringValue else { return "FALSE" }
            return like(f, pattern, &b)
        case .contains: return contains(f, filter.value, &b) ?? "FALSE"
        }
    }

    /// `present AND NOT positive`: a present value that does not satisfy `positive` (of any type).
    private func negation(_ f: Field, _ positive: String?) -> String {
        guard let positive else { return f.present }
        return "(\(f.present) AND NOT COALESCE(\(positive), FALSE))"
    }

    private func equal(_ f: Field, _ v: JSONValue, _ b: inout SQLBuilder) -> String? {
        switch v {
        case .number: return f.numberCompare("=", b.bind(.double(v.doubleValue ?? 0), postgresCast: "float8"))
        case .string(let s): return f.stringCompare("=", b.bind(.text(s), postgresCast: "text"))
        case .bool(let x): return f.boolIn([b.bind(.text(x ? "true" : "false"), postgresCast: "jsonb")])
        case .null, .array, .object: return nil
        }
    }

    private func ordered(_ f: Field, _ op: String, _ v: JSONValue, _ b: inout SQLBuilder) -> String? {
        switch v {
        case .number: return f.numberCompare(op, b.bind(.double(v.doubleValue ?? 0), postgresCast: "float8"))
        case .string(let s): return f.stringCompare(op, b.bind(.text(s), postgresCast: "text"))
        default: return nil
        }
    }

    private func anyOf(_ f: Field, _ values: [JSONValue], _ b: inout SQLBuilder) -> String? {
        // Bind in the order the placeholders appear (`?` is positional): numbers, strings, booleans.
        let numbers = values.compactMap { v -> Double? in if case .number = v { return v.doubleValue } else { return nil } }
        let strings = values.compactMap(\.stringValue)
        let bools = values.compactMap { v -> Bool? in if case .bool(let x) = v { return x } else { return nil } }
        var parts: [String] = []
        if !numbers.isEmpty { parts.append(f.numberIn(numbers.map { b.bind(.double($0), postgresCast: "float8") })) }
        if !strings.isEmpty { parts.append(f.stringIn(strings.map { b.bind(.text($0), postgresCast: "text") })) }
        if !bools.isEmpty { parts.append(f.boolIn(bools.map { b.bind(.text($0 ? "true" : "false"), postgresCast: "jsonb") })) }
        if parts.isEmpty { return nil }
        return parts.count == 1 ? parts[0] : "(" + parts.joined(separator: " OR ") + ")"
    }

    private func between(_ f: Field, _ lo: JSONValue, _ hi: JSONValue, _ b: inout SQLBuilder) -> String? {
        switch (lo, hi) {
        case (.number, .number):
            return f.numberBetween(
                b.bind(.double(lo.doubleValue ?? 0), postgresCast: "float8"), b.bind(.double(hi.doubleValue ?? 0), postgresCast: "float8"))
        case (.string(let x), .string(let y)):
            return f.stringBetween(b.bind(.text(x), postgresCast: "text"), b.bind(.text(y), postgresCast: "text"))
        default: return nil
        }
    }

    private func like(_ f: Field, _ pattern: String, _ b: inout SQLBuilder) -> String {
        switch dialect {
        case .sqlite: return "(\(f.type) = 'text' AND \(f.value) GLOB \(b.bind(.text(SQLPattern.glob(fromLike: pattern)))))"
        case .postgres: return "\(f.string) LIKE \(b.bind(.text(SQLPattern.postgresLike(fromLike: pattern)), postgresCast: "text")) ESCAPE '\\'"
        }
    }

    private func contains(_ f: Field, _ v: JSONValue, _ b: inout SQLBuilder) -> String? {
        var parts: [String] = []
        switch dialect {
        case .sqlite:
            let element: String
            switch v {
            case .string(let s):
                parts.append("(\(f.type) = 'text' AND instr(\(f.value), \(b.bind(.text(s)))) > 0)")
                element = "\"e\".\"type\" = 'text' AND \"e\".\"value\" = \(b.bind(.text(s)))"
            case .number: element = "\"e\".\"type\" IN ('integer', 'real') AND \"e\".\"value\" = \(b.bind(.double(v.doubleValue ?? 0)))"
            case .bool(let x): element = "\"e\".\"type\" = \(b.bind(.text(x ? "true" : "false")))"
            case .null, .array, .object: return nil
            }
            parts.append("(\(f.type) = 'array' AND EXISTS (SELECT 1 FROM json_each(\(f.document), \(f.path)) AS \"e\" WHERE \(element)))")
        case .postgres:
            switch v {
            case .string(let s): parts.append("strpos(\(f.string), \(b.bind(.text(s), postgresCast: "text"))) > 0")
            case .number, .bool: break
            case .null, .array, .object: return nil
            }
            let needle = String(decoding: JSONValue.array([v]).jsonData(), as: UTF8.self)
            parts.append("(\(f.type) = 'array' AND \(f.value) @> \(b.bind(.text(needle), postgresCast: "jsonb")))")
        }
        return parts.count == 1 ? parts[0] : "(" + parts.joined(separator: " OR ") + ")"
    }

    // MARK: Fields

    /// The SQL pieces of one field path in the current dialect.
    struct Field {
        let dialect: SQLDialect
        /// The quoted document column.
        let document: String
        /// The quoted JSON path literal.
        let path: String

        /// The field's value: SQLite's SQL value (NULL when missing or JSON null), PostgreSQL's JSONB.
        var value: String {
            switch dialect {
            case .sqlite: return "json_extract(\(document), \(path))"
            case .postgres: return "(\(document) #> \(path))"
            }
        }

        /// The field's JSON type name, `NULL` when missing.
        var type: String {
            switch dialect {
            case .sqlite: return "json_type(\(document), \(path))"
            case .postgres: return "jsonb_typeof(\(document) #> \(path))"
            }
        }

        /// PostgreSQL: the number as float8 (Swift's `Double`), else `NULL`. The `CASE` keeps the
        /// cast from ever seeing another type (PostgreSQL does not promise `AND` evaluation order).
        /// A JSON number beyond float8's range becomes what Swift's `Double` makes of it — ±infinity
        /// above the largest finite value, 0 below the smallest subnormal — instead of the cast's
        /// "out of range" error (22003), which turned every query on the field into a `500` once
        /// one document held, say, `1e400`.
        var number: String {
            let n = "(\(value))::numeric"
            return "(CASE WHEN \(type) = 'number' THEN (CASE WHEN \(n) > \(Self.maxDouble) THEN 'Infinity'::float8 "
                + "WHEN \(n) < -\(Self.maxDouble) THEN '-Infinity'::float8 "
                + "WHEN abs(\(n)) < \(Self.minSubnormal) THEN 0::float8 ELSE \(n)::float8 END) END)"
        }
        /// The largest finite `Double`, and the smallest positive (subnormal) one, as numeric
        /// literals.
        static let maxDouble = "1.7976931348623157e308", minSubnormal = "4.9406564584124654e-324"
        /// PostgreSQL: the string as text, else `NULL`.
        var string: String { "(CASE WHEN \(type) = 'string' THEN \(document) #>> \(path) END)" }

        var present: String {
            switch dialect {
            case .sqlite: return "\(value) IS NOT NULL"
            case .postgres: return "(\(value) IS NOT NULL AND \(type) <> 'null')"
            }
        }

        var absent: String {
            switch dialect {
            case .sqlite: return "\(value) IS NULL"
            case .postgres: return "(\(value) IS NULL OR \(type) = 'null')"
            }
        }

        func numberCompare(_ op: String, _ p: String) -> String {
            switch dialect {
            case .sqlite: return "(\(type) IN ('integer', 'real') AND \(value) \(op) \(p))"
            case .postgres: return "\(number) \(op) \(p)"
            }
        }

        func stringCompare(_ op: String, _ p: String) -> String {
            switch dialect {
            case .sqlite: return "(\(type) = 'text' AND \(value) \(op) \(p))"
            case .postgres: return "\(string) COLLATE \"C\" \(op) \(p)"
            }
        }

        func numberIn(_ ps: [String]) -> String {
            let list = ps.joined(separator: ", ")
            switch dialect {
            case .sqlite: return "(\(type) IN ('integer', 'real') AND \(value) IN (\(list)))"
            case .postgres: return "\(number) IN (\(list))"
            }
        }

        func stringIn(_ ps: [String]) -> String {
            let list = ps.joined(separator: ", ")
            switch dialect {
            case .sqlite: return "(\(type) = 'text' AND \(value) IN (\(list)))"
            case .postgres: return "\(string) IN (\(list))"
            }
        }

        /// Booleans are compared by JSON type name (SQLite: `'true'`/`'false'`) or as JSONB.
        func boolIn(_ ps: [String]) -> String {
            let list = ps.joined(separator: ", ")
            switch dialect {
            case .sqlite: return ps.count == 1 ? "\(type) = \(list)" : "\(type) IN (\(list))"
            case .postgres: return ps.count == 1 ? "\(value) = \(list)" : "\(value) IN (\(list))"
            }
        }

        func numberBetween(_ lo: String, _ hi: String) -> String {
            switch dialect {
            case .sqlite: return "(\(type) IN ('integer', 'real') AND \(value) BETWEEN \(lo) AND \(hi))"
            case .postgres: return "\(number) BETWEEN \(lo) AND \(hi)"
            }
        }

        func stringBetween(_ lo: String, _ hi: String) -> String {
            switch dialect {
            case .sqlite: return "(\(type) = 'text' AND \(value) BETWEEN \(lo) AND \(hi))"
            case .postgres: return "\(string) COLLATE \"C\" BETWEEN \(lo) AND \(hi)"
            }
        }
    }

    private func field(_ path: FieldPath) -> Field {
        let literal: String
        switch dialect {
        case .sqlite: literal = SQLLiteral.quoted("$." + path.components.joined(separator: "."))
        // Each element double-quoted: an unquoted `NULL` (any case) in an array literal is SQL
        // NULL, and `#>` then found nothing — `obj.NULL` never matched. Components are plain
        // names (``checkPath(_:)``): no quote or backslash to escape.
        case .postgres: literal = SQLLiteral.quoted("{" + path.components.map { "\"\($0)\"" }.joined(separator: ",") + "}")
        }
        return Field(dialect: dialect, document: columns.document.quoted, path: literal)
    }

    /// Checks every path of a query again, so that no component that is not a plain name can
    /// reach a JSON-path literal even if `FieldPath`'s own check were loosened.
    private func checkPaths(_ query: Query) throws {
        for group in query.groups { for filter in group { try Self.checkPath(filter.field) } }
        for order in query.ordering { try Self.checkPath(order.field) }
    }

    static func checkPath(_ path: FieldPath) throws {
        guard !path.components.isEmpty, path.components.allSatisfy({ SQLIdentifier.isPlainName($0, maxBytes: FieldPath.maxComponentBytes) }) else {
            throw MinkError(.invalidQuery, "invalid field \"\(path.description.prefix(80))\": a field is a dotted path of letters, digits and _")
        }
    }
}

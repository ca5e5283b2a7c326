/// A dotted path into a read-model document (`status`, `address.city`).
///
/// Only plain paths are allowed — `^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$` — so a field
/// can never smuggle SQL or JSON-path syntax into a storage adapter.
public struct FieldPath: Sendable, Hashable, CustomStringConvertible {
    /// The path's components.
    public let components: [String]

    /// The most bytes one component of a path may have (`address` in `address.city`): the
    /// field-path length limit of the library, the HTTP API and projection declarations.
    public static let maxComponentBytes = 128

    /// Parses and checks a dotted path.
    /// - Throws: `.invalidQuery` when `path` is not a plain dotted path.
    public init(_ path: String) throws {
        guard FieldPath.isValid(path) else {
            throw MinkError(.invalidQuery, "invalid field \"\(path.prefix(80))\": a field is a dotted path of letters, digits and _, each part at most \(FieldPath.maxComponentBytes) bytes")
        }
        components = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    }

    /// Whether `path` is a plain dotted path — `^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`,
    /// each component at most ``maxComponentBytes`` bytes. The one field-path rule of queries,
    /// the HTTP API and projection declarations.
    public static func isValid(_ path: String) -> Bool {
        var componentBytes = 0
        for byte in path.utf8 {
            if byte == UInt8(ascii: ".") {
                guard componentBytes > 0 else { return false }
                componentBytes = 0
                continue
            }
            let letter = (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == UInt8(ascii: "_")
            let digit = byte >= 48 && byte <= 57
            guard letter || (digit && componentBytes > 0) else { return false }
            componentBytes += 1
            guard componentBytes <= maxComponentBytes else { return false }
        }
        return componentBytes > 0
    }

    /// The path as written (`address.city`).
    public var description: String { components.joined(separator: ".") }
}

/// A query operator (the seed's `op string`).
public enum QueryOperator: String, Sendable, Hashable, CaseIterable {
    case equal = "="
    case notEqual = "!="
    case greaterThan = ">"
    case greaterThanOrEqual = ">="
    case lessThan = "<"
    case lessThanOrEqual = "<="
    case `in` = "in"
    case notIn = "not in"
    case like = "like"
    case isNull = "is null"
    case isNotNull = "is not null"
    case contains = "contains"
    case between = "between"

    /// Parses an operator as written in the seed and the HTTP API (case-insensitive).
    /// - Throws: `.invalidQuery` for an unknown operator.
    public init(parsing text: String) throws {
        let normalized = text.lowercased().split(separator: " ").joined(separator: " ")
        guard let op = QueryOperator(rawValue: normalized) else {
            throw MinkError(.invalidQuery, "unknown operator \"\(text.prefix(40))\"")
        }
        self = op
    }
}

/// One condition: `field op value`.
public struct QueryFilter: Sendable, Hashable {
    /// The document field.
    public var field: FieldPath
    /// The comparison.
    public var op: QueryOperator
    /// The operand (`[low, high]` for `between`, an array for `in`/`not in`, ignored for null checks).
    public var value: JSONValue

    /// Creates a filter, checking that the value fits the operator.
    /// - Throws: `.invalidQuery` when it does not.
    public init(field: FieldPath, op: QueryOperator, value: JSONValue) throws {
        switch op {
        case .in, .notIn:
            guard case .array = value else { throw MinkError(.invalidQuery, "\(op.rawValue) on \(field) needs an array value") }
        case .between:
            guard case .array(let a) = value, a.count == 2 else {
                throw MinkError(.invalidQuery, "between on \(field) needs a value [low, high]")
            }
        case .like:
            guard case .string = value else { throw MinkError(.invalidQuery, "like on \(field) needs a string pattern") }
        case .equal, .notEqual, .greaterThan, .greaterThanOrEqual, .lessThan, .lessThanOrEqual, .contains:
            if case .object = value { throw MinkError(.invalidQuery, "\(op.rawValue) on \(field) cannot compare with an object") }
            if case .array = value { throw MinkError(.invalidQuery, "\(op.rawValue) on \(field) cannot compare with an array") }
        case .isNull, .isNotNull:
            break
        }
        self.field = field
        self.op = op
        self.value = value
    }
}

/// A sort key.
public struct QueryOrder: Sendable, Hashable {
    /// The document field.
    public var field: FieldPath
    /// Newest/largest first.
    public var descending: Bool

    /// Creates a sort key.
    public init(field: FieldPath, descending: Bool) {
        self.field = field
        self.descending = descending
    }
}

/// A read-model query (seed: `Query`), built fluently:
///
/// ```swift
/// let query = Query()
///     .where("status", "=", "pending")
///     .and("total", ">", 100)
///     .or("priority", "=", "high")
///     .orderBy("createdAt", descending: true)
///     .limit(10)
/// ```
///
/// `and` binds tighter than `or`: the query is a disjunction of groups, each a conjunction of
/// filters (`status = pending AND total > 100` OR `priority = high`). An invalid field path or
/// operator is recorded and makes every repository call with this query throw `.invalidQuery`;
/// nothing is ever silently ignored.
public struct Query: Sendable, Hashable {
    /// The OR-ed groups of AND-ed filters; empty means "every document".
    public private(set) var groups: [[QueryFilter]] = []
    /// Sort keys, in order.
    public private(set) var ordering: [QueryOrder] = []
    /// The most documents to return.
    public private(set) var limitCount: Int?
    /// How many matching documents to skip.
    public private(set) var offsetCount: Int = 0
    /// The first problem found while building, thrown by ``validated()``.
    public private(set) var problem: MinkError?

    /// An empty query: every document (seed: `NewQuery()`).
    public init() {}

    /// Builds a query from already-checked parts (the HTTP layer uses this).
    public init(groups: [[QueryFilter]], ordering: [QueryOrder] = [], limit: Int? = nil, offset: Int = 0) throws {
        if let limit, limit < 0 { throw MinkError(.invalidQuery, "limit must not be negative") }
        if offset < 0 { throw MinkError(.invalidQuery, "offset must not be negative") }
        // An empty group is an AND of nothing: it matches every document, and so does any OR
        // holding it (dropping it instead made `[[], [status = paid]]` match only the paid ones).
        self.groups = groups.contains(where: \.isEmpty) ? [] : groups
        self.ordering = ordering
        self.limitCount = limit
        self.offsetCount = offset
    }

    /// Starts (or continues, like `and`) the current group with a filter.
    public func `where`(_ field: String, _ op: String, _ value: JSONValue = nil) -> Query {
        adding(field, op, value, newGroup: false)
    }

    /// Adds a filter to the current group (AND).
    public func and(_ field: String, _ op: String, _ value: JSONValue = nil) -> Query {
        adding(field, op, value, newGroup: false)
    }

    /// Starts a new group (OR) with a filter.
    public func or(_ field: String, _ op: String, _ value: JSONValue = nil) -> Query {
        adding(field, op, value, newGroup: true)
    }

    /// Typed-operator forms of ``where(_:_:_:)``, ``and(_:_:_:)`` and ``or(_:_:_:)``.
    public func `where`(_ field: String, _ op: QueryOperator, _ value: JSONValue = nil) -> Query {
        adding(field, op.rawValue, value, newGroup: false)
    }
    /// See ``where(_:_:_:)-swift.method``.
    public func and(_ field: String, _ op: QueryOperator, _ value: JSONValue = nil) -> Query {
        adding(field, op.rawValue, value, newGroup: false)
    }
    /// See ``where(_:_:_:)-swift.method``.
    public func or(_ field: String, _ op: QueryOperator, _ value: JSONValue = nil) -> Query {
        adding(field, op.rawValue, value, newGroup: true)
    }

    /// Sorts by a field (seed: `OrderBy(field, desc)`).
    public func orderBy(_ field: String, descending: Bool = false) -> Query {
        var q = self
        do { q.ordering.append(QueryOrder(field: try FieldPath(field), descending: descending)) } catch let e as MinkError {
            q.problem = q.problem ?? e
        } catch {}
        return q
    }

    /// Returns at most `n` documents.
    public func limit(_ n: Int) -> Query {
        var q = self
        if n < 0 { q.problem = q.problem ?? MinkError(.invalidQuery, "limit must not be negative") } else { q.limitCount = n }
        return q
    }

    /// Skips the first `n` matching documents.
    public func offset(_ n: Int) -> Query {
        var q = self
        if n < 0 { q.problem = q.problem ?? MinkError(.invalidQuery, "offset must not be negative") } else { q.offsetCount = n }
        return q
    }

    /// The query without limit and offset (what `count` uses).
    public var unpaged: Query {
        var q = self
        q.limitCount = nil
        q.offsetCount = 0
        return q
    }

    /// The most filters a query may hold, all groups together.
    public static let maxFilters = 100
    /// The most sort keys.
    public static let maxOrdering = 16
    /// The most values the `in`/`nin` lists of a query may hold together.
    public static let maxListValues = 1_000

    /// The query itself, or the first problem recorded while building it, or the limit it
    /// breaks: at most ``maxFilters`` filters, ``maxOrdering`` sort keys and ``maxListValues``
    /// list values — every storage answers such a query the same way (SQLite refuses an
    /// expression more than 1,000 deep or an `ORDER BY` of too many terms, which a client would
    /// otherwise see as a server error).
    /// - Throws: `.invalidQuery`.
    public func validated() throws -> Query {
        if let problem { throw problem }
        let filters = groups.reduce(0) { $0 + $1.count }
        if filters > Self.maxFilters {
            throw MinkError(.invalidQuery, "a query holds at most \(Self.maxFilters) filters (all groups together); this one has \(filters)")
        }
        if ordering.count > Self.maxOrdering {
            throw MinkError(.invalidQuery, "a query sorts by at most \(Self.maxOrdering) fields; this one by \(ordering.count)")
        }
        var values = 0
        for group in groups {
            for f in group where f.op == .in || f.op == .notIn {
                if case .array(let a) = f.value { values += a.count }
            }
        }
        if values > Self.maxListValues {
            throw MinkError(.invalidQuery, "the in/nin lists of a query hold at most \(Self.maxListValues) values together; this one \(values)")
        }
        return self
    }

    private func adding(_ field: String, _ op: String, _ value: JSONValue, newGroup: Bool) -> Query {
        var q = self
        do {
            let filter = try QueryFilter(field: try FieldPath(field), op: try QueryOperator(parsing: op), value: value)
            if newGroup || q.groups.isEmpty { q.groups.append([filter]) } else { q.groups[q.groups.count - 1].append(filter) }
        } catch let e as MinkError {
            q.problem = q.problem ?? e
        } catch {}
        return q
    }
}

/// How a `Query` matches and sorts JSON documents — the reference semantics that every storage
/// adapter's SQL must reproduce (the conformance suite checks them on each adapter):
///
/// - A missing field and a JSON `null` are the same: only `is null` matches them.
/// - `=`, `in`, `between`, `<`, `<=`, `>`, `>=` match only values of the operand's JSON type
///   (numbers with numbers, strings with strings, booleans with booleans for `=`/`in`);
///   strings compare by Unicode code point (binary collation), case-sensitively.
/// - `!=` and `not in` match any present, non-null value that is not equal (a value of another
///   type is "not equal").
/// - `like` matches strings with SQL patterns, case-sensitively: `%` any run, `_` one character,
///   `\` makes the next character literal.
/// - `contains`: a string field containing the operand as a substring, or an array field with an
///   element equal to the operand.
/// - Sorting: per key, `null`/missing < booleans < numbers < strings < arrays and objects;
///   descending reverses that. Ties are broken by document ID, ascending.
extension Query {
    /// Whether a document matches the filters.
    public func matches(_ document: JSONValue) -> Bool {
        if groups.isEmpty { return true }
        return groups.contains { group in group.allSatisfy { $0.matches(document) } }
    }

    /// Filters, sorts and pages `(id, document)` pairs.
    public func apply(to documents: [(id: String, document: JSONValue)]) -> [(id: String, document: JSONValue)] {
        let matching = documents.filter { matches($0.document) }
        let sorted = matching.sorted { a, b in
            for key in ordering {
                let c = JSONOrdering.compare(a.document.value(at: key.field), b.document.value(at: key.field))
                if c != 0 { return key.descending ? c > 0 : c < 0 }
            }
            return a.id < b.id
        }
        let start = min(offsetCount, sorted.count)
        let end = limitCount.map { start + min($0, sorted.count - start) } ?? sorted.count
        return Array(sorted[start..<end])
    }
}

extension QueryFilter {
    /// Whether a document matches this filter.
    public func matches(_ document: JSONValue) -> Bool {
        let found = document.value(at: field)
        let present: JSONValue? = (found == nil || found == .null) ? nil : found
        switch op {
        case .isNull: return present == nil
        case .isNotNull: return present != nil
        default: break
        }
        guard let v = present else { return false }
        switch op {
        case .equal: return JSONOrdering.sameTypeEqual(v, value)
        case .notEqual: return !JSONOrdering.sameTypeEqual(v, value)
        case .greaterThan: return JSONOrdering.sameTypeCompare(v, value).map { $0 > 0 } ?? false
        case .greaterThanOrEqual: return JSONOrdering.sameTypeCompare(v, value).map { $0 >= 0 } ?? false
        case .lessThan: return JSONOrdering.sameTypeCompare(v, value).map { $0 < 0 } ?? false
        case .lessThanOrEqual: return JSONOrdering.sameTypeCompare(v, value).map { $0 <= 0 } ?? false
        case .in: return (value.arrayValue ?? []).contains { JSONOrdering.sameTypeEqual(v, $0) }
        case .notIn: return !(value.arrayValue ?? []).contains { JSONOrdering.sameTypeEqual(v, $0) }
        case .between:
            guard let bounds = value.arrayValue, bounds.count == 2,
                let lo = JSONOrdering.sameTypeCompare(v, bounds[0]), let hi = JSONOrdering.sameTypeCompare(v, bounds[1])
            else { return false }
            return lo >= 0 && hi <= 0
        case .like:
            guard let s = v.stringValue, let pattern = value.stringValue else { return false }
            return LikePattern(pattern).matches(s)
        case .contains:
            if let s = v.stringValue, let needle = value.stringValue { return needle.isEmpty || s.contains(needle) }
            if let a = v.arrayValue { return a.contains { JSONOrdering.sameTypeEqual($0, value) } }
            return false
        case .isNull, .isNotNull: return false
        }
    }
}

/// Comparison rules shared by filtering and sorting.
enum JSONOrdering {
    static func sameTypeEqual(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        // Numbers compare as `Double`, as SQLite's and PostgreSQL's JSON functions compare them.
        case (.number, .number): return a.doubleValue == b.doubleValue
        case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case (.bool(let x), .bool(let y)): return x == y
        default: return false
        }
    }

    static func sameTypeCompare(_ a: JSONValue, _ b: JSONValue) -> Int? {
        switch (a, b) {
        case (.number, .number):
            let x = a.doubleValue ?? 0, y = b.doubleValue ?? 0
            return x < y ? -1 : (x > y ? 1 : 0)
        case (.string(let x), .string(let y)): return compareScalars(x, y)
        default: return nil
        }
    }

    static func compareScalars(_ x: String, _ y: String) -> Int {
        // Code-point order equals UTF-8 byte order, which is what SQLite's BINARY and PostgreSQL's
        // "C" collation use.
        let a = Array(x.utf8), b = Array(y.utf8)
        return a.lexicographicallyPrecedes(b) ? -1 : (a == b ? 0 : 1)
    }

    static func rank(_ v: JSONValue?) -> Int {
        switch v {
        case nil, .null?: return 0
        case .bool?: return 1
        case .number?: return 2
        case .string?: return 3
        case .array?, .object?: return 4
        }
    }

    /// Total order used for sorting.
    static func compare(_ a: JSONValue?, _ b: JSONValue?) -> Int {
        let ra = rank(a), rb = rank(b)
        if ra != rb { return ra < rb ? -1 : 1 }
        switch (a, b) {
        case (.bool(let x)?, .bool(let y)?): return x == y ? 0 : (x ? 1 : -1)
        case (.number?, .number?), (.string?, .string?): return sameTypeCompare(a!, b!) ?? 0
        default: return 0
        }
    }
}

/// A SQL `LIKE` pattern as `Query` means it: `%` any run, `_` one character, `\` makes the next
/// character literal (a trailing `\` is itself literal); always case-sensitive. The one reading of
/// a pattern: the in-memory evaluation matches with it, and the SQL dialects translate its tokens.
public struct LikePattern: Sendable, Hashable {
    /// One element of a pattern.
    public enum Token: Sendable, Hashable {
        /// `%`: any run of characters, possibly empty.
        case anyRun
        /// `_`: exactly one character.
        case one
        /// A character matched as itself.
        case literal(Character)
    }

    /// The pattern's elements, in order.
    public let tokens: [Token]

    /// Splits a pattern into its tokens.
    public init(_ pattern: String) {
        var t: [Token] = []
        var escaping = false
        for c in pattern {
            if escaping { t.append(.literal(c)); escaping = false; continue }
            switch c {
            case "\\": escaping = true
            case "%": t.append(.anyRun)
            case "_": t.append(.one)
            default: t.append(.literal(c))
            }
        }
        if escaping { t.append(.literal("\\")) }
        tokens = t
    }

    /// Whether `s` matches the whole pattern.
    public func matches(_ s: String) -> Bool {
        let chars = Array(s)
        // Classic wildcard matching with backtracking over the last `%`.
        var i = 0, p = 0, starP = -1, starI = 0
        while i < chars.count {
            if p < tokens.count {
                switch tokens[p] {
                case .anyRun: starP = p; starI = i; p += 1; continue
                case .one: i += 1; p += 1; continue
                case .literal(let c) where c == chars[i]: i += 1; p += 1; continue
                default: break
                }
            }
            if starP >= 0 { p = starP + 1; starI += 1; i = starI; continue }
            return false
        }
        while p < tokens.count, tokens[p] == .anyRun { p += 1 }
        return p == tokens.count
    }
}

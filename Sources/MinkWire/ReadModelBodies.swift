import Mink

extension QueryOrder {
    /// Parses the `orderBy` URL parameter (HTTP-API.md section 8): comma-separated fields, `-`
    /// before one for descending (`-createdAt,name`).
    /// - Throws: `WireError` with code `invalid_query` for an empty or invalid field.
    public static func parseList(_ text: String) throws -> [QueryOrder] {
        try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            var field = Substring(part)
            var desc = false
            if field.hasPrefix("-") {
                desc = true
                field = field.dropFirst()
            } else if field.hasPrefix("+") {
                field = field.dropFirst()
            }
            guard let path = try? FieldPath(String(field)) else {
                throw WireError(code: .invalidQuery, message: "orderBy: invalid field \"\(field.prefix(80))\": a dotted path of letters, digits and _, each part at most \(FieldPath.maxComponentBytes) bytes")
            }
            return QueryOrder(field: path, descending: desc)
        }
    }
}

/// The body of `POST /v1/readmodels/{model}/query` and `.../count` (HTTP-API.md section 8): the
/// core's ``Query`` on the wire.
///
/// `where` is a list of groups: filters inside a group are ANDed, the groups are ORed. An absent
/// `limit` is the query's `nil` (no limit), an absent `offset` is 0.
public struct ReadModelQueryBody: Hashable, Sendable {
    /// The query.
    public var query: Query

    /// The body of a query.
    /// - Throws: the query's recorded `.invalidQuery` problem.
    public init(_ query: Query) throws {
        self.query = try query.validated()
    }

    /// Whether `value` may be the operand of `op` on the wire: stricter than the core's own
    /// check (``QueryFilter``), which the decoded filters pass as well.
    private static func operandProblem(_ op: QueryOperator, _ value: JSONValue?) -> String? {
        // No document holds U+0000 in a value PostgreSQL can compare: refused alike everywhere.
        func hasNUL(_ value: JSONValue?) -> Bool {
            switch value {
            case .string(let s)?: s.utf8.contains(0)
            case .array(let a)?: a.contains { hasNUL($0) }
            default: false
            }
        }
        if hasNUL(value) { return "\"\(op.rawValue)\" takes no text holding U+0000" }
        func isScalar(_ value: JSONValue) -> Bool {
            switch value {
            case .bool, .number, .string: true
            default: false
            }
        }
        switch op {
        case .isNull, .isNotNull:
            return value == nil || value == .null ? nil : "\"\(op.rawValue)\" takes no value"
        case .in, .notIn:
            guard case .array(let elements) = value, elements.allSatisfy(isScalar) else {
                return "\"\(op.rawValue)\" needs an array of strings, numbers or booleans"
            }
            return nil
        case .between:
            guard case .array(let elements) = value, elements.count == 2, elements.allSatisfy(isScalar) else {
                return "\"between\" needs [low, high]"
            }
            return nil
        default:
            guard let value, isScalar(value) else {
                return "\"\(op.rawValue)\" needs a string, number or boolean (use \"is null\" for null)"
            }
            return nil
        }
    }

    /// Reads and checks a query body.
    /// - Throws: `WireError`: `invalid_json` for syntax, `invalid_query` for everything
    ///   else (unknown keys or operators, bad fields, wrong types), naming the place.
    public static func decode(_ body: [UInt8]) throws -> ReadModelQueryBody {
        do {
            var reader = JSONReader(body)
            var conditions: [[Condition]] = []
            var orderKeys: [(field: String, desc: Bool)] = []
            var limit: Int?, offset: Int?
            try reader.readObject(at: "", rejectUnknown: true) { reader, key, keyPath in
                switch key {
                case "where":
                    if try reader.readNullIfPresent() { return true }
                    try reader.readArray(at: keyPath) { reader, _, groupPath in
                        var group: [Condition] = []
                        try reader.readArray(at: groupPath) { reader, _, conditionPath in
                            group.append(try readCondition(&reader, at: conditionPath))
                        }
                        conditions.append(group)
                    }
                case "orderBy":
                    if try reader.readNullIfPresent() { return true }
                    try reader.readArray(at: keyPath) { reader, _, orderPath in
                        var field: String?
                        var desc = false
                        try reader.readObject(at: orderPath, rejectUnknown: true) { reader, key, _ in
                            switch key {
                            case "field": field = try reader.readString()
                            case "desc": desc = try reader.readBool()
                            default: return false
                            }
                            return true
                        }
                        guard let field else { throw missingKey("\(orderPath).field") }
                        orderKeys.append((field, desc))
                    }
                case "limit":
                    if try !reader.readNullIfPresent() { limit = Int(try reader.readInt()) }
                case "offset":
                    if try !reader.readNullIfPresent() { offset = Int(try reader.readInt()) }
                default:
                    return false
                }
                return true
            }
            try reader.finishBody()
            // Checked after the whole body is read, so a syntax error anywhere wins.
            var groups: [[QueryFilter]] = []
            for (groupIndex, group) in conditions.enumerated() {
                groups.append(try group.enumerated().map { index, condition in
                    try condition.filter(at: "where[\(groupIndex)][\(index)]")
                })
            }
            let ordering = try orderKeys.enumerated().map { index, key in
                QueryOrder(field: try fieldPath(key.field, at: "orderBy[\(index)].field"), descending: key.desc)
            }
            if let limit, limit < 0 { throw WireError(code: .invalidQuery, message: "limit: must be ≥ 0") }
            if let offset, offset < 0 { throw WireError(code: .invalidQuery, message: "offset: must be ≥ 0") }
            return try ReadModelQueryBody(Query(groups: groups, ordering: ordering, limit: limit, offset: offset ?? 0))
        } catch var error as WireError {
            if error.code != .invalidJSON { error.code = .invalidQuery }
            throw error
        } catch let error as MinkError {
            throw WireError(code: .invalidQuery, message: error.message)
        }
    }

    private static func fieldPath(_ text: String, at path: String) throws -> FieldPath {
        guard let field = try? FieldPath(text) else {
            throw WireError(code: .invalidQuery, message: "\(path): invalid field \"\(text.prefix(80))\": a dotted path of letters, digits and _, each part at most \(FieldPath.maxComponentBytes) bytes")
        }
        return field
    }

    /// A filter as read, checked once the whole body has been read.
    private struct Condition {
        var field: String
        var op: QueryOperator
        var value: JSONValue?

        func filter(at path: String) throws -> QueryFilter {
            let checked = try fieldPath(field, at: "\(path).field")
            if let problem = operandProblem(op, value) {
                throw WireError(code: .invalidQuery, message: "\(path).value: \(problem)")
            }
            do {
                return try QueryFilter(field: checked, op: op, value: value ?? .null)
            } catch let error as MinkError {
                throw WireError(code: .invalidQuery, message: "\(path).value: \(error.message)")
            }
        }
    }

    private static func readCondition(_ reader: inout JSONReader, at path: String) throws -> Condition {
        var field: String?, op: QueryOperator?, value: JSONValue?
        try reader.readObject(at: path, rejectUnknown: true) { reader, key, _ in
            switch key {
            case "field": field = try reader.readString()
            case "op":
                let text = try reader.readString()
                // Exactly as written in HTTP-API.md (lowercase, one space): the wire is strict.
                guard let parsed = QueryOperator(rawValue: text) else {
                    throw WireError(code: .invalidQuery, message: "unknown operator \"\(text)\"")
                }
                op = parsed
            case "value": value = try reader.readValue()
            default: return false
            }
            return true
        }
        guard let field else { throw missingKey("\(path).field") }
        guard let op else { throw missingKey("\(path).op") }
        return Condition(field: field, op: op, value: value)
    }
}

extension ReadModelQueryBody: JSONWritable {
    /// Writes the query (for the client); `is null` and `is not null` filters carry no value.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("where")
        writer.beginArray()
        for group in query.groups {
            writer.beginArray()
            for filter in group {
                writer.beginObject()
                writer.key("field")
                writer.string(filter.field.description)
                writer.key("op")
                writer.string(filter.op.rawValue)
                if filter.op != .isNull && filter.op != .isNotNull {
                    writer.key("value")
                    filter.value.write(to: &writer)
                }
                writer.endObject()
            }
            writer.endArray()
        }
        writer.endArray()
        if !query.ordering.isEmpty {
            writer.key("orderBy")
            writer.beginArray()
            for order in query.ordering {
                writer.beginObject()
                writer.key("field")
                writer.string(order.field.description)
                writer.key("desc")
                writer.bool(order.descending)
                writer.endObject()
            }
            writer.endArray()
        }
        if let limit = query.limitCount {
            writer.key("limit")
            writer.int(limit)
        }
        if query.offsetCount != 0 {
            writer.key("offset")
            writer.int(query.offsetCount)
        }
        writer.endObject()
    }
}

/// The body of a read-model list or query: `{"items": [...], "total": N}`.
public struct ItemsPage: Codable, Hashable, Sendable {
    /// The documents, each exactly as stored.
    public var items: [RawJSON]
    /// How many documents match in all (ignoring `limit` and `offset`).
    public var total: Int64

    /// Creates the body.
    public init(items: [RawJSON], total: Int64) {
        self.items = items
        self.total = total
    }
}

extension ItemsPage: JSONWritable, JSONReadable {
    /// Writes the body with each document's bytes unchanged.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("items")
        writer.beginArray()
        for item in items { writer.raw(item) }
        writer.endArray()
        writer.key("total")
        writer.int(total)
        writer.endObject()
    }

    /// Reads the body, keeping each document's bytes; unknown keys are skipped.
    public init(from reader: inout JSONReader) throws {
        var items: [RawJSON]?, total: Int64?
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, keyPath in
            switch key {
            case "items":
                var list: [RawJSON] = []
                try reader.readArray(at: keyPath) { reader, _, _ in list.append(try reader.readRaw()) }
                items = list
            case "total": total = try reader.readInt()
            default: return false
            }
            return true
        }
        guard let items else { throw missingKey("items") }
        guard let total else { throw missingKey("total") }
        self.init(items: items, total: total)
    }
}

/// The body of `POST /v1/readmodels/{model}/count`: `{"count": N}`.
public struct CountBody: Codable, Hashable, Sendable, JSONWritable {
    /// How many documents match.
    public var count: Int64

    /// Creates the body.
    public init(count: Int64) {
        self.count = count
    }

    /// Writes `{"count":N}`.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("count")
        writer.int(count)
        writer.endObject()
    }
}

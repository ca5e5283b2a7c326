/// A read-model query operator (HTTP-API.md section 8).
public enum QueryOperator: String, Codable, Hashable, Sendable, CaseIterable {
    /// `=`
    case equal = "="
    /// `!=`
    case notEqual = "!="
    /// `>`
    case greaterThan = ">"
    /// `>=`
    case greaterThanOrEqual = ">="
    /// `<`
    case lessThan = "<"
    /// `<=`
    case lessThanOrEqual = "<="
    /// `in` (value: an array)
    case `in` = "in"
    /// `not in` (value: an array)
    case notIn = "not in"
    /// `like` (SQL pattern with `%` and `_`)
    case like = "like"
    /// `is null` (no value)
    case isNull = "is null"
    /// `is not null` (no value)
    case isNotNull = "is not null"
    /// `contains` (an array field holding the value, or a string field holding the substring)
    case contains = "contains"
    /// `between` (value: `[low, high]`, inclusive)
    case between = "between"
}

/// One filter of a read-model query: `{"field": "status", "op": "=", "value": "pending"}`.
public struct QueryCondition: Codable, Hashable, Sendable {
    /// A dotted path into the document (`address.city`).
    public var field: String
    /// The operator.
    public var op: QueryOperator
    /// The operand; nil for `is null` and `is not null`.
    public var value: JSONValue?

    /// Creates a filter.
    public init(field: String, op: QueryOperator, value: JSONValue? = nil) {
        self.field = field
        self.op = op
        self.value = value
    }
}

/// One sort key of a read-model query: `{"field": "createdAt", "desc": true}`.
public struct QueryOrder: Codable, Hashable, Sendable {
    /// A dotted path into the document.
    public var field: String
    /// Descending when true.
    public var desc: Bool

    /// Creates a sort key.
    public init(field: String, desc: Bool = false) {
        self.field = field
        self.desc = desc
    }

    /// Decodes a sort key; absent `desc` is false.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        field = try container.decode(String.self, forKey: .field)
        desc = try container.decodeIfPresent(Bool.self, forKey: .desc) ?? false
    }

    /// Parses the `orderBy` URL parameter: comma-separated fields, `-` before one for descending
    /// (`-createdAt,name`).
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
            guard ReadModelQueryBody.isValidField(String(field)) else {
                throw WireError(code: .invalidQuery, message: "orderBy: invalid field \"\(field)\"")
            }
            return QueryOrder(field: String(field), desc: desc)
        }
    }
}

/// The body of `POST /v1/readmodels/{model}/query` and `.../count` (HTTP-API.md section 8).
///
/// `filters` (`where` on the wire) is a list of groups: filters inside a group
/// are ANDed, the groups are ORed.
public struct ReadModelQueryBody: Codable, Hashable, Sendable {
    /// The `where` groups; empty matches every document.
    public var filters: [[QueryCondition]]
    /// Sort keys, first one first.
    public var orderBy: [QueryOrder]
    /// At most this many items; nil for the server's default.
    public var limit: Int?
    /// Items to skip.
    public var offset: Int?

    /// Creates a query.
    public init(filters: [[QueryCondition]] = [], orderBy: [QueryOrder] = [], limit: Int? = nil, offset: Int? = nil) {
        self.filters = filters
        self.orderBy = orderBy
        self.limit = limit
        self.offset = offset
    }

    private enum CodingKeys: String, CodingKey {
        case filters = "where", orderBy, limit, offset
    }

    /// Decodes a query; absent lists are empty.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        filters = try container.decodeIfPresent([[QueryCondition]].self, forKey: .filters) ?? []
        orderBy = try container.decodeIfPresent([QueryOrder].self, forKey: .orderBy) ?? []
        limit = try container.decodeIfPresent(Int.self, forKey: .limit)
        offset = try container.decodeIfPresent(Int.self, forKey: .offset)
    }

    /// Whether `field` is a plain dotted path: `^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`.
    ///
    /// Why so strict: field names end up in SQL (as JSON path expressions), so
    /// anything that is not plainly an identifier path is refused before it
    /// gets near a query.
    public static func isValidField(_ field: String) -> Bool {
        var atSegmentStart = true
        for byte in field.utf8 {
            let letter = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: "_")
            let digit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            if atSegmentStart {
                guard letter else { return false }
                atSegmentStart = false
            } else if byte == UInt8(ascii: ".") {
                atSegmentStart = true
            } else {
                guard letter || digit else { return false }
            }
        }
        return !atSegmentStart
    }

    /// Checks fields, operators' operands, `limit` and `offset`.
    /// - Throws: `WireError` with code `invalid_query` naming the place, e.g. `where[0][1].field`.
    public func validate() throws {
        for (groupIndex, group) in filters.enumerated() {
            for (index, condition) in group.enumerated() {
                let path = "where[\(groupIndex)][\(index)]"
                guard Self.isValidField(condition.field) else {
                    throw WireError(code: .invalidQuery, message: "\(path).field: invalid field \"\(condition.field)\"")
                }
                if let problem = Self.operandProblem(condition.op, condition.value) {
                    throw WireError(code: .invalidQuery, message: "\(path).value: \(problem)")
                }
            }
        }
        for (index, order) in orderBy.enumerated() where !Self.isValidField(order.field) {
            throw WireError(code: .invalidQuery, message: "orderBy[\(index)].field: invalid field \"\(order.field)\"")
        }
        if let limit, limit < 0 { throw WireError(code: .invalidQuery, message: "limit: must be ≥ 0") }
        if let offset, offset < 0 { throw WireError(code: .invalidQuery, message: "offset: must be ≥ 0") }
    }

    private static func operandProblem(_ op: QueryOperator, _ value: JSONValue?) -> String? {
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
            var query = ReadModelQueryBody()
            try reader.readObject(at: "", rejectUnknown: true) { reader, key, keyPath in
                switch key {
                case "where":
                    if try reader.readNullIfPresent() { return true }
                    try reader.readArray(at: keyPath) { reader, _, groupPath in
                        var group: [QueryCondition] = []
                        try reader.readArray(at: groupPath) { reader, _, conditionPath in
                            group.append(try readCondition(&reader, at: conditionPath))
                        }
                        query.filters.append(group)
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
                        query.orderBy.append(QueryOrder(field: field, desc: desc))
                    }
                case "limit":
                    if try !reader.readNullIfPresent() { query.limit = Int(try reader.readInt()) }
                case "offset":
                    if try !reader.readNullIfPresent() { query.offset = Int(try reader.readInt()) }
                default:
                    return false
                }
                return true
            }
            try reader.finish()
            try query.validate()
            return query
        } catch var error as WireError {
            if error.code != .invalidJSON { error.code = .invalidQuery }
            throw error
        }
    }

    private static func readCondition(_ reader: inout JSONReader, at path: String) throws -> QueryCondition {
        var field: String?, op: QueryOperator?, value: JSONValue?
        try reader.readObject(at: path, rejectUnknown: true) { reader, key, _ in
            switch key {
            case "field": field = try reader.readString()
            case "op":
                let text = try reader.readString()
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
        return QueryCondition(field: field, op: op, value: value)
    }
}

extension ReadModelQueryBody: JSONWritable {
    /// Writes the query (for the client).
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("where")
        writer.beginArray()
        for group in filters {
            writer.beginArray()
            for condition in group {
                writer.beginObject()
                writer.key("field")
                writer.string(condition.field)
                writer.key("op")
                writer.string(condition.op.rawValue)
                if let value = condition.value {
                    writer.key("value")
                    value.write(to: &writer)
                }
                writer.endObject()
            }
            writer.endArray()
        }
        writer.endArray()
        if !orderBy.isEmpty {
            writer.key("orderBy")
            writer.beginArray()
            for order in orderBy {
                writer.beginObject()
                writer.key("field")
                writer.string(order.field)
                writer.key("desc")
                writer.bool(order.desc)
                writer.endObject()
            }
            writer.endArray()
        }
        if let limit {
            writer.key("limit")
            writer.int(limit)
        }
        if let offset {
            writer.key("offset")
            writer.int(offset)
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

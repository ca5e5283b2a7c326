import Foundation
import Mink
import MinkConfig
import MinkWire

/// A projection declared in the config file, compiled: it applies the mapping language of
/// `docs/projections.md` to JSON documents.
///
/// It is an `InlineProjection`, so it runs inside a transaction — the append's (`mode: inline`)
/// or a background batch's together with the checkpoint (`mode: async`); either way a thrown
/// error rolls its writes back.
public struct DeclaredProjection: BatchInlineProjection, ReadModelProjection {
    /// The projection's name.
    public let name: String
    /// The read model it writes.
    public let readModelName: String
    /// `inline` or `async`.
    public let mode: ProjectionEngine.Mode
    /// The fields to index.
    public let indexes: [FieldPath]
    /// The event types with a handler, in file order.
    public let handledEvents: [String]
    let handlers: [String: CompiledHandler]

    /// Compiles a definition.
    /// - Parameter index: the definition's place in `projections:` (for error messages).
    /// - Throws: `ConfigError` naming the projection, handler and key.
    public init(_ definition: ProjectionDefinition, index: Int) throws {
        let base = "projections[\(index)]"
        name = definition.name
        readModelName = definition.readModel
        mode = definition.mode == .inline ? .inline : .async
        if definition.readModel.range(of: #"__g[0-9]+$"#, options: .regularExpression) != nil {
            throw ConfigError(
                keyPath: "\(base).readModel",
                message: "projection \(definition.name): \"\(definition.readModel)\" ends like a rebuild copy (__g<n>); choose another name"
            )
        }
        indexes = try definition.indexes.enumerated().map { i, field in
            do { return try FieldPath(field) } catch {
                throw ConfigError(keyPath: "\(base).indexes[\(i)]", message: "projection \(definition.name): invalid field \"\(field)\"")
            }
        }
        var handlers: [String: CompiledHandler] = [:]
        for (j, h) in definition.handlers.enumerated() {
            handlers[h.event] = try CompiledHandler(h, projection: definition.name, keyPath: "\(base).handlers[\(j)]")
        }
        self.handlers = handlers
        handledEvents = definition.handlers.map(\.event)
    }

    /// Compiles every definition of a configuration.
    /// - Throws: the first `ConfigError`.
    public static func compile(_ definitions: [ProjectionDefinition]) throws -> [DeclaredProjection] {
        try definitions.enumerated().map { try DeclaredProjection($1, index: $0) }
    }

    /// Applies one event: looks up its handler (none: nothing to do) and updates, creates or
    /// deletes the document it names. The same fold as ``apply(batch:in:)`` over one event.
    /// - Throws: `.projectionFailed` naming the projection, the event and what went wrong.
    public func apply(_ event: Event, in tx: any ReadModelTransaction) throws {
        try apply(batch: [event], in: tx)
    }

    /// Applies a batch of events in one fold: each event is parsed once and its document ID
    /// evaluated, the documents the batch touches are loaded with one query, every event is
    /// applied to them in memory in log order, and each changed document is written once (one
    /// multi-row upsert, one delete) — the same documents as applying the events one by one.
    /// - Throws: `.projectionFailed` naming the projection, the first event that cannot be
    ///   applied (its `position`) and what went wrong; the caller's transaction rolls back.
    public func apply(batch events: [Event], in tx: any ReadModelTransaction) throws {
        // 1. Which documents: every ID is known before anything is read or written.
        var steps: [(handler: CompiledHandler, source: EventSource, id: String)] = []
        steps.reserveCapacity(events.count)
        var ids: [String] = []
        var seen: Set<String> = []
        for event in events {
            guard let handler = handlers[event.type] else { continue }
            var source = EventSource(event)
            let id = try failure(at: event) { try handler.documentID(&source) }
            steps.append((handler, source, id))
            if seen.insert(id).inserted { ids.append(id) }
        }
        guard !steps.isEmpty else { return }
        // 2. One read for the whole batch.
        let stored = try tx.documents(readModelName, ids: ids)
        // 3. The fold, in memory; a stored document is parsed when an event first needs it.
        var slots: [String: FoldSlot] = [:]
        slots.reserveCapacity(ids.count)
        for i in steps.indices {
            let (handler, id) = (steps[i].handler, steps[i].id)
            try failure(at: steps[i].source.event) {
                try handler.fold(&slots[id, default: FoldSlot(stored: stored[id])], id: id, &steps[i].source)
            }
        }
        // 4. One write per changed document.
        var puts: [(id: String, json: Data)] = []
        var deletes: [String] = []
        for id in ids {
            guard let slot = slots[id], slot.changed else { continue }
            if let doc = slot.document {
                var writer = JSONWriter(capacity: 256)
                JSONValue.object(doc).write(to: &writer)
                puts.append((id, Data(writer.bytes)))
            } else if slot.existed {
                deletes.append(id)
            }
        }
        if !deletes.isEmpty { try tx.deleteDocuments(readModelName, ids: deletes) }
        if !puts.isEmpty { try tx.putDocuments(readModelName, puts) }
    }

    /// Runs `body` for `event`, turning a mapping failure into the projection error that names
    /// the event (its position lets the engine commit what precedes it before faulting).
    private func failure<T>(at event: Event, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as MappingFailure {
            throw MinkError(
                .projectionFailed, "projection \(name): event \(event.globalPosition) (\(event.type)): \(failure.message)",
                projectionName: name, position: event.globalPosition
            )
        }
    }
}

/// One document during a batch fold: as stored (parsed on first use), then as the events left it.
struct FoldSlot {
    /// Whether the document existed before the batch.
    let existed: Bool
    /// The stored bytes, until parsed.
    var raw: Data?
    /// The document now (`nil`: none), valid once `parsed`.
    var document: [String: JSONValue]?
    var parsed: Bool
    /// Whether an event changed it.
    var changed = false

    init(stored: Data?) {
        existed = stored != nil
        raw = stored
        parsed = stored == nil
    }
}

/// Why a handler could not apply an event.
struct MappingFailure: Error {
    var message: String
}

/// One handler, ready to run.
struct CompiledHandler: Sendable {
    let id: ProjectionValue
    let set: [(field: [String], value: ProjectionValue)]
    let increment: [(field: [String], value: ProjectionValue)]
    let append: [(field: [String], value: ProjectionValue)]
    let unset: [[String]]
    let delete: Bool

    init(_ h: ProjectionDefinition.Handler, projection: String, keyPath: String) throws {
        id = h.id
        delete = h.delete
        set = h.set.map { ($0.field.split(separator: ".").map(String.init), $0.value) }
        increment = h.increment.map { ($0.field.split(separator: ".").map(String.init), $0.value) }
        append = h.append.map { ($0.field.split(separator: ".").map(String.init), $0.value) }
        unset = h.unset.map { $0.split(separator: ".").map(String.init) }
        // A field written twice in one handler (or a field and one inside it) has no clear meaning.
        var seen: [(field: String, key: String)] = []
        let all = h.set.map { ("set", $0.field) } + h.increment.map { ("increment", $0.field) } + h.append.map { ("append", $0.field) }
            + h.unset.map { ("unset", $0) }
        for (op, field) in all {
            if let clash = seen.first(where: { $0.field == field || $0.field.hasPrefix(field + ".") || field.hasPrefix($0.field + ".") }) {
                throw ConfigError(
                    keyPath: "\(keyPath).\(op).\(field)",
                    message: "projection \(projection), handler \(h.event): \(field) clashes with \(clash.key) in the same handler"
                )
            }
            seen.append((field, "\(op).\(field)"))
        }
    }

    /// The ID of the document the event addresses.
    func documentID(_ source: inout EventSource) throws -> String {
        let idValue = try source.evaluate(id)
        switch idValue {
        case .string(let s) where !s.isEmpty: return s
        case .number(let n) where Int64(n) != nil: return n
        default:
            throw MappingFailure(message: "id \(id.text) is \(idValue.kindDescription), not a non-empty string or an integer")
        }
    }

    /// Applies the event to its document as the batch fold holds it: `delete` removes it; `set`,
    /// `increment` and `append` create it if missing; `unset` alone never creates one.
    func fold(_ slot: inout FoldSlot, id docID: String, _ source: inout EventSource) throws {
        if delete {
            slot.document = nil
            slot.raw = nil
            slot.parsed = true
            slot.changed = true
            return
        }
        if !slot.parsed {
            guard let raw = slot.raw, case .object(let o) = try? JSONValue(jsonBytes: [UInt8](raw)) else {
                throw MappingFailure(message: "stored document \(docID) is not a JSON object")
            }
            slot.document = o
            slot.raw = nil
            slot.parsed = true
        }
        if slot.document == nil, set.isEmpty, increment.isEmpty, append.isEmpty { return }  // only unset: nothing to create
        var doc = slot.document ?? [:]
        slot.document = nil  // keeps `doc` uniquely referenced while it is edited
        for (field, value) in set {
            let v = try source.evaluate(value)
            try Document.update(&doc, field, name: field.joined(separator: ".")) { _ in v }
        }
        for (field, value) in increment {
            let name = field.joined(separator: ".")
            let delta = try source.evaluate(value)
            try Document.update(&doc, field, name: name) { current in try Number.add(current ?? .null, delta, field: name) }
        }
        for (field, value) in append {
            let name = field.joined(separator: ".")
            let v = try source.evaluate(value)
            try Document.update(&doc, field, name: name) { current in
                switch current {
                case nil, .null?: return .array([v])
                case .array(var a)?:
                    a.append(v)
                    return .array(a)
                case let other?: throw MappingFailure(message: "append \(name): the field holds \(other.kindDescription), not an array")
                }
            }
        }
        for field in unset { Document.remove(&doc, field) }
        slot.document = doc
        slot.changed = true
    }
}

/// Edits of nested document fields.
enum Document {
    /// Replaces the value at `path` with `transform(current)`, creating objects on the way.
    static func update(
        _ doc: inout [String: JSONValue], _ path: [String], name: String,
        _ transform: (JSONValue?) throws -> JSONValue
    ) throws {
        guard let key = path.first else { return }
        if path.count == 1 {
            doc[key] = try transform(doc[key])
            return
        }
        var child: [String: JSONValue]
        switch doc[key] {
        case nil, .null?: child = [:]
        case .object(let o)?: child = o
        case let other?:
            throw MappingFailure(message: "\(name): \(key) holds \(other.kindDescription), not an object")
        }
        doc[key] = nil  // keeps `child` uniquely referenced while it is edited
        try update(&child, Array(path.dropFirst()), name: name, transform)
        doc[key] = .object(child)
    }

    /// Removes the value at `path` (nothing when absent).
    static func remove(_ doc: inout [String: JSONValue], _ path: [String]) {
        guard let key = path.first else { return }
        if path.count == 1 {
            doc[key] = nil
            return
        }
        guard case .object(var child)? = doc[key] else { return }
        remove(&child, Array(path.dropFirst()))
        doc[key] = .object(child)
    }
}

/// `increment` arithmetic: integers stay integers (an overflow is an error, never a silent
/// rounding); anything else is added as a `Double`.
enum Number {
    static func add(_ current: JSONValue, _ delta: JSONValue, field: String) throws -> JSONValue {
        guard case .number(let d) = delta else {
            throw MappingFailure(message: "increment \(field): the value is \(delta.kindDescription), not a number")
        }
        let c: String
        switch current {
        case .null: c = "0"
        case .number(let text): c = text
        default: throw MappingFailure(message: "increment \(field): the field holds \(current.kindDescription), not a number")
        }
        if let a = Int64(c), let b = Int64(d) {
            let (sum, overflow) = a.addingReportingOverflow(b)
            if overflow { throw MappingFailure(message: "increment \(field): \(c) + \(d) overflows a 64-bit integer") }
            return .int(sum)
        }
        guard let a = Double(c), let b = Double(d), (a + b).isFinite else {
            throw MappingFailure(message: "increment \(field): \(c) + \(d) is not a finite number")
        }
        return .double(a + b)
    }
}

/// An event seen as the API returns it, for `$.` paths; `data` is parsed on first use.
struct EventSource {
    let event: Event
    private var data: JSONValue?
    /// The metadata as JSON, made on first use (a handler may name several of its fields).
    private var parsedMetadata: JSONValue?

    init(_ event: Event) { self.event = event }

    mutating func evaluate(_ value: ProjectionValue) throws -> JSONValue {
        switch value {
        case .path(let p): return try resolve(p)
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .array(let elements): return .array(try elements.map { try evaluate($0) })
        case .object(let members):
            var o: [String: JSONValue] = [:]
            for m in members { o[m.key] = try evaluate(m.value) }
            return .object(o)
        }
    }

    private mutating func resolve(_ p: EventPath) throws -> JSONValue {
        switch p.root {
        case .id: return .string(event.id)
        case .streamId: return .string(event.streamID)
        case .type: return .string(event.type)
        case .version: return .int(event.version)
        case .globalPosition: return .int(Int64(clamping: event.globalPosition))
        case .timestamp: return .string(WireTimestamp(event.timestamp).rfc3339)
        case .metadata:
            if parsedMetadata == nil { parsedMetadata = metadata }
            return Self.walk(parsedMetadata ?? .null, p.segments)
        case .data:
            let parsed: JSONValue
            if let data {
                parsed = data
            } else {
                do { parsed = try JSONValue(jsonBytes: [UInt8](event.data)) } catch {
                    throw MappingFailure(message: "the event's data is not valid JSON")
                }
                data = parsed
            }
            return Self.walk(parsed, p.segments)
        }
    }

    /// The metadata exactly as the API writes it (empty fields omitted).
    private var metadata: JSONValue {
        (try? JSONValue(jsonBytes: event.metadata.jsonBytes())) ?? .object([:])
    }

    /// Follows object keys (and array indexes, for segments of digits); absent → `null`.
    static func walk(_ root: JSONValue, _ segments: [String]) -> JSONValue {
        var current = root
        for s in segments {
            switch current {
            case .object(let o): current = o[s] ?? .null
            case .array(let a):
                guard let i = Int(s), a.indices.contains(i) else { return .null }
                current = a[i]
            default: return .null
            }
        }
        return current
    }
}

extension JSONValue {
    /// "a string", "null", … for error messages.
    var kindDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string(let s): "the string \"\(s.prefix(40))\""
        case .array: "an array"
        case .object: "an object"
        }
    }
}

extension ProjectionValue {
    /// The value as written in the config, for error messages.
    var text: String {
        switch self {
        case .path(let p): p.description
        case .string(let s): "\"\(s)\""
        case .int(let i): "\(i)"
        default: "the literal"
        }
    }
}

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
    /// The parses shared with the projections compiled together (``compile(_:)``); `nil` when no
    /// event type is handled by more than one of them.
    let parses: EventParseCache?

    /// Compiles a definition.
    /// - Parameter index: the definition's place in `projections:` (for error messages).
    /// - Throws: `ConfigError` naming the projection, handler and key.
    public init(_ definition: ProjectionDefinition, index: Int) throws {
        try self.init(definition, index: index, layouts: DataLayout.layouts(for: [definition]), parses: nil)
    }

    /// Compiles a definition against the data layouts of the projections compiled with it.
    init(_ definition: ProjectionDefinition, index: Int, layouts: [String: DataLayout], parses: EventParseCache?) throws {
        self.parses = parses
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
            let layout = layouts[h.event] ?? DataLayout.layouts(for: [definition])[h.event]!
            handlers[h.event] = try CompiledHandler(h, projection: definition.name, keyPath: "\(base).handlers[\(j)]", layout: layout)
        }
        self.handlers = handlers
        handledEvents = definition.handlers.map(\.event)
    }

    /// Compiles every definition of a configuration. An event type several of them handle is
    /// parsed once for all of them (one ``DataLayout`` per type, one ``EventParseCache``).
    /// - Throws: the first `ConfigError`.
    public static func compile(_ definitions: [ProjectionDefinition]) throws -> [DeclaredProjection] {
        let layouts = DataLayout.layouts(for: definitions)
        let parses = layouts.values.contains(where: \.shared) ? EventParseCache() : nil
        return try definitions.enumerated().map { try DeclaredProjection($1, index: $0, layouts: layouts, parses: parses) }
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
        // 1. Which documents: every ID is known before anything is read or written. Each event
        // is parsed once (only the `data` members the handlers of its type read) and keeps its
        // parse; an event another projection has parsed already comes with that parse.
        var handled: [(handler: CompiledHandler, event: Event)] = []
        handled.reserveCapacity(events.count)
        for event in events {
            if let handler = handlers[event.type] { handled.append((handler, event)) }
        }
        guard !handled.isEmpty else { return }
        let given = sharedParses(of: handled)
        var steps: [(handler: CompiledHandler, source: EventSource, slot: Int)] = []
        steps.reserveCapacity(handled.count)
        var ids: [String] = []
        var index: [String: Int] = [:]
        for (i, (handler, event)) in handled.enumerated() {
            var source = EventSource(event, layout: handler.layout, parsed: given.isEmpty ? nil : given[i])
            let id = try failure(at: event) { try handler.documentID(&source) }
            let slot: Int
            if let k = index[id] {
                slot = k
            } else {
                slot = ids.count
                index[id] = slot
                ids.append(id)
            }
            steps.append((handler, source, slot))
        }
        // 2. One read for the whole batch.
        let stored = try tx.documents(readModelName, ids: ids)
        // 3. The fold, in memory; a stored document is parsed when an event first needs it.
        var slots = ids.map { FoldSlot(stored: stored[$0]) }
        for i in steps.indices {
            let (handler, k) = (steps[i].handler, steps[i].slot)
            try failure(at: steps[i].source.event) {
                try handler.fold(&slots[k], id: ids[k], &steps[i].source)
            }
        }
        if let parses {
            parses.store(steps.compactMap { s in
                guard s.handler.layout.shared, s.source.parsedHere, let d = s.source.parsedData else { return nil }
                return (s.source.event, d)
            })
        }
        // 4. One write per changed document.
        var puts: [(id: String, json: Data)] = []
        var deletes: [String] = []
        for (k, id) in ids.enumerated() {
            guard slots[k].changed else { continue }
            try slots[k].writeSums()
            let slot = slots[k]
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

    /// The parses other projections made of these events, where their type is shared (empty:
    /// none asked for).
    private func sharedParses(of handled: [(handler: CompiledHandler, event: Event)]) -> [ParsedData?] {
        guard let parses else { return [] }
        let wanted = handled.indices.filter { handled[$0].handler.layout.shared }
        guard !wanted.isEmpty else { return [] }
        let found = parses.parses(of: wanted.map { handled[$0].event })
        var out = [ParsedData?](repeating: nil, count: handled.count)
        for (k, i) in wanted.enumerated() { out[i] = found[k] }
        return out
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
    /// Fields incremented since the document was last brought up to date, with their running
    /// sums: a run of increments adds numbers rather than parsing and printing the field's text
    /// at every event. Written into `document` before anything else reads or writes it.
    var sums: [PendingSum] = []

    init(stored: Data?) {
        existed = stored != nil
        raw = stored
        parsed = stored == nil
    }

    /// Writes the running sums into the document.
    mutating func writeSums() throws {
        guard !sums.isEmpty, var doc = document else { return }
        document = nil  // keeps `doc` uniquely referenced while it is edited
        try PendingSum.write(&sums, into: &doc)
        document = doc
    }
}

/// A field's running sum during a batch fold (see ``FoldSlot/sums``).
struct PendingSum {
    /// The field's dotted name.
    let name: String
    let path: [String]
    var sum: Number.Sum

    /// Writes `sums` into `doc` and empties them.
    static func write(_ sums: inout [PendingSum], into doc: inout [String: JSONValue]) throws {
        for s in sums {
            let value = s.sum.json
            try Document.update(&doc, s.path, name: s.name) { _ in value }
        }
        sums.removeAll(keepingCapacity: true)
    }

    /// Writes the sums of the fields that contain `name` or lie inside it (not `name` itself).
    static func write(overlapping name: String, _ sums: inout [PendingSum], into doc: inout [String: JSONValue]) throws {
        guard sums.contains(where: { Self.overlap($0.name, name) }) else { return }
        var overlapping: [PendingSum] = []
        sums.removeAll { s in
            guard Self.overlap(s.name, name) else { return false }
            overlapping.append(s)
            return true
        }
        try write(&overlapping, into: &doc)
    }

    private static func overlap(_ a: String, _ b: String) -> Bool {
        a.hasPrefix(b + ".") || b.hasPrefix(a + ".")
    }
}

/// Why a handler could not apply an event.
struct MappingFailure: Error {
    var message: String
}

/// One handler, ready to run: field paths split and named once, literal values evaluated once,
/// and the members of the event's `data` its paths need known ahead (the rest is validated but
/// not built). A class: the batch fold keeps a reference per event.
final class CompiledHandler: Sendable {
    /// A field a handler writes, with its dotted name (for error messages).
    struct Field: Sendable {
        let path: [String]
        let name: String
        let value: CompiledValue

        init(_ field: String, _ value: ProjectionValue, layout: DataLayout) {
            path = field.split(separator: ".").map(String.init)
            name = path.joined(separator: ".")
            self.value = CompiledValue(value, layout: layout)
        }
    }

    let id: CompiledValue
    let idText: String
    let set: [Field]
    let increment: [Field]
    let append: [Field]
    let unset: [[String]]
    let delete: Bool
    /// Which members of the event type's `data` are parsed, in which slots (shared by every
    /// handler of the type among the projections compiled together).
    let layout: DataLayout
    /// Whether the handler sets, appends or unsets (then running sums are written out first).
    let editsFields: Bool

    init(_ h: ProjectionDefinition.Handler, projection: String, keyPath: String, layout: DataLayout) throws {
        self.layout = layout
        id = CompiledValue(h.id, layout: layout)
        idText = h.id.text
        delete = h.delete
        set = h.set.map { Field($0.field, $0.value, layout: layout) }
        increment = h.increment.map { Field($0.field, $0.value, layout: layout) }
        append = h.append.map { Field($0.field, $0.value, layout: layout) }
        unset = h.unset.map { $0.split(separator: ".").map(String.init) }
        editsFields = !h.set.isEmpty || !h.append.isEmpty || !h.unset.isEmpty
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
            throw MappingFailure(message: "id \(idText) is \(idValue.kindDescription), not a non-empty string or an integer")
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
            slot.sums.removeAll()
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
        // Running sums stand for their fields only while nothing but increments touches the
        // document: any other edit sees the fields written out first.
        if editsFields { try PendingSum.write(&slot.sums, into: &doc) }
        for f in set {
            let v = try source.evaluate(f.value)
            try Document.update(&doc, f.path, name: f.name) { _ in v }
        }
        for f in increment {
            let delta = try source.evaluate(f.value)
            if let k = slot.sums.firstIndex(where: { $0.name == f.name }) {
                slot.sums[k].sum = try Number.add(slot.sums[k].sum, delta, field: f.name)
                continue
            }
            // The first increment of the field in this batch (or since an edit) goes through the
            // document: it reads the stored value and the objects on the way, as event by event.
            try PendingSum.write(overlapping: f.name, &slot.sums, into: &doc)
            var sum = Number.Sum.int(0)
            try Document.update(&doc, f.path, name: f.name) { current in
                sum = try Number.add(current ?? .null, delta, field: f.name)
                return sum.json
            }
            slot.sums.append(PendingSum(name: f.name, path: f.path, sum: sum))
        }
        if !append.isEmpty || !unset.isEmpty { try PendingSum.write(&slot.sums, into: &doc) }
        for f in append {
            let v = try source.evaluate(f.value)
            try Document.update(&doc, f.path, name: f.name) { current in
                switch current {
                case nil, .null?: return .array([v])
                case .array(var a)?:
                    a.append(v)
                    return .array(a)
                case let other?: throw MappingFailure(message: "append \(f.name): the field holds \(other.kindDescription), not an array")
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
    /// A sum as the next increment reads it: the field's text is an integer literal (`.int`) or
    /// not (`.double`). A whole double of magnitude up to 2^53 is written as an integer
    /// (``JSONWriter/double(_:)``), so the next increment reads it as one: it is kept `.int`.
    enum Sum: Equatable {
        case int(Int64)
        case double(Double)

        init(_ value: Double) {
            if value == value.rounded(.towardZero), abs(value) <= JSONWriter.largestIntegerDouble {
                self = .int(Int64(value))
            } else {
                self = .double(value)
            }
        }

        /// The field's text, as the next increment would read it.
        var text: String {
            if case .number(let t) = json { return t }
            return ""
        }

        /// The field's value.
        var json: JSONValue {
            switch self {
            case .int(let i): .int(i)
            case .double(let d): .double(d)
            }
        }
    }

    /// Adds `delta` to the field's current value (`null` or missing counts as 0).
    static func add(_ current: JSONValue, _ delta: JSONValue, field: String) throws -> Sum {
        let d = try deltaText(delta, field: field)
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
        return Sum(a + b)
    }

    /// Adds `delta` to a running sum: the same result, and the same error, as adding it to the
    /// sum's text (``add(_:_:field:)`` with `current.json`), without printing and parsing it.
    static func add(_ current: Sum, _ delta: JSONValue, field: String) throws -> Sum {
        let d = try deltaText(delta, field: field)
        let a: Double
        switch current {
        case .int(let i):
            if let b = Int64(d) {
                let (sum, overflow) = i.addingReportingOverflow(b)
                if overflow { throw MappingFailure(message: "increment \(field): \(i) + \(d) overflows a 64-bit integer") }
                return .int(sum)
            }
            a = Double(i)  // as `Double("\(i)")`: both round to the nearest double
        case .double(let x):
            a = x  // its text never parses as an integer (see `Sum`) and reads back exactly
        }
        guard let b = Double(d), (a + b).isFinite else {
            throw MappingFailure(message: "increment \(field): \(current.text) + \(d) is not a finite number")
        }
        return Sum(a + b)
    }

    private static func deltaText(_ delta: JSONValue, field: String) throws -> String {
        guard case .number(let d) = delta else {
            throw MappingFailure(message: "increment \(field): the value is \(delta.kindDescription), not a number")
        }
        return d
    }
}

/// An event seen as the API returns it, for `$.` paths; `data` is parsed on first use — only the
/// members its type's ``DataLayout`` lists, the others validated and skipped, so a path sees
/// exactly what a full parse would give it — unless another projection's parse came with it.
struct EventSource {
    let event: Event
    private let layout: DataLayout
    /// `data` parsed (on first use, or handed over).
    private(set) var parsedData: ParsedData?
    /// Whether `parsedData` was made here rather than handed over.
    private(set) var parsedHere = false
    /// The metadata as JSON, made on first use (a handler may name several of its fields).
    private var parsedMetadata: JSONValue?

    init(_ event: Event, layout: DataLayout, parsed: ParsedData? = nil) {
        self.event = event
        self.layout = layout
        self.parsedData = parsed
    }

    mutating func evaluate(_ value: CompiledValue) throws -> JSONValue {
        switch value {
        case .constant(let v): return v
        case .path(let p): return try resolve(p)
        case .dynamic(let v): return try evaluate(v)
        }
    }

    mutating func evaluate(_ value: ProjectionValue) throws -> JSONValue {
        switch value {
        case .path(let p): return try resolve(CompiledPath(p, layout: layout))
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

    private mutating func resolve(_ compiled: CompiledPath) throws -> JSONValue {
        let p = compiled.path
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
            let parsed: ParsedData
            if let parsedData {
                parsed = parsedData
            } else {
                do { parsed = try layout.parse(event.data) } catch {
                    throw MappingFailure(message: "the event's data is not valid JSON")
                }
                parsedData = parsed
                parsedHere = true
            }
            switch parsed {
            case .whole(let value):
                return Self.walk(value, p.segments)
            case .members(let members):
                // The layout lists the first segment of every data path of the type's handlers.
                guard let slot = compiled.slot, slot < members.count else {
                    assertionFailure("data path \(p) has no slot in its layout")
                    return .null
                }
                return Self.walk(members[slot] ?? .null, compiled.rest)
            }
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

/// A path, compiled: for `$.data.<key>…`, the slot of `<key>` in the event type's
/// ``DataLayout`` and the segments after it.
struct CompiledPath: Sendable {
    let path: EventPath
    /// The slot of the first segment (a `data` path with segments, in a layout that lists members).
    let slot: Int?
    /// The segments after the first.
    let rest: [String]

    init(_ path: EventPath, layout: DataLayout) {
        self.path = path
        if path.root == .data, let first = path.segments.first {
            slot = layout.slot(of: first)
            rest = Array(path.segments.dropFirst())
        } else {
            slot = nil
            rest = []
        }
    }
}

/// A handler's value, compiled: a literal is evaluated once, at compile time (the same
/// `JSONValue` every event would evaluate it to), a lone path is resolved directly.
enum CompiledValue: Sendable {
    case constant(JSONValue)
    case path(CompiledPath)
    /// A literal array or object with paths inside.
    case dynamic(ProjectionValue)

    init(_ value: ProjectionValue, layout: DataLayout) {
        if case .path(let p) = value {
            self = .path(CompiledPath(p, layout: layout))
        } else if Self.hasPath(value) {
            self = .dynamic(value)
        } else {
            self = .constant(Self.literal(value))
        }
    }

    /// A value without paths, as `EventSource.evaluate` evaluates it.
    private static func literal(_ value: ProjectionValue) -> JSONValue {
        switch value {
        case .path: .null  // not a literal: never called with one
        case .null: .null
        case .bool(let b): .bool(b)
        case .int(let i): .int(i)
        case .double(let d): .double(d)
        case .string(let s): .string(s)
        case .array(let elements): .array(elements.map(literal))
        case .object(let members): .object(members.reduce(into: [:]) { $0[$1.key] = literal($1.value) })
        }
    }

    private static func hasPath(_ value: ProjectionValue) -> Bool {
        switch value {
        case .path: true
        case .array(let elements): elements.contains(where: hasPath)
        case .object(let members): members.contains { hasPath($0.value) }
        default: false
        }
    }

    /// Adds the top-level `data` members `value`'s paths read to `keys`; `nil` when a path reads
    /// `data` whole (`$.data`).
    static func collectDataKeys(_ value: ProjectionValue, into keys: inout Set<String>?) {
        switch value {
        case .path(let p) where p.root == .data:
            if let first = p.segments.first { keys?.insert(first) } else { keys = nil }
        case .array(let elements): for e in elements { collectDataKeys(e, into: &keys) }
        case .object(let members): for m in members { collectDataKeys(m.value, into: &keys) }
        default: break
        }
    }
}

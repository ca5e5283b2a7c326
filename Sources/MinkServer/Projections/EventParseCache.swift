import Foundation
import Mink
import MinkConfig
import Synchronization

/// An event's `data` as the declared projections' paths read it: the members its type's
/// ``DataLayout`` lists, each in its slot (`nil`: absent), or the whole value when the layout
/// reads `data` whole or `data` is not an object.
enum ParsedData: Sendable {
    case members([JSONValue?])
    case whole(JSONValue)
}

/// Which top-level members of one event type's `data` the declared projections read, in a fixed
/// order of slots: an event is parsed once into those slots (the other members validated and
/// skipped), and every compiled path reads its slot directly — no dictionary per event.
///
/// One layout per event type for all the projections compiled together
/// (``DeclaredProjection/compile(_:)``): the union of what their handlers read, so one parse
/// serves every projection handling the type (``EventParseCache``).
final class DataLayout: Sendable {
    /// The members read, in slot order; `nil`: a path reads `data` whole, which is then parsed whole.
    let keys: [String]?
    /// `keys` as UTF-8, for ``JSONReader/nextKey(among:)``.
    let names: [[UInt8]]
    /// Whether handlers of more than one projection read this type: their parses are then shared.
    let shared: Bool

    init(keys: [String]?, shared: Bool) {
        self.keys = keys
        self.names = keys?.map { Array($0.utf8) } ?? []
        self.shared = shared
    }

    /// The slot of a top-level member.
    func slot(of key: String) -> Int? { keys?.firstIndex(of: key) }

    /// The layout of every event type the definitions handle.
    static func layouts(for definitions: [ProjectionDefinition]) -> [String: DataLayout] {
        var keys: [String: Set<String>?] = [:]
        var projections: [String: Set<String>] = [:]
        for d in definitions {
            for h in d.handlers {
                var k: Set<String>? = keys[h.event] ?? []
                for v in [h.id] + h.set.map(\.value) + h.increment.map(\.value) + h.append.map(\.value) {
                    CompiledValue.collectDataKeys(v, into: &k)
                }
                keys.updateValue(k, forKey: h.event)
                projections[h.event, default: []].insert(d.name)
            }
        }
        return keys.reduce(into: [:]) { out, entry in
            out[entry.key] = DataLayout(keys: entry.value.map { $0.sorted() }, shared: (projections[entry.key]?.count ?? 0) > 1)
        }
    }

    /// Parses `data` for this layout. Every byte is validated, so invalid JSON anywhere fails as a
    /// full parse does; a repeated member keeps its last value, as a full parse does.
    func parse(_ data: Data) throws -> ParsedData {
        let bytes = [UInt8](data)
        guard keys != nil else { return .whole(try JSONValue(jsonBytes: bytes)) }
        var reader = JSONReader(bytes)
        guard try reader.peek() == .object else { return .whole(try JSONValue(jsonBytes: bytes)) }
        try reader.beginObject()
        var members = [JSONValue?](repeating: nil, count: names.count)
        while let name = try reader.nextKey(among: names) {
            switch name {
            case .listed(let i): members[i] = try reader.readValue()
            case .other: try reader.skipValue()
            }
        }
        try reader.finish()
        return .members(members)
    }
}

/// The parses of recent events shared by the declared projections compiled together: an event
/// type that several projections handle is parsed by the first of them to fold it, and the
/// others take that parse (each projection's runner reads its own pages, so the same event
/// arrives once per projection; live, a commit wakes them all for the same events).
///
/// Keyed by global position, but an entry is used only if the event's type and `data` bytes are
/// equal to the ones it was made from: a parse depends on nothing else (the layout follows the
/// type), so an entry can never be wrong — whatever tenant or rolled-back append the position
/// belonged to. Bounded: the oldest entries go first.
final class EventParseCache: Sendable {
    private struct Entry: Sendable {
        let type: String
        let data: Data
        let parsed: ParsedData
    }

    private struct Ring {
        var entries: [UInt64: Entry] = [:]
        /// Positions in insertion order, a ring once full.
        var order: [UInt64] = []
        var next = 0
    }

    /// The most parses kept (two catching-up batches).
    let capacity: Int
    private let ring = Mutex(Ring())

    init(capacity: Int = 20_000) {
        self.capacity = max(1, capacity)
    }

    /// The parses made earlier of these events (`nil` where there is none), under one lock.
    func parses(of events: [Event]) -> [ParsedData?] {
        ring.withLock { r in
            events.map { e in
                guard let entry = r.entries[e.globalPosition], entry.type == e.type, entry.data == e.data else { return nil }
                return entry.parsed
            }
        }
    }

    /// Keeps these parses for the other projections, under one lock.
    func store(_ parses: [(event: Event, parsed: ParsedData)]) {
        guard !parses.isEmpty else { return }
        ring.withLock { r in
            for (e, parsed) in parses where r.entries.index(forKey: e.globalPosition) == nil {
                if r.order.count < capacity {
                    r.order.append(e.globalPosition)
                } else {
                    r.entries[r.order[r.next]] = nil
                    r.order[r.next] = e.globalPosition
                    r.next = (r.next + 1) % capacity
                }
                r.entries[e.globalPosition] = Entry(type: e.type, data: e.data, parsed: parsed)
            }
        }
    }
}

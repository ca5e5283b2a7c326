import Foundation
import Synchronization

/// Which copies of a projection's read model exist: the one reads are served from and the one
/// a rebuild is filling. Stored durably with the read model (as a checkpoint row named
/// `<projection>#generations`), so a restart during a rebuild resumes it and never serves a
/// half-built copy.
///
/// Copy `1` is stored under the model's own name, copy `n > 1` under `<model>__g<n>` (a plain
/// identifier, so storage can index it); each copy has its own checkpoint (`<projection>` for
/// copy 1, `<projection>#<n>` after).
public struct ReadModelGenerations: Sendable, Hashable {
    /// The copy reads are served from (≥ 1).
    public var serving: UInt32
    /// The copy being rebuilt, or 0.
    public var building: UInt32

    /// Creates a value.
    public init(serving: UInt32 = 1, building: UInt32 = 0) {
        self.serving = max(1, serving)
        self.building = building
    }

    /// Why packed: the storage protocols store a `UInt64` per key; the pair fits in one, so one
    /// row read inside the append's transaction tells the inline hook both.
    init(packed: UInt64) {
        self.init(serving: UInt32(truncatingIfNeeded: packed >> 32), building: UInt32(truncatingIfNeeded: packed))
    }

    var packed: UInt64 { UInt64(serving) << 32 | UInt64(building) }

    /// The storage key of a projection's generations.
    public static func key(_ projection: String) -> String { "\(projection)#generations" }

    /// The physical model name of copy `generation` of `model`.
    public static func physicalName(_ model: String, generation: UInt32) -> String {
        generation <= 1 ? model : "\(model)__g\(generation)"
    }

    /// The checkpoint key of copy `generation` of a projection.
    public static func checkpointKey(_ projection: String, generation: UInt32) -> String {
        generation <= 1 ? projection : "\(projection)#\(generation)"
    }

    /// Whether `physical` names a copy of `model` (the model itself or `<model>__g<n>`), and which.
    public static func generation(of physical: String, model: String) -> UInt32? {
        if physical == model { return 1 }
        let prefix = model + "__g"
        guard physical.hasPrefix(prefix), let n = UInt32(physical.dropFirst(prefix.count)), n > 1 else { return nil }
        return n
    }

    /// Whether a name has the form of a rebuild copy's physical name (`<model>__g<n>`, any
    /// number — copies start at 2, and the whole form is kept for them): an internal name that
    /// clients do not address.
    public static func isCopyName(_ name: String) -> Bool {
        guard let r = name.range(of: "__g", options: .backwards), r.lowerBound > name.startIndex,
            UInt32(name[r.upperBound...]) != nil
        else { return false }
        return true
    }

    /// Reads the generations of a projection inside a transaction.
    public static func read(_ projection: String, in tx: any ReadModelTransaction) throws -> ReadModelGenerations {
        ReadModelGenerations(packed: try tx.checkpoint(key(projection)))
    }

    /// Writes the generations of a projection inside a transaction.
    public func write(_ projection: String, in tx: any ReadModelTransaction) throws {
        try tx.setCheckpoint(Self.key(projection), to: packed)
    }
}

/// Sends the writes and reads of one model to another (physical) model; everything else passes.
final class RedirectingTransaction: ReadModelTransaction {
    let base: any ReadModelTransaction
    let model: String
    let physical: String

    init(base: any ReadModelTransaction, model: String, physical: String) {
        self.base = base
        self.model = model
        self.physical = physical
    }

    static func wrap(_ tx: any ReadModelTransaction, model: String, generation: UInt32) -> any ReadModelTransaction {
        let physical = ReadModelGenerations.physicalName(model, generation: generation)
        return physical == model ? tx : RedirectingTransaction(base: tx, model: model, physical: physical)
    }

    private func map(_ m: String) -> String { m == model ? physical : m }
    func document(_ model: String, id: String) throws -> Data? { try base.document(map(model), id: id) }
    func putDocument(_ model: String, id: String, json: Data) throws { try base.putDocument(map(model), id: id, json: json) }
    func deleteDocument(_ model: String, id: String) throws { try base.deleteDocument(map(model), id: id) }
    func documents(_ model: String, ids: [String]) throws -> [String: Data] { try base.documents(map(model), ids: ids) }
    func putDocuments(_ model: String, _ documents: [(id: String, json: Data)]) throws { try base.putDocuments(map(model), documents) }
    func deleteDocuments(_ model: String, ids: [String]) throws { try base.deleteDocuments(map(model), ids: ids) }
    func checkpoint(_ projection: String) throws -> UInt64 { try base.checkpoint(projection) }
    func checkpoints(_ projections: [String]) throws -> [UInt64] { try base.checkpoints(projections) }
    func setCheckpoint(_ projection: String, to position: UInt64) throws { try base.setCheckpoint(projection, to: position) }
    func checkCheckpoints(_ projections: [String], _ check: @escaping @Sendable ([UInt64]) throws -> Void) throws {
        try base.checkCheckpoints(projections, check)
    }
    func excludeAppends() throws { try base.excludeAppends() }
    func events(after position: UInt64, limit: Int) throws -> [Event]? { try base.events(after: position, limit: limit) }
}

/// The append-transaction hook of an inline read-model projection that can be rebuilt into a
/// new copy.
///
/// It sees every event (so it can keep the copy being built level with the log): handled ones
/// are applied to the serving copy; while a rebuild runs, an event that directly follows the new
/// copy's checkpoint is applied to the new copy too (and its checkpoint moved), and the serving
/// copy's checkpoint records the event, which is how the switch knows the new copy has seen
/// everything the serving one has.
struct ReadModelInlineHook: BatchInlineProjection {
    let inner: any InlineProjection & ReadModelProjection
    private let cache = GenerationsCache()

    init(inner: any InlineProjection & ReadModelProjection) { self.inner = inner }

    var name: String { inner.name }
    var handledEvents: [String] { [] }

    func apply(_ event: Event, in tx: any ReadModelTransaction) throws {
        let g = try cache.generations(name, in: tx)
        let model = inner.readModelName
        let handled = inner.handles(event.type)
        if handled { try inner.apply(event, in: RedirectingTransaction.wrap(tx, model: model, generation: g.serving)) }
        guard g.building != 0 else { return }
        try tx.setCheckpoint(ReadModelGenerations.checkpointKey(name, generation: g.serving), to: event.globalPosition)
        let key = ReadModelGenerations.checkpointKey(name, generation: g.building)
        // Positions are dense: the new copy may take this event only if it has everything before it.
        if try tx.checkpoint(key) + 1 == event.globalPosition {
            if handled { try inner.apply(event, in: RedirectingTransaction.wrap(tx, model: model, generation: g.building)) }
            try tx.setCheckpoint(key, to: event.globalPosition)
        }
    }

    /// An append's events in one fold into the serving copy; while a rebuild runs, event by event
    /// (each event moves the copies' checkpoints).
    func apply(batch events: [Event], in tx: any ReadModelTransaction) throws {
        let g = try cache.generations(name, in: tx)
        guard g.building == 0 else {
            for e in events { try apply(e, in: tx) }
            return
        }
        let handled = events.filter { inner.handles($0.type) }
        if !handled.isEmpty {
            try inner.applyAll(handled, in: RedirectingTransaction.wrap(tx, model: inner.readModelName, generation: g.serving))
        }
    }
}

/// Remembers the generations read in the current transaction, so an append of many events reads
/// them once. Keyed by the transaction object itself (weakly: a new transaction at a recycled
/// address is never mistaken for the old one).
final class GenerationsCache: Sendable {
    /// `@unchecked Sendable`: the reference is only compared by identity under the mutex, never
    /// used to call the transaction.
    private struct WeakTransaction: @unchecked Sendable {
        weak var object: AnyObject?
    }

    private struct Entry: Sendable {
        var tx = WeakTransaction()
        var id: ObjectIdentifier?
        var value = ReadModelGenerations()
    }

    private let entry = Mutex(Entry())

    func generations(_ projection: String, in tx: any ReadModelTransaction) throws -> ReadModelGenerations {
        let id = ObjectIdentifier(tx)
        let weak = WeakTransaction(object: tx)
        if let hit = entry.withLock({ e in e.id == id && e.tx.object === weak.object ? e.value : nil }) { return hit }
        let value = try ReadModelGenerations.read(projection, in: tx)
        entry.withLock { $0 = Entry(tx: weak, id: id, value: value) }
        return value
    }
}

/// One copy of a read-model projection, run in the background: each batch is applied to the
/// copy in one transaction together with the copy's checkpoint. Inside the transaction, events
/// at or before the stored checkpoint are skipped (the inline hook may have applied them), and
/// the batch is refused if the copy is no longer current (a switch or a newer rebuild made it
/// obsolete) — so an event is applied to a copy exactly once. Every writing transaction first
/// fences with the projection's lease (``ProjectionLease/fence(_:)``): once another process has
/// taken the lease over, nothing more commits here.
struct ReadModelCopyProjection: CheckpointingAsyncProjection {
    let inner: any InlineProjection & ReadModelProjection
    let readModels: any ReadModelStore
    let generation: UInt32
    /// The lease the runner of this copy runs under.
    let lease: any ProjectionLease

    var name: String { inner.name }
    var handledEvents: [String] { inner.handledEvents }
    var checkpointKey: String { ReadModelGenerations.checkpointKey(inner.name, generation: generation) }

    func apply(_ events: [Event]) async throws {
        guard let last = events.last else { return }
        try await apply(events, through: last.globalPosition)
    }

    /// Applies the batch (in one fold when the projection is a ``BatchInlineProjection``) and
    /// moves the copy's checkpoint to `position`, in one transaction: one commit per batch.
    ///
    /// The copy's generations and checkpoint are read with the batch's first read (the fold's
    /// document load) and checked when that round trip returns, before any later write is sent
    /// (a projection that writes without reading sends its writes with the check, and they are
    /// rolled back if it fails): on PostgreSQL a batch is two round trips, its load and its writes
    /// with `COMMIT`. That expects the stored checkpoint below the batch's first event — true
    /// unless an earlier attempt committed while its answer was lost (a broken connection after
    /// `COMMIT`), or, for the copy a rebuild of an inline projection is filling, the append hook
    /// moved it meanwhile; then the batch runs again after reading the checkpoint first, and only
    /// the events after it are applied.
    func apply(_ events: [Event], through position: UInt64) async throws {
        guard let first = events.first?.globalPosition else { return try await applyAfterReading(events, through: position) }
        let ahead = Flag()
        let body: @Sendable (any ReadModelTransaction) throws -> Void = { [inner, generation, checkpointKey, lease] tx in
            try lease.fence(tx)
            try tx.checkCheckpoints([ReadModelGenerations.key(inner.name), checkpointKey]) { stored in
                try Self.checkCurrent(ReadModelGenerations(packed: stored[0]), generation, inner.readModelName)
                if stored[1] >= first {
                    ahead.set()
                    throw MinkError(.cancelled, "the checkpoint of \(inner.name) is at or after the batch")
                }
            }
            try inner.applyAll(events, in: RedirectingTransaction.wrap(tx, model: inner.readModelName, generation: generation))
            try tx.setCheckpoint(checkpointKey, to: position)
        }
        do {
            // A small batch is a live one (a runner keeping up): grouped with the other live
            // projections of the tenant, woken by the same append.
            if events.count <= Self.groupedBatchLimit {
                try await readModels.groupedTransaction(body)
            } else {
                try await readModels.transaction(.relaxed, body)
            }
        } catch where ahead.isSet {
            // Flagged, not matched by error: a projection's own code may have wrapped the error.
            try await applyAfterReading(events, through: position)
        }
    }

    /// The most events of a batch committed with other projections' batches
    /// (``ReadModelStore/groupedTransaction(_:)``); larger ones (catching up, rebuilding) run in
    /// transactions of their own, in parallel.
    static let groupedBatchLimit = 32

    /// ``apply(_:through:)`` with the checkpoint read first: only the events after it are applied.
    private func applyAfterReading(_ events: [Event], through position: UInt64) async throws {
        try await readModels.transaction(.relaxed) { [inner, generation, checkpointKey, lease] tx in
            try lease.fence(tx)
            // The generations and this copy's checkpoint in one read (one round trip on PostgreSQL).
            let stored = try tx.checkpoints([ReadModelGenerations.key(inner.name), checkpointKey])
            try Self.checkCurrent(ReadModelGenerations(packed: stored[0]), generation, inner.readModelName)
            let done = stored[1]
            let rtx = RedirectingTransaction.wrap(tx, model: inner.readModelName, generation: generation)
            let pending = events.drop(while: { $0.globalPosition <= done })
            if !pending.isEmpty { try inner.applyAll(Array(pending), in: rtx) }
            if position > done { try tx.setCheckpoint(checkpointKey, to: position) }
        }
    }

    /// Refuses a batch for a copy that is no longer current (a switch or a newer rebuild made it
    /// obsolete).
    private static func checkCurrent(_ g: ReadModelGenerations, _ generation: UInt32, _ model: String) throws {
        guard g.serving == generation || g.building == generation else {
            throw MinkError(.cancelled, "copy \(generation) of \(model) is no longer current")
        }
    }

    func checkpoint() async throws -> UInt64 {
        try await readModels.transaction(.relaxed) { [checkpointKey] tx in try tx.checkpoint(checkpointKey) }
    }

    func setCheckpoint(_ position: UInt64) async throws {
        try await readModels.transaction(.relaxed) { [checkpointKey, lease] tx in
            try lease.fence(tx)
            if try tx.checkpoint(checkpointKey) < position { try tx.setCheckpoint(checkpointKey, to: position) }
        }
    }
}

/// A flag set from a `@Sendable` closure (a storage's deferred check) and read after it ran.
private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

import Foundation
import Synchronization

/// Storage that lives in memory: for tests, examples and `minkd --storage memory`.
///
/// One value is scoped to one tenant; ``forTenant(_:)`` returns a view of the same storage scoped
/// to another, with its own streams, positions, snapshots, checkpoints and read models. It keeps
/// every guarantee of ``EventStoreAdapter`` (a single lock makes each append atomic and keeps
/// positions in commit order).
public final class InMemoryStorage: EventStoreAdapter, SnapshotAdapter, ReadModelStore {
    struct TenantState {
        /// Indexed by position - 1; a deleted or scavenged event leaves `nil`, so that its
        /// position is never reused.
        var log: [Event?] = []
        var streams: [String: [Int]] = [:]  // stream ID → indexes into `log` of its stored events
        var records: [String: StreamRecord] = [:]  // stream ID → version counter and life-cycle state
        var retention: [String: StreamRetention] = [:]
        var snapshots: [String: Snapshot] = [:]
        var documents: [String: [String: Data]] = [:]  // model → id → JSON
        var checkpoints: [String: UInt64] = [:]
    }

    final class Shared: Sendable {
        let tenants = Mutex<[String: TenantState]>([:])
        /// The tenants of the ``TenantCatalog``: apart from `tenants`, because reading a tenant
        /// makes its (empty) state without creating the tenant.
        let registered = Mutex<Set<String>>([TenantID.default])
    }

    private let shared: Shared
    /// The tenant this view is scoped to.
    public let tenantID: String

    /// Creates empty storage, scoped to the `default` tenant.
    public convenience init() {
        self.init(shared: Shared(), tenantID: TenantID.default)
    }

    init(shared: Shared, tenantID: String) {
        self.shared = shared
        self.tenantID = tenantID
    }

    func withState<T>(_ body: (inout TenantState) throws -> T) rethrows -> T {
        try shared.tenants.withLock { tenants in
            try body(&tenants[tenantID, default: TenantState()])
        }
    }

    // MARK: Tenancy

    public func forTenant(_ tenantID: String) throws -> any EventStoreAdapter { try scoped(tenantID) }
    public func forTenant(_ tenantID: String) throws -> any SnapshotAdapter { try scoped(tenantID) }
    public func forTenant(_ tenantID: String) throws -> any ReadModelStore { try scoped(tenantID) }

    /// The same storage scoped to another tenant.
    public func scoped(_ tenantID: String) throws -> InMemoryStorage {
        try TenantID.validate(tenantID)
        return InMemoryStorage(shared: shared, tenantID: tenantID)
    }

    // MARK: Events

    public func append(_ request: AppendRequest, hook: AppendTransactionHook?) async throws -> AppendResult {
        try withState { state in try Self.append(request, hook: hook, state: &state) }
    }

    /// The append itself, under the lock (also used for the `$StreamDeleted` record of a deletion).
    static func append(_ request: AppendRequest, hook: AppendTransactionHook?, state: inout TenantState) throws -> AppendResult {
        let record = state.records[request.streamID]
        if record?.state == .hard { throw MinkError.streamDeleted(request.streamID) }
        let indexes = state.streams[request.streamID] ?? []
        let existing = indexes.compactMap { state.log[$0] }
        let version = record?.version ?? 0
        if let replay = try Self.replay(of: request, in: existing, currentVersion: version) { return replay }
        // A soft-deleted stream counts as not existing for the check, but its versions go on.
        try request.expectedVersion.check(streamID: request.streamID, currentVersion: record?.state == .soft ? 0 : version)

        let now = Date()
        var stored: [Event] = []
        let head = UInt64(state.log.count)
        for (i, e) in request.events.enumerated() {
            stored.append(Event(
                id: e.id ?? UUID().uuidString.lowercased(), streamID: request.streamID, type: e.type, data: e.data,
                metadata: e.metadata, version: version + Int64(i) + 1, globalPosition: head + UInt64(i) + 1,
                timestamp: now
            ))
        }
        if let hook {
            let tx = InMemoryTransaction(state: state)
            try hook(stored, tx)
            state.documents = tx.state.documents
            state.checkpoints = tx.state.checkpoints
        }
        var newIndexes = indexes
        for e in stored {
            newIndexes.append(state.log.count)
            state.log.append(e)
        }
        state.streams[request.streamID] = newIndexes
        let createdAt = record?.state == .live ? record!.createdAt : now
        state.records[request.streamID] = StreamRecord(version: version + Int64(stored.count), state: .live, createdAt: createdAt, updatedAt: now)
        return AppendResult(streamID: request.streamID, events: stored)
    }

    /// The idempotency rule shared by adapters: if every event of `request` carries an ID that is
    /// already in the stream, the request is a retry — identical (type, data and metadata, the
    /// latter as stored: the append's metadata merged in, the tenant stamped) and consecutive
    /// events return the original result, anything else is `.duplicateEventID`. If no ID is
    /// known, `nil`.
    /// - Parameters:
    ///   - stream: the stored events of the stream — all of them, or (for an adapter that reads
    ///     only the events whose IDs the request reuses) those, with `currentVersion` given.
    ///   - currentVersion: the stream's version, reported as the error's `actualVersion`; by
    ///     default the last version in `stream`.
    public static func replay(of request: AppendRequest, in stream: [Event], currentVersion: Int64? = nil) throws -> AppendResult? {
        let byID = Dictionary(stream.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let found = request.events.map { $0.id.flatMap { byID[$0] } }
        let known = found.compactMap { $0 }
        if known.isEmpty { return nil }
        // One earlier append: consecutive versions *and* positions, one commit time (every event
        // of an append gets both). Events of two appends stitched into one "retry" answered `200`
        // as if they had been one append (a black-box audit); now they are `duplicate_event_id`.
        // (Each append of a PostgreSQL group commit gets the batch's commit time plus its place in
        // the batch, in microseconds, so appends of one batch differ too.)
        let sameEvents = zip(request.events, found).allSatisfy { e, stored in
            stored.map { e.type == $0.type && e.data == $0.data && e.metadata == $0.metadata } ?? true
        }
        let identical = known.count == request.events.count && sameEvents
            && zip(known, known.dropFirst()).allSatisfy {
                $1.version == $0.version + 1 && $1.globalPosition == $0.globalPosition + 1 && $1.timestamp == $0.timestamp
            }
        guard identical else {
            // The message says which rule was broken: an ID reused for other contents, or events
            // stored before in an append this one does not repeat (some events without their ID,
            // events added, events of several appends).
            // The ID named: the first whose stored event differs, else the first stored one.
            let differing = zip(request.events, found).first { e, stored in
                stored.map { !(e.type == $0.type && e.data == $0.data && e.metadata == $0.metadata) } ?? false
            }?.1
            let message = sameEvents
                ? "event ID \(known[0].id) is already stored in stream \(request.streamID), and this append is not a retry of the append that stored it (a retry repeats that append's events exactly, every one with its ID)"
                : "event ID \((differing ?? known[0]).id) was already used for another event in stream \(request.streamID)"
            throw MinkError(.duplicateEventID, message, streamID: request.streamID, actualVersion: currentVersion ?? stream.last?.version)
        }
        return AppendResult(streamID: request.streamID, events: known, isReplay: true)
    }

    public func readStream(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws -> [Event] {
        withState { state in
            let events = (state.streams[streamID] ?? []).compactMap { state.log[$0] }
            guard limit > 0, !events.isEmpty else { return [] }
            switch direction {
            case .forward:
                let start = max(version, 1)
                return Array(events.lazy.filter { $0.version >= start }.prefix(limit))
            case .backward:
                let upper = version < 0 ? Int64.max : version
                return Array(events.reversed().lazy.filter { $0.version <= upper }.prefix(limit))
            }
        }
    }

    public func streamInfo(_ streamID: String) async throws -> StreamInfo? {
        withState { state in
            guard let record = state.records[streamID], record.state == .live else { return nil }
            return StreamInfo(
                streamID: streamID, version: record.version, eventCount: Int64(state.streams[streamID]?.count ?? 0),
                createdAt: record.createdAt, updatedAt: record.updatedAt
            )
        }
    }

    public func readAll(after position: UInt64, filter: EventFilter, limit: Int) async throws -> [Event] {
        withState { state in
            var out: [Event] = []
            var i = Int(min(position, UInt64(state.log.count)))
            while i < state.log.count, out.count < limit {
                if let e = state.log[i], filter.matches(e) { out.append(e) }
                i += 1
            }
            return out
        }
    }

    public func headPosition() async throws -> UInt64 {
        withState { UInt64($0.log.count) }
    }

    // MARK: Snapshots

    public func saveSnapshot(_ snapshot: Snapshot) async throws {
        _ = try await storeSnapshot(snapshot)
    }

    public func storeSnapshot(_ snapshot: Snapshot) async throws -> Int64 {
        try withState { state in
            // As the SQL storages check it, in the write: a deleted stream's snapshot would
            // describe events that are gone.
            switch state.records[snapshot.streamID]?.state {
            case .hard?: throw MinkError.streamDeleted(snapshot.streamID)
            case .soft?: throw MinkError.streamNotFound(snapshot.streamID)
            case .live?, nil: break
            }
            if let old = state.snapshots[snapshot.streamID], old.version > snapshot.version { return old.version }
            state.snapshots[snapshot.streamID] = snapshot
            return snapshot.version
        }
    }

    public func loadSnapshot(streamID: String) async throws -> Snapshot? {
        withState { $0.snapshots[streamID] }
    }

    // MARK: Read models

    public func document(_ model: String, id: String) async throws -> Data? {
        withState { $0.documents[model]?[id] }
    }

    public func find(_ model: String, query: Query) async throws -> [StoredDocument] {
        let query = try query.validated()
        let docs = withState { $0.documents[model] ?? [:] }
        let parsed = try docs.map { (id: $0.key, document: try JSONValue(json: $0.value)) }
        return query.apply(to: parsed).map { StoredDocument(id: $0.id, json: docs[$0.id]!) }
    }

    public func count(_ model: String, query: Query) async throws -> Int64 {
        Int64(try await find(model, query: query.unpaged).count)
    }

    public func findWithTotal(_ model: String, query: Query) async throws -> (documents: [StoredDocument], total: Int64) {
        let query = try query.validated()
        let docs = withState { $0.documents[model] ?? [:] }  // one state for both
        let parsed = try docs.map { (id: $0.key, document: try JSONValue(json: $0.value)) }
        let page = query.apply(to: parsed).map { StoredDocument(id: $0.id, json: docs[$0.id]!) }
        return (page, Int64(query.unpaged.apply(to: parsed).count))
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any ReadModelTransaction) throws -> T) async throws -> T {
        try withState { state in
            let tx = InMemoryTransaction(state: state)
            let result = try body(tx)
            state.documents = tx.state.documents
            state.checkpoints = tx.state.checkpoints
            return result
        }
    }

    public func dropModel(_ model: String) async throws {
        withState { _ = $0.documents.removeValue(forKey: model) }
    }

    public func createIndex(_ model: String, field: FieldPath) async throws {}

    public func modelNames() async throws -> [String] {
        withState { $0.documents.filter { !$0.value.isEmpty }.keys.sorted() }
    }
}

// MARK: - Tenant catalog

extension InMemoryStorage: TenantCatalog {
    public func tenants() async throws -> [String] {
        shared.registered.withLock { $0.sorted() }
    }

    public func tenantExists(_ tenantID: String) async throws -> Bool {
        try TenantID.validate(tenantID)
        return shared.registered.withLock { $0.contains(tenantID) }
    }

    @discardableResult
    public func createTenant(_ tenantID: String) async throws -> Bool {
        try TenantID.validate(tenantID)
        return shared.registered.withLock { $0.insert(tenantID).inserted }
    }

    @discardableResult
    public func deleteTenant(_ tenantID: String) async throws -> Bool {
        try TenantID.validateDeletable(tenantID)
        // Both locks, always in this order, so that no append lands between the two removals.
        return shared.registered.withLock { registered in
            shared.tenants.withLock { _ = $0.removeValue(forKey: tenantID) }
            return registered.remove(tenantID) != nil
        }
    }
}

/// Stages read-model writes on a copy of the state; the storage keeps the copy only on success.
final class InMemoryTransaction: ReadModelTransaction {
    var state: InMemoryStorage.TenantState

    init(state: InMemoryStorage.TenantState) { self.state = state }

    func document(_ model: String, id: String) throws -> Data? { state.documents[model]?[id] }
    func putDocument(_ model: String, id: String, json: Data) throws { state.documents[model, default: [:]][id] = json }
    func deleteDocument(_ model: String, id: String) throws { state.documents[model]?[id] = nil }
    func checkpoint(_ projection: String) throws -> UInt64 { state.checkpoints[projection] ?? 0 }
    func setCheckpoint(_ projection: String, to position: UInt64) throws { state.checkpoints[projection] = position }
    func events(after position: UInt64, limit: Int) throws -> [Event]? {
        guard limit > 0, position < UInt64(state.log.count) else { return [] }
        return Array(state.log[Int(position)...].lazy.compactMap { $0 }.prefix(limit))
    }
}

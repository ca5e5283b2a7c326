import Foundation

/// A batch of events to append to one stream: the one value an append travels as, from the store
/// through the middleware (it is the ``AppendCommand``) to the adapter.
///
/// The store has already validated it, given every event an ID, merged the append's metadata
/// into each event's and stamped the tenant ID.
/// The parts of an append's hook (``AppendRequest/hookParts``); equal only to itself.
public final class AppendHookParts: Sendable, Hashable {
    /// The parts, in the order the hook runs them.
    public let parts: [AppendTransactionHook]

    public init(_ parts: [AppendTransactionHook]) { self.parts = parts }

    public static func == (a: AppendHookParts, b: AppendHookParts) -> Bool { a === b }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

public struct AppendRequest: Sendable, Hashable {
    /// The stream to append to.
    public var streamID: String
    /// The events, in order; never empty; every `id` is set.
    public var events: [EventData]
    /// The optimistic-concurrency condition.
    public var expectedVersion: ExpectedVersion
    /// `true` when the store generated every event ID of this request for this very call of the
    /// adapter (fresh random UUIDs, never sent to storage before): no stored event can have one of
    /// them, so the adapter skips the lookup of already-stored IDs that makes retries idempotent.
    /// `false` (the default) whenever the IDs came from the caller, a middleware changed them, or
    /// the call is a retry of an attempt that may have committed.
    public var hasFreshIDs: Bool
    /// Appends whose hooks share a non-nil group pass one function that folds events in log
    /// order — an ``EventStore``'s inline projections: running it once over several appends'
    /// events together (in log order) gives what running it for each append in turn gives. A
    /// storage that commits several appends in one transaction may then run it once for all of
    /// them (and append by append only if that fails, so that a failing append fails alone).
    /// `nil` (the default): the hook runs for this append alone.
    public var hookGroup: ObjectIdentifier?
    /// The hook's independent parts — an ``EventStore``'s inline projections, one each: running
    /// them in turn over the same events is running the hook. A storage may use them to learn
    /// ahead what each part reads (PostgreSQL runs each without sending anything up to its first
    /// read it cannot answer, and reads what all of them need in one round trip), so each part,
    /// like the hook, must be a function of what it reads. `nil` (the default): the hook is one
    /// piece.
    public var hookParts: AppendHookParts?

    /// Creates a request.
    public init(
        streamID: String, events: [EventData], expectedVersion: ExpectedVersion, hasFreshIDs: Bool = false, hookGroup: ObjectIdentifier? = nil
    ) {
        self.streamID = streamID
        self.events = events
        self.expectedVersion = expectedVersion
        self.hasFreshIDs = hasFreshIDs
        self.hookGroup = hookGroup
    }
}

/// What an append assigned (seed: the Go `Append` returns only an error; Swift returns this).
public struct AppendResult: Sendable, Hashable {
    /// The stream appended to.
    public var streamID: String
    /// The version of the first event appended.
    public var fromVersion: Int64
    /// The version of the last event appended: the stream's version afterwards.
    public var toVersion: Int64
    /// The global position of the first event appended.
    public var fromPosition: UInt64
    /// The global position of the last event appended.
    public var toPosition: UInt64
    /// The stored events, in order.
    public var events: [Event]
    /// `true` when this was a retry of an append already committed with the same event IDs:
    /// nothing was written and the original result is returned.
    public var isReplay: Bool

    /// Creates a result from the stored events (never empty).
    public init(streamID: String, events: [Event], isReplay: Bool = false) {
        self.streamID = streamID
        self.events = events
        self.fromVersion = events.first?.version ?? 0
        self.toVersion = events.last?.version ?? 0
        self.fromPosition = events.first?.globalPosition ?? 0
        self.toPosition = events.last?.globalPosition ?? 0
        self.isReplay = isReplay
    }

    /// The IDs of the events, in order.
    public var eventIDs: [String] { events.map(\.id) }
}

/// Which way to read a stream.
public enum ReadDirection: String, Sendable, Hashable {
    /// Oldest first: `from` is the first version returned.
    case forward
    /// Newest first: `from` is the first version returned, counting down; `-1` means the last event.
    case backward
}

/// A page of a stream with the stream's info (``EventStore/readStreamWithInfo(_:from:limit:direction:)``).
public struct StreamRead: Sendable, Hashable {
    /// What the store knows about the stream (as ``EventStore/streamInfo(_:)``).
    public var info: StreamInfo
    /// The page (as ``EventStore/readStream(_:from:limit:direction:)``).
    public var events: [Event]

    public init(info: StreamInfo, events: [Event]) {
        self.info = info
        self.events = events
    }
}

/// What the store knows about a stream.
public struct StreamInfo: Sendable, Hashable {
    /// The stream.
    public var streamID: String
    /// Its category (the part of its ID before the first `-`).
    public var category: String { StreamID.category(of: streamID) }
    /// Its current version (= its number of events).
    public var version: Int64
    /// Its number of events.
    public var eventCount: Int64
    /// When its first event was committed.
    public var createdAt: Date
    /// When its last event was committed.
    public var updatedAt: Date

    /// Creates stream info.
    public init(streamID: String, version: Int64, eventCount: Int64, createdAt: Date, updatedAt: Date) {
        self.streamID = streamID
        self.version = version
        self.eventCount = eventCount
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Filters for reading the global log; all given conditions must hold.
public struct EventFilter: Sendable, Hashable {
    /// Only streams of this category (compared literally: `%` and `_` are not wildcards).
    public var category: String?
    /// Only these event types (empty: every type).
    public var eventTypes: [String]
    /// Only these streams (empty: every stream).
    public var streamIDs: [String]

    /// Creates a filter; no argument means every event.
    public init(category: String? = nil, eventTypes: [String] = [], streamIDs: [String] = []) {
        self.category = category
        self.eventTypes = eventTypes
        self.streamIDs = streamIDs
    }

    /// Every event.
    public static let all = EventFilter()

    /// Whether an event passes the filter.
    public func matches(_ event: Event) -> Bool {
        if let category, StreamID.category(of: event.streamID) != category { return false }
        if !eventTypes.isEmpty, !eventTypes.contains(event.type) { return false }
        if !streamIDs.isEmpty, !streamIDs.contains(event.streamID) { return false }
        return true
    }
}

/// Read-model writes inside a storage transaction (seed: `Transaction`).
///
/// Inline projections get one inside the append's transaction; async projections get one that
/// also commits their checkpoint. Calls are synchronous because they run on the storage's own
/// thread while the transaction is open; documents are JSON objects.
public protocol ReadModelTransaction: AnyObject {
    /// The document `id` of `model`, or `nil`.
    func document(_ model: String, id: String) throws -> Data?
    /// Creates or replaces the document `id` of `model`.
    func putDocument(_ model: String, id: String, json: Data) throws
    /// Removes the document `id` of `model` (no error when absent).
    func deleteDocument(_ model: String, id: String) throws
    /// The stored documents of `model` among `ids`, by ID (an ID without a document is absent
    /// from the result): one query where the storage has one (a batch fold loads its documents so).
    func documents(_ model: String, ids: [String]) throws -> [String: Data]
    /// Creates or replaces several documents of `model`, each ID once: one statement where the
    /// storage has one.
    func putDocuments(_ model: String, _ documents: [(id: String, json: Data)]) throws
    /// Removes several documents of `model` (no error for absent ones): one statement where the
    /// storage has one.
    func deleteDocuments(_ model: String, ids: [String]) throws
    /// The stored checkpoint of a projection (0 when none).
    func checkpoint(_ projection: String) throws -> UInt64
    /// The stored checkpoints of several projections, in order (0 when none): one query where
    /// the storage is remote (default implementation: ``checkpoint(_:)`` for each).
    func checkpoints(_ projections: [String]) throws -> [UInt64]
    /// Stores the checkpoint of a projection, committed with the transaction.
    func setCheckpoint(_ projection: String, to position: UInt64) throws
    /// Reads the stored checkpoints of several projections and hands them, in order, to `check`,
    /// whose error fails the transaction. Where the storage is remote the read goes with the
    /// transaction's next read and is checked when that round trip returns, before anything
    /// after it is sent — a batch's guard costs no round trip of its own (default
    /// implementation: ``checkpoints(_:)`` and `check` now).
    func checkCheckpoints(_ projections: [String], _ check: @escaping @Sendable ([UInt64]) throws -> Void) throws
    /// Waits until no append of this transaction's tenant is under way and keeps new ones out
    /// until this transaction ends — so that what it reads next includes every append committed
    /// before it, and every append after it sees what it writes (a rebuilt copy's switch: an
    /// append whose inline hook saw the old arrangement must not commit after it). Default:
    /// nothing (a storage whose appends and read-model transactions never overlap, e.g. one
    /// writer for both).
    func excludeAppends() throws
    /// The tenant's events after `position`, in the log's order, at most `limit`, as this
    /// transaction sees them — after ``excludeAppends()``, every append committed. `nil` where
    /// the storage cannot read them here (the default). A rebuilt copy's switch takes the events
    /// its builder has not applied yet from here, so that appends arriving all the time cannot
    /// keep the switch from ever finding the copy level with the serving one.
    func events(after position: UInt64, limit: Int) throws -> [Event]?
}

extension ReadModelTransaction {
    public func excludeAppends() throws {}

    public func events(after position: UInt64, limit: Int) throws -> [Event]? { nil }

    public func checkpoints(_ projections: [String]) throws -> [UInt64] { try projections.map { try checkpoint($0) } }

    public func checkCheckpoints(_ projections: [String], _ check: @escaping @Sendable ([UInt64]) throws -> Void) throws {
        try check(checkpoints(projections))
    }
}

/// The seed's name for the transaction handed to inline projections.
public typealias Transaction = ReadModelTransaction

/// Work an adapter runs inside an append's transaction, after the events got their versions and
/// positions; if it throws, the append is rolled back and the error is rethrown.
public typealias AppendTransactionHook = @Sendable ([Event], any ReadModelTransaction) throws -> Void

/// Storage for events (seed: `EventStoreAdapter`). Every adapter passes `MinkTesting`'s
/// conformance suite; its guarantees:
///
/// - an append is atomic and durable when it returns; the optimistic check and the write are one
///   transaction; a failed check writes nothing;
/// - versions are dense per stream and start at 1;
/// - global positions are strictly increasing in commit order and never become visible out of
///   order: a reader that has read up to N never later finds a committed event at a position ≤ N;
/// - event IDs are unique per stream: an append whose IDs were all committed before, identically
///   (same type and data), returns the original result with `isReplay == true`; an ID reused for a
///   different event fails with `.duplicateEventID`;
/// - the transaction hook commits with the events or not at all.
public protocol EventStoreAdapter: Sendable {
    /// Appends events atomically.
    /// - Throws: `.concurrencyConflict`, `.streamNotFound` (for `.streamExists`),
    ///   `.duplicateEventID`, `.unavailable`, or what the hook threw.
    func append(_ request: AppendRequest, hook: AppendTransactionHook?) async throws -> AppendResult

    /// Reads up to `limit` events of a stream starting at version `from` (inclusive) in `direction`.
    /// Returns an empty array for a missing stream.
    func readStream(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws -> [Event]

    /// The stream's info, or `nil` when it does not exist.
    func streamInfo(_ streamID: String) async throws -> StreamInfo?

    /// Reads up to `limit` events of the global log with a position greater than `position`.
    func readAll(after position: UInt64, filter: EventFilter, limit: Int) async throws -> [Event]

    /// ``readAll(after:filter:limit:)`` that also stops once the events read hold `maxBytes` of
    /// `data` (the event that reaches it is included: at least one event when any follows), so
    /// that a page of large events is not a transient gigabyte. A page shorter than `limit` is
    /// then not the end of the log: read on after its last event. The default reads the whole
    /// page and cuts it (bounded answer, unbounded read); the storages bound the read itself.
    func readAll(after position: UInt64, filter: EventFilter, limit: Int, maxBytes: Int) async throws -> [Event]

    /// The position of the last committed event (0 when the log is empty).
    func headPosition() async throws -> UInt64

    /// The same storage scoped to one tenant (its own streams, positions, snapshots, read models).
    /// - Throws: `.invalidTenant` or `.adapterNotSupported`.
    func forTenant(_ tenantID: String) throws -> any EventStoreAdapter

    /// Signals commits made outside this process (PostgreSQL's LISTEN/NOTIFY); `nil` when every
    /// commit goes through this process.
    func externalCommits() -> AsyncStream<Void>?

    /// Signals events removed from storage outside this process (another process's scavenger
    /// pass), and once after its listening connection was re-established (a signal may have been
    /// missed meanwhile): the subscription hub then forgets its memory of recent events. `nil`
    /// when every removal goes through this process.
    func externalRemovals() -> AsyncStream<Void>?

    /// How long a subscription hub may go without a waiting subscriber or projection before it
    /// ends its ``externalCommits()`` and ``externalRemovals()`` streams (reading storage before
    /// every answer until someone waits again, when it asks for them anew); `nil`: never — the
    /// streams cost nothing worth giving back. PostgreSQL with a database per tenant answers its
    /// `idleTimeout`: each tenant database's listening connection closes when no stream is left.
    var externalCommitsIdleRelease: Duration? { get }
}

extension EventStoreAdapter {
    public func readAll(after position: UInt64, filter: EventFilter, limit: Int, maxBytes: Int) async throws -> [Event] {
        Array(try await readAll(after: position, filter: filter, limit: limit).prefix(byteBudget: maxBytes))
    }

    public func externalCommits() -> AsyncStream<Void>? { nil }
    public func externalRemovals() -> AsyncStream<Void>? { nil }
    public var externalCommitsIdleRelease: Duration? { nil }
}

/// A stored aggregate snapshot.
public struct Snapshot: Sendable, Hashable {
    /// The stream the snapshot summarises.
    public var streamID: String
    /// The stream version the state includes.
    public var version: Int64
    /// The state's JSON bytes.
    public var state: Data
    /// When it was stored.
    public var createdAt: Date

    /// Creates a snapshot.
    public init(streamID: String, version: Int64, state: Data, createdAt: Date = Date()) {
        self.streamID = streamID
        self.version = version
        self.state = state
        self.createdAt = createdAt
    }
}

/// Storage for snapshots (seed: `SnapshotAdapter`).
public protocol SnapshotAdapter: Sendable {
    /// Stores a snapshot unless a newer one (higher version) is already stored. An adapter that
    /// is also the events' storage (a ``StreamLifecycleAdapter``) refuses a deleted stream's
    /// snapshot in the write itself — `.streamDeleted` for a tombstone, `.streamNotFound` for a
    /// soft-deleted stream not written since — so that no snapshot outlives its stream's
    /// deletion; minkd's server relies on it (the built-in storages all do).
    func saveSnapshot(_ snapshot: Snapshot) async throws
    /// The newest snapshot of a stream.
    func loadSnapshot(streamID: String) async throws -> Snapshot?
    /// The same storage scoped to one tenant.
    func forTenant(_ tenantID: String) throws -> any SnapshotAdapter
    /// ``saveSnapshot(_:)``, answering the version stored afterwards — the snapshot's, or the newer
    /// one's that was kept — in one storage call where the adapter can (the default saves, then
    /// loads). `PUT /v1/streams/{id}/snapshot` answers it.
    func storeSnapshot(_ snapshot: Snapshot) async throws -> Int64
}

extension SnapshotAdapter {
    public func storeSnapshot(_ snapshot: Snapshot) async throws -> Int64 {
        try await saveSnapshot(snapshot)
        return try await loadSnapshot(streamID: snapshot.streamID)?.version ?? snapshot.version
    }
}

/// A read-model document with its ID.
public struct StoredDocument: Sendable, Hashable {
    /// The document ID.
    public var id: String
    /// The JSON object.
    public var json: Data

    /// Creates a stored document.
    public init(id: String, json: Data) {
        self.id = id
        self.json = json
    }
}

/// How a read-model transaction's commit waits for the disk.
public enum CommitDurability: Sendable, Hashable {
    /// Durable when the transaction returns, as the storage is configured (SQLite's
    /// `synchronous`, PostgreSQL's `synchronous_commit`). The default.
    case durable
    /// Survives a kill of this process, but the last such commits may be lost on a crash of the
    /// database server, of the operating system or on power loss — each transaction whole or not
    /// at all, never a later one without an earlier one (SQLite `synchronous = NORMAL` in WAL mode,
    /// PostgreSQL `synchronous_commit = off` for the transaction). Why it exists: a batch of an
    /// async projection commits its documents with its checkpoint, so losing it only means
    /// applying those events again, and the projection does not wait for a flush per batch (see
    /// docs/projections.md, "Commits").
    case relaxed
}

/// Storage for read-model documents and projection checkpoints, queried with `Query`.
///
/// Models are named collections of JSON objects keyed by ID. Queries follow the semantics
/// documented on `Query.matches(_:)`, which every adapter reproduces.
public protocol ReadModelStore: Sendable {
    /// One document, or `nil`.
    func document(_ model: String, id: String) async throws -> Data?
    /// The documents matching a query, sorted and paged.
    /// - Throws: `.invalidQuery` for a query recorded as invalid.
    func find(_ model: String, query: Query) async throws -> [StoredDocument]
    /// The number of documents matching a query's filters (limit and offset ignored).
    func count(_ model: String, query: Query) async throws -> Int64
    /// A page of ``find(_:query:)`` and the ``count(_:query:)`` of all matches, read from one
    /// state of the model: `documents.count` is never more than `total` allows, whatever commits
    /// meanwhile. (The default implementation reads twice and does not promise that.)
    func findWithTotal(_ model: String, query: Query) async throws -> (documents: [StoredDocument], total: Int64)
    /// Runs `body` in one transaction: every write and checkpoint commits together or not at all.
    func transaction<T: Sendable>(_ body: @Sendable (any ReadModelTransaction) throws -> T) async throws -> T
    /// Runs `body` in one transaction whose commit waits for the disk as `durability` says
    /// (default implementation: ``transaction(_:)``, durable).
    func transaction<T: Sendable>(
        _ durability: CommitDurability, _ body: @Sendable (any ReadModelTransaction) throws -> T
    ) async throws -> T
    /// Runs `body` in a `.relaxed` transaction that the storage may commit together with other
    /// grouped transactions waiting at the same moment (the live batches of a tenant's async
    /// projections, woken by the same append). Each body's writes still commit all or nothing,
    /// and a failing body never takes another's writes with it: when a body of a group throws, or
    /// the group's commit fails, the group is rolled back and its bodies run again, each alone.
    /// `body` may therefore run more than once (every run but the last rolled back), so it must
    /// do nothing outside the transaction. Default implementation: ``transaction(_:_:)``, relaxed.
    func groupedTransaction<T: Sendable>(_ body: @escaping @Sendable (any ReadModelTransaction) throws -> T) async throws -> T
    /// Runs `body`, which only reads, in one transaction — creating nothing: when the store's
    /// tenant has no storage of its own (PostgreSQL's `schema` and `database` strategies: never
    /// written, or deleted, perhaps by another process), `ifMissing` without running `body`.
    /// What a projection controller reads with, so that a tenant deleted through another process
    /// is not created again by a status refresh. Default: ``transaction(_:)``.
    func readTransaction<T: Sendable>(ifMissing: T, _ body: @Sendable (any ReadModelTransaction) throws -> T) async throws -> T
    /// Removes every document of a model (and its indexes).
    func dropModel(_ model: String) async throws
    /// Asks the storage for an index on a field of a model (a no-op where there are no indexes).
    func createIndex(_ model: String, field: FieldPath) async throws
    /// The names of the models that have documents.
    func modelNames() async throws -> [String]
    /// The same storage scoped to one tenant.
    func forTenant(_ tenantID: String) throws -> any ReadModelStore
}

extension ReadModelStore {
    public func findWithTotal(_ model: String, query: Query) async throws -> (documents: [StoredDocument], total: Int64) {
        (try await find(model, query: query), try await count(model, query: query))
    }

    public func readTransaction<T: Sendable>(ifMissing: T, _ body: @Sendable (any ReadModelTransaction) throws -> T) async throws -> T {
        try await transaction(body)
    }

    public func groupedTransaction<T: Sendable>(_ body: @escaping @Sendable (any ReadModelTransaction) throws -> T) async throws -> T {
        try await transaction(.relaxed, body)
    }

    public func transaction<T: Sendable>(
        _ durability: CommitDurability, _ body: @Sendable (any ReadModelTransaction) throws -> T
    ) async throws -> T {
        try await transaction(body)
    }

    /// The stored checkpoint of a projection (0 when none, or when the tenant does not exist).
    public func checkpoint(_ projection: String) async throws -> UInt64 {
        try await readTransaction(ifMissing: 0) { try $0.checkpoint(projection) }
    }

    /// Stores the checkpoint of a projection.
    public func setCheckpoint(_ projection: String, to position: UInt64) async throws {
        try await transaction { try $0.setCheckpoint(projection, to: position) }
    }
}

/// Tenant IDs: `^[a-z0-9][a-z0-9_-]{0,62}$`.
public enum TenantID {
    /// The tenant used when none is named.
    public static let `default` = "default"

    /// Whether `id` matches `^[a-z0-9][a-z0-9_-]{0,62}$`: the one tenant-ID rule of the library,
    /// the server and the client (safe in file names, schema names and headers).
    public static func isValid(_ id: String) -> Bool {
        var count = 0
        for b in id.utf8 {
            let alphanumeric = (b >= 97 && b <= 122) || (b >= 48 && b <= 57)
            guard alphanumeric || (count > 0 && (b == 95 || b == 45)) else { return false }
            count += 1
            if count > 63 { return false }
        }
        return count > 0
    }

    /// Checks a tenant ID before it reaches a file name, schema name or SQL.
    /// - Throws: `.invalidTenant`.
    public static func validate(_ id: String) throws {
        guard isValid(id) else {
            throw MinkError(.invalidTenant, "invalid tenant ID: it must match ^[a-z0-9][a-z0-9_-]{0,62}$")
        }
    }
}

extension Sequence<Event> {
    /// The events up to and including the one whose `data` makes the total reach `maxBytes`
    /// (``EventStoreAdapter/readAll(after:filter:limit:maxBytes:)``).
    public func prefix(byteBudget maxBytes: Int) -> [Event] {
        var out: [Event] = []
        var bytes = 0
        for e in self {
            if bytes >= maxBytes { break }
            out.append(e)
            bytes += e.data.count
        }
        return out
    }
}

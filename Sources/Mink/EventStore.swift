import Foundation
import Logging
import Metrics
import Synchronization

/// The main entry point (seed: `EventStore`): appends and loads events with optimistic
/// concurrency, loads and saves aggregates, reads the global log, and subscribes.
///
/// ```swift
/// let store = EventStore(adapter: InMemoryStorage())
/// try await store.append("order-1", [OrderCreated(customerID: "c-1")], expectedVersion: .noStream)
/// let events = try await store.load("order-1")
/// ```
///
/// One store value serves one tenant; ``forTenant(_:)`` gives the store of another tenant over
/// the same storage.
public final class EventStore: Sendable {
    /// Options (the seed's functional options, as one value).
    public struct Options: Sendable {
        /// Names event payload types and decodes stored events (seed: `EventRegistry`).
        public var registry: EventRegistry
        /// Encodes and decodes payloads (seed: `WithSerializer`).
        public var serializer: any EventSerializer
        /// Wraps every store operation; the first is the outermost (seed: `WithMiddleware`).
        public var middleware: [Middleware]
        /// Snapshot storage and when to snapshot (seed: `WithSnapshots`).
        public var snapshots: (adapter: any SnapshotAdapter, policy: SnapshotPolicy)?
        /// Projections run inside every append's transaction (seed: `WithProjections` — async
        /// projections are registered on a ``ProjectionEngine``). A tenant's store (``forTenant(_:)``)
        /// has none of its own here: it runs the root store's, read at each append, and those
        /// registered on it.
        public var inlineProjections: [any InlineProjection]
        /// Where the store logs (seed: `WithLogger`).
        public var logger: Logger
        /// Where the store's own metrics go (seed: `WithMetrics`): every operation counted by
        /// outcome and timed, and the events appended — what ``MetricsMiddleware`` records, the
        /// store putting it first in its chain (unless `middleware` already holds a
        /// ``MetricsMiddleware``: then that one measures) — and the delay of the async projections
        /// of a ``ProjectionEngine`` made on the store without a factory of its own.
        public var metrics: (any MetricsFactory)?
        /// Events kept in memory for live subscribers; a subscriber further behind reads storage.
        public var subscriberBuffer: Int

        /// Creates options; every one has a default.
        public init(
            registry: EventRegistry = EventRegistry(),
            serializer: any EventSerializer = JSONEventSerializer(),
            middleware: [Middleware] = [],
            snapshots: (adapter: any SnapshotAdapter, policy: SnapshotPolicy)? = nil,
            inlineProjections: [any InlineProjection] = [],
            logger: Logger = Logger(label: "mink"),
            metrics: (any MetricsFactory)? = nil,
            subscriberBuffer: Int = 10_000
        ) {
            self.registry = registry
            self.serializer = serializer
            self.middleware = middleware
            self.snapshots = snapshots
            self.inlineProjections = inlineProjections
            self.logger = logger
            self.metrics = metrics
            self.subscriberBuffer = subscriberBuffer
        }
    }

    /// The storage adapter, scoped to this store's tenant.
    public let adapter: any EventStoreAdapter
    /// The tenant this store serves (`nil` for the unscoped root store).
    public let tenantID: String?
    /// The options the store was created with.
    public let options: Options
    /// The registry (shortcut for `options.registry`).
    public var registry: EventRegistry { options.registry }
    /// The hub fanning commits out to this tenant's subscribers and async projections.
    public let hub: SubscriptionHub

    /// Each operation's middleware, outermost first (typed per operation: see ``Command``).
    private let chains: MiddlewareChains
    /// What the chains' steps see besides the command: this store's tenant.
    private let context: CommandContext
    private let inline = InlineList()
    /// A tenant store's root's list (``forTenant(_:)``), read at every append; `nil` for a root.
    private let rootInline: InlineList?
    /// A tenant store's combined list and its token, for as long as neither part changes.
    private let combined = Mutex<CombinedList?>(nil)

    private struct CombinedList: @unchecked Sendable {
        // Immutable once made (`any InlineProjection` is Sendable; the array is a value).
        let root: HookToken
        let own: HookToken
        let list: [any InlineProjection]
        let token: HookToken
    }

    /// The inline projections, shared with the terminal handler of the middleware chain.
    private final class InlineList: Sendable {
        let list = Mutex<[any InlineProjection]>([])
        /// Changes with the list: the ``AppendRequest/hookGroup`` of the hooks made from it.
        let token = Mutex(HookToken())
        /// Changes the list and its token together (inside the token's lock, as ``current()``
        /// reads them): a list and the token of another list are never read as a pair.
        func withLock<T: Sendable>(_ body: (inout [any InlineProjection]) -> T) -> T {
            token.withLock { t in
                t = HookToken()
                return list.withLock { body(&$0) }
            }
        }
        /// The list and its token, read together.
        func current() -> ([any InlineProjection], HookToken) {
            token.withLock { t in (list.withLock { $0 }, t) }
        }
    }

    /// Identifies one inline-projection list: hooks made from the same list fold the same way.
    private final class HookToken: Sendable {}
    private let tenants: TenantCache

    /// Answers `true` once: whether a call of an append's terminal step is its first.
    private final class FirstCall: Sendable {
        private let first = Atomic<Bool>(true)
        func take() -> Bool { first.exchange(false, ordering: .relaxed) }
    }

    /// The tenant stores made from one root store, shared by all of them so that every
    /// `forTenant` call for a tenant returns the same store (and so the same subscription hub).
    private final class TenantCache: Sendable {
        let stores = Mutex<[String: EventStore]>([:])
        /// The root store, which serves the `default` tenant (weak: the root owns this cache).
        let root = Mutex<WeakStore>(WeakStore())
    }

    private struct WeakStore: @unchecked Sendable {
        // Only read and written under the cache's mutex; `EventStore` itself is Sendable.
        weak var store: EventStore?
    }

    /// Creates a store over an adapter (seed: `New(adapter, opts...)`).
    public convenience init(adapter: any EventStoreAdapter, options: Options = Options()) {
        self.init(adapter: adapter, tenantID: nil, options: options, tenants: TenantCache())
        tenants.root.withLock { $0.store = self }
    }

    /// Creates a store with options given inline.
    public convenience init(
        adapter: any EventStoreAdapter,
        registry: EventRegistry = EventRegistry(),
        serializer: any EventSerializer = JSONEventSerializer(),
        middleware: [Middleware] = [],
        snapshots: (adapter: any SnapshotAdapter, policy: SnapshotPolicy)? = nil,
        inlineProjections: [any InlineProjection] = [],
        logger: Logger = Logger(label: "mink"),
        metrics: (any MetricsFactory)? = nil
    ) {
        self.init(
            adapter: adapter,
            options: Options(
                registry: registry, serializer: serializer, middleware: middleware, snapshots: snapshots,
                inlineProjections: inlineProjections, logger: logger, metrics: metrics
            )
        )
    }

    private init(adapter: any EventStoreAdapter, tenantID: String?, options: Options, tenants: TenantCache, rootInline: InlineList? = nil) {
        self.adapter = adapter
        self.tenantID = tenantID
        self.options = options
        self.tenants = tenants
        self.rootInline = rootInline
        self.hub = SubscriptionHub(adapter: adapter, capacity: options.subscriberBuffer)
        self.inline.withLock { $0 = options.inlineProjections }
        // `metrics` (seed: `WithMetrics`) measures every operation as the metrics middleware
        // does, outermost (the whole operation, the other middleware's time included).
        // Not when `middleware` already holds a metrics middleware (it would count twice).
        if let metrics = options.metrics, !options.middleware.contains(where: \.measures) {
            self.chains = MiddlewareChains([Middleware.metrics(metrics)] + options.middleware)
        } else {
            self.chains = MiddlewareChains(options.middleware)
        }
        self.context = CommandContext(tenantID: tenantID)
    }

    // MARK: Tenancy

    /// The store of one tenant over the same storage (seed: `ForTenant`, `TenantContext`): its own
    /// streams, positions, snapshots, subscriptions; every appended event's metadata carries the
    /// tenant ID. The same value is returned for the same tenant; `forTenant("default")` is the
    /// root store (root adapters are scoped to the `default` tenant).
    /// - Throws: `.invalidTenant` for an ID not matching `^[a-z0-9][a-z0-9_-]{0,62}$`.
    public func forTenant(_ tenantID: String) throws -> EventStore {
        try TenantID.validate(tenantID)
        if tenantID == self.tenantID { return self }
        // The root store's adapter is scoped to the `default` tenant (the adapters' convention).
        if tenantID == TenantID.default, let root = tenants.root.withLock({ $0.store }) { return root }
        return try tenants.stores.withLock { cache in
            if let s = cache[tenantID] { return s }
            var opts = options
            if let snap = options.snapshots { opts.snapshots = (try snap.adapter.forTenant(tenantID), snap.policy) }
            // The root's inline projections run for every tenant, those registered later too:
            // the tenant store reads the root's list at each append (its own list holds what is
            // registered on it alone).
            opts.inlineProjections = []
            let store = EventStore(
                adapter: try adapter.forTenant(tenantID), tenantID: tenantID, options: opts, tenants: tenants,
                rootInline: rootInline ?? inline
            )
            cache[tenantID] = store
            return store
        }
    }

    /// Forgets the store of a tenant (its tenant was deleted): the next `forTenant` call makes a
    /// new one, with a new hub. Returns the forgotten store, whose hub the caller shuts down.
    @discardableResult
    public func forgetTenant(_ tenantID: String) -> EventStore? {
        tenants.stores.withLock { $0.removeValue(forKey: tenantID) }
    }

    /// The stores of the tenants other than `default` made so far from this store's root (and
    /// not forgotten): the one cache of per-tenant stores, which a server shuts down at the end.
    public var tenantStores: [EventStore] { tenants.stores.withLock { Array($0.values) } }

    // MARK: Inline projections

    /// Adds a projection that runs inside every append's transaction of this store — on the root
    /// store, of every tenant's store too (those made before the registration included). A
    /// projection of the same name is replaced, in its place (registered twice, it ran twice per
    /// event).
    public func registerInline(_ projection: any InlineProjection) {
        inline.withLock { list in
            if let i = list.firstIndex(where: { $0.name == projection.name }) { list[i] = projection } else { list.append(projection) }
        }
    }

    /// Removes the inline projection of that name, if any (a projection engine re-registering the
    /// name as another kind).
    func unregisterInline(named name: String) {
        inline.withLock { list in list.removeAll { $0.name == name } }
    }

    /// The inline projections of this store: for a tenant's store, the root's (but those its own
    /// list names too) and then its own.
    public var inlineProjections: [any InlineProjection] { currentInline().0 }

    /// The inline projections in force and the token of that list: a tenant store combines the
    /// root's list with its own — a root projection whose name the tenant's own list also holds
    /// is left out (registered on both, e.g. by a tenant's own engine, it ran twice) — under a
    /// token that changes when either part does.
    private func currentInline() -> ([any InlineProjection], HookToken) {
        let own = inline.current()
        guard let rootInline else { return own }
        let root = rootInline.current()
        if own.0.isEmpty { return root }
        if root.0.isEmpty { return own }
        return combined.withLock { c in
            if let c, c.root === root.1, c.own === own.1 { return (c.list, c.token) }
            let names = Set(own.0.map(\.name))
            let made = CombinedList(root: root.1, own: own.1, list: root.0.filter { !names.contains($0.name) } + own.0, token: HookToken())
            c = made
            return (made.list, made.token)
        }
    }

    // MARK: Appending

    /// Appends typed events (seed: `Append`): each payload is named through the registry and
    /// serialized; returns the versions, positions and IDs assigned.
    /// - Throws: `.validationFailed` (empty stream ID, no events), `.concurrencyConflict`,
    ///   `.streamNotFound` (for `.streamExists`), `.serializationFailed`, storage errors, or what an
    ///   inline projection threw — in every case nothing is written.
    @discardableResult
    public func append(
        _ streamID: String, _ events: [any EventPayload], expectedVersion: ExpectedVersion = .any, metadata: Metadata = Metadata()
    ) async throws -> AppendResult {
        let data = try events.map { payload in
            EventData(type: options.registry.name(for: payload), data: try options.serializer.serialize(payload))
        }
        return try await append(streamID, events: data, expectedVersion: expectedVersion, metadata: metadata)
    }

    /// Appends already-serialized events (the daemon's path): data bytes are stored as given.
    @discardableResult
    public func append(
        _ streamID: String, events: [EventData], expectedVersion: ExpectedVersion = .any, metadata: Metadata = Metadata()
    ) async throws -> AppendResult {
        try StreamID.validate(streamID)
        try Self.checkNotReserved(streamID: streamID, events: events)
        if events.isEmpty { throw MinkError.validation("an append needs at least one event") }
        if case .exact(let v) = expectedVersion, v < 0 { throw MinkError.validation("expected version must not be negative") }
        var generated = true
        let prepared = events.map { e in
            var e = e
            if e.id == nil || e.id!.isEmpty {
                e.id = UUID.random().lowercasedText
            } else {
                generated = false
            }
            e.metadata = e.metadata.merged(over: metadata)
            e.metadata.tenantID = tenantID
            return e
        }
        if !generated {
            // Generated IDs are random UUIDs: only the caller's can repeat.
            var seen = Set<String>()
            for e in prepared where !seen.insert(e.id!).inserted {
                throw MinkError.validation("event ID \(e.id!) appears twice in one append")
            }
        }
        let command = AppendCommand(streamID: streamID, events: prepared, expectedVersion: expectedVersion)
        // The IDs are fresh for the adapter's first call only, and only if no middleware changed
        // them: a retry (RetryMiddleware) may follow an attempt that committed without an answer,
        // and must then find its events by ID and replay them.
        let freshIDs = generated ? prepared.map { $0.id! } : nil
        let firstCall = FirstCall()
        let result = try await chains.append.run(command, context: context) { command, _ in
            var request = command
            request.hasFreshIDs = firstCall.take() && freshIDs.map { ids in
                ids.count == request.events.count && zip(ids, request.events).allSatisfy { $0 == $1.id }
            } ?? false
            let result = try await execute(request)
            // The adapter's own answer (no middleware in between): the events exactly as stored,
            // which the hub may put into its ring without reading them back.
            if !result.isReplay { await hub.notifyCommitted(result.events) }
            return result
        }
        return result
    }

    // MARK: Reading

    /// Every event of a stream (seed: `Load`); an empty array for a missing stream.
    public func load(_ streamID: String) async throws -> [Event] {
        try await load(streamID, fromVersion: 1)
    }

    /// The events of a stream from a version on (inclusive).
    public func load(_ streamID: String, fromVersion: Int64) async throws -> [Event] {
        var all: [Event] = []
        var from = max(fromVersion, 1)
        while true {
            let page = try await readStream(streamID, from: from, limit: 1000, direction: .forward)
            all.append(contentsOf: page)
            guard page.count == 1000, let last = page.last else { return all }
            from = last.version + 1
        }
    }

    /// One page of a stream; `from` is inclusive; backward with `from = -1` starts at the last event.
    ///
    /// The stream's retention rules apply (see ``StreamRetention``): excluded events are not
    /// returned, and a `from` below the first kept version starts at it.
    /// - Throws: `.streamDeleted` for a hard-deleted stream.
    public func readStream(_ streamID: String, from: Int64, limit: Int, direction: ReadDirection = .forward) async throws -> [Event] {
        try StreamID.validate(streamID)
        let command = LoadCommand(streamID: streamID, fromVersion: from, limit: limit, direction: direction)
        return try await chains.load.run(command, context: context) { command, _ in
            try await readRetained(command.streamID, from: command.fromVersion, limit: command.limit, direction: command.direction)
        }
    }

    /// One page of a stream with what the store knows about the stream (`GET /v1/streams/{id}`
    /// answers both), read in one storage call where the storage can: one PostgreSQL round trip
    /// and one SQLite read transaction, where ``streamInfo(_:)`` then ``readStream(_:from:limit:direction:)``
    /// take two storage calls (four PostgreSQL round trips). The page is what `readStream` returns
    /// and the info what `streamInfo` returns (retention rules applied to both), from one snapshot
    /// of the storage on SQLite and PostgreSQL. The middleware sees one ``LoadCommand`` and no
    /// ``StreamInfoCommand`` (a `streamInfo` step — access control, metrics, a cache — is not
    /// asked); when a `load` step answers without the storage, the info is read with
    /// ``streamInfo(_:)``, through its chain.
    /// - Returns: `nil` when the stream does not exist (or was soft-deleted).
    /// - Throws: `.streamDeleted` for a hard-deleted stream.
    public func readStreamWithInfo(_ streamID: String, from: Int64, limit: Int, direction: ReadDirection = .forward) async throws
        -> StreamRead?
    {
        try StreamID.validate(streamID)
        let command = LoadCommand(streamID: streamID, fromVersion: from, limit: limit, direction: direction)
        let found = Mutex<(read: Bool, info: StreamInfo?)>((false, nil))
        let events = try await chains.load.run(command, context: context) { command, _ in
            let (info, events) = try await readRetainedWithInfo(
                command.streamID, from: command.fromVersion, limit: command.limit, direction: command.direction)
            found.withLock { $0 = (true, info) }
            return events
        }
        let (read, info) = found.withLock { $0 }
        guard read else { return try await streamInfo(streamID).map { StreamRead(info: $0, events: events) } }
        return info.map { StreamRead(info: $0, events: events) }
    }

    /// What the store knows about a stream, or `nil` when it does not exist (or was soft-deleted).
    /// `eventCount` counts the stored events the retention rules keep now (`maxCount`,
    /// `truncateBefore`, `maxAgeSeconds` — the last found by a binary search of single-event
    /// reads), what a read of the whole stream would return.
    /// - Throws: `.streamDeleted` for a hard-deleted stream.
    public func streamInfo(_ streamID: String) async throws -> StreamInfo? {
        try StreamID.validate(streamID)
        return try await chains.streamInfo.run(StreamInfoCommand(streamID: streamID), context: context) { command, _ in
            try await retainedInfo(command.streamID)
        }
    }

    /// Up to `limit` events of the global log after `position` (exclusive) passing `filter`.
    public func readAll(after position: UInt64 = 0, filter: EventFilter = .all, limit: Int = 1000) async throws -> [Event] {
        // Positions are stored as signed 64-bit integers: a larger `after` is past every event.
        let command = ReadAllCommand(after: min(position, UInt64(Int64.max)), filter: filter, limit: limit)
        return try await chains.readAll.run(command, context: context) { command, _ in
            try await adapter.readAll(after: command.after, filter: command.filter, limit: command.limit)
        }
    }

    /// The position of the last committed event (0 for an empty log).
    public func headPosition() async throws -> UInt64 {
        try await chains.headPosition.run(HeadPositionCommand(), context: context) { _, _ in try await adapter.headPosition() }
    }

    // MARK: Subscriptions

    /// Every event after `position` (exclusive), stored then live (seed: `SubscribeAll`).
    public func subscribeAll(from position: UInt64 = 0, eventTypes: [String] = []) -> Subscription {
        Subscription(messages: messages(.all, after: position, eventTypes: eventTypes), logger: options.logger)
    }

    /// The events of one stream after `version` (exclusive) (seed: `SubscribeStream`).
    public func subscribeStream(_ streamID: String, fromVersion version: Int64 = 0, eventTypes: [String] = []) -> Subscription {
        Subscription(messages: messages(.stream(streamID), after: UInt64(max(version, 0)), eventTypes: eventTypes), logger: options.logger)
    }

    /// The events of one category after `position` (exclusive) (seed: `SubscribeCategory`).
    public func subscribeCategory(_ category: String, from position: UInt64 = 0, eventTypes: [String] = []) -> Subscription {
        Subscription(messages: messages(.category(category), after: position, eventTypes: eventTypes), logger: options.logger)
    }

    /// A subscription with its control messages (`caughtUp`, `fellBehind`, heartbeats) — what
    /// minkd's server-sent events are made of. `after` is a global position, or a stream version
    /// for `.stream`.
    public func messages(
        _ target: SubscriptionTarget, after: UInt64, eventTypes: [String] = [], heartbeat: Duration? = nil, pageSize: Int = 128
    ) -> SubscriptionMessages {
        SubscriptionMessages(
            hub: hub, adapter: adapter, target: target, eventTypes: eventTypes, start: after, heartbeat: heartbeat,
            pageSize: max(1, pageSize)
        )
    }

    // MARK: Aggregates

    /// Rebuilds an aggregate from its stream (seed: `LoadAggregate`): from the newest snapshot when
    /// snapshots are configured and the aggregate supports them, then every later event, decoded
    /// through the registry. A missing stream leaves a new aggregate at version 0.
    /// - Throws: `.eventTypeNotRegistered` for a stored type with no Swift type.
    public func loadAggregate(_ aggregate: some Aggregate) async throws {
        try await AggregateReplay.load(
            aggregate, registry: options.registry, serializer: options.serializer, pageSize: 1000,
            loadSnapshot: { try await options.snapshots?.adapter.loadSnapshot(streamID: aggregate.aggregateID) },
            readPage: { try await readStream(aggregate.aggregateID, from: $0, limit: 1000, direction: .forward) }
        )
    }

    /// Appends an aggregate's uncommitted events with its version as the expected version (seed:
    /// `SaveAggregate`), then clears them and moves the version on. Nothing uncommitted: nothing
    /// is written. Stores a snapshot when the snapshot policy says so.
    /// - Throws: `.concurrencyConflict` (with stream, expected and actual version) when another
    ///   writer saved the aggregate first.
    @discardableResult
    public func saveAggregate(_ aggregate: some Aggregate, metadata: Metadata = Metadata()) async throws -> AppendResult? {
        let id = aggregate.aggregateID
        return try await AggregateReplay.save(
            aggregate, policy: options.snapshots?.policy,
            append: { events, expected in try await append(id, events, expectedVersion: expected, metadata: metadata) },
            saveSnapshot: { version, state in
                try await options.snapshots?.adapter.saveSnapshot(Snapshot(streamID: id, version: version, state: state))
            },
            snapshotFailed: { error in
                options.logger.warning("snapshot failed", metadata: ["mink.stream": "\(id)", "error": "\(error)"])
            }
        )
    }

    // MARK: The append's own step

    /// The innermost step of the append chain: the adapter's append, with this store's inline
    /// projections run inside its transaction.
    private func execute(_ request: AppendRequest) async throws -> AppendResult {
        try await inlineGate.pass {
            let (hook, group, parts) = inlineHookAndGroup()
            var request = request
            request.hookGroup = group
            request.hookParts = parts
            return try await adapter.append(request, hook: hook)
        }
    }

    /// Holds this store's writes that run inline projections (appends, stream deletions) while an
    /// inline projection of the store is rebuilt (``ProjectionEngine/rebuild(_:)``), so that the
    /// replay and the projection's hook never both apply an event.
    let inlineGate = InlineRebuildGate()

    /// The transaction hook running this store's inline projections (`nil` without any): for
    /// appends, and for the `$StreamDeleted` record of a deletion.
    func inlineHook() -> AppendTransactionHook? { inlineHookAndGroup().hook }

    /// One projection's part of the inline hook (``AppendRequest/hookParts``).
    private static func part(_ p: any InlineProjection) -> AppendTransactionHook {
        { events, tx in
            let handled = p.handledEvents.isEmpty ? events : events.filter { p.handles($0.type) }
            if !handled.isEmpty { try p.applyAll(handled, in: tx) }
        }
    }

    /// ``inlineHook()`` and its ``AppendRequest/hookGroup``: hooks made from the same list of
    /// inline projections fold the same way (each projection folds its events in log order), so
    /// a storage may run one of them over several appends' events together.
    private func inlineHookAndGroup() -> (hook: AppendTransactionHook?, group: ObjectIdentifier?, parts: AppendHookParts?) {
        let (inline, token) = currentInline()
        guard !inline.isEmpty else { return (nil, nil, nil) }
        // Projection by projection, each over the events in order: a batch projection folds
        // them (one load, one write per document); projections write models of their own, so
        // the order between projections does not matter.
        let hook: AppendTransactionHook = { (events: [Event], tx: any ReadModelTransaction) throws in
            // Keeps the token alive while the hook may run: its identifier is not reused meanwhile.
            withExtendedLifetime(token) {}
            for p in inline {
                let handled = p.handledEvents.isEmpty ? events : events.filter { p.handles($0.type) }
                if !handled.isEmpty { try p.applyAll(handled, in: tx) }
            }
        }
        let parts = inline.count > 1 ? AppendHookParts(inline.map(Self.part)) : nil
        return (hook, ObjectIdentifier(token), parts)
    }
}

import Foundation
import Logging
import Metrics
import Mink
import MinkWire
import Synchronization

/// Runs minkd's projections — the ones declared in the config and any Swift projection
/// registered with ``register(_:mode:indexes:)`` before the server starts — for every tenant.
///
/// Each tenant gets its own `ProjectionEngine` over the tenant's store and read models, started
/// for the `default` tenant when the server starts and for any other tenant when it is first
/// used (a request names it). Inline projections are installed once, into the root store's
/// append hook, which every tenant store inherits; they read which copy of their read model to
/// write from the append's own transaction. Async projections run from their checkpoints,
/// woken by commits, in the process holding their lease: the storage's own
/// `ProjectionLeaseProvider` when it is one (PostgreSQL), else ``LocalProjectionLeaseProvider``.
public final class ProjectionService: Sendable {
    /// A registered projection.
    public struct Entry: Sendable {
        /// The projection.
        public var projection: any InlineProjection & ReadModelProjection
        /// Inline or async.
        public var mode: ProjectionEngine.Mode
        /// Fields indexed on its read model.
        public var indexes: [FieldPath]
    }

    private struct State {
        var entries: [Entry] = []
        /// Each tenant's engine as it starts. The service owns these tasks: one stays here until
        /// ``ProjectionService/stop()`` (or ``ProjectionService/tenantRemoved(_:)``) awaits it
        /// and stops its engine, or until it failed and was awaited by the request that saw the
        /// failure. They are not children of one request: the engine outlives the request that
        /// first named its tenant, and later requests share it.
        var engines: [String: Task<ProjectionEngine, any Error>] = [:]
        var started = false
        var stopped = false
    }

    let rootStore: EventStore
    let storage: ServerStorage
    let logger: Logger
    /// How async projections run: batches of what is waiting, up to 500 events while keeping up
    /// and growing to 10,000 events (16 MiB of event data) while catching up; a commit wakes them
    /// at once (`batchTimeout` only bounds a missed wake-up); a failing batch is tried 4 times
    /// with backoff from 50 ms before the poison event is looked for.
    let options: AsyncOptions
    let leases: any ProjectionLeaseProvider
    /// Where the engines' projections record their delay (`mink_projection_delay_seconds`).
    let metrics: (any MetricsFactory)?
    private let state = Mutex(State())

    /// Creates the service; declared projections are compiled by the caller
    /// (``DeclaredProjection/compile(_:)``) and passed here.
    public init(
        store: EventStore, storage: ServerStorage, declared: [DeclaredProjection], logger: Logger,
        metrics: (any MetricsFactory)? = nil,
        options: AsyncOptions = AsyncOptions(
            batchSize: 500, batchTimeout: .seconds(1), retryPolicy: RetryPolicy(maxAttempts: 4), maxBatchSize: 10_000
        )
    ) {
        self.rootStore = store
        self.storage = storage
        self.metrics = metrics
        self.logger = logger
        var options = options
        // The next page is read by the server while this process folds (see AsyncOptions.readAhead).
        if storage.kind == "postgres" { options.readAhead = true }
        self.options = options
        self.leases = (storage.events as? any ProjectionLeaseProvider) ?? LocalProjectionLeaseProvider()
        for p in declared { try? register(p, mode: p.mode, indexes: p.indexes) }
    }

    /// Registers a Swift projection next to the declared ones (before the server starts).
    ///
    /// An inline projection's hook is installed into the root store now, and tenant stores run
    /// the root's hooks (read at each append).
    /// - Throws: `.validationFailed` after the start, or for a name or read model already used.
    public func register(_ projection: any InlineProjection & ReadModelProjection, mode: ProjectionEngine.Mode, indexes: [FieldPath] = []) throws {
        try state.withLock { s in
            guard !s.started else { throw MinkError.validation("projection \(projection.name): register projections before the server starts") }
            if s.entries.contains(where: { $0.projection.name == projection.name || $0.projection.readModelName == projection.readModelName }) {
                throw MinkError.validation("projection \(projection.name): its name or read model \(projection.readModelName) is already used")
            }
            s.entries.append(Entry(projection: projection, mode: mode, indexes: indexes))
        }
        if mode == .inline { rootStore.registerInline(ProjectionEngine.inlineHook(for: projection)) }
    }

    /// The registered projections, in order.
    public var entries: [Entry] { state.withLock { $0.entries } }

    /// Starts the projections of the `default` tenant.
    public func start() async throws {
        state.withLock { $0.started = true }
        _ = try await engine(forTenant: TenantID.default)
    }

    /// Starts a tenant's projections in the background if they are not running yet.
    public func tenantUsed(_ tenant: String) {
        // Nothing to run: do not open the tenant's read-model storage at all.
        guard state.withLock({ !$0.entries.isEmpty }) else { return }
        _ = try? task(forTenant: tenant)
    }

    /// The projection engine of a tenant, started on first use.
    /// - Throws: `.unavailable` while shutting down; storage errors while starting.
    public func engine(forTenant tenant: String) async throws -> ProjectionEngine {
        let task = try task(forTenant: tenant)
        do {
            return try await task.value
        } catch {
            // Let the next request try again.
            state.withLock { s in if s.engines[tenant] == task { s.engines[tenant] = nil } }
            throw error
        }
    }

    private func task(forTenant tenant: String) throws -> Task<ProjectionEngine, any Error> {
        try state.withLock { s in
            guard !s.stopped else { throw MinkError.unavailable("the server is shutting down") }
            if let t = s.engines[tenant] { return t }
            let entries = s.entries
            let t = Task { try await self.makeEngine(tenant, entries) }
            s.engines[tenant] = t
            return t
        }
    }

    private func makeEngine(_ tenant: String, _ entries: [Entry]) async throws -> ProjectionEngine {
        let isDefault = tenant == TenantID.default
        // The root's tenant stores are the router's too: one store, one hub, per tenant.
        let store = isDefault ? rootStore : try rootStore.forTenant(tenant)
        let readModels = isDefault ? storage.readModels : try storage.readModels.forTenant(tenant)
        let engine = ProjectionEngine(store: store, readModels: readModels, metrics: metrics)
        // Other processes learn of a switch to a rebuilt copy within their lease retry interval.
        let grace: Duration = leases is LocalProjectionLeaseProvider ? .zero : .seconds(5)
        for e in entries {
            await engine.registerReadModel(
                e.projection, mode: e.mode, readModels: readModels, options: options, leases: leases, indexes: e.indexes,
                installsInlineHook: false, dropGrace: grace
            )
        }
        try await engine.start()
        return engine
    }

    /// The engines that have started (for metrics); starts none.
    public func startedEngines() async -> [ProjectionEngine] {
        let tasks = state.withLock { Array($0.engines.values) }
        var out: [ProjectionEngine] = []
        for t in tasks { if let e = try? await t.value { out.append(e) } }
        return out
    }

    /// Stops and forgets a tenant's projections (its tenant is being deleted); a later request
    /// for the tenant starts them again.
    public func tenantRemoved(_ tenant: String) async {
        let task = state.withLock { $0.engines.removeValue(forKey: tenant) }
        if let engine = try? await task?.value { await engine.stop() }
    }

    /// Stops every tenant's projections after their current batch.
    public func stop() async {
        let tasks = state.withLock { s in
            s.stopped = true
            return Array(s.engines.values)
        }
        for t in tasks {
            if let engine = try? await t.value { await engine.stop() }
        }
    }
}

import Mink
import MinkHTTP
import Synchronization

/// Resolves each request's tenant (HTTP-API.md section 2) and owns the tenants' stores.
///
/// Every request runs in exactly one tenant, and everything it touches comes from that
/// tenant's ``EventStore`` (its adapter, snapshots, hub and so its subscriptions) or that
/// tenant's scoped read-model store. Stores come from the root's `EventStore.forTenant(_:)`
/// (so the projection service and the router share one store, one hub, per tenant); deleting a
/// tenant forgets its store there (`forgetTenant`) and ends its subscriptions: a tenant created
/// again under the same ID must not inherit the old one's live buffer.
///
/// Existence (``TenantCatalog``): writes to an unknown tenant create it when `autoCreate` is on
/// and are `404` otherwise; reads never create a tenant — they answer as for an empty tenant
/// with `autoCreate` on, and `404` without; nor do the routes that only remove what exists
/// (``TenantUse/modify``: stream deletion, scavenge), which answer as reads do.
final class TenantRouter: Sendable {
    let catalog: any TenantCatalog
    let autoCreate: Bool
    private let root: EventStore
    private let state = Mutex(State())
    /// Deletions started or learned of, of any tenant: one load at a request's start tells
    /// whether one ran meanwhile (``wasDeleting(_:since:)``), without the state's lock.
    private let deletionEpoch = Atomic<Int>(0)

    private struct State {
        /// Tenants known to exist (a cache of the catalog; `default` always exists).
        var known: Set<String> = [TenantID.default]
        /// Writes in flight per tenant: a deletion waits for them.
        var writers: [String: Int] = [:]
        /// Deletions waiting for a tenant's writes to finish, resumed by the last write's release.
        var drainWaiters: [String: [Int: CheckedContinuation<Bool, Never>]] = [:]
        var nextWaiter = 0
        /// Tenants being deleted: new writes are refused until the deletion ends.
        var deleting: Set<String> = []
        /// The lifetimes event streams run in, ended by deletion.
        var lifetimes: [String: TenantLifetime] = [:]
        /// Deletions so far per tenant: a catalog answer obtained before a deletion must not
        /// mark the tenant as known after it.
        var deletions: [String: Int] = [:]

        /// Records that the tenant exists, unless it was deleted since `generation` was read.
        mutating func markKnown(_ tenant: String, generation: Int) {
            if deletions[tenant, default: 0] == generation && !deleting.contains(tenant) { known.insert(tenant) }
        }
    }

    /// - Parameters:
    ///   - root: the server's root store, which serves `default`.
    ///   - catalog: the storage's tenant catalog.
    init(root: EventStore, catalog: any TenantCatalog, autoCreate: Bool) {
        self.root = root
        self.catalog = catalog
        self.autoCreate = autoCreate
    }

    // MARK: Resolving

    /// Section 2's rules: a token bound to a tenant selects it (a `Mink-Tenant` header naming
    /// another one is `403`); a `*` token, or auth disabled, selects the header's tenant;
    /// otherwise `default`. The header is validated before anything else sees it.
    static func resolve(principal: Principal, header: String?) throws(APIError) -> String {
        if let header, (try? TenantID.validate(header)) == nil {
            throw APIError(.invalidTenant, "invalid tenant ID in Mink-Tenant: it must match ^[a-z0-9][a-z0-9_-]{0,62}$")
        }
        if let bound = principal.tenant {
            // The message names neither tenant: the caller learns only that it may not go there.
            if let header, header != bound { throw APIError(.forbidden, "this token is not valid for the tenant named in Mink-Tenant") }
            return bound
        }
        return header ?? TenantID.default
    }

    // MARK: Stores

    /// The tenant's store (the same value for every request of a tenant, so one hub).
    ///
    /// The root store keeps the one cache of tenant stores (`forTenant` returns the same value
    /// for a tenant; it scopes the adapter and snapshots, stamps the tenant ID into appended
    /// events' metadata and runs the root's inline projections); deletion forgets it there.
    /// - Parameter tenant: a validated tenant ID.
    func store(for tenant: String) throws -> EventStore {
        try root.forTenant(tenant)
    }

    /// The tenant's current lifetime (event streams run in it; deletion ends it).
    func lifetime(of tenant: String) -> TenantLifetime {
        state.withLock { s in
            if let l = s.lifetimes[tenant] { return l }
            let l = TenantLifetime()
            s.lifetimes[tenant] = l
            return l
        }
    }

    /// Whether the tenant is known to exist and is not being deleted.
    func isLive(_ tenant: String) -> Bool {
        state.withLock { $0.known.contains(tenant) && !$0.deleting.contains(tenant) }
    }

    /// Every tenant store made so far (for shutdown).
    var stores: [EventStore] { root.tenantStores }

    // MARK: Admission

    /// A write in progress; ``release()`` it when the write is over.
    struct WriteLease: Sendable {
        fileprivate let router: TenantRouter
        fileprivate let tenant: String

        /// Ends the write (a pending deletion may proceed once every write is released).
        func release() {
            let waiters = router.state.withLock { s -> [CheckedContinuation<Bool, Never>] in
                s.writers[tenant, default: 1] -= 1
                guard s.writers[tenant] == 0 else { return [] }
                s.writers[tenant] = nil
                return Array((s.drainWaiters.removeValue(forKey: tenant) ?? [:]).values)
            }
            for w in waiters { w.resume(returning: true) }
        }
    }

    /// Applies the existence rules before a request touches the tenant's storage.
    /// - Returns: a lease for writes (release it when the write is over), `nil` otherwise.
    /// - Throws: `404 not_found` for an unknown tenant that may not be created; `503` while the
    ///   tenant is being deleted (for writes); storage errors.
    /// - Parameter beforeCreating: runs just before an unknown tenant is created by this write
    ///   (`autoCreate`): the request's own checks, so that bad input creates nothing.
    func admit(_ tenant: String, use: TenantUse, beforeCreating: () throws -> Void = {}) async throws -> WriteLease? {
        switch use {
        case .none:
            return nil
        case .read, .modify:
            if state.withLock({ $0.known.contains(tenant) }) { return nil }
            let generation = state.withLock { $0.deletions[tenant, default: 0] }
            // Asked even with `autoCreate` (where an unknown tenant reads as empty): a tenant
            // that exists becomes known, so its projections run; one that does not stays
            // unknown, so nothing is started (or created) for it.
            if try await catalog.tenantExists(tenant) {
                state.withLock { $0.markKnown(tenant, generation: generation) }
            } else if !autoCreate {
                throw Self.unknownTenant()
            }
            return nil
        case .write:
            let (isKnown, generation) = state.withLock { ($0.known.contains(tenant), $0.deletions[tenant, default: 0]) }
            if !isKnown {
                if try await catalog.tenantExists(tenant) {
                    state.withLock { $0.markKnown(tenant, generation: generation) }
                } else if autoCreate, state.withLock({ !$0.deleting.contains(tenant) }) {
                    try beforeCreating()
                    try await create(tenant)
                } else if !autoCreate {
                    throw Self.unknownTenant()
                }
            }
            return try lease(tenant)
        }
    }

    /// The write lease of a route that changes only what exists (``TenantUse/modify``), after
    /// ``admit(_:use:)``: a lease when the tenant exists, `nil` when it does not — then the
    /// caller must not touch the tenant's storage (a write there would create it) and answers
    /// as for an empty tenant. Never creates anything.
    /// - Throws: `503` while the tenant is being deleted; storage errors.
    func admitExisting(_ tenant: String) async throws -> WriteLease? {
        let (isKnown, generation) = state.withLock { ($0.known.contains(tenant), $0.deletions[tenant, default: 0]) }
        if !isKnown {
            guard try await catalog.tenantExists(tenant) else { return nil }
            state.withLock { $0.markKnown(tenant, generation: generation) }
        }
        return try lease(tenant)
    }

    /// Counts a write in flight, unless the tenant is being deleted (`503`).
    private func lease(_ tenant: String) throws -> WriteLease {
        let admitted = state.withLock { s -> Bool in
            guard !s.deleting.contains(tenant) else { return false }
            s.writers[tenant, default: 0] += 1
            return true
        }
        guard admitted else {
            var e = APIError(.unavailable, "the tenant is being deleted; retry later")
            e.headers = [("Retry-After", "1")]
            throw e
        }
        return WriteLease(router: self, tenant: tenant)
    }

    private static func unknownTenant() -> APIError {
        APIError(.notFound, "unknown tenant: an administrator creates it with POST /v1/admin/tenants (tenancy.autoCreate is off)")
    }

    // MARK: Administration

    /// The existing tenants, sorted.
    func list() async throws -> [String] { try await catalog.tenants() }

    /// Creates a tenant (idempotent). - Returns: whether it was created now.
    @discardableResult
    func create(_ tenant: String) async throws -> Bool {
        let generation = state.withLock { $0.deletions[tenant, default: 0] }
        let created = try await catalog.createTenant(tenant)
        state.withLock { $0.markKnown(tenant, generation: generation) }
        return created
    }

    /// Deletes a tenant and its data: new writes are refused, writes in flight finish, the
    /// tenant's subscriptions end, then the catalog removes the data.
    /// - Returns: `false` when the tenant did not exist.
    /// - Throws: `503` when writes do not finish within `drainTimeout`; storage errors.
    func delete(_ tenant: String, drainTimeout: Duration = .seconds(10)) async throws -> Bool {
        let first = state.withLock { $0.deleting.insert(tenant).inserted }
        deletionEpoch.add(1, ordering: .sequentiallyConsistent)
        guard first else {
            var e = APIError(.unavailable, "the tenant is already being deleted; retry later")
            e.headers = [("Retry-After", "1")]
            throw e
        }
        defer { state.withLock { _ = $0.deleting.remove(tenant) } }
        try await waitForWrites(tenant, timeout: drainTimeout)
        await evict(tenant)
        let deleted = try await catalog.deleteTenant(tenant)
        // Again: a read during the deletion may have made a store over storage that is now gone
        // (with the `database` strategy, a closed file).
        await evict(tenant)
        return deleted
    }

    /// Returns once the tenant has no write in flight (new ones are refused while it is being
    /// deleted, so the count only falls).
    /// - Throws: `503` when `timeout` passes first; `CancellationError` when the caller is cancelled.
    private func waitForWrites(_ tenant: String, timeout: Duration) async throws {
        let drained = try await withThrowingTaskGroup(of: Bool?.self) { group in
            group.addTask { await self.writesDrained(tenant) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        switch drained {
        case true?: return
        case false?: throw CancellationError()
        case nil:
            var e = APIError(.unavailable, "writes to the tenant did not finish; retry later")
            e.headers = [("Retry-After", "1")]
            throw e
        }
    }

    /// Suspends until the tenant's writes are released: `true` then, `false` when the calling
    /// task is cancelled first.
    private func writesDrained(_ tenant: String) async -> Bool {
        let id = state.withLock { s -> Int in
            s.nextWaiter += 1
            return s.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                // `Task.isCancelled` is read under the lock: a cancellation handler that ran
                // before the waiter was stored found nothing to resume, so resume here instead.
                let now = state.withLock { s -> Bool? in
                    if s.writers[tenant] == nil { return true }
                    if Task.isCancelled { return false }
                    s.drainWaiters[tenant, default: [:]][id] = c
                    return nil
                }
                if let now { c.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.drainWaiters[tenant]?.removeValue(forKey: id) }
            waiter?.resume(returning: false)
        }
    }

    /// Forgets a tenant that another process deleted (``TenantCatalog/externalDeletions()``): as
    /// after a deletion here, its event streams end, its store (and hub) is dropped and it is no
    /// longer taken as existing — a write with `autoCreate` off is `404` instead of creating it
    /// again, and a tenant created again starts from position 1 with nothing of the old one.
    func forgetDeletedElsewhere(_ tenant: String) async {
        guard tenant != TenantID.default, (try? TenantID.validate(tenant)) != nil else { return }
        await evict(tenant)
    }

    /// A request found the tenant's own storage gone (``TenantStorageGone``): the tenant is
    /// forgotten as after a deletion, and the request's answer is what the existence rules say
    /// of an unknown tenant — `404` without `autoCreate`; with it `503` (retry: the next write
    /// creates the tenant afresh, with nothing of the deleted one).
    func storageGone(_ tenant: String) async -> APIError {
        if tenant != TenantID.default { await evict(tenant) }
        guard autoCreate else { return Self.unknownTenant() }
        var e = APIError(.unavailable, "the tenant was deleted meanwhile; retry (a write creates it afresh)")
        e.headers = [("Retry-After", "1")]
        return e
    }

    /// Where the deletions of every tenant stood when a request began (``wasDeleting(_:since:)``).
    struct DeletionMark: Equatable, Sendable {
        let epoch: Int
    }

    /// The ``DeletionMark`` now: one atomic load.
    var deletionMark: DeletionMark { DeletionMark(epoch: deletionEpoch.load(ordering: .sequentiallyConsistent)) }

    /// Whether a deletion of `tenant` runs now, or a deletion ran since `mark` and the tenant is
    /// not known to exist now (deleted meanwhile, in this process or through another one this
    /// process has heard of).
    func wasDeleting(_ tenant: String, since mark: DeletionMark) -> Bool {
        let changed = deletionMark != mark
        return state.withLock { s in s.deleting.contains(tenant) || (changed && !s.known.contains(tenant)) }
    }

    /// Forgets a tenant: not known, its store dropped, its event streams ended.
    private func evict(_ tenant: String) async {
        let (store, lifetime) = state.withLock { s -> (EventStore?, TenantLifetime?) in
            s.known.remove(tenant)
            s.deletions[tenant, default: 0] += 1
            deletionEpoch.add(1, ordering: .sequentiallyConsistent)
            return (root.forgetTenant(tenant), s.lifetimes.removeValue(forKey: tenant))
        }
        lifetime?.end()
        if let store { await store.hub.shutdown() }
    }
}

/// The catalog of a storage that has none: every valid tenant exists, none can be deleted.
struct ImplicitTenantCatalog: TenantCatalog {
    func tenants() async throws -> [String] { [TenantID.default] }
    func tenantExists(_ tenantID: String) async throws -> Bool { try TenantID.validate(tenantID); return true }
    func createTenant(_ tenantID: String) async throws -> Bool { try TenantID.validate(tenantID); return false }
    func deleteTenant(_ tenantID: String) async throws -> Bool {
        throw MinkError(.adapterNotSupported, "this storage cannot delete tenants")
    }
}

import Foundation
import Logging
import Mink
import Synchronization

/// PostgreSQL storage: events, snapshots, read models and checkpoints, shared safely by many
/// minkd processes.
///
/// ```swift
/// let storage = try await PostgresStorage(configuration: .init(connectionString: "postgresql://mink@db/mink"))
/// let acme = try storage.scoped("acme")          // the same storage, scoped to tenant "acme"
/// defer { Task { await storage.shutdown() } }
/// ```
///
/// One value is scoped to one tenant (``tenantID``); ``scoped(_:)`` and the `forTenant` methods
/// return views of the same storage (same pools, same listener) scoped to another tenant. Where a
/// tenant's rows live follows ``PostgresConfiguration/Tenancy``.
///
/// Connections are pooled (``PostgresConfiguration/poolSize``); each is driven by a serial queue
/// of its own, so libpq never blocks Swift's cooperative threads. When the server goes away,
/// operations throw `MinkError(.unavailable)` with `isTransient == true`; once it is back they
/// succeed again with the same storage object.
///
/// Appends are committed in groups: the appends waiting for a tenant share one transaction
/// (group commit), which takes the tenant's transaction-level advisory lock and gives positions
/// `max + 1`, so positions are dense per tenant and become visible strictly in order (see
/// `docs/storage-postgres.md`). Each such transaction sends `NOTIFY mink_commits`;
/// ``externalCommits()`` turns other processes' notifications into wake-ups.
public final class PostgresStorage: EventStoreAdapter, SnapshotAdapter, ReadModelStore {
    let core: Core
    let scope: Scope

    /// The tenant this view is scoped to.
    public var tenantID: String { scope.tenantID }

    /// Connects and, unless ``PostgresConfiguration/migrateOnStart`` is off, applies pending
    /// migrations (for the `default` tenant's schema or database with per-tenant tenancy).
    /// - Parameters:
    ///   - configuration: the server and layout.
    ///   - tenantID: the tenant of the returned view (default `default`).
    ///   - logger: where the storage logs reconnects and migrations.
    /// - Throws: `.validationFailed` for a bad configuration, `.invalidTenant`, `.unavailable`
    ///   when the server cannot be reached.
    public convenience init(
        configuration: PostgresConfiguration, tenantID: String = TenantID.default,
        logger: Logger = Logger(label: "mink.postgres")
    ) async throws {
        try configuration.validate()
        try TenantID.validate(tenantID)
        let core = Core(configuration: configuration, logger: logger)
        self.init(core: core, scope: core.scope(for: tenantID))
        if configuration.migrateOnStart {
            do {
                try await migrate()
            } catch {
                await core.shutdown()
                throw error
            }
        }
    }

    init(core: Core, scope: Scope) {
        self.core = core
        self.scope = scope
    }

    /// Applies pending migrations to this view's schema (or tenant database), creating it if
    /// needed. Safe to call concurrently from several processes.
    /// - Throws: `.unavailable`, `.internalError`.
    public func migrate() async throws {
        try await core.migrate(scope)
    }

    /// Applies pending migrations everywhere tenants live: the shared schema (``PostgresConfiguration/Tenancy/shared``),
    /// or the schema or database of every existing tenant (``PostgresConfiguration/Tenancy/schema(prefix:)``,
    /// ``PostgresConfiguration/Tenancy/database(prefix:)``). Creates no tenant (but the `default` one's).
    /// - Returns: the tenants, sorted.
    /// - Throws: `.unavailable`, `.internalError`.
    public func migrateAllTenants() async throws -> [String] {
        try await core.migrate(core.scope(for: TenantID.default))
        let all = try await tenants()
        if core.configuration.tenancy != .shared {
            for tenant in all where tenant != TenantID.default { try await core.migrate(core.scope(for: tenant)) }
        }
        return all
    }

    /// Closes every connection and stops the LISTEN thread; later calls fail with `.cancelled`
    /// and `externalCommits()` streams finish. Call once, on the root storage or any view.
    public func shutdown() async {
        await core.shutdown()
    }

    /// An executor for a request that is about to use this storage's main connection pool alone
    /// (an append, a stream read): the queue of the connection it will borrow, when every
    /// connection is idle; `nil` otherwise. See ``ConnectionPool/idleExecutor()``; minkd gives it
    /// to the task of such a request (`docs/storage-postgres.md`, "Connections, pool and threads").
    public func idleExecutor() -> (any TaskExecutor)? {
        scope.backend.pool.idleExecutor()
    }

    // MARK: Tenancy

    /// The same storage scoped to another tenant.
    /// - Throws: `.invalidTenant`.
    public func scoped(_ tenantID: String) throws -> PostgresStorage {
        try TenantID.validate(tenantID)
        return PostgresStorage(core: core, scope: core.scope(for: tenantID))
    }

    public func forTenant(_ tenantID: String) throws -> any EventStoreAdapter { try scoped(tenantID) }
    public func forTenant(_ tenantID: String) throws -> any SnapshotAdapter { try scoped(tenantID) }
    public func forTenant(_ tenantID: String) throws -> any ReadModelStore { try scoped(tenantID) }

    /// Runs `body` on a pooled connection of this view's database, after making sure the
    /// schema exists and is migrated — creating the tenant's own schema or database if needed
    /// (writes).
    ///
    /// With `recreating` off — read-model transactions (a projection's batch, a rebuild's switch)
    /// and projection leases — a tenant this process knows was deleted is not created again: the
    /// write fails with `.notFound`. A projection holder still catching up when the tenant was
    /// deleted through another process created its schema again, empty, with its next batch (a
    /// black-box audit, 3 of 3 runs). A tenant never seen is created as by any first write.
    func withConnection<T: Sendable>(
        recreating: Bool = true, _ body: @Sendable (PostgresConnection, Scope) throws -> T
    ) async throws -> T {
        let scope = self.scope
        if !recreating, scope.ownsStorage, try await core.stillDeleted(scope) { throw Self.tenantGone(scope) }
        try await core.ensureReady(scope)
        do {
            return try await scope.backend.pool.withConnection(mappingErrors: false) { conn in try body(conn, scope) }
        } catch let e as PostgresError where scope.ownsStorage && e.isMissingStorage {
            // Dropped (by a tenant deletion in another process) since it was migrated here: no
            // write creates it again from here — the server decides (`TenantStorageGone`: with
            // `autoCreate` off the tenant is unknown; on, the next write creates it afresh).
            // Recreating it here undid a deletion while writes kept arriving through a process
            // that had not yet heard of it (a black-box audit: 814 of 814 writes accepted).
            core.markDeleted(scope)
            throw Self.tenantGone(scope)
        } catch {
            throw error.mappedForMink()
        }
    }

    /// The error of a write to a tenant deleted since (see ``withConnection(recreating:_:)``).
    static func tenantGone(_ scope: Scope) -> MinkError {
        MinkError(.notFound, "tenant \(scope.tenantID) was deleted", underlying: TenantStorageGone(tenantID: scope.tenantID))
    }

    /// Runs a read: like ``withConnection(_:)``, but when the tenant's own schema or database
    /// does not exist it answers `empty` and creates nothing.
    func withReadConnection<T: Sendable>(empty: T, _ body: @Sendable (PostgresConnection, Scope) throws -> T) async throws -> T {
        let scope = self.scope
        guard scope.ownsStorage else { return try await withConnection(body) }
        if !core.isReady(scope) {
            guard try await core.storageExists(scope) else { return empty }
            // Not `create`: the storage may be dropped between the check and the migration
            // (a tenant deletion running meanwhile), and a read must not bring it back.
            do { try await core.ensureReady(scope, create: false) } catch is MissingTenantStorage { return empty }
        }
        do {
            return try await scope.backend.pool.withConnection(mappingErrors: false) { conn in try body(conn, scope) }
        } catch let e as PostgresError where e.isMissingStorage {
            core.forgetReady(scope)
            return empty
        } catch {
            throw error.mappedForMink()
        }
    }

    /// Checks that the server accepts writes, for readiness: a server in recovery (a standby)
    /// or with `default_transaction_read_only` reports `transaction_read_only = on`; an
    /// unreachable or frozen server fails within the storage timeout. (A full disk is not seen
    /// here: PostgreSQL then fails the commits themselves, which answer `503`.)
    /// - Throws: `.unavailable`.
    public func probeWrite() async throws {
        let readOnly = try await scope.backend.pool.withConnection { conn in
            let on = try conn.query("SELECT current_setting('transaction_read_only')").string(0, 0) == "on"
            // A session whose read-only default was fixed when it started is replaced, so that the
            // probe (and the appends) see the setting reset without a restart.
            if on { conn.replaceBeforeReuse() }
            return on
        }
        if readOnly {
            throw MinkError(.unavailable, "PostgreSQL accepts no writes (transaction_read_only is on: a standby, or default_transaction_read_only)", isTransient: true)
        }
    }

    // MARK: External commits

    /// Wakes when another process commits to this tenant (LISTEN/NOTIFY), and once after the
    /// listening connection was re-established, since commits may have been missed meanwhile.
    public func externalCommits() -> AsyncStream<Void>? {
        scope.backend.listener.subscribe(key: scope.notifyKey)
    }

    /// Wakes when another process's scavenger removed events of this tenant (a NOTIFY on the
    /// commit channel whose payload is the tenant's key + ``removalSuffix``), and once after the
    /// listening connection was re-established.
    public func externalRemovals() -> AsyncStream<Void>? {
        scope.backend.listener.subscribe(key: scope.notifyKey + Self.removalSuffix)
    }

    /// A tenant database's `idleTimeout` (`.database` tenancy): a subscription hub that had no
    /// waiter for that long gives its streams back, and the database's listening connection
    /// closes with its last stream. `nil` for the configured database.
    public var externalCommitsIdleRelease: Duration? { scope.backend.idleTimeout }

    /// What a removal's NOTIFY payload adds to the tenant's key.
    static let removalSuffix = "#removed"

    /// How many times the LISTEN connection of this view's database was (re)established.
    public var listenerConnectionCount: Int { scope.backend.listener.connections.load(ordering: .relaxed) }
}

/// Where one tenant's data lives: its database, schema and SQL.
struct Scope: Sendable {
    let tenantID: String
    /// The tenant database (`.database` tenancy); `nil` for the configured one.
    let database: String?
    let backends: Backends
    let sql: Statements
    /// Identifies the schema in the readiness set and the database for migrations.
    let readyKey: String
    /// The advisory-lock key serializing this tenant's appends.
    let appendLockKey: Int64
    /// The NOTIFY payload of this tenant's commits.
    let notifyKey: String
    /// Whether the tenant has a schema or database of its own (`.schema`, `.database`): it may be
    /// missing (never written, or deleted), and reads then answer as for an empty tenant.
    let ownsStorage: Bool

    /// The database's pool and listener, looked up on each use: after a tenant database was
    /// deleted and created again, views made before use the new pool.
    var backend: Backend { database.map { backends.tenant($0) } ?? backends.main }
}

/// The backends of one storage: the configured database's, and one per tenant database.
final class Backends: Sendable {
    let configuration: PostgresConfiguration
    let main: Backend
    private let tenants = Mutex<[String: Backend]>([:])

    init(configuration: PostgresConfiguration) {
        self.configuration = configuration
        self.main = Backend(configuration: configuration, database: nil, poolSize: configuration.poolSize, idleTimeout: nil)
    }

    /// The backend of a tenant database, made on first use.
    func tenant(_ database: String) -> Backend {
        tenants.withLock { b in
            if let existing = b[database] { return existing }
            let c = configuration
            let new = Backend(configuration: c, database: database, poolSize: c.tenantPoolSize, idleTimeout: c.idleTimeout)
            b[database] = new
            return new
        }
    }

    /// The tenant databases with a backend now (tests).
    var tenantDatabases: [String] { tenants.withLock { Array($0.keys) } }

    /// Forgets a tenant database's backend and closes it (its database is being dropped).
    func remove(_ database: String) async {
        let b = tenants.withLock { $0.removeValue(forKey: database) }
        await b?.shutdown()
    }

    func shutdown() async {
        let all = tenants.withLock { b in
            defer { b = [:] }
            return Array(b.values)
        }
        for b in all { await b.shutdown() }
        await main.shutdown()
    }
}

/// A database the storage talks to: its pool, its LISTEN connection, and the group commit of
/// each tenant's appends and read-model transactions.
final class Backend: Sendable {
    /// The database name for `.database` tenancy; `nil` for the configured one.
    let database: String?
    let pool: ConnectionPool
    let listener: CommitListener
    /// How long a tenant database's connections stay idle (`nil`: the configured database's).
    let idleTimeout: Duration?
    private let channel: String
    /// Each tenant's batchers on this database, by NOTIFY key (schema and tenant), made on first use.
    private let batchers = Mutex<[String: TenantBatchers]>([:])

    /// A tenant's group commit of appends and of read-model transactions.
    private struct TenantBatchers {
        let appends: AppendBatcher
        let readModels: ReadModelBatcher
    }

    init(configuration: PostgresConfiguration, database: String?, poolSize: Int, idleTimeout: Duration?) {
        let parameters = configuration.connectionParameters(database: database)
        self.database = database
        self.channel = configuration.channel
        self.pool = ConnectionPool(
            label: "mink.postgres.\(database ?? "main")", size: poolSize, parameters: parameters, timeout: configuration.timeout,
            idleTimeout: idleTimeout
        )
        // A tenant database's listening connection closes with its last stream, as its pool's
        // connections do after `idleTimeout`; the configured database's stays (it also hears of
        // tenant deletions, and its presence looks let this process's batches skip NOTIFY).
        self.listener = CommitListener(
            parameters: parameters, timeout: configuration.timeout, channel: configuration.channel, ownPIDs: pool.pids,
            closesWhenIdle: idleTimeout != nil
        )
        self.idleTimeout = idleTimeout
    }

    /// The batcher of a tenant's appends.
    func appender(for scope: Scope) -> AppendBatcher { tenantBatchers(scope).appends }

    /// The batcher of a tenant's grouped read-model transactions.
    func readModelBatcher(for scope: Scope) -> ReadModelBatcher { tenantBatchers(scope).readModels }

    private func tenantBatchers(_ scope: Scope) -> TenantBatchers {
        batchers.withLock { b in
            if let existing = b[scope.notifyKey] { return existing }
            let new = TenantBatchers(
                appends: AppendBatcher(scope: scope, pool: pool, channel: channel, listener: listener), readModels: ReadModelBatcher(scope: scope, pool: pool)
            )
            b[scope.notifyKey] = new
            return new
        }
    }

    func shutdown() async {
        for b in batchers.withLock({ Array($0.values) }) {
            await b.appends.close()
            await b.readModels.close()
        }
        await listener.shutdown()
        await pool.close()
    }
}

/// What every view of one storage shares.
final class Core: Sendable {
    let configuration: PostgresConfiguration
    let logger: Logger
    let backends: Backends
    var main: Backend { backends.main }
    private let ready = Mutex<Set<String>>([])
    /// Tenants with their own schema or database that were deleted (here, or by another process
    /// that said so), by ready key, until a write creates them again: read-model writes and
    /// projection leases never create these (``PostgresStorage/withConnection(recreating:_:)``).
    private let deleted = Mutex<Set<String>>([])
    /// The dedicated session holding this storage's projection leases, opened on first use.
    let leases: LeaseSession

    init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.backends = Backends(configuration: configuration)
        self.leases = LeaseSession(
            parameters: configuration.connectionParameters(), timeout: configuration.timeout, staleAfter: configuration.leaseStaleAfter,
            logger: logger
        )
    }

    /// What a tenant deletion's NOTIFY payload starts with (the tenant ID follows): names the
    /// deployment (its schema, or its per-tenant prefix), so that deployments sharing a database
    /// never forget each other's tenants.
    var deletionPrefix: String {
        switch configuration.tenancy {
        case .shared: return "#tenant-deleted:shared:\(configuration.schema):"
        case .schema(let prefix): return "#tenant-deleted:schema:\(prefix):"
        case .database(let prefix): return "#tenant-deleted:database:\(prefix):\(configuration.schema):"
        }
    }

    /// The scope of a (validated) tenant.
    func scope(for tenantID: String) -> Scope {
        let c = configuration
        switch c.tenancy {
        case .shared:
            return Scope(
                tenantID: tenantID, database: nil, backends: backends, sql: Statements(schema: c.schema), readyKey: "/" + c.schema,
                appendLockKey: Identifier.lockKey("mink-append:\(c.schema):\(tenantID)"), notifyKey: "\(c.schema):\(tenantID)",
                ownsStorage: false
            )
        case .schema(let prefix):
            let schema = Identifier.perTenant(prefix: prefix, tenant: tenantID)
            return Scope(
                tenantID: tenantID, database: nil, backends: backends, sql: Statements(schema: schema), readyKey: "/" + schema,
                appendLockKey: Identifier.lockKey("mink-append:\(schema):\(tenantID)"), notifyKey: "\(schema):\(tenantID)",
                ownsStorage: true
            )
        case .database(let prefix):
            let database = Identifier.perTenant(prefix: prefix, tenant: tenantID)
            return Scope(
                tenantID: tenantID, database: database, backends: backends, sql: Statements(schema: c.schema),
                readyKey: database + "/" + c.schema, appendLockKey: Identifier.lockKey("mink-append:\(c.schema):\(tenantID)"),
                notifyKey: "\(c.schema):\(tenantID)", ownsStorage: true
            )
        }
    }

    /// Whether the scope's schema is known to be migrated by this storage.
    func isReady(_ scope: Scope) -> Bool { ready.withLock { $0.contains(scope.readyKey) } }

    /// Forgets that the scope's schema was migrated (it was dropped, here or by another process).
    func forgetReady(_ scope: Scope) { _ = ready.withLock { $0.remove(scope.readyKey) } }

    /// Records that a tenant's own schema or database was deleted (and forgets it was migrated).
    func markDeleted(_ scope: Scope) {
        forgetReady(scope)
        _ = deleted.withLock { $0.insert(scope.readyKey) }
    }

    /// Whether the tenant was deleted and not created since: marked deleted here, and its schema
    /// or database still missing (created again — through another process, which says nothing —
    /// the mark goes).
    func stillDeleted(_ scope: Scope) async throws -> Bool {
        guard deleted.withLock({ $0.contains(scope.readyKey) }) else { return false }
        if try await storageExists(scope) {
            _ = deleted.withLock { $0.remove(scope.readyKey) }
            return false
        }
        return true
    }

    /// Migrates the scope's schema once per storage (per-tenant schemas and databases on first use).
    /// - Parameter create: `false` for reads: a missing schema or database throws
    ///   ``MissingTenantStorage`` instead of being created.
    func ensureReady(_ scope: Scope, create: Bool = true) async throws {
        if isReady(scope) { return }
        try await migrate(scope, create: create)
    }

    /// Whether a tenant's own schema or database exists (always `true` for `.shared`).
    func storageExists(_ scope: Scope) async throws -> Bool {
        guard scope.ownsStorage else { return true }
        if let database = scope.database {
            return try await main.pool.withConnection { conn in
                try conn.query("SELECT 1 FROM pg_database WHERE datname = $1", [.text(database)]).rowCount > 0
            }
        }
        let schema = scope.sql.schema
        return try await main.pool.withConnection { conn in
            try conn.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [.text(schema)]).rowCount > 0
        }
    }

    /// Migrates the scope's schema, creating its database or schema if needed.
    /// - Returns: whether the tenant's own schema or database was created now.
    @discardableResult
    func migrate(_ scope: Scope, create: Bool = true) async throws -> Bool {
        let schema = scope.sql.schema
        let register = scope.ownsStorage ? scope.tenantID : nil
        var result: Migrations.Result
        var createdDatabase = false
        let pool = scope.backend.pool
        do {
            do {
                result = try await pool.withConnection(mappingErrors: false) {
                    try Migrations.apply(on: $0, schema: schema, registering: register, create: create)
                }
            } catch let e as PostgresError where e.sqlState == "3D000" && scope.database != nil {
                guard create else { throw MissingTenantStorage() }
                createdDatabase = try await createDatabase(scope)
                result = try await scope.backend.pool.withConnection(mappingErrors: false) {
                    try Migrations.apply(on: $0, schema: schema, registering: register)
                }
            }
        } catch let missing as MissingTenantStorage {
            throw missing
        } catch {
            throw error.mappedForMink()
        }
        if !result.applied.isEmpty {
            logger.info("applied PostgreSQL migrations", metadata: ["schema": "\(schema)", "versions": "\(result.applied)"])
        }
        _ = ready.withLock { $0.insert(scope.readyKey) }
        // It exists now (created here or by another process): no longer deleted.
        _ = deleted.withLock { $0.remove(scope.readyKey) }
        return scope.database != nil ? createdDatabase : result.createdSchema
    }

    /// Creates a tenant database through the configured one (`.database` tenancy).
    /// - Returns: whether it was created now (`false`: a concurrent creator won).
    private func createDatabase(_ scope: Scope) async throws -> Bool {
        guard let database = scope.database else { return false }
        let created = try await main.pool.withConnection { conn -> Bool in
            do {
                // CREATE DATABASE cannot run in a transaction. A concurrent creator (in this
                // process or another) wins with 42P04 when it committed first, or with a unique
                // violation of pg_database's name index when both were inserting at once (then
                // the winner has committed: the violation waits for it).
                try conn.execute("CREATE DATABASE \(Identifier.quote(database))")
                return true
            } catch let e as PostgresError where e.sqlState == "42P04" || (e.isUniqueViolation && e.constraint == "pg_database_datname_index") {
                return false
            }
        }
        if created { logger.info("created PostgreSQL tenant database", metadata: ["database": "\(database)"]) }
        return created
    }

    func shutdown() async {
        await leases.shutdown()
        await backends.shutdown()
    }
}

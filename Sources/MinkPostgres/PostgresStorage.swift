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
/// Appends take a per-tenant transaction-level advisory lock and give positions `max + 1`, so
/// positions are dense per tenant and become visible strictly in order (see
/// `docs/storage-postgres.md`). Each append sends `NOTIFY mink_commits` in its transaction;
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

    /// Closes every connection and stops the LISTEN thread; later calls fail with `.cancelled`
    /// and `externalCommits()` streams finish. Call once, on the root storage or any view.
    public func shutdown() async {
        await core.shutdown()
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
    /// schema exists and is migrated.
    func withConnection<T: Sendable>(_ body: @Sendable (PostgresConnection, Scope) throws -> T) async throws -> T {
        let scope = self.scope
        try await core.ensureReady(scope)
        return try await scope.backend.pool.withConnection { conn in try body(conn, scope) }
    }

    // MARK: External commits

    /// Wakes when another process commits to this tenant (LISTEN/NOTIFY), and once after the
    /// listening connection was re-established, since commits may have been missed meanwhile.
    public func externalCommits() -> AsyncStream<Void>? {
        scope.backend.listener.subscribe(key: scope.notifyKey)
    }

    /// How many times the LISTEN connection of this view's database was (re)established.
    public var listenerConnectionCount: Int { scope.backend.listener.connections.load(ordering: .relaxed) }
}

/// Where one tenant's data lives: its database backend, schema and SQL.
struct Scope: Sendable {
    let tenantID: String
    let backend: Backend
    let sql: Statements
    /// Identifies the schema in the readiness set and the database for migrations.
    let readyKey: String
    /// The advisory-lock key serializing this tenant's appends.
    let appendLockKey: Int64
    /// The NOTIFY payload of this tenant's commits.
    let notifyKey: String
}

/// A database the storage talks to: its pool and its LISTEN connection.
final class Backend: Sendable {
    /// The database name for `.database` tenancy; `nil` for the configured one.
    let database: String?
    let pool: ConnectionPool
    let listener: CommitListener

    init(configuration: PostgresConfiguration, database: String?, poolSize: Int, idleTimeout: Duration?) {
        let parameters = configuration.connectionParameters(database: database)
        self.database = database
        self.pool = ConnectionPool(
            label: "mink.postgres.\(database ?? "main")", size: poolSize, parameters: parameters, idleTimeout: idleTimeout
        )
        self.listener = CommitListener(parameters: parameters, channel: configuration.channel, ownPIDs: pool.pids)
    }

    func shutdown() async {
        await listener.shutdown()
        await pool.close()
    }
}

/// What every view of one storage shares.
final class Core: Sendable {
    let configuration: PostgresConfiguration
    let logger: Logger
    let main: Backend
    private let tenantBackends = Mutex<[String: Backend]>([:])
    private let ready = Mutex<Set<String>>([])

    init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.main = Backend(configuration: configuration, database: nil, poolSize: configuration.poolSize, idleTimeout: nil)
    }

    /// The scope of a (validated) tenant.
    func scope(for tenantID: String) -> Scope {
        let c = configuration
        switch c.tenancy {
        case .shared:
            return Scope(
                tenantID: tenantID, backend: main, sql: Statements(schema: c.schema), readyKey: "/" + c.schema,
                appendLockKey: Identifier.lockKey("mink-append:\(c.schema):\(tenantID)"), notifyKey: "\(c.schema):\(tenantID)"
            )
        case .schema(let prefix):
            let schema = Identifier.perTenant(prefix: prefix, tenant: tenantID)
            return Scope(
                tenantID: tenantID, backend: main, sql: Statements(schema: schema), readyKey: "/" + schema,
                appendLockKey: Identifier.lockKey("mink-append:\(schema):\(tenantID)"), notifyKey: "\(schema):\(tenantID)"
            )
        case .database(let prefix):
            let database = Identifier.perTenant(prefix: prefix, tenant: tenantID)
            let backend = tenantBackends.withLock { b in
                if let existing = b[database] { return existing }
                let new = Backend(configuration: c, database: database, poolSize: c.tenantPoolSize, idleTimeout: c.idleTimeout)
                b[database] = new
                return new
            }
            return Scope(
                tenantID: tenantID, backend: backend, sql: Statements(schema: c.schema), readyKey: database + "/" + c.schema,
                appendLockKey: Identifier.lockKey("mink-append:\(c.schema):\(tenantID)"), notifyKey: "\(c.schema):\(tenantID)"
            )
        }
    }

    /// Migrates the scope's schema once per storage (per-tenant schemas and databases on first use).
    func ensureReady(_ scope: Scope) async throws {
        if ready.withLock({ $0.contains(scope.readyKey) }) { return }
        try await migrate(scope)
    }

    func migrate(_ scope: Scope) async throws {
        let schema = scope.sql.schema
        let applied: [Int]
        let pool = scope.backend.pool
        do {
            do {
                applied = try await pool.withConnection(mappingErrors: false) { try Migrations.apply(on: $0, schema: schema) }
            } catch let e as PostgresError where e.sqlState == "3D000" && scope.backend.database != nil {
                try await createDatabase(scope)
                applied = try await pool.withConnection(mappingErrors: false) { try Migrations.apply(on: $0, schema: schema) }
            }
        } catch {
            throw error.mappedForMink()
        }
        if !applied.isEmpty {
            logger.info("applied PostgreSQL migrations", metadata: ["schema": "\(schema)", "versions": "\(applied)"])
        }
        _ = ready.withLock { $0.insert(scope.readyKey) }
    }

    /// Creates a tenant database through the configured one (`.database` tenancy).
    private func createDatabase(_ scope: Scope) async throws {
        guard let database = scope.backend.database else { return }
        try await main.pool.withConnection { conn in
            do {
                // CREATE DATABASE cannot run in a transaction; a concurrent creator wins with 42P04.
                try conn.execute("CREATE DATABASE \(Identifier.quote(database))")
            } catch let e as PostgresError where e.sqlState == "42P04" {}
        }
        logger.info("created PostgreSQL tenant database", metadata: ["database": "\(database)"])
    }

    func shutdown() async {
        let backends = tenantBackends.withLock { Array($0.values) }
        for b in backends { await b.shutdown() }
        await main.shutdown()
    }
}

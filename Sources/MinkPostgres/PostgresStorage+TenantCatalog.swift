import Foundation
import Mink

/// The tenant catalog of every PostgreSQL tenancy strategy.
///
/// - `.shared`: the `mink_tenants` table of the shared schema is the registry (migration 2
///   registers the tenants that already had data); deleting a tenant removes its rows from every
///   table — and drops its read-model indexes — in one transaction holding the tenant's append
///   lock.
/// - `.schema(prefix:)`: a tenant exists when its schema exists; creating one creates and migrates
///   the schema, deleting one runs `DROP SCHEMA … CASCADE`.
/// - `.database(prefix:)`: a tenant exists when its database exists; creating one creates and
///   migrates it, deleting one closes this storage's pool and LISTEN connection of it and runs
///   `DROP DATABASE … WITH (FORCE)` (PostgreSQL 13+; older servers need the other processes'
///   connections gone).
///
/// Reads of an unknown tenant answer as for an empty tenant and create nothing (see
/// ``PostgresStorage``'s reads). Any view of the storage answers for the whole storage.
extension PostgresStorage: TenantCatalog {
    /// The tables holding tenant data in the shared schema, every one keyed by `tenant_id`.
    static let tenantTables = [
        "mink_events", "mink_streams", "mink_snapshots", "mink_checkpoints", "mink_documents", "mink_stream_metadata",
    ]

    public func tenants() async throws -> [String] {
        var ids: Set<String> = [TenantID.default]
        let c = core.configuration
        switch c.tenancy {
        case .shared:
            let scope = core.scope(for: TenantID.default)
            try await core.ensureReady(scope)
            let found = try await core.main.pool.withConnection { conn in
                let r = try conn.query("SELECT tenant_id FROM \(Identifier.quote(scope.sql.schema)).mink_tenants")
                return (0..<r.rowCount).compactMap { r.string($0, 0) }
            }
            ids.formUnion(found)
        case .schema(let prefix):
            let found = try await core.main.pool.withConnection { conn -> [String] in
                let r = try conn.query(
                    """
                    SELECT n.nspname, EXISTS (SELECT 1 FROM pg_class t WHERE t.relnamespace = n.oid AND t.relname = 'mink_tenants')
                    FROM pg_namespace n
                    WHERE n.nspname LIKE $1
                      AND EXISTS (SELECT 1 FROM pg_class m WHERE m.relnamespace = n.oid AND m.relname = 'mink_schema_migrations')
                    """,
                    [.text(Self.likePrefix(prefix))]
                )
                var out: [String] = []
                for row in 0..<r.rowCount {
                    guard let schema = r.string(row, 0) else { continue }
                    out += try Self.tenantsOf(schema: schema, prefix: prefix, name: schema, registry: r.bool(row, 1) == true, conn: conn)
                }
                return out
            }
            ids.formUnion(found)
        case .database(let prefix):
            let schema = c.schema
            let found = try await core.main.pool.withConnection { conn -> [String] in
                let r = try conn.query(
                    "SELECT datname FROM pg_database WHERE datname LIKE $1 AND NOT datistemplate AND datallowconn",
                    [.text(Self.likePrefix(prefix))]
                )
                var out: [String] = []
                for row in 0..<r.rowCount {
                    guard let database = r.string(row, 0), Identifier.perTenant(prefix: prefix, tenant: TenantID.default) != database
                    else { continue }
                    // Only databases holding a migrated mink schema are tenants: ask each one.
                    let other: PostgresConnection
                    do {
                        other = try PostgresConnection(parameters: c.connectionParameters(database: database), timeout: c.timeout)
                    } catch is PostgresError {
                        continue  // dropped meanwhile, or not ours to open
                    }
                    defer { other.close() }
                    let t = try other.query(
                        """
                        SELECT EXISTS (SELECT 1 FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
                                       WHERE n.nspname = $1 AND t.relname = 'mink_tenants'),
                               EXISTS (SELECT 1 FROM pg_class m JOIN pg_namespace n ON n.oid = m.relnamespace
                                       WHERE n.nspname = $1 AND m.relname = 'mink_schema_migrations')
                        """,
                        [.text(schema)]
                    )
                    guard t.bool(0, 1) == true else { continue }
                    out += try Self.tenantsOf(schema: schema, prefix: prefix, name: database, registry: t.bool(0, 0) == true, conn: other)
                }
                return out
            }
            ids.formUnion(found)
        }
        return ids.sorted()
    }

    /// The tenant whose own schema or database is `name`: read from its registry, or — before
    /// migration 2 ran there — from the name itself.
    private static func tenantsOf(schema: String, prefix: String, name: String, registry: Bool, conn: PostgresConnection) throws -> [String] {
        var candidates: [String] = []
        if registry {
            let r = try conn.query("SELECT tenant_id FROM \(Identifier.quote(schema)).mink_tenants")
            candidates = (0..<r.rowCount).compactMap { r.string($0, 0) }
        } else if name.hasPrefix(prefix) {
            candidates = [String(name.dropFirst(prefix.count))]
        }
        return candidates.filter { (try? TenantID.validate($0)) != nil && Identifier.perTenant(prefix: prefix, tenant: $0) == name }
    }

    /// A `LIKE` pattern matching names that start with `prefix` (`_` taken literally).
    private static func likePrefix(_ prefix: String) -> String {
        prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "_", with: "\\_")
            .replacingOccurrences(of: "%", with: "\\%") + "%"
    }

    public func tenantExists(_ tenantID: String) async throws -> Bool {
        try TenantID.validate(tenantID)
        if tenantID == TenantID.default { return true }
        let scope = core.scope(for: tenantID)
        guard !scope.ownsStorage else { return try await core.storageExists(scope) }
        try await core.ensureReady(scope)
        return try await core.main.pool.withConnection { conn in
            try conn.query(
                "SELECT 1 FROM \(Identifier.quote(scope.sql.schema)).mink_tenants WHERE tenant_id = $1", [.text(tenantID)]
            ).rowCount > 0
        }
    }

    @discardableResult
    public func createTenant(_ tenantID: String) async throws -> Bool {
        try TenantID.validate(tenantID)
        let scope = core.scope(for: tenantID)
        if scope.ownsStorage { return try await core.migrate(scope) }
        try await core.ensureReady(scope)
        return try await core.main.pool.withConnection { conn in
            try conn.query(
                "INSERT INTO \(Identifier.quote(scope.sql.schema)).mink_tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING",
                [.text(tenantID)]
            ).affectedRows > 0
        }
    }

    @discardableResult
    public func deleteTenant(_ tenantID: String) async throws -> Bool {
        try TenantID.validateDeletable(tenantID)
        let deleted = try await removeTenant(tenantID)
        // Every other process on the database forgets the tenant (``externalDeletions()``): sent
        // after the removal committed, on the configured database (a tenant database is gone).
        // Best effort: a process that misses it (its LISTEN connection was down) still answers
        // new subscriptions from storage (`SubscriptionHub.revalidate()`).
        do {
            try await core.main.pool.withConnection { conn in
                _ = try conn.query("SELECT pg_notify($1, $2)", [.text(core.configuration.channel), .text(core.deletionPrefix + tenantID)])
            }
        } catch {
            core.logger.warning("could not tell other processes that a tenant was deleted", metadata: ["tenant": "\(tenantID)", "error": "\(error)"])
        }
        return deleted
    }

    /// Tenants deleted through other processes on this database (``deleteTenant(_:)``'s NOTIFY).
    public func externalDeletions() -> AsyncStream<String>? {
        core.main.listener.subscribe(prefix: core.deletionPrefix)
    }

    /// A tenant database dropped by another process: its pool and LISTEN connection close (the
    /// listener would otherwise try to reconnect to a database that no longer exists, for good);
    /// its schema is no longer taken as migrated.
    public func releaseDeletedTenant(_ tenantID: String) async {
        guard (try? TenantID.validate(tenantID)) != nil else { return }
        let scope = core.scope(for: tenantID)
        if let database = scope.database { await core.backends.remove(database) }
        core.markDeleted(scope)
    }

    private func removeTenant(_ tenantID: String) async throws -> Bool {
        let scope = core.scope(for: tenantID)
        if let database = scope.database {
            await core.backends.remove(database)
            core.forgetReady(scope)
            let existed = try await core.main.pool.withConnection { conn -> Bool in
                guard try conn.query("SELECT 1 FROM pg_database WHERE datname = $1", [.text(database)]).rowCount > 0 else { return false }
                let version = try conn.query("SHOW server_version_num").int64(0, 0) ?? 0
                try conn.execute("DROP DATABASE IF EXISTS \(Identifier.quote(database))\(version >= 130000 ? " WITH (FORCE)" : "")")
                return true
            }
            core.markDeleted(scope)
            if existed { core.logger.info("dropped PostgreSQL tenant database", metadata: ["database": "\(database)"]) }
            return existed
        }
        let schema = scope.sql.schema
        if scope.ownsStorage {
            let existed = try await core.main.pool.withConnection { conn -> Bool in
                // The migration lock: a concurrent first write that is creating the schema finishes first.
                try conn.transaction(begin: "SELECT pg_advisory_xact_lock(\(Identifier.lockKey("mink-migrate:" + schema)))") {
                    guard try conn.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [.text(schema)]).rowCount > 0 else { return false }
                    try conn.execute("DROP SCHEMA \(Identifier.quote(schema)) CASCADE")
                    return true
                }
            }
            core.markDeleted(scope)
            return existed
        }
        try await core.ensureReady(scope)
        // A projection batch of the tenant (another process's, catching up) writes its documents
        // and checkpoint without the tenant's lock, in its own order: PostgreSQL may find a
        // deadlock between it and this deletion and abort either (a black-box audit saw the
        // deletion answer `503`, 6 runs of 9). The batch retries itself; so does the deletion.
        for attempt in 1... {
            do {
                return try await deleteSharedTenantRows(tenantID, scope: scope, schema: schema)
            } catch let e as PostgresError where e.isDeadlock && attempt < 4 {
                core.logger.info("tenant deletion chosen as a deadlock's victim; retrying", metadata: ["tenant": "\(tenantID)", "attempt": "\(attempt)"])
            } catch {
                throw error.mappedForMink()
            }
        }
        fatalError("unreachable")
    }

    /// The shared strategy's deletion of a tenant's rows, in one transaction under its lock.
    private func deleteSharedTenantRows(_ tenantID: String, scope: Scope, schema: String) async throws -> Bool {
        // Unmapped: the caller tells a deadlock (`40P01`) from other failures.
        try await core.main.pool.withConnection(mappingErrors: false) { conn -> Bool in
            let s = Identifier.quote(schema)
            let tenant = PostgresValue.text(tenantID)
            // The tenant's append lock: no append of the tenant commits halfway through.
            return try conn.transaction(begin: "SELECT pg_advisory_xact_lock(\(scope.appendLockKey))") {
                var removed = false
                let indexes = try conn.query("DELETE FROM \(s).mink_document_indexes WHERE tenant_id = $1 RETURNING index_name", [tenant])
                for i in 0..<indexes.rowCount {
                    if let name = indexes.string(i, 0) { try conn.execute("DROP INDEX IF EXISTS \(s).\(Identifier.quote(name))") }
                }
                for table in Self.tenantTables + ["mink_tenants"] {
                    if try conn.query("DELETE FROM \(s).\(table) WHERE tenant_id = $1", [tenant]).affectedRows > 0 { removed = true }
                }
                return removed
            }
        }
    }
}

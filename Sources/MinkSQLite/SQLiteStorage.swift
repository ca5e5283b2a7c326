import Foundation
import Mink
import Synchronization

/// Embedded storage in SQLite files: events, snapshots, checkpoints and read models.
///
/// ```swift
/// let storage = try await SQLiteStorage.open(path: "/var/lib/minkd/mink.sqlite")
/// let acme = try storage.scoped("acme")      // same file, tenant_id = 'acme'
/// ...
/// await storage.close()
/// ```
///
/// Each file runs in WAL mode with one writer connection (group commit, see `docs/storage-sqlite.md`)
/// and a few reader connections; every guarantee of `EventStoreAdapter` holds: appends are atomic
/// and durable when they return (`synchronous = FULL` by default), versions are dense, per-tenant
/// positions are dense and become visible in order, and inline projections commit with the events.
///
/// One value is scoped to one tenant; ``scoped(_:)`` and `forTenant(_:)` return views for other
/// tenants, in the same file (``TenancyStrategy/shared``) or in a file of their own
/// (``TenancyStrategy/database``).
public final class SQLiteStorage: EventStoreAdapter, SnapshotAdapter, ReadModelStore {
    /// Where tenants' data lives.
    public enum TenancyStrategy: String, Sendable, Hashable {
        /// One file; every row carries its tenant ID.
        case shared
        /// One file per tenant: `<directory>/<tenant>.sqlite`.
        case database
        /// Not available with SQLite (PostgreSQL only); opening with it throws `.adapterNotSupported`.
        case schema
    }

    /// The per-tenant files of a `.database` storage, opened on first use.
    final class TenantFiles: Sendable {
        let directory: String
        let configuration: SQLiteConfiguration
        let databases = Mutex<[String: SQLiteDatabase]>([:])

        init(directory: String, configuration: SQLiteConfiguration) {
            self.directory = directory
            self.configuration = configuration
        }

        /// The database of a tenant; the ID must have been validated (it becomes a file name).
        /// A tenant's file is created by its first write (or `createTenant`), never by a read.
        func database(for tenantID: String) -> SQLiteDatabase {
            databases.withLock { dbs in
                if let db = dbs[tenantID] { return db }
                let db = SQLiteDatabase(
                    path: SQLiteStorage.file(tenantID, in: directory), configuration: configuration,
                    createsFileOnWriteOnly: tenantID != TenantID.default
                )
                dbs[tenantID] = db
                return db
            }
        }

        /// Forgets a tenant's database (the next use opens a new one) and returns it, if open.
        func remove(_ tenantID: String) -> SQLiteDatabase? {
            databases.withLock { $0.removeValue(forKey: tenantID) }
        }
    }

    let database: SQLiteDatabase
    let tenantFiles: TenantFiles?
    /// The tenant this view is scoped to.
    public let tenantID: String

    init(database: SQLiteDatabase, tenantID: String, tenantFiles: TenantFiles?) {
        self.database = database
        self.tenantID = tenantID
        self.tenantFiles = tenantFiles
    }

    /// The database file this view reads and writes.
    public var path: String { database.path }

    /// The writer's queue as a task executor while the writer is idle, for a lone request's task
    /// (see ``SQLiteDatabase/idleExecutor()``); `nil` under load, and always with a file per
    /// tenant (the request's tenant decides which writer it would be).
    public func idleExecutor() -> (any TaskExecutor)? {
        tenantFiles == nil ? database.idleExecutor() : nil
    }

    // MARK: Opening

    /// Opens (creating if needed) one database file holding every tenant (`.shared` tenancy),
    /// scoped to the `default` tenant.
    /// - Throws: `.unavailable` or `.internalError` when the file cannot be opened or migrated.
    public static func open(path: String, configuration: SQLiteConfiguration = SQLiteConfiguration()) async throws -> SQLiteStorage {
        let storage = SQLiteStorage(database: SQLiteDatabase(path: path, configuration: configuration), tenantID: TenantID.default, tenantFiles: nil)
        do { try await storage.database.prepare() } catch {
            await storage.database.close()
            throw error
        }
        return storage
    }

    /// Opens storage under a data directory (created if needed), scoped to the `default` tenant.
    ///
    /// - `.shared`: one file, `<directory>/mink.sqlite`, every tenant in the same tables;
    /// - `.database`: one file per tenant, `<directory>/<tenant>.sqlite`, opened on first use;
    /// - `.schema`: throws `.adapterNotSupported` (schemas are a PostgreSQL strategy).
    /// - Throws: `.adapterNotSupported`, `.unavailable`, `.internalError`.
    public static func open(
        directory: String, strategy: TenancyStrategy = .shared, configuration: SQLiteConfiguration = SQLiteConfiguration()
    ) async throws -> SQLiteStorage {
        switch strategy {
        case .schema:
            throw MinkError(.adapterNotSupported, "SQLite storage has no schema-per-tenant strategy; use shared or database")
        case .shared:
            try createDirectory(directory)
            try refuseOtherLayout(in: directory, strategy: .shared)
            return try await open(path: (directory as NSString).appendingPathComponent("mink.sqlite"), configuration: configuration)
        case .database:
            try createDirectory(directory)
            try refuseOtherLayout(in: directory, strategy: .database)
            let files = TenantFiles(directory: directory, configuration: configuration)
            let storage = SQLiteStorage(database: files.database(for: TenantID.default), tenantID: TenantID.default, tenantFiles: files)
            try await storage.database.prepare()
            return storage
        }
    }

    /// Refuses a data directory laid out for the other strategy: the shared file (`mink.sqlite`)
    /// alone under `database` — it would be listed as a tenant named `mink`, and deleting that
    /// tenant deleted every tenant's data — or any tenant's file (`<tenant>.sqlite` other than
    /// `mink.sqlite`) under `shared` (every tenant's data would seem gone, and a tenant named
    /// `mink` would be taken for the shared database). A per-tenant directory with a tenant
    /// named `mink` opens under `database`.
    static func refuseOtherLayout(in directory: String, strategy: TenancyStrategy) throws {
        let exists = { (name: String) in FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(name)) }
        // Any tenant's own file marks the per-tenant layout (a tenant named `mink` has
        // `mink.sqlite`, the shared layout's file name: its neighbours tell them apart).
        let tenantFiles = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".sqlite") && $0 != "mink.sqlite" }
        let shared = exists("mink.sqlite"), perTenant = !tenantFiles.isEmpty
        switch strategy {
        case .database where shared && !perTenant:
            throw MinkError(
                .validationFailed,
                "the data directory \(directory) holds a shared-strategy database (mink.sqlite) but tenancy.strategy is database: "
                    + "set strategy: shared, or move the tenants with minkd export/import into a new data directory")
        case .shared where perTenant:
            throw MinkError(
                .validationFailed,
                "the data directory \(directory) holds a database-per-tenant layout (\(tenantFiles.sorted().prefix(3).joined(separator: ", "))) but tenancy.strategy is shared: "
                    + "set strategy: database, or move the tenants with minkd export/import into a new data directory")
        default:
            return
        }
    }

    /// `<directory>/<tenant>.sqlite`; `tenantID` must have passed `TenantID.validate`.
    static func file(_ tenantID: String, in directory: String) -> String {
        (directory as NSString).appendingPathComponent("\(tenantID).sqlite")
    }

    private static func createDirectory(_ directory: String) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw MinkError(.unavailable, "cannot create the data directory \(directory): \(error.localizedDescription)", isTransient: true, underlying: error)
        }
    }

    /// Waits for queued writes, then closes every connection of every file this storage opened
    /// (all tenants' views included). Later calls fail with `.cancelled`.
    public func close() async {
        if let tenantFiles {
            for db in tenantFiles.databases.withLock({ Array($0.values) }) { await db.close() }
        } else {
            await database.close()
        }
    }

    /// Checks that this view's database accepts writes: one small write through the group
    /// commit. Readiness calls it every few seconds at most.
    /// - Throws: `.unavailable` (read-only, disk full, I/O error), with SQLite's cause as `underlying`.
    public func probeWrite() async throws {
        try await database.probeWrite()
    }

    // MARK: Tenancy

    /// The same storage scoped to another tenant: a view of the same file (`.shared`) or the
    /// tenant's own file (`.database`, opened on first use).
    /// - Throws: `.invalidTenant` for an ID that does not match `^[a-z0-9][a-z0-9_-]{0,62}$`.
    public func scoped(_ tenantID: String) throws -> SQLiteStorage {
        try TenantID.validate(tenantID)
        if let tenantFiles {
            return SQLiteStorage(database: tenantFiles.database(for: tenantID), tenantID: tenantID, tenantFiles: tenantFiles)
        }
        return SQLiteStorage(database: database, tenantID: tenantID, tenantFiles: nil)
    }

    public func forTenant(_ tenantID: String) throws -> any EventStoreAdapter { try scoped(tenantID) }
    public func forTenant(_ tenantID: String) throws -> any SnapshotAdapter { try scoped(tenantID) }
    public func forTenant(_ tenantID: String) throws -> any ReadModelStore { try scoped(tenantID) }
}

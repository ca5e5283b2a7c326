import Foundation
import Logging
import Mink
import MinkConfig
import MinkPostgres
import MinkSQLite
import MinkServer

/// Where the application wires the storage: the configuration's `storage.kind` becomes an
/// adapter here, so that `MinkServer` depends on the core's storage protocols alone and only
/// the executable (and tests) link libsqlite3 and libpq.
extension ServerStorage {
    /// Opens the storage the configuration names.
    /// - Throws: a `ConfigError`-style message when the kind cannot be opened.
    public static func open(_ configuration: MinkdConfiguration, logger: Logger = Logger(label: "minkd")) async throws -> ServerStorage {
        switch configuration.storage.kind {
        case .memory:
            return .memory()
        case .postgres:
            let s = try await PostgresStorage(configuration: try postgresConfiguration(configuration), logger: logger)
            return ServerStorage(
                events: s, snapshots: s, readModels: s, kind: "postgres", close: { await s.shutdown() },
                probeWrite: { try await s.probeWrite() }
            )
        case .sqlite:
            let strategy: SQLiteStorage.TenancyStrategy
            switch configuration.tenancy.strategy {
            case .shared: strategy = .shared
            case .database: strategy = .database
            case .schema:
                throw MinkError(
                    .adapterNotSupported,
                    "config: tenancy.strategy: \"schema\" needs PostgreSQL (storage.kind: postgres); SQLite supports shared and database"
                )
            }
            let s = try await SQLiteStorage.open(directory: configuration.storage.dataDir, strategy: strategy)
            return ServerStorage(
                events: s, snapshots: s, readModels: s, kind: "sqlite", close: { await s.close() },
                probeWrite: { try await s.probeWrite() }
            )
        }
    }

    /// Applies pending PostgreSQL migrations to every existing tenant's schema (all of them in
    /// the shared schema with `shared` tenancy; each tenant's schema or database otherwise),
    /// for `minkd migrate`.
    /// - Returns: the tenants whose schema is now current.
    /// - Throws: `.validationFailed` without a URL, `.unavailable` when the server cannot be reached.
    public static func migratePostgres(_ configuration: MinkdConfiguration, logger: Logger = Logger(label: "minkd")) async throws -> [String] {
        let s = try await PostgresStorage(configuration: try postgresConfiguration(configuration), logger: logger)
        do {
            let tenants = try await s.migrateAllTenants()
            await s.shutdown()
            return tenants
        } catch {
            await s.shutdown()
            throw error
        }
    }

    /// The PostgreSQL adapter's configuration for minkd's.
    static func postgresConfiguration(_ configuration: MinkdConfiguration) throws -> PostgresConfiguration {
        guard let url = configuration.storage.url, !url.isEmpty else {
            throw MinkError(.validationFailed, "config: storage.url: a PostgreSQL URL is needed (--database-url or MINKD_DATABASE_URL)")
        }
        let tenancy: PostgresConfiguration.Tenancy
        switch configuration.tenancy.strategy {
        case .shared: tenancy = .shared
        case .schema: tenancy = .schema(prefix: configuration.tenancy.schemaPrefix)
        case .database: tenancy = .database(prefix: configuration.tenancy.schemaPrefix)
        }
        return PostgresConfiguration(
            connectionString: url, poolSize: configuration.storage.pool, tenancy: tenancy,
            timeout: .seconds(configuration.storage.timeoutSeconds)
        )
    }
}

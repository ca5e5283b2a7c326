import Foundation
import Mink
@testable import MinkPostgres
import MinkServer
import Testing

/// PostgreSQL for the server tests: the cluster `scripts/with-postgres` started, with a schema,
/// prefix or database of its own per test so that tests run in parallel.
enum PostgresTestDatabase {
    /// `MINK_TEST_POSTGRES_URL`; without it the test fails (it never skips).
    static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["MINK_TEST_POSTGRES_URL"], !url.isEmpty else { throw PostgresMissing() }
        return url
    }

    /// A fresh lower-case identifier.
    static func freshName(_ prefix: String) -> String {
        prefix + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
    }

    /// Server storage with `.shared` tenancy on a fresh schema.
    static func storage(schema: String) async throws -> ServerStorage {
        let s = try await PostgresStorage(configuration: PostgresConfiguration(connectionString: try url(), poolSize: 3, schema: schema, connectTimeoutSeconds: 30, timeout: .seconds(30)))
        return ServerStorage(events: s, snapshots: s, readModels: s, kind: "postgres", close: { await s.shutdown() })
    }

    /// Creates an empty database and returns its URL (for minkd processes, which use the
    /// `public` schema of the database they are given).
    static func freshDatabase() async throws -> String {
        let base = try url()
        let name = freshName("db_")
        let admin = try await PostgresStorage(configuration: PostgresConfiguration(connectionString: base, poolSize: 1, migrateOnStart: false, connectTimeoutSeconds: 30, timeout: .seconds(30)))
        try await admin.core.main.pool.withConnection { conn in try conn.execute("CREATE DATABASE \(name)") }
        await admin.shutdown()
        guard let slash = base.lastIndex(of: "/") else { throw PostgresMissing() }
        return base[..<slash] + "/" + name
    }

    /// Runs SQL on the database of `url` (no migrations applied).
    static func execute(_ url: String, _ sql: String) async throws {
        let s = try await PostgresStorage(configuration: PostgresConfiguration(connectionString: url, poolSize: 1, migrateOnStart: false, connectTimeoutSeconds: 30, timeout: .seconds(30)))
        defer { Task { await s.shutdown() } }
        try await s.core.main.pool.withConnection { conn in try conn.execute(sql) }
    }

    /// The first column of the first row of a query on the database of `url`.
    static func value(_ url: String, _ sql: String) async throws -> String? {
        let s = try await PostgresStorage(configuration: PostgresConfiguration(connectionString: url, poolSize: 1, migrateOnStart: false, connectTimeoutSeconds: 30, timeout: .seconds(30)))
        defer { Task { await s.shutdown() } }
        return try await s.core.main.pool.withConnection { conn in
            let r = try conn.query(sql)
            return r.rowCount == 0 ? nil : r.string(0, 0)
        }
    }

    /// Whether a tenant's own schema or database exists.
    static func ownStorageExists(_ s: PostgresStorage, tenant: String) async throws -> Bool {
        let scope = s.core.scope(for: tenant)
        return try await s.core.main.pool.withConnection { conn in
            if let database = scope.database {
                return try conn.query("SELECT 1 FROM pg_database WHERE datname = $1", [.text(database)]).rowCount > 0
            }
            return try conn.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [.text(scope.sql.schema)]).rowCount > 0
        }
    }
}

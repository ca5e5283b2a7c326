import Foundation
import Mink
import MinkConfig
import MinkSQLite

extension ServerStorage {
    /// Opens the storage the configuration names.
    /// - Throws: a `ConfigError`-style message when the kind cannot be opened.
    public static func open(_ configuration: MinkdConfiguration) async throws -> ServerStorage {
        switch configuration.storage.kind {
        case .memory:
            return .memory()
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
            return ServerStorage(events: s, snapshots: s, readModels: s, kind: "sqlite", close: { await s.close() })
        default:
            throw MinkError(.adapterNotSupported, "storage \(configuration.storage.kind.rawValue) is not available in this build")
        }
    }
}

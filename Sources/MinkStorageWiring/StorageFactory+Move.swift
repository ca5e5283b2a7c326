import Foundation
import Logging
import Mink
import MinkConfig
import MinkSQLite
import MinkServer

extension ServerStorage {
    /// Opens the configured storage for `minkd export`: as ``open(_:logger:)`` does, except that a
    /// SQLite data directory is not locked — an export only reads, so it may run next to the
    /// minkd serving the directory (WAL readers never block its writer).
    /// - Throws: ``StorageOpenError``, or what ``open(_:logger:)`` throws.
    public static func openForReading(_ configuration: MinkdConfiguration, logger: Logger = Logger(label: "minkd")) async throws -> ServerStorage {
        // PostgreSQL: nothing created or migrated; a layout the database does not hold fails
        // (``NoMinkdData`` when it holds none at all).
        guard configuration.storage.kind == .sqlite else { return try await open(configuration, logger: logger, newLayout: .never) }
        let strategy: SQLiteStorage.TenancyStrategy
        switch configuration.tenancy.strategy {
        case .shared: strategy = .shared
        case .database: strategy = .database
        case .schema:
            throw MinkError(.adapterNotSupported, "config: tenancy.strategy: \"schema\" needs PostgreSQL (storage.kind: postgres)")
        }
        let directory = configuration.storage.dataDir
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw StorageOpenError(what: "the SQLite data directory \(directory)", cause: "it does not exist", fix: "give the data directory of the deployment (--data-dir)")
        }
        do {
            let s = try await SQLiteStorage.open(
                directory: directory, strategy: strategy,
                configuration: SQLiteConfiguration(timeout: .seconds(configuration.storage.timeoutSeconds))
            )
            return ServerStorage(events: s, snapshots: s, readModels: s, kind: "sqlite", close: { await s.close() })
        } catch {
            throw sqliteOpenError(error, directory: directory)
        }
    }

    /// `minkd backup`: copies every SQLite database of `directory` into `destination` with
    /// SQLite's online backup API; safe while a minkd serves the directory (it only reads, and
    /// takes no data-directory lock).
    public static func backupSQLite(directory: String, to destination: String) throws -> [SQLiteBackup.FileResult] {
        try SQLiteBackup.backup(directory: directory, to: destination)
    }
}

import Foundation
import Logging
import Mink
import MinkConfig
import MinkPostgres
import MinkSQLite
import MinkServer

/// Whether opening a PostgreSQL storage may create the configured tenancy layout (see
/// ``ServerStorage/open(_:logger:newLayout:)``).
public enum NewLayoutPolicy: Sendable, Equatable {
    /// Created when missing, whatever else the database holds (`minkd migrate`, tests).
    case create
    /// Created when missing; when the database holds minkd data laid out otherwise, a warning
    /// names where (`minkd serve`, `minkd import`). Not a refusal: one database may serve
    /// several deployments, and a setup that reuses one database for another strategy on purpose
    /// must still start.
    case warnBesideOthers
    /// Never created, nor migrated: a read-only open (`minkd export`). A missing layout fails
    /// when the database holds minkd data laid out otherwise (``StorageOpenError``), and throws
    /// ``NoMinkdData`` when it holds none at all.
    case never
}

/// The database holds no minkd data at all (`minkd export` of a never-used database: nothing to
/// export, and nothing created).
public struct NoMinkdData: Error, Sendable {}

/// Where the application wires the storage: the configuration's `storage.kind` becomes an
/// adapter here, so that `MinkServer` depends on the core's storage protocols alone and only
/// the executable (and tests) link libsqlite3 and libpq.
extension ServerStorage {
    /// Opens the storage the configuration names. A SQLite data directory is created `0700` if
    /// missing and locked for this process (``DataDirectoryLock``) until `close`.
    /// - Throws: ``StorageOpenError`` (the cause and a fix) when the storage cannot be opened:
    ///   the data directory in use by another process, not creatable or not writable, a SQLite
    ///   file that cannot be opened, a PostgreSQL server that cannot be reached.
    /// - Parameter newLayout: on PostgreSQL, what happens when the configured tenancy layout is
    ///   missing (``PostgresLayoutSurvey``): `serve` and `import` create it, with a warning when
    ///   the database holds minkd data laid out otherwise (the default); `export` never creates.
    public static func open(
        _ configuration: MinkdConfiguration, logger: Logger = Logger(label: "minkd"), newLayout: NewLayoutPolicy = .warnBesideOthers
    ) async throws -> ServerStorage {
        switch configuration.storage.kind {
        case .memory:
            return .memory()
        case .postgres:
            let s = try await openPostgres(configuration, logger: logger, newLayout: newLayout)
            // The root storage's pool serves every tenant but with database-per-tenant, whose
            // tenants have pools of their own (a task pinned to the root pool's connection would
            // gain nothing and wait behind that pool's work).
            var requestExecutor: (@Sendable () -> (any TaskExecutor)?)?
            if configuration.tenancy.strategy != .database { requestExecutor = { @Sendable in s.idleExecutor() } }
            return ServerStorage(
                events: s, snapshots: s, readModels: s, kind: "postgres", close: { await s.shutdown() },
                probeWrite: { try await s.probeWrite() }, requestExecutor: requestExecutor
            )
        case .sqlite:
            if configuration.tenancy.strategy == .schema {
                throw MinkError(
                    .adapterNotSupported,
                    "config: tenancy.strategy: \"schema\" needs PostgreSQL (storage.kind: postgres); SQLite supports shared and database"
                )
            }
            let directory = configuration.storage.dataDir
            try createDataDirectory(directory)
            let lock = try DataDirectoryLock(directory: directory)
            let s: SQLiteStorage
            do {
                s = try await SQLiteStorage.open(
                    directory: directory, config: Config(multiTenancy: configuration.tenancy),
                    configuration: SQLiteConfiguration(timeout: .seconds(configuration.storage.timeoutSeconds))
                )
            } catch {
                lock.release()
                throw sqliteOpenError(error, directory: directory)
            }
            // A database file the user cannot write (another owner, mode 0644) opens read-only
            // without an error, and a migrated one needs no write to open: minkd started, and
            // every write failed. One write probe at start refuses it, naming the fix; other
            // faults (a full disk) do not stop the start — /readyz reports them until they pass.
            do {
                try await s.probeWrite()
            } catch {
                let sqlite = (error as? MinkError)?.underlying as? SQLiteError ?? error as? SQLiteError
                if let sqlite, sqlite.isReadOnly || sqlite.code == SQLiteCode.perm || sqlite.code == SQLiteCode.cantOpen {
                    await s.close()
                    lock.release()
                    throw sqliteOpenError(sqlite, directory: directory)
                }
            }
            return ServerStorage(
                events: s, snapshots: s, readModels: s, kind: "sqlite",
                close: {
                    await s.close()
                    lock.release()
                },
                probeWrite: { try await s.probeWrite() }, requestExecutor: { @Sendable in s.idleExecutor() }
            )
        }
    }

    /// Creates the data directory (and missing parents) `0700`, and checks that this process
    /// can write there: the files SQLite creates in it hold every tenant's events.
    static func createDataDirectory(_ directory: String) throws {
        if let problem = notADirectory(directory) { throw problem }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            // A directory (`notADirectory` found none of the path a file).
        } else {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]
                )
            } catch {
                let code = posixCode(error) ?? EACCES
                throw StorageOpenError(
                    what: "the SQLite data directory \(directory)",
                    cause: "cannot create it: \(String(cString: strerror(code)))",
                    fix: StorageOpenError.permissionFix(directory, errno: code)
                )
            }
        }
        if access(directory, W_OK | X_OK) != 0 {
            let code = errno
            throw StorageOpenError(
                what: "the SQLite data directory \(directory)", cause: "it is not writable: \(String(cString: strerror(code)))",
                fix: StorageOpenError.permissionFix(directory, errno: code)
            )
        }
    }

    /// The data directory, or the nearest of its parents that exists, is a file: named, with
    /// the fix. (A parent that is a file made `mkdir` fail with `ENOTDIR`, reported as
    /// "Permission denied" with a fix that could not work, and `check-config` let it pass.)
    static func notADirectory(_ directory: String) -> StorageOpenError? {
        var path = URL(fileURLWithPath: directory).standardizedFileURL.path
        while true {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                if isDirectory.boolValue { return nil }
                let cause = path == URL(fileURLWithPath: directory).standardizedFileURL.path
                    ? "it is a file, not a directory" : "\(path) is a file, not a directory"
                return StorageOpenError(
                    what: "the SQLite data directory \(directory)", cause: cause, fix: StorageOpenError.permissionFix(directory, errno: ENOTDIR)
                )
            }
            let parent = (path as NSString).deletingLastPathComponent
            if parent == path || parent.isEmpty { return nil }
            path = parent
        }
    }

    private static func posixCode(_ error: any Error) -> Int32? {
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return Int32(ns.code) }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return Int32(underlying.code)
        }
        if ns.domain == NSCocoaErrorDomain {
            switch ns.code {
            case NSFileWriteNoPermissionError, NSFileReadNoPermissionError: return EACCES
            case NSFileWriteVolumeReadOnlyError: return EROFS
            case NSFileWriteOutOfSpaceError: return ENOSPC
            case NSFileWriteFileExistsError: return EEXIST
            default: return nil
            }
        }
        return nil
    }

    /// A SQLite open failure with its extended code and what to do about it.
    static func sqliteOpenError(_ error: any Error, directory: String) -> any Error {
        if error is StorageOpenError { return error }
        let what = "the SQLite data directory \(directory)"
        guard let sqlite = (error as? MinkError)?.underlying as? SQLiteError ?? error as? SQLiteError else {
            return StorageOpenError(what: what, cause: String(reflecting: error), fix: "check the data directory and its files")
        }
        let fix: String
        switch sqlite.code {
        case SQLiteCode.cantOpen, SQLiteCode.perm, SQLiteCode.auth:
            fix = "the files in \(directory) must be readable and writable by the user minkd runs as (uid \(getuid())): "
                + "`chown -R \(getuid()) \(directory) && chmod -R u+rwX,go-rwx \(directory)`"
        case SQLiteCode.readOnly:
            fix = "make \(directory) and its *.sqlite, -wal and -shm files writable by uid \(getuid()) (or mount the volume read-write)"
        case SQLiteCode.busy, SQLiteCode.locked:
            fix = "another program holds the database (a backup tool, the sqlite3 shell): stop it and start minkd again"
        case SQLiteCode.notADatabase, SQLiteCode.corrupt:
            fix = "the file is not a minkd SQLite database or is damaged: restore it from a backup (`minkd backup`) or choose another --data-dir"
        case SQLiteCode.full:
            fix = "free disk space on the volume of \(directory)"
        case SQLiteCode.ioError:
            fix = "the disk or file system reported an I/O error: check the volume (dmesg), then start again"
        default:
            fix = "see SQLite's result code \(sqlite.extendedCode) (https://sqlite.org/rescode.html)"
        }
        return StorageOpenError(what: what, cause: "\(sqlite.message) (SQLite extended code \(sqlite.extendedCode))", fix: fix)
    }

    /// A PostgreSQL open failure with libpq's message and what to do about it.
    static func postgresOpenError(_ error: any Error, url: String) -> any Error {
        if error is StorageOpenError { return error }
        // libpq's own messages may quote the URL or a token of it whole (a malformed one):
        // every password of the URL is scrubbed from whatever is shown.
        func scrub(_ text: String) -> String { MinkdConfiguration.scrub(text, passwordsOf: url) }
        let underlying = (error as? MinkError)?.underlying ?? error
        // A configuration problem the adapter found (a bad URL option, tenant) is not a
        // server to reach: it already names what is wrong.
        if var mink = error as? MinkError, mink.code != .unavailable, !(underlying is PostgresError) {
            mink.message = scrub(mink.message)
            return mink
        }
        let what = "PostgreSQL at \(redactedURL(url))"
        let cause: String
        var fix = "check that the server runs and accepts connections from here, and the URL (--database-url, MINKD_DATABASE_URL)"
        if let pg = underlying as? PostgresError {
            cause = pg.message.trimmingCharacters(in: .whitespacesAndNewlines) + (pg.sqlState.map { " (SQLSTATE \($0))" } ?? "")
            switch pg.sqlState ?? "" {
            case "28P01", "28000": fix = "check the user name and password in the database URL, and the server's pg_hba.conf"
            case "3D000": fix = "create the database (`createdb`), or correct its name in the database URL"
            case "42501": fix = "grant the database user the right to create tables and schemas (CREATE on the database), or run `minkd migrate` as an owner"
            default: break
            }
        } else if let mink = error as? MinkError {
            cause = String(reflecting: mink)
        } else {
            cause = String(reflecting: error)
        }
        return StorageOpenError(what: what, cause: scrub(cause), fix: fix)
    }

    /// The URL without its password, for messages and logs.
    static func redactedURL(_ url: String) -> String {
        MinkdConfiguration.redactPassword(in: url)
    }

    /// Applies pending PostgreSQL migrations to every existing tenant's schema (all of them in
    /// the shared schema with `shared` tenancy; each tenant's schema or database otherwise),
    /// for `minkd migrate`.
    /// - Returns: the tenants whose schema is now current.
    /// - Throws: `.validationFailed` without a URL, `.unavailable` when the server cannot be reached.
    /// Refuses a PostgreSQL URL that libpq cannot read (`config: storage.url: …`, its passwords
    /// scrubbed), without connecting: `check-config` and every command's start refuse it as
    /// `serve` would.
    public static func checkDatabaseURL(_ configuration: MinkdConfiguration) throws {
        if configuration.storage.kind == .sqlite {
            // What `serve` would refuse when it opens the directory, refused by `check-config` too.
            if let problem = notADirectory(configuration.storage.dataDir) {
                throw ConfigError(keyPath: "storage.dataDir", message: problem.description)
            }
        }
        guard configuration.storage.kind == .postgres, let url = configuration.storage.url, !url.isEmpty else { return }
        if let problem = PostgresConfiguration.connectionStringProblem(url) {
            // Named where it came from (the file's key, MINKD_DATABASE_URL or --database-url).
            throw ConfigError(
                keyPath: configuration.storage.urlSource ?? "storage.url",
                message: "libpq cannot read it: " + MinkdConfiguration.scrub(problem, passwordsOf: url))
        }
    }

    public static func migratePostgres(_ configuration: MinkdConfiguration, logger: Logger = Logger(label: "minkd")) async throws -> [String] {
        let s = try await openPostgres(configuration, logger: logger)
        do {
            let tenants = try await s.migrateAllTenants()
            await s.shutdown()
            return tenants
        } catch {
            await s.shutdown()
            throw error
        }
    }

    /// Opens the PostgreSQL storage the configuration names; a failure names its cause and a fix.
    static func openPostgres(
        _ configuration: MinkdConfiguration, logger: Logger, newLayout: NewLayoutPolicy = .create
    ) async throws -> PostgresStorage {
        var postgres = try postgresConfiguration(configuration)
        if newLayout == .create {
            do {
                return try await PostgresStorage(configuration: postgres, logger: logger)
            } catch {
                throw postgresOpenError(error, url: configuration.storage.url ?? "")
            }
        }
        // Connect without migrating, look at what the database holds, then migrate (or not).
        postgres.migrateOnStart = false
        let s: PostgresStorage
        let survey: PostgresLayoutSurvey
        do {
            s = try await PostgresStorage(configuration: postgres, logger: logger)
            do {
                survey = try await s.surveyLayout()
            } catch {
                await s.shutdown()
                throw error
            }
        } catch {
            throw postgresOpenError(error, url: configuration.storage.url ?? "")
        }
        let layout = layoutDescription(postgres)
        let elsewhere = survey.otherSchemas.prefix(5).joined(separator: ", ") + (survey.otherSchemas.count > 5 ? ", …" : "")
        let beside = "the database holds minkd data in schema(s) \(elsewhere), but none laid out as configured (\(layout))"
        if !survey.configuredExists, newLayout == .never {
            await s.shutdown()
            if survey.otherSchemas.isEmpty { throw NoMinkdData() }
            throw StorageOpenError(
                what: "PostgreSQL at \(redactedURL(configuration.storage.url ?? ""))",
                cause: beside + ": a different tenancy.strategy or tenancy.schemaPrefix than when the data was written?",
                fix: "set the tenancy settings the data was written with"
            )
        }
        if !survey.configuredExists, !survey.otherSchemas.isEmpty {
            // Said loudly: a wrong tenancy.strategy or schemaPrefix starts over an empty store
            // beside the data, and the writes that follow go there.
            logger.warning(
                "\(beside); creating it now. If the data was written with other tenancy settings (tenancy.strategy, tenancy.schemaPrefix), stop and set them: this deployment starts empty beside that data",
                metadata: ["schemas": "\(elsewhere)"]
            )
        }
        if newLayout == .never { return s }
        do {
            try await s.migrate()
            return s
        } catch {
            await s.shutdown()
            throw postgresOpenError(error, url: configuration.storage.url ?? "")
        }
    }

    /// The configured PostgreSQL layout in words, for messages.
    static func layoutDescription(_ postgres: PostgresConfiguration) -> String {
        switch postgres.tenancy {
        case .shared: "tenancy.strategy shared, tables in schema \"\(postgres.schema)\""
        case .schema(let prefix): "tenancy.strategy schema, schemas \"\(prefix)…\""
        case .database(let prefix): "tenancy.strategy database, databases \"\(prefix)…\""
        }
    }

    /// The PostgreSQL adapter's configuration for minkd's.
    static func postgresConfiguration(_ configuration: MinkdConfiguration) throws -> PostgresConfiguration {
        guard configuration.storage.kind == .postgres else {
            throw MinkError(
                .validationFailed,
                "minkd migrate applies the PostgreSQL schema, but the storage is \(configuration.storage.kind.rawValue): "
                    + "give the database URL (--database-url, MINKD_DATABASE_URL or storage.url) and no other storage kind"
            )
        }
        guard let url = configuration.storage.url, !url.isEmpty else {
            throw MinkError(.validationFailed, "config: storage.url: a PostgreSQL URL is needed (--database-url or MINKD_DATABASE_URL)")
        }
        // The seed's store-wide settings (`Config`) lay the tables out; minkd adds its own limits.
        var postgres = PostgresConfiguration(connectionString: url, config: Config(multiTenancy: configuration.tenancy))
        // CONFIG.md: `pool` is the connections per tenant database — the configured database's
        // pool (shared by every tenant with `shared` and `schema`) and, with `database`, each
        // tenant database's own pool (connections open on demand and close after 60 s idle).
        postgres.poolSize = configuration.storage.pool
        postgres.tenantPoolSize = configuration.storage.pool
        postgres.timeout = .seconds(configuration.storage.timeoutSeconds)
        return postgres
    }
}

/// SQLite's primary result codes (sqlite3.h), for the fixes above; this target does not import
/// the C module.
private enum SQLiteCode {
    static let perm: Int32 = 3
    static let busy: Int32 = 5
    static let locked: Int32 = 6
    static let readOnly: Int32 = 8
    static let ioError: Int32 = 10
    static let corrupt: Int32 = 11
    static let full: Int32 = 13
    static let cantOpen: Int32 = 14
    static let auth: Int32 = 23
    static let notADatabase: Int32 = 26
}

import CSQLite
import Foundation
import Mink

/// Copies SQLite database files with SQLite's online backup API (`sqlite3_backup_init`,
/// `_step`, `_finish`), safe while a minkd serves writes on them.
///
/// Why it is consistent and does not stop the writer: the source connection opens a read
/// transaction first and keeps it for the whole copy. In WAL mode a reader holds a snapshot and
/// never blocks the writer, and the backup's steps all read that one snapshot, so the copy is the
/// database as of one commit (a backup that read between commits would have to restart after
/// every write of another connection, for ever under steady load). The steps are small
/// (``pagesPerStep``) with a pause between them, so the copy never holds the disk for long.
/// The WAL cannot be checkpointed past the snapshot meanwhile; it shrinks again afterwards.
public enum SQLiteBackup {
    /// Pages copied per `sqlite3_backup_step`.
    public static let pagesPerStep: Int32 = 256

    /// What one backed-up file held.
    public struct FileResult: Sendable, Hashable {
        /// The file name (in both directories).
        public var name: String
        /// Its size in pages.
        public var pages: Int32
    }

    /// Backs up every database file (`*.sqlite`) of `directory` into `destination`, which is
    /// created `0700` and must not hold any of these files yet; the copies are `0600`.
    /// - Throws: `.validationFailed` for a missing source or an existing copy; `.unavailable`
    ///   (with SQLite's error) when a copy fails — the partial copy is then removed.
    public static func backup(directory: String, to destination: String, pause: Duration = .milliseconds(1)) throws -> [FileResult] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sqlite") }.sorted()
        if names.isEmpty {
            throw MinkError(.validationFailed, "no SQLite database (*.sqlite) in \(directory)")
        }
        let previous = umask(0o077)
        defer { umask(previous) }
        try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(destination, 0o700)
        var results: [FileResult] = []
        for name in names {
            let target = (destination as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: target) {
                throw MinkError(.validationFailed, "\(target) exists already: back up into a new or empty directory")
            }
            do {
                let pages = try copy((directory as NSString).appendingPathComponent(name), to: target, pause: pause)
                chmod(target, 0o600)
                results.append(FileResult(name: name, pages: pages))
            } catch {
                unlink(target)
                throw error
            }
        }
        return results
    }

    /// Copies one database file; returns its page count.
    static func copy(_ sourcePath: String, to targetPath: String, pause: Duration) throws -> Int32 {
        var source: OpaquePointer?
        var target: OpaquePointer?
        defer {
            sqlite3_close_v2(source)
            sqlite3_close_v2(target)
        }
        func failure(_ db: OpaquePointer?, _ what: String) -> MinkError {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            return MinkError(.unavailable, "backup of \(sourcePath): \(what): \(message)")
        }
        guard sqlite3_open_v2(sourcePath, &source, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else { throw failure(source, "cannot open") }
        sqlite3_busy_timeout(source, 5000)
        guard sqlite3_open_v2(targetPath, &target, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK else {
            throw failure(target, "cannot create the copy")
        }
        // The snapshot every step reads (see the type's comment).
        guard sqlite3_exec(source, "BEGIN; SELECT count(*) FROM sqlite_master;", nil, nil, nil) == SQLITE_OK else {
            throw failure(source, "cannot start reading")
        }
        defer { sqlite3_exec(source, "COMMIT", nil, nil, nil) }
        guard let backup = sqlite3_backup_init(target, "main", source, "main") else { throw failure(target, "cannot start the backup") }
        var rc: Int32
        repeat {
            rc = sqlite3_backup_step(backup, pagesPerStep)
            if rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED {
                Thread.sleep(forTimeInterval: Double(pause.components.attoseconds) / 1e18 + Double(pause.components.seconds))
            }
        } while rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED
        let pages = sqlite3_backup_pagecount(backup)
        let finish = sqlite3_backup_finish(backup)
        guard rc == SQLITE_DONE, finish == SQLITE_OK else { throw failure(target, "copy failed (\(rc))") }
        // The copy is a plain database file: WAL mode is a property minkd sets when it opens it.
        return pages
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The lock that makes one process the owner of a SQLite data directory: an exclusive
/// `flock` on `<dir>/minkd.lock`, which also holds the owner's PID for the message a second
/// process prints.
///
/// Why: SQLite's own locking keeps two processes from corrupting a file, but the commit
/// notifications that wake subscribers and projections live in one process's memory; a second
/// minkd on the same directory would serve stale event streams (its subscribers never see the
/// first one's commits). `flock` is released by the kernel when the process dies, even by
/// `kill -9`, so a crash never leaves a stale lock behind (the PID in the file is only a hint).
public final class DataDirectoryLock: Sendable {
    /// The lock file's name inside the data directory.
    public static let fileName = "minkd.lock"

    /// The locked directory.
    public let directory: String
    private let fd: Int32

    /// Takes the lock, or throws at once if another process (or another open storage in this
    /// process) holds it. The file is created `0600`.
    /// - Throws: ``StorageOpenError`` naming the directory and, when known, the owner's PID.
    public init(directory: String) throws {
        self.directory = directory
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            throw StorageOpenError(
                what: "the SQLite data directory \(directory)",
                cause: "cannot open the lock file \(path): \(String(cString: strerror(code)))",
                fix: StorageOpenError.permissionFix(directory, errno: code)
            )
        }
        var result: Int32
        repeat { result = flock(fd, LOCK_EX | LOCK_NB) } while result != 0 && errno == EINTR
        if result != 0 {
            let code = errno
            let owner = Self.readPID(fd)
            close(fd)
            if code == EWOULDBLOCK {
                throw StorageOpenError(
                    what: "the SQLite data directory \(directory)",
                    cause: "it is in use by another minkd process" + (owner.map { " (pid \($0))" } ?? "") + " holding \(path)",
                    fix: "stop that process, or give this one another --data-dir (one process owns a SQLite data directory; "
                        + "run several minkd processes on PostgreSQL)"
                )
            }
            throw StorageOpenError(
                what: "the SQLite data directory \(directory)", cause: "cannot lock \(path): \(String(cString: strerror(code)))",
                fix: "use a local file system that supports flock for the data directory"
            )
        }
        // Ours now: record our PID for the next process's message.
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        self.fd = fd
    }

    /// Releases the lock (the file stays; its content is only a hint).
    ///
    /// Unlocked explicitly before the close: a child process this process is starting (another
    /// thread's `posix_spawn`) holds a copy of the descriptor until its `exec` closes it, and the
    /// lock belongs to the open file, not to one descriptor — a close alone left the directory
    /// locked for that moment (a test reopening the directory at once failed on a loaded machine).
    public func release() {
        _ = flock(fd, LOCK_UN)
        close(fd)
    }

    private static func readPID(_ fd: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Int(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Why a storage could not be opened, and what the operator can do about it, on one line:
/// `cannot open <what>: <cause>; fix: <fix>`.
public struct StorageOpenError: Error, Sendable, CustomStringConvertible {
    /// The storage concerned (a directory, a database URL without its password).
    public var what: String
    /// The underlying cause (the system's, SQLite's or libpq's message).
    public var cause: String
    /// What to do.
    public var fix: String

    /// Creates an error.
    public init(what: String, cause: String, fix: String) {
        self.what = what
        self.cause = cause
        self.fix = fix
    }

    public var description: String { "cannot open \(what): \(cause); fix: \(fix)" }

    /// The fix for a file-system error on `directory`.
    static func permissionFix(_ directory: String, errno code: Int32) -> String {
        switch code {
        case EACCES, EPERM:
            return "give the directory to the user minkd runs as (uid \(getuid())), e.g. `install -d -m 0700 -o \(getuid()) \(directory)`, "
                + "or choose another --data-dir"
        case EROFS: return "the file system is read-only: mount a writable volume at \(directory) or choose another --data-dir"
        case ENOTDIR, EEXIST: return "a path component of \(directory) is a file, not a directory: choose another --data-dir"
        case ENOSPC: return "free disk space on the volume of \(directory)"
        default: return "check that \(directory) is a writable directory, or choose another --data-dir"
        }
    }
}

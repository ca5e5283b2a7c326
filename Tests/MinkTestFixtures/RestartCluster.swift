import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The second PostgreSQL cluster of `scripts/with-postgres` (`MINK_TEST_POSTGRES_RESTART_URL`),
/// which tests stop, start, freeze and thaw. Tests of several targets use it, and test targets
/// run in one process with suites in parallel, so each such test holds ``lock()`` throughout.
public enum RestartCluster {
    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    /// An exclusive lock on the cluster (an `flock` on a file beside its data directory: every
    /// open of it is a lock of its own, so two tests of one process exclude each other too).
    public final class Lock: Sendable {
        private let fd: Int32
        fileprivate init(fd: Int32) { self.fd = fd }
        /// Releases the lock.
        public func release() {
            flock(fd, LOCK_UN)
            close(fd)
        }
    }

    /// Waits (on a thread of its own, never on Swift's cooperative pool) for the cluster's lock.
    public static func lock() async throws -> Lock {
        let path = try dataDirectory() + ".tests.lock"
        let fd = open(path, O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { throw Missing(description: "cannot open \(path): errno \(errno)") }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                while flock(fd, LOCK_EX) != 0, errno == EINTR {}
                c.resume()
            }
        }
        return Lock(fd: fd)
    }

    /// `MINK_TEST_PG_RESTART_DATA`.
    public static func dataDirectory() throws -> String {
        guard let d = ProcessInfo.processInfo.environment["MINK_TEST_PG_RESTART_DATA"], !d.isEmpty else {
            throw Missing(description: "MINK_TEST_PG_RESTART_DATA is not set: run the tests with scripts/with-postgres")
        }
        return d
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the whole cluster: the postmaster first when
    /// freezing (so that it starts no new backend), then every backend; the reverse to thaw.
    /// The PIDs come from the data directory's `postmaster.pid` and `/proc`.
    public static func signal(_ signal: Int32) throws {
        let text = try String(contentsOfFile: try dataDirectory() + "/postmaster.pid", encoding: .utf8)
        guard let postmaster = Int32(text.split(separator: "\n").first.map(String.init) ?? "") else {
            throw Missing(description: "no postmaster PID in postmaster.pid")
        }
        var children: [Int32] = []
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // After the command name: state, ppid, ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, Int32(fields[1]) == postmaster { children.append(pid) }
        }
        if signal == SIGSTOP {
            guard kill(postmaster, SIGSTOP) == 0 else { throw Missing(description: "kill(\(postmaster)) failed: errno \(errno)") }
            for c in children { _ = kill(c, SIGSTOP) }
        } else {
            for c in children { _ = kill(c, signal) }
            guard kill(postmaster, signal) == 0 else { throw Missing(description: "kill(\(postmaster)) failed: errno \(errno)") }
        }
    }
}

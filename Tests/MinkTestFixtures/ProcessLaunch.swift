import Foundation
import Glibc
import Synchronization

/// Starts child processes one at a time across the whole test process.
///
/// Why: every test target runs in one process, in parallel, and Foundation's `Process.run()`
/// was seen to crash (a bad pointer in a `memcpy` inside `run()`) while other tests launched
/// processes at the same time. Launches are rare and quick; serialising them costs nothing.
public enum ProcessLaunch {
    private static let lock = Mutex<Void>(())

    /// Runs `process` (`Process.run()`) while no other test launches one.
    public static func run(_ process: Process) throws {
        try lock.withLock { _ in try process.run() }
    }

    /// How a child process ended.
    public struct Exit: Sendable, Equatable {
        /// `.exit` or `.uncaughtSignal`.
        public var reason: Process.TerminationReason
        /// The exit code, or the signal's number.
        public var status: Int32

        /// Creates an outcome.
        public init(reason: Process.TerminationReason, status: Int32) {
            self.reason = reason
            self.status = status
        }
    }

    /// Waits up to `timeout` for `process` to end, without blocking a thread.
    ///
    /// Foundation was once seen to miss a child's exit (a `<defunct>` child, `isRunning` true
    /// for ever, `waitUntilExit()` blocking the test run): besides `isRunning`, the child is
    /// looked at with `waitid(…, WNOWAIT)`, which reports an exit without reaping it, so
    /// Foundation can still reap it as usual.
    /// - Returns: how it ended, or nil if it still runs at the deadline.
    public static func exit(of process: Process, timeout: Duration = .seconds(10)) async -> Exit? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if !process.isRunning { return Exit(reason: process.terminationReason, status: process.terminationStatus) }
            var info = siginfo_t()
            if waitid(P_PID, id_t(process.processIdentifier), &info, WEXITED | WNOHANG | WNOWAIT) == 0,
               info._sifields._sigchld.si_pid == process.processIdentifier {
                let status = info._sifields._sigchld.si_status
                return Exit(reason: info.si_code == CLD_EXITED ? .exit : .uncaughtSignal, status: status)
            }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

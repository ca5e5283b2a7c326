import Foundation
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
}

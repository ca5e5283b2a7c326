import Synchronization

/// Lets a store's writes through unless an inline projection of the store is being rebuilt:
/// then new writes wait, and the rebuild starts once the writes already under way have ended.
///
/// Why: an inline projection runs inside every write's transaction, and its rebuild replays the
/// log. A write committed while the replay runs would be applied by both — its hook and the
/// replay reading it. Writes are therefore held for the replay's duration (in this process: other
/// processes writing the same tenant must be stopped, or the projection registered as a read
/// model, whose rebuild fills a copy and needs no pause). A rebuild reads through the store's
/// middleware: a middleware that writes through the same store while a rebuild runs would wait
/// for it for ever.
///
/// The cost for a write when no rebuild runs: two atomic additions and a load; a write that
/// finds a rebuild running waits without polling until the rebuild ends (or its task is
/// cancelled: it then fails with `.cancelled`, having written nothing).
final class InlineRebuildGate: Sendable {
    /// Writes under way (entered and not left).
    private let active = Atomic<Int>(0)
    /// 1 while a rebuild holds the gate closed.
    private let closers = Atomic<Int>(0)
    /// Writes waiting for the gate to open, by ticket, resumed when it does (a rebuild may take
    /// minutes: no polling by every waiting write) or when their task is cancelled.
    private let waiters = Mutex<(next: UInt64, waiting: [UInt64: CheckedContinuation<Void, Never>])>((0, [:]))

    /// Writes waiting for the gate to open now (tests).
    var waitingCount: Int { waiters.withLock { $0.waiting.count } }

    /// Runs `body` as a write: waits while a rebuild holds the gate.
    /// - Throws: `.cancelled` when the task is cancelled while it waits (nothing was written), or
    ///   what `body` threw.
    func pass<T>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T) async throws -> T {
        while true {
            active.add(1, ordering: .sequentiallyConsistent)
            if closers.load(ordering: .sequentiallyConsistent) == 0 { break }
            active.subtract(1, ordering: .sequentiallyConsistent)
            // A rebuild runs: wait until it opens the gate (checked again under the waiters' lock,
            // which the opening takes after clearing `closers`: no wake-up is lost), or until the
            // task is cancelled.
            let ticket = waiters.withLock { w in
                w.next += 1
                return w.next
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let waits = waiters.withLock { w -> Bool in
                        guard closers.load(ordering: .sequentiallyConsistent) > 0, !Task.isCancelled else { return false }
                        w.waiting[ticket] = c
                        return true
                    }
                    if !waits { c.resume() }
                }
            } onCancel: {
                waiters.withLock { $0.waiting.removeValue(forKey: ticket) }?.resume()
            }
            if Task.isCancelled { throw MinkError(.cancelled, "cancelled while waiting for a projection's rebuild to end") }
        }
        defer { active.subtract(1, ordering: .sequentiallyConsistent) }
        return try await body()
    }

    /// Runs `body` with the gate closed: new writes wait, and `body` starts once the writes
    /// under way have ended. One at a time: a second rebuild waits for the first (two replays
    /// into one model, the second dropping it midway through the first, counted events twice).
    func closed<T>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T) async throws -> T {
        while !closers.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent).exchanged {
            try await Task.sleep(for: .milliseconds(5))
        }
        defer {
            closers.store(0, ordering: .sequentiallyConsistent)
            for w in waiters.withLock({ w in defer { w.waiting = [:] }; return w.waiting.values }) { w.resume() }
        }
        while active.load(ordering: .sequentiallyConsistent) > 0 {
            try await Task.sleep(for: .milliseconds(1))
        }
        return try await body()
    }
}

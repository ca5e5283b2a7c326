import Dispatch
import Synchronization

/// The callers' side of a storage's deadline (`storage.timeoutSeconds`): each operation's caller
/// is answered at the latest ``timeout`` after the operation reached the storage — queued behind
/// other work, waiting for a lock, or under way — with a transient `.unavailable`.
///
/// Why on the callers' side: a storage's own bounds start later than the request's clock (a
/// SQLite write queued behind a stuck group commit, a PostgreSQL append queued behind a batch
/// that is itself timing out) or not at all (a disk that stops answering). An operation whose
/// caller was answered while it was still queued never runs; one already under way may still
/// take effect (see ``DeadlinePolicy``).
///
/// One timer for all operations: they are kept in arrival order, which is deadline order when
/// every deadline is `timeout` after arrival, and the timer is armed for the earliest one. The
/// list is trimmed of answered operations as new ones arrive, so it stays about as long as what
/// is in flight.
public final class OperationDeadlines: Sendable {
    private struct State {
        var entries: [any ExpiringOperation] = []
        /// Entries before this index are answered and only wait to be dropped.
        var head = 0
        var armedAt: ContinuousClock.Instant?
        /// The generation of the armed timer: an older timer that fires finds a newer one armed
        /// and does nothing.
        var generation: UInt64 = 0
    }

    /// How long an operation may take, waiting included.
    public let timeout: Duration
    private let messages: DeadlineMessages
    private let state = Mutex(State())

    /// - Parameters:
    ///   - timeout: how long an operation may take, from its arrival.
    ///   - storage: how messages name the storage (`"SQLite"`, `"PostgreSQL"`).
    public init(timeout: Duration, storage: String) {
        self.timeout = timeout
        messages = DeadlineMessages(storage: storage, seconds: Self.seconds(timeout))
    }

    /// The answer for an operation that reaches the storage now: `continuation` is resumed once,
    /// by the operation's outcome or, at `deadline` (default: ``timeout`` from now), with
    /// `.unavailable` as `policy` allows. (An unchecked continuation: the answer resumes it
    /// exactly once by construction, and a checked one costs an allocation per operation.)
    public func answer<T: Sendable>(
        _ continuation: UnsafeContinuation<T, any Error>, policy: DeadlinePolicy = .always,
        deadline: ContinuousClock.Instant? = nil
    ) -> DeadlineAnswer<T> {
        let answer = DeadlineAnswer(continuation, deadline: deadline ?? .now + timeout, policy: policy, messages: messages)
        track(answer)
        return answer
    }

    /// Operations kept (tests).
    var trackedCount: Int { state.withLock { $0.entries.count - $0.head } }

    private func track(_ entry: any ExpiringOperation) {
        let arm: (ContinuousClock.Instant, UInt64)? = state.withLock { s in
            // Under load the oldest operations are answered first: dropping them here keeps the
            // list as long as what is in flight.
            while s.head < s.entries.count, s.entries[s.head].isAnswered { s.head += 1 }
            if s.head == s.entries.count {
                s.entries.removeAll(keepingCapacity: true)
                s.head = 0
            } else if s.head > 64, s.head * 2 > s.entries.count {
                s.entries.removeFirst(s.head)
                s.head = 0
            }
            s.entries.append(entry)
            if let at = s.armedAt, at <= entry.deadline { return nil }
            s.armedAt = entry.deadline
            s.generation &+= 1
            return (entry.deadline, s.generation)
        }
        if let arm { schedule(at: arm.0, generation: arm.1) }
    }

    private static let timerQueue = DispatchQueue(label: "mink.storage-deadlines")

    private func schedule(at deadline: ContinuousClock.Instant, generation: UInt64) {
        // At least 1 ms: a timer that fired a little early (Dispatch and the continuous clock
        // differ slightly) comes back soon instead of spinning.
        let wait = max(ContinuousClock.now.duration(to: deadline), .milliseconds(1))
        let (seconds, attoseconds) = wait.components
        let nanos = Int(clamping: seconds) &* 1_000_000_000 &+ Int(attoseconds / 1_000_000_000)
        // A queue of its own, not `DispatchQueue.global()`: a private serial queue gets a thread
        // even when every worker of the global pool is blocked (in storage calls, say), which is
        // exactly when a deadline must still fire.
        Self.timerQueue.asyncAfter(deadline: .now() + .nanoseconds(nanos)) { [weak self] in
            self?.fire(generation)
        }
    }

    private func fire(_ generation: UInt64) {
        let now = ContinuousClock.now
        let (expired, next): ([any ExpiringOperation], (ContinuousClock.Instant, UInt64)?) = state.withLock { s in
            guard s.generation == generation else { return ([], nil) }
            var expired: [any ExpiringOperation] = []
            var kept: [any ExpiringOperation] = []
            var earliest: ContinuousClock.Instant?
            for e in s.entries[s.head...] where !e.isAnswered {
                if e.deadline <= now {
                    expired.append(e)
                } else {
                    kept.append(e)
                    earliest = min(earliest ?? e.deadline, e.deadline)
                }
            }
            s.entries = kept
            s.head = 0
            s.armedAt = earliest
            guard let earliest else { return (expired, nil) }
            s.generation &+= 1
            return (expired, (earliest, s.generation))
        }
        if let next { schedule(at: next.0, generation: next.1) }
        for e in expired { e.expire() }
    }

    /// `2`, `1.5`, `0.25`: seconds as a message writes them.
    static func seconds(_ d: Duration) -> String {
        let (s, atto) = d.components
        if atto == 0 { return "\(s)" }
        let value = Double(s) + Double(atto) / 1e18
        var text = String(value)
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }
}

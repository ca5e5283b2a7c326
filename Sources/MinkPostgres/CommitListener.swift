import Foundation
import Synchronization

/// Receives `NOTIFY <channel>, '<scope key>'` from other processes on a dedicated connection and
/// wakes the matching `externalCommits()` streams.
///
/// The connection lives on the listener's own thread (started on first subscription, ended by
/// ``shutdown()``); ``ListenerStateMachine`` decides when to reconnect and when to wake everybody
/// after a gap. Notifications sent by this storage's own pool (same backend PIDs) are ignored:
/// those commits already woke this process.
///
/// Presence: while listening, the connection holds a shared session advisory lock
/// (``presenceKey``) and looks every ``PresenceTiming/interval`` whether another listener on the database
/// holds it too. When none does, this process's append batches need not `NOTIFY`
/// (``othersMayListen(at:)``; nobody else would be woken, and this process's own notifications are
/// dropped by its listener anyway). A listener that (re)connects may have been missed by a writer
/// that looked before it took the lock: it wakes every subscriber once, after the writers' answers
/// have gone stale (``PresenceTiming/freshness`` and two looks later); a batch that decided before
/// and commits after that wake-up sends its `NOTIFY` afterwards (``AppendBatcher``). See
/// docs/storage-postgres.md, *LISTEN/NOTIFY*.
final class CommitListener: Sendable {
    /// The shared advisory lock every listener holds: `pg_advisory_lock_shared(int4, int4)`, whose
    /// two-key form (`objsubid` 2 in `pg_locks`) no `int8` key of minkd's other locks can match.
    static let presenceKey: (Int32, Int32) = (1_835_626_091, 1)  // "mink", 1
    /// How often a listener looks for other listeners, and how long a look's answer may be used
    /// by writers (older, or none — not listening, the connection lost — means "notify"). Every
    /// process must use the same values: a listener's wake-ups after it joined cover the other
    /// processes' answers by its own figures.
    struct PresenceTiming: Sendable {
        var interval: Duration = .milliseconds(250)
        var freshness: Duration = .seconds(1)
        /// How long after a writer last asked looks go on.
        var idleAfter: Duration = .seconds(10)
    }

    /// What the last look for other listeners found.
    private struct Presence {
        var othersListening = true
        var checkedAt: ContinuousClock.Instant?
        var timing = PresenceTiming()
        /// When a writer last asked (looks stop ``PresenceTiming/idleAfter`` later).
        var wantedAt: ContinuousClock.Instant?
    }
    /// What a subscriber listens for.
    private enum Subscriber {
        /// Payloads equal to `key` (coalesced wake-ups), and every reconnect (``subscribe(key:)``).
        case key(String, AsyncStream<Void>.Continuation)
        /// Payloads that start with `prefix`, handed on less the prefix (``subscribe(prefix:)``).
        case prefix(String, AsyncStream<String>.Continuation)

        /// Delivers a notification's payload (`nil`: a reconnect, when one may have been missed).
        func deliver(_ payload: String?) {
            switch self {
            case .key(let key, let c): if payload == nil || payload == key { c.yield() }
            case .prefix(let prefix, let c): if let payload, payload.hasPrefix(prefix) { c.yield(String(payload.dropFirst(prefix.count))) }
            }
        }

        func finish() {
            switch self {
            case .key(_, let c): c.finish()
            case .prefix(_, let c): c.finish()
            }
        }
    }

    private struct Shared {
        var subscribers: [UInt64: Subscriber] = [:]
        var nextID: UInt64 = 0
        var started = false
        var finished: [CheckedContinuation<Void, Never>] = []
        var done = false
        /// Since when no stream is left (``closesWhenIdle``).
        var idleSince: ContinuousClock.Instant?
    }

    private let parameters: [(String, String)]
    private let timeout: Duration
    private let channel: String
    private let ownPIDs: BackendPIDs
    private let shared = Mutex(Shared())
    private let presence = Mutex(Presence())
    private let stopping = Atomic<Bool>(false)
    /// Whether the thread ends, and its connection closes, once no stream is left for
    /// ``idleGrace`` (a tenant database's listener); the next subscriber starts it again.
    private let closesWhenIdle: Bool
    /// How long a listener that closes when idle waits with no stream left before it closes (a
    /// hub giving its streams back and another asking at once keeps the connection).
    static let idleGrace: Duration = .seconds(1)
    /// Times the thread ended for want of streams (tests).
    let idleCloses = Atomic<Int>(0)
    /// How many times a LISTEN connection was established (tests watch reconnects with it).
    let connections = Atomic<Int>(0)
    /// Wake-ups of every subscriber made because a writer may have skipped its `NOTIFY` before it
    /// saw this listener (tests).
    let presenceWakeUps = Atomic<Int>(0)
    /// Looks for other listeners made (tests).
    let looks = Atomic<Int>(0)

    /// Whether a commit at `now` must `NOTIFY`: another listener on the database was seen by the
    /// last look, or that look is not fresh (this listener is not running, lost its connection,
    /// or its thread is late).
    func othersMayListen(at now: ContinuousClock.Instant = .now) -> Bool {
        presence.withLock { p in
            // Looks are made only for a database this process writes to (a process with many
            // tenant databases does not query `pg_locks` for the idle ones).
            p.wantedAt = now
            guard let at = p.checkedAt, now - at < p.timing.freshness else { return true }
            return p.othersListening
        }
    }

    /// Replaces the presence timing (tests, before the listener starts).
    func setPresenceTiming(_ timing: PresenceTiming) { presence.withLock { $0.timing = timing } }

    init(
        parameters: [(String, String)], timeout: Duration = .seconds(10), channel: String, ownPIDs: BackendPIDs, closesWhenIdle: Bool = false
    ) {
        self.closesWhenIdle = closesWhenIdle
        self.timeout = timeout
        self.parameters = parameters + [("keepalives_idle", "30"), ("keepalives_interval", "10"), ("keepalives_count", "3")]
        self.channel = channel
        self.ownPIDs = ownPIDs
    }

    /// A stream that yields when another process commits to the scope `key` (coalesced: at most
    /// one pending element).
    func subscribe(key: String) -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let id = register(.key(key, continuation))
        continuation.onTermination = { [weak self] _ in self?.unregister(id) }
        return stream
    }

    /// A stream of the payloads, less `prefix`, of other processes' notifications that start
    /// with `prefix` (every one, in order). Unlike ``subscribe(key:)`` it is not woken after a
    /// reconnect: it carries facts (a tenant was deleted), and a reconnect is not one.
    func subscribe(prefix: String) -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(10_000))
        let id = register(.prefix(prefix, continuation))
        continuation.onTermination = { [weak self] _ in self?.unregister(id) }
        return stream
    }

    /// Adds a subscriber (finished at once after ``shutdown()``); starts the listener thread on
    /// the first one.
    private func register(_ subscriber: Subscriber) -> UInt64 {
        let (id, start) = shared.withLock { s -> (UInt64, Bool) in
            s.nextID += 1
            s.subscribers[s.nextID] = subscriber
            s.idleSince = nil
            let start = !s.started && !s.done
            s.started = true
            return (s.nextID, start)
        }
        if stopping.load(ordering: .relaxed) { subscriber.finish() }
        if start { startThread() }
        return id
    }

    private func unregister(_ id: UInt64) {
        shared.withLock { s in
            s.subscribers.removeValue(forKey: id)
            if s.subscribers.isEmpty { s.idleSince = .now }
        }
    }

    /// On the listener's thread: whether to end it now for want of streams. Decided under the
    /// lock that ``register(_:)`` and ``shutdown()`` take, so a subscriber arriving after this
    /// starts a thread of its own, and a shutdown after it does not wait for this one.
    private func endsForIdleness() -> Bool {
        guard closesWhenIdle else { return false }
        return shared.withLock { s in
            guard !stopping.load(ordering: .relaxed), s.subscribers.isEmpty, let since = s.idleSince,
                ContinuousClock.now - since >= Self.idleGrace
            else { return false }
            s.started = false
            return true
        }
    }

    private func startThread() {
        let thread = Thread { [self] in self.run() }
        thread.name = "mink-postgres-listen"
        thread.start()
    }

    /// Stops the thread, closes the connection and finishes every stream.
    func shutdown() async {
        let wait = shared.withLock { s -> Bool in
            // Under the lock, so that the thread's ``endsForIdleness()`` sees it or is seen.
            stopping.store(true, ordering: .relaxed)
            if !s.started { s.done = true }
            return s.started && !s.done
        }
        if wait {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = shared.withLock { s -> Bool in
                    if s.done { return true }
                    s.finished.append(c)
                    return false
                }
                if resumeNow { c.resume() }
            }
        }
        let subscribers = shared.withLock { s in
            defer { s.subscribers = [:] }
            return Array(s.subscribers.values)
        }
        subscribers.forEach { $0.finish() }
    }

    /// Hands a notification's payload to every subscriber it matches (`nil`: wakes every
    /// ``subscribe(key:)`` stream, after a gap).
    private func deliver(key: String?) {
        for subscriber in shared.withLock({ Array($0.subscribers.values) }) { subscriber.deliver(key) }
    }

    // MARK: The listener thread

    private func run() {
        var machine = ListenerStateMachine()
        var conn: PostgresConnection?
        var action = machine.start()
        /// When to look for other listeners next, and when to wake every subscriber for writers
        /// that may have missed this listener.
        var nextLook = ContinuousClock.now
        var wakeUps: [ContinuousClock.Instant] = []
        while true {
            if stopping.load(ordering: .relaxed), action != .close { action = machine.stop() }
            if action != .close, endsForIdleness() {
                presence.withLock { $0.checkedAt = nil }
                conn?.close()
                idleCloses.add(1, ordering: .relaxed)
                return
            }
            switch action {
            case .connect:
                do {
                    let c = try PostgresConnection(parameters: parameters, timeout: timeout)
                    try c.execute("LISTEN \(Identifier.quote(channel))")
                    try c.execute("SELECT pg_advisory_lock_shared(\(Self.presenceKey.0), \(Self.presenceKey.1))")
                    conn = c
                    connections.add(1, ordering: .relaxed)
                    let now = ContinuousClock.now, timing = presence.withLock { $0.timing }
                    nextLook = now
                    wakeUps = [now + timing.freshness + timing.interval * 2]
                    action = machine.connected()
                    // Notifications that arrived during the lock's round trip were queued by libpq
                    // while it read the answer: the socket would not tell of them.
                    deliverQueued(on: c)
                } catch {
                    action = machine.connectFailed()
                }
            case .startListening(let missed):
                if missed { deliver(key: nil) }
                action = .none
            case .none:
                guard let c = conn else {
                    action = machine.connectionLost()
                    continue
                }
                var alive = receive(on: c)
                let now = ContinuousClock.now
                if alive, now >= nextLook {
                    let (wanted, interval) = presence.withLock { p in
                        (p.wantedAt.map { now - $0 < p.timing.idleAfter } ?? false, p.timing.interval)
                    }
                    if wanted { alive = look(on: c, at: now) }
                    nextLook = now + interval
                }
                if alive, let first = wakeUps.first, now >= first {
                    wakeUps.removeFirst()
                    presenceWakeUps.add(1, ordering: .relaxed)
                    deliver(key: nil)
                }
                if !alive {
                    presence.withLock { $0.checkedAt = nil }
                    c.close()
                    conn = nil
                    action = machine.connectionLost()
                }
            case .wait(let delay):
                sleep(delay)
                action = machine.waitElapsed()
            case .close:
                presence.withLock { $0.checkedAt = nil }
                conn?.close()
                let waiters = shared.withLock { s in
                    s.done = true
                    defer { s.finished = [] }
                    return s.finished
                }
                waiters.forEach { $0.resume() }
                return
            }
        }
    }

    /// Waits up to 200 ms for input and delivers what arrived; `false` when the connection broke.
    private func receive(on c: PostgresConnection) -> Bool {
        var fds = pollfd(fd: c.socket, events: Int16(POLLIN), revents: 0)
        let n = poll(&fds, 1, 200)
        if n < 0 { return errno == EINTR }
        if n == 0 { return true }
        do {
            try c.consumeInput()
        } catch {
            return false
        }
        deliverQueued(on: c)
        return true
    }

    /// Looks whether another listener holds the presence lock; `false` when the connection broke.
    /// Notifications that arrived meanwhile are delivered at once (libpq queued them while it read
    /// the answer, so the socket would not tell).
    private func look(on c: PostgresConnection, at now: ContinuousClock.Instant) -> Bool {
        looks.add(1, ordering: .relaxed)
        let others: Bool
        do {
            // Another listener holds the presence lock — or another session's last statement was a
            // `LISTEN`: a minkd from before the presence lock, or a tool of its own, which must
            // still be notified.
            let result = try c.query(
                """
                SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                AND classid = \(Self.presenceKey.0) AND objid = \(Self.presenceKey.1) AND objsubid = 2 \
                AND pid <> pg_backend_pid()) \
                OR EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() \
                AND pid <> pg_backend_pid() AND query ILIKE 'listen%')
                """
            )
            others = result.bool(0, 0) ?? true
        } catch let error as PostgresError where !error.connectionLost {
            // The connection is fine, the look is not (say, `pg_locks` not readable): writers
            // notify, as without presence.
            presence.withLock { $0.checkedAt = nil }
            deliverQueued(on: c)
            return true
        } catch {
            return false
        }
        presence.withLock { p in
            p.othersListening = others
            p.checkedAt = now
        }
        deliverQueued(on: c)
        return true
    }

    /// Delivers the notifications libpq has already read and queued (other processes' only).
    private func deliverQueued(on c: PostgresConnection) {
        for note in c.notifications() where note.channel == channel && !ownPIDs.contains(note.pid) {
            deliver(key: note.payload)
        }
    }

    /// Sleeps in short slices so that `shutdown()` is not held up by a long back-off.
    private func sleep(_ d: Duration) {
        var left = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        while left > 0, !stopping.load(ordering: .relaxed) {
            let slice = min(left, 0.05)
            usleep(UInt32(slice * 1_000_000))
            left -= slice
        }
    }
}

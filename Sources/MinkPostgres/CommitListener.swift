import Foundation
import Synchronization

/// Receives `NOTIFY <channel>, '<scope key>'` from other processes on a dedicated connection and
/// wakes the matching `externalCommits()` streams.
///
/// The connection lives on the listener's own thread (started on first subscription, ended by
/// ``shutdown()``); ``ListenerStateMachine`` decides when to reconnect and when to wake everybody
/// after a gap. Notifications sent by this storage's own pool (same backend PIDs) are ignored:
/// those commits already woke this process.
final class CommitListener: Sendable {
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
    }

    private let parameters: [(String, String)]
    private let timeout: Duration
    private let channel: String
    private let ownPIDs: BackendPIDs
    private let shared = Mutex(Shared())
    private let stopping = Atomic<Bool>(false)
    /// How many times a LISTEN connection was established (tests watch reconnects with it).
    let connections = Atomic<Int>(0)

    init(parameters: [(String, String)], timeout: Duration = .seconds(10), channel: String, ownPIDs: BackendPIDs) {
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
            let start = !s.started && !s.done
            s.started = true
            return (s.nextID, start)
        }
        if stopping.load(ordering: .relaxed) { subscriber.finish() }
        if start { startThread() }
        return id
    }

    private func unregister(_ id: UInt64) {
        _ = shared.withLock { $0.subscribers.removeValue(forKey: id) }
    }

    private func startThread() {
        let thread = Thread { [self] in self.run() }
        thread.name = "mink-postgres-listen"
        thread.start()
    }

    /// Stops the thread, closes the connection and finishes every stream.
    func shutdown() async {
        stopping.store(true, ordering: .relaxed)
        let wait = shared.withLock { s -> Bool in
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
        while true {
            if stopping.load(ordering: .relaxed), action != .close { action = machine.stop() }
            switch action {
            case .connect:
                do {
                    let c = try PostgresConnection(parameters: parameters, timeout: timeout)
                    try c.execute("LISTEN \(Identifier.quote(channel))")
                    conn = c
                    connections.add(1, ordering: .relaxed)
                    action = machine.connected()
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
                if !receive(on: c) {
                    c.close()
                    conn = nil
                    action = machine.connectionLost()
                }
            case .wait(let delay):
                sleep(delay)
                action = machine.waitElapsed()
            case .close:
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
        for note in c.notifications() where note.channel == channel && !ownPIDs.contains(note.pid) {
            deliver(key: note.payload)
        }
        return true
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

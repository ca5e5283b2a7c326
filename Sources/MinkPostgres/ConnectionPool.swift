import Dispatch
import Mink
import Synchronization

/// A bounded pool of connections, each driven by its own ``ConnectionWorker`` queue.
///
/// Callers borrow a connection for the span of a closure (`try await pool.withConnection { conn
/// in ... }`); the closure runs synchronously on the connection's queue. When every connection is
/// busy, callers wait in FIFO order (cancellable).
///
/// Every use has a deadline, ``timeout`` after it asked for a connection: waiting for a free
/// connection and every libpq call of the closure end by then (a caller gets `.unavailable`),
/// so a frozen server neither holds a request longer nor pins the pool — a connection whose call
/// timed out is closed and its worker opens a new one for the next use.
final class ConnectionPool: Sendable {
    private struct State {
        var idle: [Int]
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Int, any Error>)] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
    }

    private let workers: [ConnectionWorker]
    private let state: Mutex<State>
    /// The backend PIDs of this pool's connections.
    let pids: BackendPIDs
    /// How long one use may take, waiting for a connection included (`storage.timeoutSeconds`).
    let timeout: Duration

    /// Creates a pool of `size` lazily opened connections.
    init(label: String, size: Int, parameters: [(String, String)], timeout: Duration = .seconds(10), idleTimeout: Duration? = nil) {
        let pids = BackendPIDs()
        let n = max(size, 1)
        self.pids = pids
        self.timeout = timeout
        self.workers = (0..<n).map {
            ConnectionWorker(label: "\(label).\($0)", parameters: parameters, timeout: timeout, pids: pids, idleTimeout: idleTimeout)
        }
        self.state = Mutex(State(idle: Array((0..<n).reversed())))
    }

    /// Runs `body` with a connection of the pool; errors leave as ``MinkError``s (or what `body`
    /// itself threw), or unmapped ``PostgresError``s when `mappingErrors` is `false`.
    func withConnection<T: Sendable>(
        mappingErrors: Bool = true, _ body: @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        let index = try await acquire(until: deadline)
        defer { release(index) }
        do {
            return try await workers[index].run(deadline: deadline, body)
        } catch {
            throw mappingErrors ? error.mappedForMink() : error
        }
    }

    /// Runs `body` on a connection that is idle now, on its worker's queue, without waiting: no
    /// task, no continuation. `completion` gets `body`'s result (errors unmapped, as with
    /// `mappingErrors: false`) on that queue after the connection went back to the pool.
    /// - Returns: `false`, running nothing, when no connection is idle (or the pool is closed):
    ///   the caller then waits for one with ``withConnection(mappingErrors:_:)``.
    func runIfIdle<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) throws -> T, completion: @escaping @Sendable (Result<T, any Error>) -> Void
    ) -> Bool {
        let index: Int? = state.withLock { s in s.closed ? nil : s.idle.popLast() }
        guard let index else { return false }
        workers[index].start(deadline: ContinuousClock.now + timeout, body) { result in
            self.release(index)
            completion(result)
        }
        return true
    }

    /// When every connection is idle: the worker the next borrow gets (``runIfIdle(_:completion:)``
    /// and ``withConnection(mappingErrors:_:)`` take the last idle one), as an executor for the
    /// task about to borrow it; otherwise `nil`.
    ///
    /// Why: a lone request's task that runs on that worker's queue queues its storage work behind
    /// itself on the same thread, and the answer resumes it there — no thread woken to run the
    /// work, none to resume the task (measured: 8 `futex` calls per lone append → 2). Only when the
    /// pool is quiet: under load a task would wait for (and delay) other callers' work on that
    /// connection, and the pool's connections are busy anyway.
    func idleExecutor() -> (any TaskExecutor)? {
        state.withLock { s in
            guard !s.closed, s.waiters.isEmpty, s.idle.count == workers.count, let last = s.idle.last else { return nil }
            return workers[last]
        }
    }

    /// Borrows run inline on a thread lent to a lone request, over all connections (tests).
    var inlineBorrows: Int { workers.reduce(0) { $0 + $1.inlineBorrows.load(ordering: .relaxed) } }

    /// Fails waiting callers and closes every connection.
    func close() async {
        let waiters = state.withLock { s in
            s.closed = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.continuation.resume(throwing: MinkError(.cancelled, "storage is shut down")) }
        for w in workers { await w.close() }
    }

    private enum AcquireStep {
        case ready(Int)
        case fail(MinkError)
        case wait
    }

    private func acquire(until deadline: ContinuousClock.Instant) async throws -> Int {
        let quick: AcquireStep = state.withLock { s in
            if s.closed { return .fail(MinkError(.cancelled, "storage is shut down")) }
            if let i = s.idle.popLast() { return .ready(i) }
            return .wait
        }
        switch quick {
        case .ready(let i): return i
        case .fail(let e): throw e
        case .wait: break
        }
        let id = state.withLock { s in
            s.nextWaiterID += 1
            return s.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
                let step: AcquireStep = state.withLock { s in
                    if s.closed { return .fail(MinkError(.cancelled, "storage is shut down")) }
                    if let i = s.idle.popLast() { return .ready(i) }
                    if Task.isCancelled { return .fail(MinkError(.cancelled, "cancelled while waiting for a connection")) }
                    s.waiters.append((id, continuation))
                    return .wait
                }
                switch step {
                case .ready(let i): continuation.resume(returning: i)
                case .fail(let e): continuation.resume(throwing: e)
                case .wait: scheduleTimeout(of: id, at: deadline)
                }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Int, any Error>? in
                guard let k = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: k).continuation
            }
            waiter?.resume(throwing: MinkError(.cancelled, "cancelled while waiting for a connection"))
        }
    }

    /// Fails a waiter still waiting at `deadline` with `.unavailable` (every connection is busy,
    /// e.g. held by calls to a frozen server).
    private func scheduleTimeout(of id: UInt64, at deadline: ContinuousClock.Instant) {
        let left = ContinuousClock.now.duration(to: deadline)
        let nanos = max(0, left.components.seconds * 1_000_000_000 + left.components.attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanos))) { [weak self] in
            guard let self else { return }
            let waiter = self.state.withLock { s -> CheckedContinuation<Int, any Error>? in
                guard let k = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: k).continuation
            }
            waiter?.resume(throwing: MinkError(
                .unavailable, "PostgreSQL is unavailable: no connection free within \(PostgresConnection.seconds(self.timeout)) s",
                isTransient: true
            ))
        }
    }

    private func release(_ index: Int) {
        let waiter = state.withLock { s -> CheckedContinuation<Int, any Error>? in
            if !s.waiters.isEmpty { return s.waiters.removeFirst().continuation }
            s.idle.append(index)
            return nil
        }
        waiter?.resume(returning: index)
    }
}

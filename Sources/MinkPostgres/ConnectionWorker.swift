import Dispatch
import Foundation
import Mink
import Synchronization

/// The backend process IDs of one storage's own connections, so that its commit listener can
/// tell its own NOTIFYs from other processes'.
final class BackendPIDs: Sendable {
    private let pids = Mutex<Set<Int32>>([])

    func insert(_ pid: Int32) { _ = pids.withLock { $0.insert(pid) } }
    func remove(_ pid: Int32) { _ = pids.withLock { $0.remove(pid) } }
    func contains(_ pid: Int32) -> Bool { pids.withLock { $0.contains(pid) } }
}

/// One PostgreSQL connection and the serial queue that owns it.
///
/// The connection is opened lazily on first use and reopened after it broke (a server restart):
/// the worker checks an idle connection before each use (see ``PostgresConnection/isStale``), so
/// operations fail with a transient `.unavailable` only while the server is really down.
final class ConnectionWorker: @unchecked Sendable {
    // Invariant: `connection` and `lastUsed` are read and written only on `queue`; the other
    // properties are immutable. Every libpq call on `connection` therefore comes from that one
    // queue, one at a time, never from Swift's cooperative pool.
    private let queue: DispatchQueue
    private var connection: PostgresConnection?
    private var lastUsed = DispatchTime.now()
    private let parameters: [(String, String)]
    private let pids: BackendPIDs
    private let idleTimeout: Duration?
    private let timeout: Duration
    /// Jobs of tasks preferring this worker (``enqueue(_:)``) queued and not yet run.
    private let queuedJobs = Atomic<Int>(0)
    /// Which thread runs inline on the queue (``runInline(_:)``): the first borrow
    /// (``start(deadline:_:completion:)``, ``run(deadline:_:)``) it makes there runs at once on it.
    private let inlineBorrow = InlineBorrow()
    /// Set while that borrow runs: the task that made it waits on this thread for its answer, so
    /// a drain answers its batch and gives the connection back (``PostgresConnection/hasQueuedTaskJobs``)
    /// instead of writing the next batches first; its next borrow is queued.
    private let inlineBorrowRunning = Atomic<Bool>(false)
    /// Borrows run inline so far (tests).
    let inlineBorrows = Atomic<Int>(0)

    init(label: String, parameters: [(String, String)], timeout: Duration, pids: BackendPIDs, idleTimeout: Duration?) {
        self.queue = DispatchQueue(label: label)
        self.parameters = parameters
        self.timeout = timeout
        self.pids = pids
        self.idleTimeout = idleTimeout
    }

    /// Runs `body` with the connection on the worker's queue and returns its result.
    ///
    /// Errors are thrown as they come (``PostgresError`` unmapped); a broken connection is closed
    /// so that the next call reconnects, and a transaction left open by `body` is rolled back.
    /// - Parameter deadline: every libpq call of `body` (and connecting) waits at most until then;
    ///   a call that times out closes the connection (see ``PostgresConnection``).
    func run<T: Sendable>(deadline: ContinuousClock.Instant, _ body: @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withoutActuallyEscaping(body) { escapable in
            // The box is emptied before the continuation resumes: the closure must not outlive
            // this call (withoutActuallyEscaping checks that at runtime).
            let box = ClosureBox(escapable)
            return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                if inlineBorrow.take() {
                    continuation.resume(with: Result { try self.performInline(deadline: deadline, box.take()) })
                    return
                }
                queue.async {
                    let result = Result { try self.perform(deadline: deadline, box.take()) }
                    continuation.resume(with: result)
                }
            }
        }
    }

    /// Runs `body` with the connection on the worker's queue, as ``run(deadline:_:)`` does, without
    /// an async caller: `completion` gets the outcome on the queue once `body` returned.
    ///
    /// Why: the group commit starts its drain from the append that found no batch being written;
    /// going through a task of its own first would cost one more thread hand-off on every lone
    /// append's path.
    func start<T: Sendable>(
        deadline: ContinuousClock.Instant, _ body: @escaping @Sendable (PostgresConnection) throws -> T,
        completion: @escaping @Sendable (Result<T, any Error>) -> Void
    ) {
        // From a job running inline on this queue (``runInline(_:)``): the queue is this thread's
        // already, so the work runs now instead of waking the queue's own thread after the job.
        if inlineBorrow.take() {
            completion(Result { try self.performInline(deadline: deadline, body) })
            return
        }
        queue.async {
            completion(Result { try self.perform(deadline: deadline, body) })
        }
    }

    /// Closes the connection (e.g. at shutdown); the next `run` would reopen it.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.drop()
                continuation.resume()
            }
        }
    }

    private func perform<T>(deadline: ContinuousClock.Instant, _ body: (PostgresConnection) throws -> T) throws -> T {
        let conn = try connected(deadline: deadline)
        conn.deadline = deadline
        defer {
            conn.deadline = nil
            lastUsed = .now()
            scheduleIdleCheck()
        }
        do {
            return try body(conn)
        } catch {
            // The rollback gets a timeout of its own: the operation's deadline may be spent.
            conn.deadline = nil
            if !conn.isOpen {
                drop()
            } else if conn.inTransaction {
                conn.rollbackIfNeeded()
                if !conn.isOpen { drop() }
            }
            throw error
        }
    }

    private func connected(deadline: ContinuousClock.Instant) throws -> PostgresConnection {
        if let c = connection {
            if !c.isStale { return c }
            drop()
        }
        let c = try PostgresConnection(parameters: parameters, timeout: timeout, deadline: deadline)
        c.deadline = deadline
        // Every statement of the adapter filters on `tenant_id`, the leading column of every
        // table's primary key, so an index plan is always available and never much worse than a
        // sequential scan. Prepared statements are planned once per connection (generic plans:
        // PostgreSQL's default re-plans each execution for a while, ~0.6 ms per append), and a
        // plan made while a table is new and its statistics say "tiny" would otherwise be a
        // sequential scan for the connection's lifetime (measured: 1.2 ms per append after 2,000
        // events, growing with the table). (PostgreSQL 12 or newer, checked when connecting.)
        //
        // `idle_in_transaction_session_timeout`: a transaction of this process never waits on it
        // for long (statements go pipelined); one left open by a frozen process (SIGSTOP, a VM
        // pause) would keep its row and advisory locks — a projection's lease row, which a new
        // holder must lock, or the tenant's append lock — for as long as the freeze. The server
        // ends such a session after 3 × the storage timeout (at least 30 s); an append batch that
        // holds the tenant's append lock across round trips sets half the storage timeout for its
        // own transaction (``AppendBatcher/lockHoldingIdleLimit(_:)``).
        //
        // `default_transaction_isolation`: READ COMMITTED whatever the server, database or role
        // says. The append transaction's statement must take its snapshot after the tenant's lock
        // was granted (one snapshot per statement); under a REPEATABLE READ default the snapshot
        // would be the lock statement's, taken before the wait, and a batch that waited for another
        // process's commit would not see it (duplicate positions, refused by the primary key).
        //
        // `synchronous_commit`: a 201 promises the append survives a crash of the database server.
        // With `off` as the server's, database's or role's default, a commit answers before its WAL
        // is flushed and a crash of PostgreSQL loses the last acknowledged appends, so `off` is
        // raised to `on` (the other values — `local`, `remote_write`, `remote_apply`, `on` — all
        // wait for the local flush, and are kept). The projections' own relaxed commits set it per
        // transaction (`SET LOCAL`), which still applies.
        //
        // `lock_timeout`: an append waits for its tenant's lock while other batches commit; a
        // server, database or role default shorter than the storage deadline would fail such
        // waits (`55P03`, a `503`) under ordinary contention, before minkd's own deadline. A
        // default shorter than the deadline is raised to it; none (`0`) or a longer one is kept.
        // (The read-model batcher's own `SET LOCAL lock_timeout` still applies.)
        let idleInTransaction = max(Int(timeout.components.seconds) * 3, 30)
        let deadlineMillis = max(Int(timeout.components.seconds) * 1000 + Int(timeout.components.attoseconds / 1_000_000_000_000_000), 1)
        do {
            try c.execute(
                "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; SET idle_in_transaction_session_timeout = '\(idleInTransaction)s'; "
                    + "SET default_transaction_isolation = 'read committed'; " + Self.durableCommits + "; "
                    + Self.patientLocks(deadlineMillis)
            )
        } catch {
            c.close()
            throw error
        }
        c.hasQueuedTaskJobs = { [weak self] in
            guard let self else { return false }
            return queuedJobs.load(ordering: .relaxed) > 0 || inlineBorrowRunning.load(ordering: .relaxed)
        }
        connection = c
        pids.insert(c.backendPID)
        return c
    }

    /// Raises the session's `synchronous_commit` from `off` to `on`, leaving every other value.
    static let durableCommits =
        "SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'"

    /// Raises the session's `lock_timeout` to `millis` when it is set and shorter, leaving `0` (no
    /// limit) and longer values.
    static func patientLocks(_ millis: Int) -> String {
        "SELECT set_config('lock_timeout', '\(millis)ms', false) FROM pg_settings WHERE name = 'lock_timeout' AND setting::int8 > 0 AND setting::int8 < \(millis)"
    }

    private func drop() {
        guard let c = connection else { return }
        pids.remove(c.backendPID)
        c.close()
        connection = nil
    }

    /// Closes the connection once it has been idle for `idleTimeout` (tenant-database pools).
    private func scheduleIdleCheck() {
        guard let idleTimeout else { return }
        let nanos = UInt64(idleTimeout.components.seconds) * 1_000_000_000 + UInt64(idleTimeout.components.attoseconds / 1_000_000_000)
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(nanos))) { [weak self] in
            guard let self, self.connection != nil else { return }
            if DispatchTime.now().uptimeNanoseconds >= self.lastUsed.uptimeNanoseconds + nanos { self.drop() }
        }
    }
}

/// The worker's queue as a task executor: a task that prefers it (``ConnectionPool/idleExecutor()``)
/// runs its jobs on the queue, between the connection's own work, so that an answer from the
/// connection resumes the task without waking another thread.
extension ConnectionWorker: TaskExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queuedJobs.add(1, ordering: .relaxed)
        queue.async {
            self.queuedJobs.subtract(1, ordering: .relaxed)
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}

extension ConnectionWorker: InlineTaskExecutor {
    /// Runs `body` on the calling thread while it holds the worker's queue; the first borrow
    /// `body` makes (an append batch's drain, a read) runs inline too (one per call: a drain that
    /// goes on after answering its batch borrows again from its completion, and that borrow is
    /// queued — else this thread would write other callers' batches before its own task answers).
    func runInline(_ body: () -> Void) {
        inlineBorrow.run(on: queue, body)
    }

    /// ``perform(deadline:_:)`` for the inline borrow, on the thread holding the queue.
    private func performInline<T>(deadline: ContinuousClock.Instant, _ body: (PostgresConnection) throws -> T) throws -> T {
        inlineBorrows.add(1, ordering: .relaxed)
        inlineBorrowRunning.store(true, ordering: .relaxed)
        defer { inlineBorrowRunning.store(false, ordering: .relaxed) }
        return try perform(deadline: deadline, body)
    }
}

/// Carries a non-escaping closure into a queue and lets it go before the caller resumes.
private final class ClosureBox<T>: @unchecked Sendable {
    // Invariant: written at creation, taken once on the worker queue before the continuation is
    // resumed; the awaiting caller does not touch it in between.
    private var body: ((PostgresConnection) throws -> T)?

    init(_ body: @escaping (PostgresConnection) throws -> T) { self.body = body }

    func take() -> (PostgresConnection) throws -> T {
        let b = body!
        body = nil
        return b
    }
}

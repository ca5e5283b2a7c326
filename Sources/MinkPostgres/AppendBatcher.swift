import Foundation
import Mink
import Synchronization

/// Group commit of one tenant's appends: the appends waiting for the tenant go to PostgreSQL
/// together, in one transaction (see `docs/storage-postgres.md`, "Group commit").
///
/// An append joins the queue; if no batch is being written it starts a drain at once (a lone
/// append waits for nobody), on an idle pooled connection's queue straight from the appending
/// thread. The drain takes everything waiting (up to ``Limits``) as one batch: one advisory lock,
/// one statement reading every stream's state, one insert, one commit, one `NOTIFY` — a plain
/// batch (no hooks, generated IDs) all in one round trip (``commitChecked(_:on:)``). Appends that
/// arrive meanwhile form the next batch. Each caller is resumed with its own outcome once the
/// batch's transaction is over — a success only after the commit succeeded.
///
/// One batcher per tenant and database (kept by ``Backend``), so different tenants do not wait
/// for each other.
///
/// Each append's caller is answered at the latest `storage.timeoutSeconds` after the append
/// reached the storage (``OperationDeadlines``), however long the batches before it take: an
/// append still queued then is dropped (never written); one in a batch under way may still
/// commit (an idempotent retry with the same event IDs tells). Without this, an append queued
/// behind a batch on a frozen server waited for that batch's deadline and then for its own.
final class AppendBatcher: Sendable {
    /// How large a batch may grow, and how long a drain keeps its connection.
    struct Limits: Sendable {
        /// Appends per batch.
        var appends = 256
        /// Events per batch (an append larger than this is a batch of its own).
        var events = 10_000
        /// Payload bytes per batch (likewise).
        var bytes = 8 << 20
        /// Batches written before the drain gives its connection back to the pool (and queues
        /// for one again), so that a tenant under constant load does not keep a connection.
        var batchesPerConnection = 32
    }

    /// The text of the statements a batch runs (the prepared-statement cache is keyed by it).
    struct Text: Sendable {
        let appendChecked: String
        let appendOne: String
        let insertBatch: String
        let batchVersions: String
        let batchState: String
        let storedEvents: String

        init(_ sql: Statements, channel: String) {
            appendChecked = sql.appendChecked(channel: channel)
            appendOne = sql.appendOne(channel: channel)
            insertBatch = sql.insertBatch(channel: channel)
            batchVersions = sql.batchVersions
            batchState = sql.batchState
            storedEvents = sql.storedEvents
        }
    }

    /// An event's values that the caller prepares (in parallel, before queueing).
    struct Row: Sendable {
        let id: String
        let metadata: String
    }

    /// An append waiting for its batch.
    struct Pending: Sendable {
        let request: AppendRequest
        let hook: AppendTransactionHook?
        let rows: [Row]
        let bytes: Int
        let answer: DeadlineAnswer<AppendResult>
    }

    /// What the batcher knows of other writers of its tenant (other processes on the database).
    struct Contention {
        /// The head the next batch finds if nobody else wrote meanwhile: this batcher's last
        /// checked batch's head plus what it wrote (nil: unknown).
        var expectedHead: Int64?
        /// Until when batches are gathered for contention (see ``pauseForReturningAppends(after:)``).
        var until: ContinuousClock.Instant?
    }

    /// How long a batch gathered for contention waits, at most, for the appends whose callers
    /// the previous batch answered (and never more than half the previous batch's time: the
    /// lock wait it saves is about that long).
    static let contentionPause: Duration = .milliseconds(5)
    /// How long after the last sign of another writer batches are gathered for contention.
    static let contentionWindow: Duration = .seconds(1)

    let scope: Scope
    let channel: String
    /// This database's listener, which knows whether another process listens (nil: always
    /// `NOTIFY`).
    let listener: CommitListener?
    let limits: Limits
    /// The SQL of the batch statements, built once (it was built per batch: ~5 % of a lone
    /// append's CPU went to interpolating and quoting it).
    let text: Text
    private let queue: DrainQueue<Pending>
    /// The database's pool (``notifyAfterDoubt(backend:)``).
    private let pool: ConnectionPool
    /// Answers each append's caller by its deadline.
    let deadlines: OperationDeadlines
    /// Transactions that committed appends (statistics for tests and benchmarks).
    let transactionsCommitted = Atomic<Int>(0)
    /// Of those, the transactions written in one round trip by the checked statement
    /// (``commitChecked(_:on:)``).
    let checkedTransactions = Atomic<Int>(0)
    /// The round trips of the last batch written (``PostgresConnection/roundTrips``).
    let lastBatchRoundTrips = Atomic<Int>(0)
    /// Appends committed by those transactions (replays not counted).
    let appendsCommitted = Atomic<Int>(0)
    /// Batches whose appends' hooks ran once for all of them (``decideWithOneHook(_:_:_:timestamp:on:)``).
    let batchHookRuns = Atomic<Int>(0)
    /// Of those tried, the ones whose hook failed and were decided append by append.
    let batchHookFallbacks = Atomic<Int>(0)
    /// Batches that found another writer's commits since this batcher's previous batch.
    let contendedBatches = Atomic<Int>(0)
    /// Pauses made to gather a batch under contention.
    let contentionPauses = Atomic<Int>(0)
    /// Batches written without a `NOTIFY` (no other listener; ``notifyPayload()``).
    let notificationsSkipped = Atomic<Int>(0)
    /// Whether the batch being written (one at a time per batcher) left its `NOTIFY` out.
    private let lastBatchSkippedNotify = Atomic<Bool>(false)
    /// Notifications sent after such a batch committed (``notifyLateJoiners(on:)``).
    let lateNotifications = Atomic<Int>(0)
    /// Whether the batch being written ended with its commit in doubt (``failure(_:committing:)``).
    let lastBatchInDoubt = Atomic<Bool>(false)
    /// Notifications sent once the backend of a batch that skipped its `NOTIFY` and ended in doubt
    /// was gone (``notifyAfterDoubt(backend:)``).
    let doubtNotifications = Atomic<Int>(0)
    let contention = Mutex(Contention())

    init(scope: Scope, pool: ConnectionPool, channel: String, listener: CommitListener? = nil, limits: Limits = Limits()) {
        self.scope = scope
        self.queue = DrainQueue(pool: pool)
        self.pool = pool
        self.channel = channel
        self.listener = listener
        self.limits = limits
        text = Text(scope.sql, channel: channel)
        deadlines = OperationDeadlines(timeout: pool.timeout, storage: "PostgreSQL")
    }

    /// Prepares a request's rows: event IDs (generated when missing), metadata text.
    /// - Throws: `.validationFailed` when a text value holds a NUL character (PostgreSQL cannot
    ///   store it; checked here so that the append fails alone, before it joins a batch).
    static func rows(of request: AppendRequest) throws -> [Row] {
        func checkText(_ s: String) throws {
            if s.utf8.contains(0) {
                throw PostgresError(sqlState: "22021", message: "text values cannot contain a NUL character").minkError
            }
        }
        try checkText(request.streamID)
        // The events of an append usually share their metadata (the append's, merged into each):
        // it is encoded and checked once per distinct value in a row, not once per event.
        var last: (metadata: Metadata, text: String)?
        return try request.events.map { e in
            let metadata: String
            if let last, last.metadata == e.metadata {
                metadata = last.text
            } else {
                metadata = try EventRow.encodeMetadata(e.metadata)
                try checkText(metadata)
                last = (e.metadata, metadata)
            }
            let row = Row(id: e.id ?? UUID.random().lowercasedText, metadata: metadata)
            // Generated IDs are UUID text, nothing to check.
            if !request.hasFreshIDs { try checkText(row.id) }
            try checkText(e.type)
            return row
        }
    }

    /// Queues an append and returns its outcome once its batch's transaction is over, or a
    /// transient `.unavailable` at `deadline` (default: the storage timeout from now).
    /// - Throws: what the append failed with — ``PostgresError``s unmapped (the caller maps them
    ///   and handles a missing tenant schema), `MinkError`s, or what the hook threw.
    func append(
        _ request: AppendRequest, rows: [Row], hook: AppendTransactionHook?, deadline: ContinuousClock.Instant? = nil
    ) async throws -> AppendResult {
        let bytes = request.events.reduce(0) { $0 + $1.data.count }
        return try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<AppendResult, any Error>) in
            let answer = deadlines.answer(continuation, deadline: deadline)
            let pending = Pending(request: request, hook: hook, rows: rows, bytes: bytes, answer: answer)
            // The drain outlives this append's wait (see ``DrainQueue``).
            if !queue.enqueue(pending, writer: writer) {
                answer.resume(throwing: MinkError(.cancelled, "storage is shut down"))
            }
        }
    }

    /// The batch's `NOTIFY` payload (the tenant's scope key), or `NULL` — no `NOTIFY` — when this
    /// database's listener looked lately and found no other listener (``CommitListener``,
    /// *Presence*): nobody else would be woken.
    func notifyPayload() -> PostgresValue {
        if let listener, !listener.othersMayListen() {
            notificationsSkipped.add(1, ordering: .relaxed)
            lastBatchSkippedNotify.store(true, ordering: .relaxed)
            return .null
        }
        lastBatchSkippedNotify.store(false, ordering: .relaxed)
        return .text(scope.notifyKey)
    }

    /// After a batch that skipped its `NOTIFY` ended with its commit in doubt (a timeout, a lost
    /// connection): the server may still commit it — when the tenant's lock comes, when the disk
    /// answers — after any listener that joined meanwhile had its wake-up. So once the batch's
    /// backend is gone (its transaction is then over, committed or not) a `NOTIFY` is sent, from a
    /// task of its own; it gives up after 10 minutes.
    private func notifyAfterDoubt(backend pid: Int32) {
        guard pid != 0 else { return }
        let pool = self.pool, channel = self.channel, key = scope.notifyKey
        Task.detached { [self] in
            let end = ContinuousClock.now + .seconds(600)
            while ContinuousClock.now < end {
                try? await Task.sleep(for: .milliseconds(200))
                let gone = try? await pool.withConnection(mappingErrors: false) { conn in
                    try conn.query("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1::int4)", [.int(Int64(pid))])
                        .bool(0, 0) ?? false
                }
                guard gone == true else { continue }
                // A failure here loses the wake-up, as a lost `NOTIFY` would.
                _ = try? await pool.withConnection(mappingErrors: false) { conn in
                    _ = try conn.query("SELECT pg_notify($1, $2)", [.text(channel), .text(key)])
                }
                doubtNotifications.add(1, ordering: .relaxed)
                return
            }
        }
    }

    /// After a batch that skipped its `NOTIFY` committed: if another listener was seen meanwhile
    /// (it joined while the batch was under way, and its one wake-up for such batches may have come
    /// before this commit), the notification is sent now, on its own.
    private func notifyLateJoiners(on conn: PostgresConnection) {
        guard lastBatchSkippedNotify.load(ordering: .relaxed), let listener, listener.othersMayListen(), conn.isOpen else { return }
        lateNotifications.add(1, ordering: .relaxed)
        // A failure here (the connection broke) loses this wake-up: the joiner then learns of the
        // commit with the next notification of the tenant.
        _ = try? conn.query("SELECT pg_notify($1, $2)", [.text(channel), .text(scope.notifyKey)])
    }

    /// Appends queued and not yet taken into a batch.
    var pendingCount: Int { queue.pendingCount }

    /// Fails the appends still queued; later appends fail with `.cancelled`. A batch being
    /// written finishes; returns when a drain waiting for a connection has ended.
    func close() async {
        let (failed, drain) = queue.close()
        for p in failed { p.answer.resume(throwing: MinkError(.cancelled, "storage is shut down")) }
        await drain?.value
    }

    // MARK: Draining

    /// How the queue's drain writes: batches on a connection; without a connection (the server
    /// is down, or the pool is closed) what waits fails, and a later append starts a new drain.
    private var writer: DrainQueue<Pending>.Writer {
        .init(run: { conn in self.writeBatches(on: conn) }, fail: { failed, error in
            for p in failed { p.answer.resume(throwing: error) }
        })
    }

    /// On the connection's queue: writes batches; returns whether appends may still wait (the
    /// connection broke or the drain used its share of the connection).
    private func writeBatches(on conn: PostgresConnection) -> Bool {
        var answered = 0
        var flight = Duration.zero
        for _ in 0..<limits.batchesPerConnection {
            // A task answered by the last batch runs on this queue (``ConnectionPool/idleExecutor()``),
            // or waits on this thread, which runs the drain inline for it (``ConnectionWorker/runInline(_:)``):
            // when more appends wait, go on after it, from a new borrow (queued behind it on the same
            // worker); when none does the drain ends below (an append arriving just now is written
            // first: one batch). Never the contention pause: the callers it waits for are behind it.
            if answered > 0, conn.hasQueuedTaskJobs() {
                if pendingCount > 0 { return true }
            } else if answered > 0 {
                pauseForReturningAppends(after: answered, flight: flight)
            }
            let batch = nextBatch()
            if batch.isEmpty { return false }
            let start = ContinuousClock.now
            write(batch, on: conn)
            flight = ContinuousClock.now - start
            answered = batch.count
            // A broken connection is replaced by the pool's worker on the next borrow.
            if !conn.isOpen { return true }
        }
        return true
    }

    /// Under contention (another process appended to the tenant lately), waits a moment before
    /// taking the next batch: until the callers the last batch answered have sent their next
    /// appends (the queue grew by `answered`), at most half of `flight` (the previous batch's
    /// time, lock wait included) and ``contentionPause``.
    ///
    /// Why: the tenant's lock makes the processes' batches take turns, each waiting for the other's
    /// commit. Taken at once, a batch holds only the appends that arrived during the previous one,
    /// so each process's clients split into two groups that alternate — batches half as large,
    /// each waiting for a whole lock cycle. The pause costs nothing the batch would not wait
    /// anyway (the other process's commit is longer), and the batch then carries every caller.
    /// Without another writer the next batch is taken at once (a lone client never waits).
    private func pauseForReturningAppends(after answered: Int, flight: Duration) {
        let now = ContinuousClock.now
        guard let until = contention.withLock({ $0.until }), now < until else { return }
        let queued = pendingCount
        // A full batch is waiting already: nothing more could join it.
        guard queued < limits.appends else { return }
        let target = min(queued + answered, limits.appends)
        let end = now + min(Self.contentionPause, flight / 2)
        contentionPauses.add(1, ordering: .relaxed)
        while pendingCount < target, ContinuousClock.now < end, !queue.isClosed {
            usleep(50)
        }
    }

    /// Records the head a checked batch found and what it wrote: a head other than the one this
    /// batcher's previous batch left means another writer committed in between.
    func observe(head: Int64, wrote inserted: Int64) {
        contention.withLock { c in
            if let expected = c.expectedHead, expected != head {
                c.until = .now + Self.contentionWindow
                contendedBatches.add(1, ordering: .relaxed)
            }
            c.expectedHead = head + inserted
        }
    }

    /// Takes the next batch off the queue: everything waiting, within ``Limits`` (at least one
    /// append), each claimed for writing (``DeadlineAnswer/start()``). Appends whose callers
    /// were answered by their deadline while they waited are dropped: they are never written. An
    /// empty batch ends the drain, in the same critical section that found nothing.
    private func nextBatch() -> [Pending] {
        queue.take { pending in
            while true {
                pending.removeAll { $0.answer.isAnswered }
                var n = 0, events = 0, bytes = 0
                while n < pending.count, n < limits.appends {
                    let p = pending[n]
                    if n > 0, events + p.rows.count > limits.events || bytes + p.bytes > limits.bytes { break }
                    events += p.rows.count
                    bytes += p.bytes
                    n += 1
                }
                if n == 0 { return [] }
                // A deadline may have passed since the sweep above: such an append is dropped too.
                let batch = pending.prefix(n).filter { $0.answer.start() }
                pending.removeFirst(n)
                if !batch.isEmpty { return batch }
            }
        }
    }

    /// Writes one batch and answers its appends.
    private func write(_ batch: [Pending], on conn: PostgresConnection) {
        // A drain writes several batches on one borrowed connection: each batch gets the whole
        // storage timeout (the pool's deadline covers the borrow, not every batch of it).
        conn.renewDeadline()
        let roundTrips = conn.roundTrips
        let backend = conn.backendPID
        lastBatchInDoubt.store(false, ordering: .relaxed)
        let outcome = commit(batch, on: conn)
        if case .failed = outcome, lastBatchInDoubt.load(ordering: .relaxed), lastBatchSkippedNotify.load(ordering: .relaxed) {
            notifyAfterDoubt(backend: backend)
        }
        // Before the answers: a caller reading it after its append must see this batch's.
        lastBatchRoundTrips.store(conn.roundTrips - roundTrips, ordering: .relaxed)
        switch outcome {
        case .committed(let outcomes, let written):
            if written > 0 {
                transactionsCommitted.add(1, ordering: .relaxed)
                appendsCommitted.add(written, ordering: .relaxed)
                notifyLateJoiners(on: conn)
            }
            for (p, outcome) in zip(batch, outcomes) { p.answer.resume(with: outcome) }
        case .failed(let error, let retryAlone):
            // Nothing of the batch was committed. A failure that one append may have caused (a
            // server error that is neither transient nor about the connection) is not allowed to
            // fail its neighbours: each append is tried again alone.
            if retryAlone, batch.count > 1, conn.isOpen {
                for p in batch { write([p], on: conn) }
            } else {
                for p in batch { p.answer.resume(throwing: error) }
            }
        }
    }
}

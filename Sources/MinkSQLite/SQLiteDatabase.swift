import CSQLite
import Dispatch
import Foundation
import Mink
import Synchronization

/// One SQLite database file: a single writer connection on its own serial queue, committing
/// queued writes in groups, and a small pool of reader connections, each on its own serial queue.
///
/// Blocking SQLite calls only ever run on these queues, never on Swift's cooperative pool; callers
/// get scoped closures (``write(_:)``, ``read(_:)``) and never the handle.
///
/// Group commit: writes queue up while the writer is busy; the writer then takes all waiting
/// writes (up to `maxBatchSize`) and runs them in one transaction, each inside its own
/// `SAVEPOINT` so that one failing write rolls back alone; one `COMMIT` (one fsync) then makes them
/// all durable and every caller is resumed — successes only after the commit succeeded.
final class SQLiteDatabase: @unchecked Sendable {
    // Invariant for @unchecked Sendable: `writer` is read and written only on `writerQueue`; each
    // reader slot's connection only on that slot's queue; every other mutable state is in a Mutex
    // or Atomic.

    /// A queued write: ``start()`` claims it for the writer (`false` when its caller was already
    /// answered by its deadline: it must not run), ``run(on:)`` does the work on the writer
    /// connection inside a savepoint, ``report()`` answers its caller once the transaction
    /// committed; ``fail(_:)`` reports an error instead. One object per write (it was four closures
    /// and a fifth per success: an allocation each, on every write's path).
    class Job: @unchecked Sendable {
        /// Whether the write may commit without an fsync (`CommitDurability.relaxed`): a group
        /// of only such writes commits with `synchronous = NORMAL`.
        let relaxed: Bool

        init(relaxed: Bool) { self.relaxed = relaxed }

        func start() -> Bool { fatalError("abstract") }
        func isAnswered() -> Bool { fatalError("abstract") }
        func run(on connection: SQLiteConnection) throws { fatalError("abstract") }
        func report() { fatalError("abstract") }
        func fail(_ error: any Error) { fatalError("abstract") }
    }

    /// A write whose body returns a `T` to its caller.
    final class TypedJob<T: Sendable>: Job, @unchecked Sendable {
        // Invariant for @unchecked Sendable: `value` is written by `run` and read by `report`,
        // both on the writer's queue; everything else is immutable.
        private let answer: DeadlineAnswer<T>
        private let body: @Sendable (SQLiteConnection) throws -> T
        private var value: T?

        init(answer: DeadlineAnswer<T>, relaxed: Bool, body: @escaping @Sendable (SQLiteConnection) throws -> T) {
            self.answer = answer
            self.body = body
            super.init(relaxed: relaxed)
        }

        override func start() -> Bool { answer.start() }
        override func isAnswered() -> Bool { answer.isAnswered }

        override func run(on connection: SQLiteConnection) throws {
            defer { answer.bodyReturned() }
            value = try body(connection)
        }

        override func report() {
            if let value { answer.resume(with: .success(value)) }
        }

        override func fail(_ error: any Error) { answer.resume(throwing: error.asMinkError) }
    }

    private struct WriterState {
        var pending: [Job] = []
        var drainScheduled = false
        var closed = false
    }

    final class ReaderSlot: @unchecked Sendable {
        // Invariant: `connection` is touched only on `queue`.
        let queue: DispatchQueue
        var connection: SQLiteConnection?
        init(label: String) { queue = DispatchQueue(label: label) }
    }

    let path: String
    let configuration: SQLiteConfiguration
    /// Every caller waits at most `configuration.timeout` from the moment its operation reached
    /// this database (see "Deadlines" in docs/storage-sqlite.md).
    let deadlines: OperationDeadlines
    private let writerQueue: DispatchQueue
    /// `writerQueue` as a task executor (``idleExecutor()``).
    private let writerExecutor: QueueExecutor
    private var writer: SQLiteConnection?
    /// The `synchronous` setting the writer connection has now (it is switched to NORMAL for a
    /// group of relaxed writes only); `nil` until the writer is opened.
    private var writerSynchronous: SQLiteConfiguration.Synchronous?
    private let state = Mutex(WriterState())
    private let readers: [ReaderSlot]
    private let readerLoad: Mutex<[Int]>
    private let ready = Atomic<Bool>(false)
    private let closedFlag = Atomic<Bool>(false)
    /// Group-commit transactions committed so far (statistics for tests and benchmarks).
    let transactionsCommitted = Atomic<Int>(0)
    /// Writes committed so far, over all transactions.
    let writesCommitted = Atomic<Int>(0)

    /// Whether reads leave a missing file missing: a tenant's own file (`database` strategy) is
    /// created by its first write, never by a read (reading an unknown tenant creates nothing).
    let createsFileOnWriteOnly: Bool

    /// Creates the database object; nothing is opened until the first write or ``prepare()``.
    /// - Parameter createsFileOnWriteOnly: reads of a missing file answer from an empty schema
    ///   instead of creating the file.
    init(path: String, configuration: SQLiteConfiguration, createsFileOnWriteOnly: Bool = false) {
        self.path = path
        self.configuration = configuration
        self.createsFileOnWriteOnly = createsFileOnWriteOnly
        deadlines = OperationDeadlines(timeout: configuration.timeout, storage: "SQLite")
        writerQueue = DispatchQueue(label: "mink.sqlite.writer")
        writerExecutor = QueueExecutor(queue: writerQueue)
        readers = (0..<configuration.readerCount).map { ReaderSlot(label: "mink.sqlite.reader\($0)") }
        readerLoad = Mutex([Int](repeating: 0, count: configuration.readerCount))
    }

    /// Opens the writer connection and migrates the schema, reporting any failure.
    func prepare() async throws {
        if ready.load(ordering: .acquiring) { return }
        try await write { _ in }
    }

    // MARK: Writes

    /// Runs `body` on the writer connection inside its own savepoint of a group-commit
    /// transaction; returns once the transaction committed, or throws a transient `.unavailable`
    /// at the operation's deadline (`configuration.timeout` from now) as `policy` allows. A write
    /// whose caller was answered before it started never runs; one answered while under way may
    /// still commit.
    /// - Parameter durability: `.relaxed` lets a group made only of relaxed writes commit without
    ///   an fsync (`synchronous = NORMAL` for that commit; see ``CommitDurability``).
    func write<T: Sendable>(
        policy: DeadlinePolicy = .always, durability: CommitDurability = .durable,
        _ body: @escaping @Sendable (SQLiteConnection) throws -> T
    ) async throws -> T {
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<T, any Error>) in
            let answer = deadlines.answer(continuation, policy: policy)
            enqueue(TypedJob(answer: answer, relaxed: durability == .relaxed, body: body))
        }
    }

    /// When the writer is open and idle (nothing queued, no group commit under way): its queue as
    /// an executor for the task about to write; otherwise `nil`.
    ///
    /// Why: a lone request's task that runs on the writer's queue queues its write behind itself
    /// on the same thread, and the commit's answer resumes it there — no thread woken to run the
    /// write, none to resume the task (a lone append went from about 8 context switches to 4,
    /// two of them the fsync's; see docs/storage-sqlite.md). Only when idle: under load the task
    /// would wait for (and delay) other callers' group commits.
    func idleExecutor() -> (any TaskExecutor)? {
        guard ready.load(ordering: .acquiring), !closedFlag.load(ordering: .relaxed) else { return nil }
        let idle = state.withLock { s in s.pending.isEmpty && !s.drainScheduled && !s.closed }
        return idle ? writerExecutor : nil
    }

    private func enqueue(_ job: Job) {
        let schedule: Bool? = state.withLock { s in
            if s.closed { return nil }
            s.pending.append(job)
            if s.drainScheduled { return false }
            s.drainScheduled = true
            return true
        }
        switch schedule {
        case nil: job.fail(MinkError(.cancelled, "the SQLite storage is closed"))
        // From a lone request's task running inline on the writer's queue (a thread lent by the
        // HTTP loop, ``QueueExecutor/runInline(_:)``): the queue is this thread's, so the group
        // commit runs now — one batch; what arrived meanwhile is left to the queue's own thread.
        case true? where writerExecutor.inlineBorrow.take(): drain(batches: 1)
        case true?: writerQueue.async { self.drain() }
        case false?: break
        }
    }

    /// On `writerQueue`: commits waiting writes in batches until none is left, or `batches` of
    /// them and hands the rest to the queue.
    private func drain(batches: Int = .max) {
        var left = batches
        while true {
            let batch: [Job] = state.withLock { s in
                if left == 0 {
                    if !s.pending.isEmpty { writerQueue.async { self.drain() } } else { s.drainScheduled = false }
                    return []
                }
                let n = min(s.pending.count, configuration.maxBatchSize)
                let batch = Array(s.pending.prefix(n))
                s.pending.removeFirst(n)
                if batch.isEmpty { s.drainScheduled = false }
                return batch
            }
            if batch.isEmpty { return }
            left -= 1
            // Relaxed writes (projection batches) waiting with durable ones commit first, in a
            // group of their own without an fsync, rather than wait for the durable group's
            // fsync; concurrent callers' writes have no order to keep between them.
            let relaxed = batch.filter(\.relaxed)
            if relaxed.isEmpty || relaxed.count == batch.count {
                commit(batch)
            } else {
                commit(relaxed)
                commit(batch.filter { !$0.relaxed })
            }
        }
    }

    private func openWriter() throws -> SQLiteConnection {
        if let writer { return writer }
        let connection = try SQLiteConnection(path: path, create: true, busyTimeoutMilliseconds: configuration.busyTimeoutMilliseconds)
        try connection.execute("PRAGMA journal_mode = WAL")
        try connection.execute("PRAGMA synchronous = \(configuration.synchronous.rawValue)")
        writerSynchronous = configuration.synchronous
        // Deleted streams and scavenged events must not stay readable in freed pages: SQLite
        // zeroes what a delete frees (the WAL keeps the old pages until a checkpoint; see
        // docs/storage-sqlite.md). Only the writer deletes.
        try connection.execute("PRAGMA secure_delete = ON")
        try SQLiteSchema.migrate(connection)
        writer = connection
        ready.store(true, ordering: .releasing)
        return connection
    }

    /// Closes the writer after the storage refused a write (read-only file or file system, full
    /// disk, I/O error): the next write opens it again. Why: SQLite opens a file it cannot write
    /// read-only without an error and stays read-only for the connection's life, so without a
    /// fresh open, writes would keep failing after the operator fixed the permissions.
    private func dropWriter() {
        writer?.close()
        writer = nil
        writerSynchronous = nil
    }

    /// Whether a write's failure says the storage refuses writes (rather than something about
    /// this write): then the writer is reopened before the next batch.
    private static func refusesWrites(_ error: any Error) -> Bool {
        let sqlite = error as? SQLiteError ?? (error as? MinkError)?.underlying as? SQLiteError
        guard let e = sqlite else { return false }
        return e.isReadOnly || e.isFull || e.code == SQLITE_IOERR || e.code == SQLITE_CANTOPEN
    }

    private func commit(_ waiting: [Job]) {
        // Writes whose callers were answered by their deadline while they waited never run (and
        // a batch of only those opens no transaction: the lock may still be held elsewhere).
        let batch = waiting.filter { !$0.isAnswered() }
        if batch.isEmpty { return }
        // From here to the commit's end the writer's thread may block — a lock held elsewhere,
        // an fsync that does not return: a task's job arriving then (a caller answered by its
        // deadline) runs elsewhere (``idleExecutor()``). Cleared before the callers are answered,
        // so that a lone caller's task resumes here, on this thread.
        writerExecutor.isBlocked.store(true, ordering: .releasing)
        let connection: SQLiteConnection
        do {
            // A writer SQLite opened read-only is opened again for each batch until the file
            // is writable (then the batch goes through; before, it fails with SQLITE_READONLY).
            if writer?.isReadOnly == true { dropWriter() }
            connection = try openWriter()
            // A group of only relaxed writes (projection batches with their checkpoints) commits
            // without an fsync; any durable write in the group makes the whole commit durable.
            // In WAL mode the commit order is the file's order: a later durable commit's fsync
            // covers the relaxed ones before it. (SQLite refuses the change inside a transaction.)
            try setSynchronous(batch.allSatisfy(\.relaxed) ? .normal : configuration.synchronous, on: connection)
            try connection.run("BEGIN IMMEDIATE")
        } catch {
            dropWriter()
            writerExecutor.isBlocked.store(false, ordering: .releasing)
            for job in batch { job.fail(error) }
            return
        }
        var outcomes: [(job: Job, error: (any Error)?)] = []
        outcomes.reserveCapacity(batch.count)
        // Jobs done with (run or skipped); the rest fail with the transaction if it breaks.
        var taken = 0
        do {
            for job in batch {
                // A caller answered while `BEGIN` waited for the lock: its write is not run, so it
                // never commits (and its caller's 503 is not in doubt).
                guard job.start() else {
                    taken += 1
                    continue
                }
                try connection.run("SAVEPOINT mink_write")
                do {
                    try job.run(on: connection)
                    try connection.run("RELEASE mink_write")
                    outcomes.append((job, nil))
                    taken += 1
                } catch {
                    // SQLite may have rolled the whole transaction back by itself (I/O error, full
                    // disk); then the savepoint is gone and the batch fails as a whole below.
                    guard !connection.isAutocommit else { throw error }
                    try connection.run("ROLLBACK TO mink_write")
                    try connection.run("RELEASE mink_write")
                    outcomes.append((job, error))
                    taken += 1
                }
            }
            try connection.run("COMMIT")
            transactionsCommitted.add(1, ordering: .relaxed)
            writesCommitted.add(outcomes.count { $0.error == nil }, ordering: .relaxed)
        } catch {
            if !connection.isAutocommit { try? connection.run("ROLLBACK") }
            dropWriter()
            writerExecutor.isBlocked.store(false, ordering: .releasing)
            // Nothing of this batch is committed: a write that failed on its own reports its own
            // error, every other one the error that broke the transaction.
            for o in outcomes { o.job.fail(o.error ?? error) }
            for job in batch.dropFirst(taken) { job.fail(error) }
            return
        }
        // A write refused by the storage fails alone (its savepoint rolled back) while the
        // transaction commits; the writer is still reopened for the next batch.
        if outcomes.contains(where: { $0.error.map(Self.refusesWrites) ?? false }) { dropWriter() }
        writerExecutor.isBlocked.store(false, ordering: .releasing)
        for o in outcomes {
            if let error = o.error { o.job.fail(error) } else { o.job.report() }
        }
    }

    /// Switches the writer's `synchronous` setting when it differs (it applies to the next
    /// commit). Never stricter than configured: `.normal` configured stays `.normal`.
    private func setSynchronous(_ wanted: SQLiteConfiguration.Synchronous, on connection: SQLiteConnection) throws {
        let level = configuration.synchronous == .normal ? .normal : wanted
        guard writerSynchronous != level else { return }
        try connection.execute("PRAGMA synchronous = \(level.rawValue)")
        writerSynchronous = level
    }

    /// Writes one row through the group commit (a table of its own, one row overwritten), so
    /// that a database refusing writes — a read-only file, directory or file system, a full
    /// disk — says so now (readiness), not at the next append.
    /// - Throws: `.unavailable` when the write fails.
    func probeWrite() async throws {
        if let free = Self.freeBytes(near: path), free < configuration.minimumFreeBytes {
            throw MinkError(
                .unavailable,
                "the disk holding the database is full: \(free) bytes free (below \(configuration.minimumFreeBytes))",
                isTransient: true
            )
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await write { c in
            try c.execute(
                "CREATE TABLE IF NOT EXISTS mink_write_probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL); "
                    + "INSERT OR REPLACE INTO mink_write_probe (id, at) VALUES (1, \(now))"
            )
        }
    }

    /// The bytes this process may still write on the file system holding `path` (its directory
    /// when the file does not exist yet): the blocks available to anyone, or all free blocks for
    /// root (which may use the reserved ones). `nil` when the file system does not say.
    static func freeBytes(near path: String) -> Int64? {
        var st = statvfs()
        let directory = (path as NSString).deletingLastPathComponent
        guard statvfs(path, &st) == 0 || statvfs(directory.isEmpty ? "." : directory, &st) == 0 else { return nil }
        // ramfs, an unlimited tmpfs and some FUSE file systems report no blocks at all: unknown.
        guard st.f_blocks > 0 else { return nil }
        let blocks = geteuid() == 0 ? st.f_bfree : st.f_bavail
        let (bytes, overflow) = UInt64(blocks).multipliedReportingOverflow(by: UInt64(st.f_frsize))
        return overflow ? Int64.max : Int64(clamping: bytes)
    }

    // MARK: Reads

    /// Runs `body` on the least busy reader connection (WAL: it sees the last committed state and
    /// never waits for the writer). At the operation's deadline (`configuration.timeout` from now)
    /// the caller gets a transient `.unavailable`, whether the read is still queued or under way.
    func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        if closedFlag.load(ordering: .relaxed) { throw MinkError(.cancelled, "the SQLite storage is closed") }
        if !ready.load(ordering: .acquiring) {
            if createsFileOnWriteOnly && !FileManager.default.fileExists(atPath: path) { return try await readEmpty(body) }
            try await prepare()
        }
        let index = readerLoad.withLock { load in
            let i = load.indices.min { load[$0] < load[$1] }!
            load[i] += 1
            return i
        }
        defer { readerLoad.withLock { $0[index] -= 1 } }
        let slot = readers[index]
        let path = self.path, timeout = configuration.busyTimeoutMilliseconds
        return try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<T, any Error>) in
            let answer = deadlines.answer(continuation)
            let run: @Sendable () -> Void = {
                guard answer.start() else { return }
                do {
                    let connection: SQLiteConnection
                    if let c = slot.connection {
                        connection = c
                    } else {
                        connection = try SQLiteConnection(path: path, create: false, busyTimeoutMilliseconds: timeout)
                        try connection.execute("PRAGMA query_only = 1")
                        slot.connection = connection
                    }
                    answer.resume(with: .success(try body(connection)))
                } catch {
                    answer.resume(throwing: error.asMinkError)
                }
            }
            // A lone request's task on a thread the HTTP loop lent it (``QueueExecutor/runInline(_:)``)
            // reads on that thread, inside the reader's queue, instead of waking the reader's thread.
            if writerExecutor.inlineBorrow.take() { slot.queue.sync(execute: run) } else { slot.queue.async(execute: run) }
        }
    }

    /// Runs a read against an empty, migrated in-memory database: what a file that does not exist
    /// yet would answer. On reader slot 0's queue, like every other blocking SQLite call.
    private func readEmpty<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        let timeout = configuration.busyTimeoutMilliseconds
        return try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<T, any Error>) in
            let answer = deadlines.answer(continuation)
            readers[0].queue.async {
                guard answer.start() else { return }
                do {
                    let connection = try SQLiteConnection(path: ":memory:", create: true, busyTimeoutMilliseconds: timeout)
                    defer { connection.close() }
                    try SQLiteSchema.migrate(connection)
                    answer.resume(with: .success(try body(connection)))
                } catch {
                    answer.resume(throwing: error.asMinkError)
                }
            }
        }
    }

    // MARK: Closing

    /// Lets queued writes finish, then closes every connection. Later calls fail with `.cancelled`.
    func close() async {
        closedFlag.store(true, ordering: .relaxed)
        state.withLock { $0.closed = true }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            // The writer queue is serial: this runs after any scheduled drain.
            writerQueue.async {
                self.writer?.close()
                self.writer = nil
                c.resume()
            }
        }
        for slot in readers {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                slot.queue.async {
                    slot.connection?.close()
                    slot.connection = nil
                    c.resume()
                }
            }
        }
    }
}

/// A serial queue as a task executor: a task that prefers it runs its jobs on the queue, between
/// the queue's own work (``SQLiteDatabase/idleExecutor()``) — except while ``isBlocked`` says the
/// queue's thread may be stuck (a group commit waiting for a lock or an fsync): then on a thread
/// of the global pool, so that a caller answered by its deadline gets its answer at the deadline,
/// not when the writer comes back (a lone append waited 5 s for a `1 s` deadline, found by a
/// black-box audit, 2026-12-07). The task's jobs never touch the writer's connection themselves,
/// so where they run is free.
final class QueueExecutor: InlineTaskExecutor {
    let queue: DispatchQueue
    /// Set by the queue's owner while its thread may block (``SQLiteDatabase``'s group commit).
    let isBlocked = Atomic<Bool>(false)
    /// Which thread runs inline on the queue (``runInline(_:)``): the first group commit or read it
    /// starts there runs at once on it (``SQLiteDatabase``).
    let inlineBorrow = InlineBorrow()

    /// Runs `body` on the calling thread while it holds the queue (a thread the HTTP loop lends a
    /// lone request, docs/http-transport.md).
    func runInline(_ body: () -> Void) {
        inlineBorrow.run(on: queue, body)
    }

    init(queue: DispatchQueue) { self.queue = queue }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let target = isBlocked.load(ordering: .acquiring) ? DispatchQueue.global() : queue
        target.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

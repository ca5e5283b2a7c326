import Dispatch
import Foundation
import Mink
@testable import MinkPostgres
import MinkTestFixtures
import Synchronization
import Testing

/// A lone append's task pinned to the quiet pool's worker (the executor minkd gives it) starts the
/// group-commit drain on that same worker. Its answer is queued on the worker's queue behind the
/// drain's block; the drain gives the queue back after the batch that answered it (its next batch
/// comes from a new borrow, behind the task), instead of going on with the appends that arrived
/// meanwhile (up to `batchesPerConnection` batches, each with a renewed deadline) while the
/// answered task waits (it resumed only after the slow next batch's 4 s; with a 1 s storage
/// timeout, that was past its deadline).
@Suite("PostgreSQL: a pinned task is not held behind a drain", .timeLimit(.minutes(2)))
struct PostgresPinnedDrainTests {
    /// Far above how long the setup and the lone append's wait for the lock take on a busy
    /// machine (a full parallel run once took over 6 s), so that nothing fails by its deadline.
    static let timeout: Duration = .seconds(60)
    static let slowBatch: Double = 4

    enum Mode { case unpinned, pinned, lent }

    /// Seconds from the moment the held batch is let go to the moment the lone append's task
    /// resumes: without the idle executor, with it, or lent a thread (``LendingExecutor``).
    static func delay(_ mode: Mode) async throws -> Double {
        let s = try await TestServer.storage(timeout: timeout)
        defer { Task { await s.shutdown() } }
        // The schema exists (and the pool has opened a connection) before the lock is taken.
        _ = try await s.append(request("warm", [event()]), hook: nil)
        try await Task.sleep(for: .milliseconds(50))
        let key = s.scope.appendLockKey
        let locker = try PostgresConnection(parameters: [("dbname", try TestServer.url()), ("connect_timeout", "2")])
        defer { locker.close() }
        try locker.query("SELECT pg_advisory_lock($1::int8)", [.int(key)])

        var executor: (any TaskExecutor)?
        if mode != .unpinned {
            // Polled: the storage's own background work may hold a connection for a moment.
            for _ in 0..<1000 where executor == nil {
                executor = s.idleExecutor()
                if executor == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            try #require(executor != nil, "the pool was never quiet")
        }
        if mode == .lent {
            let lending = LendingExecutor(worker: try #require(executor as? any InlineTaskExecutor))
            lending.start()
            executor = lending
        }
        // The lone request: its append's batch waits for the tenant's lock on the worker.
        let lone = Task(executorPreference: executor) { () throws -> ContinuousClock.Instant in
            _ = try await s.append(request("lone", [event()]), hook: nil)
            return ContinuousClock.now
        }
        // Wait until that batch waits for the lock.
        let bits = UInt64(bitPattern: key)
        var waiting: Int64 = 0
        for _ in 0..<2000 where waiting == 0 {
            waiting = try locker.query(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = $1::oid AND objid = $2::oid",
                [.int(Int64(bits >> 32)), .int(Int64(bits & 0xffff_ffff))]
            ).int64(0, 0) ?? 0
            if waiting == 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        try #require(waiting > 0, "the lone append's batch never waited for the lock")
        // Load arrives: another append (on the global executor) joins the queue for the next batch,
        // which is slow (an inline projection's hook; or a lock held by another process).
        let other = Task {
            try? await s.append(request("other", [event()]), hook: { _, _ in usleep(UInt32(slowBatch * 1_000_000)) })
        }
        // Queued behind the lone append's batch (which holds the drain) before the lock goes.
        let batcher = s.scope.backend.appender(for: s.scope)
        for _ in 0..<2000 where batcher.pendingCount == 0 { try await Task.sleep(for: .milliseconds(10)) }
        try #require(batcher.pendingCount == 1, "the other append was not queued")
        let released = ContinuousClock.now
        try locker.query("SELECT pg_advisory_unlock($1::int8)", [.int(key)])
        let resumed = try await lone.value
        _ = await other.value
        let d = released.duration(to: resumed)
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    @Test func unpinnedLoneAppendIsAnsweredAtOnce() async throws {
        let d = try await Self.delay(.unpinned)
        #expect(d < 2, "unpinned: resumed \(d) s after its batch could commit")
    }

    @Test func pinnedLoneAppendIsAnsweredAtOnce() async throws {
        let d = try await Self.delay(.pinned)
        // Held behind the slow batch, it resumed after it (4 s).
        #expect(d < 2, "pinned: resumed \(d) s after its batch could commit")
    }

    /// Lent a thread (the HTTP loop's, docs/http-transport.md): the drain runs inline on it, answers
    /// the lone append's batch and hands the slow next one to the worker's queue, instead of
    /// writing it before the lone task can go on.
    @Test func lentLoneAppendIsAnsweredAtOnce() async throws {
        let d = try await Self.delay(.lent)
        #expect(d < 2, "lent: resumed \(d) s after its batch could commit")
    }
}

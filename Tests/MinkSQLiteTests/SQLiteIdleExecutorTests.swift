import CSQLite
import Dispatch
import Foundation
import Mink
@testable import MinkSQLite
import MinkTestFixtures
import Synchronization
import Testing

/// A request alone on a quiet SQLite storage runs on the writer's queue
/// (``SQLiteDatabase/idleExecutor()``), so its write and the task share one thread.
@Suite("SQLite writer executor", .timeLimit(.minutes(2)))
struct SQLiteIdleExecutorTests {
    /// The writer's executor once the writer is idle: right after a write returns, its drain may
    /// not yet have found the queue empty (then `idleExecutor()` says `nil`, as under load).
    static func idle(_ s: SQLiteStorage) async throws -> any TaskExecutor {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let e = s.idleExecutor() { return e }
            try await Task.sleep(for: .milliseconds(2))
        }
        return try #require(s.idleExecutor(), "the writer never became idle")
    }

    /// A thread lent the idle writer's executor, as the HTTP loop lends its poller thread.
    static func lending(_ s: SQLiteStorage) async throws -> LendingExecutor {
        let lending = LendingExecutor(worker: try #require(try await idle(s) as? any InlineTaskExecutor))
        lending.start()
        return lending
    }

    /// A task preferring the idle writer's executor runs its write's body on its own thread: the
    /// write is queued behind the task on the same queue, not handed to another thread.
    @Test func aTaskOnTheIdleExecutorWritesOnItsOwnThread() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        let executor = try await Self.idle(s)
        let (taskThread, bodyThread, answer) = try await Task(executorPreference: executor) {
            let before = pthread_self()
            let (thread, value) = try await s.database.write { _ in (pthread_self(), 42) }
            return (before, thread, value)
        }.value
        #expect(answer == 42)
        #expect(pthread_equal(taskThread, bodyThread) != 0, "the write ran on the task's thread")
        await s.close()
        #expect(s.idleExecutor() == nil, "a closed storage names none")
    }

    /// A task lent a thread (the HTTP loop's, docs/http-transport.md) runs its write's group commit
    /// on that thread, inside the writer's queue; the commit takes one batch, and writes queued
    /// meanwhile go to the writer's own thread, so the lent task is answered without waiting for
    /// them.
    @Test func aLentTaskCommitsOnItsThreadOneBatch() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        let lending = try await Self.lending(s)
        let (entered, enteredContinuation) = AsyncStream.makeStream(of: Void.self)
        let go = DispatchSemaphore(value: 0)
        let lent = Task(executorPreference: lending) { () throws -> (pthread_t, pthread_t, ContinuousClock.Instant) in
            let before = pthread_self()
            let thread = try await s.database.write { _ in
                enteredContinuation.yield()
                _ = go.wait(timeout: .now() + 30)
                return pthread_self()
            }
            return (before, thread, ContinuousClock.now)
        }
        var it = entered.makeAsyncIterator()
        _ = await it.next()
        // Queued behind the lent write's batch: slow.
        let other = Task { () throws -> ContinuousClock.Instant in
            _ = try await s.database.write { _ in usleep(3_000_000) }
            return ContinuousClock.now
        }
        try await Task.sleep(for: .milliseconds(200))
        go.signal()
        let (taskThread, bodyThread, answered) = try await lent.value
        let otherDone = try await other.value
        #expect(pthread_equal(taskThread, bodyThread) != 0, "the group commit ran on the lent thread")
        #expect(pthread_equal(taskThread, try #require(lending.thread)) != 0)
        #expect(answered.duration(to: otherDone) > .seconds(2), "the lent task waited for the next batch")
        await s.close()
    }

    /// A lent task's read runs on the lent thread too (inside the reader's queue), not on the
    /// reader's own thread.
    @Test func aLentTaskReadsOnItsThread() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        let lending = try await Self.lending(s)
        let (taskThread, readThread, value) = try await Task(executorPreference: lending) {
            let before = pthread_self()
            let (thread, value) = try await s.database.read { c in (pthread_self(), try c.int("SELECT 40 + 2")) }
            return (before, thread, value)
        }.value
        #expect(value == 42)
        #expect(pthread_equal(taskThread, readThread) != 0, "the read ran on the lent thread")
        await s.close()
    }

    /// While a group commit is under way (or writes wait) the writer is not idle: no executor.
    @Test func aBusyWriterNamesNoExecutor() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        _ = try await Self.idle(s)
        let (entered, enteredContinuation) = AsyncStream.makeStream(of: Void.self)
        let release = DispatchSemaphore(value: 0)
        let holder = Task {
            try await s.database.write { _ in
                enteredContinuation.yield()
                _ = release.wait(timeout: .now() + 30)  // on the writer's queue
            }
        }
        var it = entered.makeAsyncIterator()
        _ = await it.next()
        #expect(s.idleExecutor() == nil)
        release.signal()
        try await holder.value
        _ = try await Self.idle(s)
        await s.close()
    }

    /// With a file per tenant the request's tenant decides the writer: no executor is named.
    @Test func aFilePerTenantNamesNoExecutor() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let s = try await SQLiteStorage.open(directory: dir.path, strategy: .database)
        try await s.append("t-1", [ev("A")])
        #expect(s.idleExecutor() == nil)
        await s.close()
    }

    /// Appends made one after the other from tasks on the idle executor give the answers the
    /// usual path gives, and are all stored; a conflict is reported as usual.
    @Test func appendsFromTheIdleExecutorAreStored() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        for i in 1...5 {
            let executor = try await Self.idle(s)
            let r = try await Task(executorPreference: executor) {
                try await s.append("exec-1", [ev("E")], .exact(Int64(i - 1)))
            }.value
            #expect(r.events.map(\.version) == [Int64(i)])
        }
        let executor = try await Self.idle(s)
        await #expect(throws: MinkError.self) {
            try await Task(executorPreference: executor) { try await s.append("exec-1", [ev("E")], .exact(1)) }.value
        }
        let events = try await s.readStream("exec-1", from: 1, limit: 10, direction: .forward)
        #expect(events.map(\.version) == Array(1...5))
        await s.close()
    }
    /// A task on the writer's executor whose write waits for a lock held elsewhere gets its
    /// deadline's answer at the deadline: while the writer's thread is blocked, the task's jobs
    /// run elsewhere (they waited for the writer: a `1 s` deadline answered after the 5 s lock wait).
    @Test func aBlockedWriterDoesNotHoldItsTasksDeadlineAnswer() async throws {
        // The file is created (and migrated) with the default timeout first: on a loaded machine
        // (the whole suite on two cores) that first write alone took longer than 1 s in CI.
        let (first, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        await first.close()
        let s = try await SQLiteStorage.open(path: dir.file(), configuration: SQLiteConfiguration(busyTimeout: .seconds(12), timeout: .seconds(2)))
        var other: OpaquePointer?
        #expect(sqlite3_open(dir.file(), &other) == SQLITE_OK)
        defer { sqlite3_close(other) }
        #expect(sqlite3_exec(other, "BEGIN IMMEDIATE", nil, nil, nil) == SQLITE_OK)
        let executor = try await Self.idle(s)
        let start = ContinuousClock.now
        let outcome = await Task(executorPreference: executor) { () -> (any Error)? in
            do {
                try await s.append("blocked-1", [ev("E")])
                return nil
            } catch {
                return error
            }
        }.value
        let elapsed = ContinuousClock.now - start
        #expect((outcome as? MinkError)?.code == .unavailable, "\(String(describing: outcome))")
        #expect(elapsed < .seconds(8), "answered after \(elapsed), the deadline is 2 s (the lock wait 12 s)")
        #expect(sqlite3_exec(other, "ROLLBACK", nil, nil, nil) == SQLITE_OK)
        await s.close()
    }

    /// Lock waits count against the storage timeout: the busy timeout is the timeout unless set.
    @Test func theBusyTimeoutIsTheStorageTimeoutByDefault() {
        #expect(SQLiteConfiguration(timeout: .seconds(10)).busyTimeout == .seconds(10))
        #expect(SQLiteConfiguration(timeout: .seconds(1)).busyTimeoutMilliseconds == 1000)
        #expect(SQLiteConfiguration(busyTimeout: .milliseconds(50)).busyTimeout == .milliseconds(50))
    }
}

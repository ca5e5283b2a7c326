import Dispatch
import Foundation
import Mink
@testable import MinkPostgres
import Synchronization
import Testing

/// A request alone on a quiet pool runs on the queue of the connection it will borrow
/// (``ConnectionPool/idleExecutor()``), so the connection's work and the task share one thread.
@Suite("PostgreSQL connection executors", .timeLimit(.minutes(2)))
struct PostgresIdleExecutorTests {
    static func pool(size: Int) throws -> ConnectionPool {
        let config = PostgresConfiguration(connectionString: try TestServer.url(), poolSize: size, schema: TestServer.freshName(), connectTimeoutSeconds: 30)
        return ConnectionPool(label: "test.idle", size: size, parameters: config.connectionParameters(database: nil), timeout: .seconds(30))
    }

    /// A task preferring the quiet pool's executor runs on the thread that then runs its borrow's
    /// body: the borrow is queued behind the task on the same queue, not handed to another thread.
    @Test func aTaskOnTheIdleExecutorBorrowsOnItsOwnThread() async throws {
        let pool = try Self.pool(size: 3)
        let executor = try #require(pool.idleExecutor())
        let (taskThread, bodyThread, answer) = try await Task(executorPreference: executor) {
            let before = pthread_self()
            let (thread, value) = try await pool.withConnection { conn in (pthread_self(), try conn.query("SELECT 40 + 2").int64(0, 0)) }
            return (before, thread, value)
        }.value
        #expect(answer == 42)
        #expect(pthread_equal(taskThread, bodyThread) != 0, "the borrow's body ran on the task's thread")
        await pool.close()
    }

    /// A thread running a job inline on the idle executor (the HTTP loop's lent poller thread,
    /// docs/http-transport.md) runs the connection work that job starts itself, before
    /// `runInline` returns: no thread is woken for it.
    @Test func workStartedInlineRunsOnTheCallingThread() async throws {
        let pool = try Self.pool(size: 2)
        let executor = try #require(pool.idleExecutor() as? any InlineTaskExecutor)
        let outcome = Mutex<Result<(pthread_t, Int64?), any Error>?>(nil)
        let caller = pthread_self()
        executor.runInline {
            let started = pool.runIfIdle({ conn in (pthread_self(), try conn.query("SELECT 40 + 2").int64(0, 0)) }) { r in
                outcome.withLock { $0 = r }
            }
            #expect(started)
        }
        let (thread, value) = try #require(outcome.withLock { $0 }, "the work had not run when runInline returned").get()
        #expect(value == 42)
        #expect(pthread_equal(thread, caller) != 0, "the connection work ran on the calling thread")
        await pool.close()
    }

    /// With a connection borrowed (or callers waiting) the pool is not quiet: no executor.
    @Test func aBusyPoolNamesNoExecutor() async throws {
        let pool = try Self.pool(size: 2)
        #expect(pool.idleExecutor() != nil)
        let (entered, enteredContinuation) = AsyncStream.makeStream(of: Void.self)
        let release = DispatchSemaphore(value: 0)
        let holder = Task {
            try await pool.withConnection { _ in
                enteredContinuation.yield()
                _ = release.wait(timeout: .now() + 30)  // on the connection's queue
            }
        }
        var it = entered.makeAsyncIterator()
        _ = await it.next()
        #expect(pool.idleExecutor() == nil)
        release.signal()
        try await holder.value
        #expect(pool.idleExecutor() != nil)
        await pool.close()
        #expect(pool.idleExecutor() == nil, "a closed pool names none")
    }

    /// Appends made one after the other from a task on the storage's idle executor give the
    /// answers the usual path gives, and are all stored.
    @Test func appendsFromTheIdleExecutorAreStored() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        for i in 1...5 {
            let executor = s.idleExecutor()
            let r = try await Task(executorPreference: executor) {
                try await s.append(request("exec-1", [event()], .exact(Int64(i - 1))), hook: nil)
            }.value
            #expect(r.events.map(\.version) == [Int64(i)])
        }
        let events = try await s.readStream("exec-1", from: 1, limit: 10, direction: .forward)
        #expect(events.map(\.version) == Array(1...5))
    }
}

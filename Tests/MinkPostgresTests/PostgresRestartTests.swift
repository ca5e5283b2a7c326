import Foundation
import Mink
import MinkPostgres
import Testing

/// Runs against the second cluster of `scripts/with-postgres`, which only these tests stop and
/// start, so tests on the main cluster keep running in parallel.
@Suite("PostgresStorage restarts", .serialized, .timeLimit(.minutes(3)))
struct PostgresRestartTests {
    @Test func operationsFailTransientlyWhileDownAndRecoverWithTheSameObject() async throws {
        let url = try TestServer.environment("MINK_TEST_POSTGRES_RESTART_URL")
        let stop = try TestServer.environment("MINK_TEST_PG_STOP_CMD")
        let start = try TestServer.environment("MINK_TEST_PG_START_CMD")
        let s = try await TestServer.storage(poolSize: 3, url: url)
        defer { Task { await s.shutdown() } }

        // Warm several pooled connections so that stale ones are exercised after the restart.
        try await withThrowingTaskGroup(of: Void.self) { g in
            for i in 0..<3 { g.addTask { _ = try await s.append(request("r\(i)-1", [event()]), hook: nil) } }
            try await g.waitForAll()
        }
        let commits = try #require(s.externalCommits())
        let deadline = ContinuousClock.now + .seconds(10)
        while s.listenerConnectionCount == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(s.listenerConnectionCount == 1)

        try await TestServer.shell(stop)
        do {
            let e = await expectMinkError(.unavailable) { try await s.append(request("r0-1", [event()]), hook: nil) }
            #expect(e?.isTransient == true)
            let e2 = await expectMinkError(.unavailable) { try await s.headPosition() }
            #expect(e2?.isTransient == true)
            await expectMinkError(.unavailable) { try await s.readAll(after: 0, filter: .all, limit: 10) }
        }
        try await TestServer.shell(start)

        // The same object works again at once: no recreation, no failed first call.
        let r = try await s.append(request("r0-1", [event()]), hook: nil)
        #expect(r.fromPosition == 4)
        try await withThrowingTaskGroup(of: Void.self) { g in
            for _ in 0..<6 { g.addTask { _ = try await s.headPosition() } }
            try await g.waitForAll()
        }
        #expect(try await s.headPosition() == 4)

        // The listener reconnects and wakes its subscribers once, since commits may have been missed.
        #expect(await next(commits, within: 15), "no wake-up after the listener reconnected")
        #expect(s.listenerConnectionCount >= 2)
    }
}

import Foundation
import Mink
import MinkPostgres
import MinkTestFixtures
import Testing

/// Runs against the second cluster of `scripts/with-postgres`, which only these tests stop and
/// start, so tests on the main cluster keep running in parallel.
@Suite("PostgresStorage restarts", .serialized, .timeLimit(.minutes(3)))
struct PostgresRestartTests {
    @Test func operationsFailTransientlyWhileDownAndRecoverWithTheSameObject() async throws {
        let url = try TestServer.environment("MINK_TEST_POSTGRES_RESTART_URL")
        let stop = try TestServer.environment("MINK_TEST_PG_STOP_CMD")
        let start = try TestServer.environment("MINK_TEST_PG_START_CMD")
        let lock = try await RestartCluster.lock()
        defer { lock.release() }
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

    /// A frozen server (SIGSTOP: a VM pause, a stuck volume, a partition look the same) fails
    /// every operation with `.unavailable` within the storage timeout instead of holding it for
    /// as long as the freeze lasts; the pool is not pinned (more callers than connections all get
    /// their answer); after SIGCONT the same object works again, and an append that timed out
    /// is settled by an idempotent retry: its events are stored exactly once.
    @Test(.timeLimit(.minutes(2))) func frozenServerFailsWithinTheTimeoutAndRecovers() async throws {
        let url = try TestServer.environment("MINK_TEST_POSTGRES_RESTART_URL")
        let lock = try await RestartCluster.lock()
        defer { lock.release() }
        let timeout = Duration.seconds(2)
        let config = PostgresConfiguration(
            connectionString: url, poolSize: 2, schema: TestServer.freshName(), connectTimeoutSeconds: 2, timeout: timeout
        )
        let s = try await PostgresStorage(configuration: config)
        defer { Task { await s.shutdown() } }
        _ = try await s.append(request("f-warm", [event()]), hook: nil)

        try RestartCluster.signal(SIGSTOP)
        var thawed = false
        defer { if !thawed { try? RestartCluster.signal(SIGCONT) } }

        // Six appends (with known event IDs) and three reads on a pool of two connections.
        let ids = (0..<6).map { _ in UUID().uuidString.lowercased() }
        let start = ContinuousClock.now
        let outcomes: [(String, Duration, (any Error)?)] = await withTaskGroup(of: (String, Duration, (any Error)?).self) { g in
            for (i, id) in ids.enumerated() {
                g.addTask {
                    do {
                        _ = try await s.append(request("f-\(i)", [event(id: id)]), hook: nil)
                        return ("append \(i)", start.duration(to: .now), nil)
                    } catch { return ("append \(i)", start.duration(to: .now), error) }
                }
            }
            g.addTask {
                do { _ = try await s.headPosition(); return ("head", start.duration(to: .now), nil) } catch {
                    return ("head", start.duration(to: .now), error)
                }
            }
            g.addTask {
                do { _ = try await s.readAll(after: 0, filter: .all, limit: 10); return ("readAll", start.duration(to: .now), nil) } catch {
                    return ("readAll", start.duration(to: .now), error)
                }
            }
            g.addTask {
                do { _ = try await s.readStream("f-warm", from: 1, limit: 10, direction: .forward); return ("load", start.duration(to: .now), nil) } catch {
                    return ("load", start.duration(to: .now), error)
                }
            }
            var all: [(String, Duration, (any Error)?)] = []
            for await o in g { all.append(o) }
            return all
        }
        // The server is still frozen here: whatever returned did so without it.
        try RestartCluster.signal(SIGCONT)
        thawed = true
        for (name, elapsed, error) in outcomes {
            let e = error as? MinkError
            #expect(e?.code == .unavailable, "\(name) after \(elapsed): \(String(describing: error))")
            #expect(e?.isTransient == true, "\(name)")
        }
        // Not a speed target: the calls must not have waited for the thaw (a generous multiple
        // of the timeout, for a loaded machine).
        let slowest = outcomes.map(\.1).max() ?? .zero
        #expect(slowest < timeout * 6, "slowest call returned after \(slowest)")

        // The same object works again, and each timed-out append is settled by its retry.
        for (i, id) in ids.enumerated() {
            var stored: AppendResult?
            let retryUntil = ContinuousClock.now + .seconds(20)
            while stored == nil, ContinuousClock.now < retryUntil {
                do { stored = try await s.append(request("f-\(i)", [event(id: id)]), hook: nil) } catch let e as MinkError where e.code == .unavailable {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(stored?.toVersion == 1, "append \(i): \(String(describing: stored))")
            let events = try await s.readStream("f-\(i)", from: 1, limit: 10, direction: .forward)
            #expect(events.map(\.id) == [id])
        }
        #expect(try await s.headPosition() == 7)
    }
}

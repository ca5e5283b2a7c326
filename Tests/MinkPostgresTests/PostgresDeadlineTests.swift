import Foundation
import Mink
@testable import MinkPostgres
import MinkTestFixtures
import Testing

/// An append's deadline counts from its own arrival, not from the start of the batch it ends
/// up in (runs against the second cluster of `scripts/with-postgres`, which it freezes).
@Suite("PostgreSQL deadlines", .serialized, .timeLimit(.minutes(3)))
struct PostgresDeadlineTests {
    /// Appends queued behind a batch on a frozen server (SIGSTOP) answer `.unavailable` about one
    /// timeout after they arrived. Before, they waited for the stuck batch's own deadline and
    /// then for their batch's (with the reconnection to the frozen server): nearly twice.
    @Test(.timeLimit(.minutes(2))) func appendsQueuedBehindAStuckBatchAnswerWithinOneTimeout() async throws {
        let url = try TestServer.environment("MINK_TEST_POSTGRES_RESTART_URL")
        let lock = try await RestartCluster.lock()
        defer { lock.release() }
        let timeout = Duration.seconds(5)
        // connect_timeout above the storage timeout: a reconnection is bounded by the deadline.
        let config = PostgresConfiguration(
            connectionString: url, poolSize: 2, schema: TestServer.freshName("dl_"), connectTimeoutSeconds: 30, timeout: timeout
        )
        let s = try await PostgresStorage(configuration: config)
        defer { Task { await s.shutdown() } }
        _ = try await s.append(request("q-warm", [event()]), hook: nil)

        try RestartCluster.signal(SIGSTOP)
        var thawed = false
        defer { if !thawed { try? RestartCluster.signal(SIGCONT) } }

        let ids = (0..<3).map { _ in UUID().uuidString.lowercased() }
        // The first append's batch goes to the frozen server; the two others arrive while it is
        // stuck, half the timeout later, and queue behind it.
        let outcomes: [(Int, Duration, (any Error)?)] = await withTaskGroup(of: (Int, Duration, (any Error)?).self) { g in
            for (i, id) in ids.enumerated() {
                g.addTask {
                    if i > 0 { try? await Task.sleep(for: timeout / 2) }
                    let sent = ContinuousClock.now
                    do {
                        _ = try await s.append(request("q-\(i)", [event(id: id)]), hook: nil)
                        return (i, sent.duration(to: .now), nil)
                    } catch { return (i, sent.duration(to: .now), error) }
                }
            }
            var all: [(Int, Duration, (any Error)?)] = []
            for await o in g { all.append(o) }
            return all
        }
        try RestartCluster.signal(SIGCONT)
        thawed = true
        for (i, elapsed, error) in outcomes {
            let e = error as? MinkError
            #expect(e?.code == .unavailable, "append \(i) after \(elapsed): \(String(describing: error))")
            #expect(e?.isTransient == true, "append \(i)")
            // Not a speed target: one timeout from the append's own arrival plus slack; the
            // queued appends took 1.5 timeouts (7.5 s) when their clock started with their batch.
            #expect(elapsed < timeout + .milliseconds(1500), "append \(i) answered \(elapsed) after it was sent")
        }

        // After the thaw: each append settled by its retry, stored exactly once.
        for (i, id) in ids.enumerated() {
            var stored: AppendResult?
            let retryUntil = ContinuousClock.now + .seconds(30)
            while stored == nil, ContinuousClock.now < retryUntil {
                do { stored = try await s.append(request("q-\(i)", [event(id: id)]), hook: nil) } catch let e as MinkError where e.code == .unavailable {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(stored?.toVersion == 1, "append \(i): \(String(describing: stored))")
            let events = try await s.readStream("q-\(i)", from: 1, limit: 10, direction: .forward)
            #expect(events.map(\.id) == [id])
        }
        #expect(try await s.headPosition() == 4)
    }
}

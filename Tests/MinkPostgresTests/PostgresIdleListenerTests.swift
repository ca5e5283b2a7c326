import Foundation
@testable import Mink
@testable import MinkPostgres
import Testing

/// With a database per tenant, a tenant database's listening connection is not kept for the
/// process's life: a subscription hub with nobody waiting for the database's `idleTimeout` gives
/// its streams back, the listener closes with its last stream, and the next waiter listens again
/// (docs/storage-postgres.md, *Connections*).
@Suite("PostgreSQL idle tenant listeners", .timeLimit(.minutes(2)))
struct PostgresIdleListenerTests {
    /// Waits until `condition` holds, failing the test with `what` after `seconds`.
    private func wait(_ what: String, within seconds: Double = 20, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while try await !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting for \(what)")
                throw TestSetupError(description: "timed out waiting for \(what)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Sessions on the tenant's database holding the listeners' presence lock (every listening
    /// connection takes it right after `LISTEN`).
    private func listeningSessions(_ s: PostgresStorage) async throws -> Int64 {
        try await s.scope.backend.pool.withConnection { conn in
            try conn.query(
                """
                SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                AND classid = \(CommitListener.presenceKey.0) AND objid = \(CommitListener.presenceKey.1) AND objsubid = 2
                """
            ).int64(0, 0) ?? -1
        }
    }

    @Test func aTenantDatabasesListenerClosesWithNobodyWaitingAndTheNextWaiterListensAgain() async throws {
        let prefix = TestServer.freshName("d_") + "_", schema = TestServer.freshName()
        // A: tenant databases idle after 300 ms. B: another process on the same databases.
        let a = try await PostgresStorage(
            configuration: PostgresConfiguration(
                connectionString: try TestServer.url(), poolSize: 2, schema: schema, tenancy: .database(prefix: prefix),
                connectTimeoutSeconds: 30, idleTimeout: .milliseconds(300), timeout: .seconds(30)
            )
        )
        let b = try await TestServer.storage(schema: schema, tenancy: .database(prefix: prefix))
        defer { Task { await a.shutdown(); await b.shutdown() } }
        let writer = try b.scoped("t1"), reader = try a.scoped("t1")
        _ = try await writer.append(request("s-1", [event()]), hook: nil)
        #expect(reader.externalCommitsIdleRelease == .milliseconds(300))
        #expect(try a.scoped("t1").scope.backend.database != nil)

        // A's listener's presence wake-up (every stream woken once, ~1.5 s after it connects, for
        // writers that had not seen it yet) is put out of reach: a waiter woken below was woken by
        // the other process's NOTIFY.
        reader.scope.backend.listener.setPresenceTiming(CommitListener.PresenceTiming(interval: .milliseconds(250), freshness: .seconds(120)))

        // A waiter makes A listen on the tenant's database (it waits until cancelled: the checks
        // below need the listener up however slowly it connects).
        let hub = SubscriptionHub(adapter: reader)
        defer { Task { await hub.shutdown() } }
        let first = Task { await hub.waitForEvents(after: 1, timeout: .seconds(60)) }
        try await wait("A's listener to connect") { reader.listenerConnectionCount == 1 }
        try await wait("a listening session on the tenant's database") { try await listeningSessions(writer) == 1 }
        first.cancel()
        #expect(await first.value == false)

        // Nobody waits: the hub gives its streams back, the listener closes, the session is gone.
        try await wait("the hub to give its streams back") { await hub.releases == 1 }
        try await wait("the listener to close") { reader.scope.backend.listener.idleCloses.load(ordering: .relaxed) == 1 }
        try await wait("no listening session left") { try await listeningSessions(writer) == 0 }

        // Not listening, the hub still answers what another process committed (it reads storage).
        _ = try await writer.append(request("s-1", [event()]), hook: nil)
        #expect(try await hub.headPosition() == 2)

        // The next waiter listens again and is woken by the other process's commit.
        let woken = Task { await hub.waitForEvents(after: 2, timeout: .seconds(30)) }
        try await wait("A's listener to connect again") { reader.listenerConnectionCount == 2 }
        _ = try await writer.append(request("s-1", [event()]), hook: nil)
        #expect(await woken.value == true, "the waiter was not woken by another process's NOTIFY")
        #expect(try await hub.headPosition() == 3)
    }
}

import Foundation
import Mink
@testable import MinkPostgres
import Testing

/// Appends `NOTIFY` only when another process listens on the database: a listener that is alone
/// lets its process's batches skip the notification, and a listener that joins is woken for what
/// was committed before the others saw it (``CommitListener``, *Presence*).
@Suite("PostgreSQL NOTIFY presence", .timeLimit(.minutes(2)))
struct PostgresNotifyPresenceTests {
    private static func listener(_ s: PostgresStorage) -> CommitListener { s.scope.backend.listener }
    private static func batcher(_ s: PostgresStorage) -> AppendBatcher { s.scope.backend.appender(for: s.scope) }

    /// Waits until `condition` holds, failing the test with `what` after `seconds`.
    private func wait(_ what: String, within seconds: Double = 10, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting for \(what)")
                throw TestSetupError(description: "timed out waiting for \(what)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Two "processes" on a database of their own (database-per-tenant: the listeners of other
    /// tests, on the main database, must not count), configured alike (the schema is part of the
    /// notification's key), with a first event written. With `timing`, both use it (as the protocol
    /// requires) and A's listener has found itself alone; its subscription is returned to be kept.
    private func twoProcesses(
        timing: CommitListener.PresenceTiming? = nil, writerTimeout: Duration = .seconds(30)
    ) async throws -> (a: PostgresStorage, b: PostgresStorage, writer: PostgresStorage, reader: PostgresStorage, own: AsyncStream<Void>?) {
        let prefix = TestServer.freshName("d_") + "_", schema = TestServer.freshName()
        let b = try await TestServer.storage(schema: schema, tenancy: .database(prefix: prefix))
        let reader = try b.scoped("t1")
        let a: PostgresStorage
        if writerTimeout < .seconds(30) {
            // A short deadline: A's own start (migrations, the tenant's database) could outlast it
            // on a loaded machine (CI's first wave of a hundred tests), so B creates the tenant's
            // database and writes the first event, and A only checks what B made (a few tries).
            _ = try await reader.append(request("s-1", [event()]), hook: nil)
            a = try await Self.started(schema: schema, prefix: prefix, timeout: writerTimeout)
        } else {
            // Through A: B never writes (tests count B's looks, which only writers take).
            a = try await TestServer.storage(schema: schema, tenancy: .database(prefix: prefix))
            _ = try await a.scoped("t1").append(request("s-1", [event()]), hook: nil)
        }
        let writer = try a.scoped("t1")
        guard let timing else { return (a, b, writer, reader, nil) }
        Self.listener(writer).setPresenceTiming(timing)
        Self.listener(reader).setPresenceTiming(timing)
        let own = try #require(writer.externalCommits())
        try await wait("A's listener to find itself alone") { !Self.listener(writer).othersMayListen() }
        return (a, b, writer, reader, own)
    }

    /// A storage with a short deadline on what another one made, retried while the machine is too
    /// loaded for it to start within its deadline.
    private static func started(schema: String, prefix: String, timeout: Duration) async throws -> PostgresStorage {
        var attempt = 1
        while true {
            var started: PostgresStorage?
            do {
                started = try await TestServer.storage(schema: schema, tenancy: .database(prefix: prefix), timeout: timeout)
                _ = try await started?.scoped("t1").streamInfo("s-1")
                return try #require(started)
            } catch let error as MinkError where error.code == .unavailable && attempt < 5 {
                await started?.shutdown()
                attempt += 1
            }
        }
    }

    /// A connection of its own to the writer's tenant database.
    private func connection(to writer: PostgresStorage) throws -> PostgresConnection {
        let database: String = try #require(writer.scope.backend.database)
        return try PostgresConnection(
            parameters: writer.scope.backends.configuration.connectionParameters(database: database), timeout: .seconds(30)
        )
    }

    /// A connection holding the writer tenant's append lock in an open transaction (`COMMIT`
    /// releases it).
    private func holdingAppendLock(of writer: PostgresStorage) throws -> PostgresConnection {
        let holder = try connection(to: writer)
        try holder.execute("BEGIN")
        _ = try holder.query("SELECT pg_advisory_xact_lock($1::int8)", [.text(String(writer.scope.appendLockKey))])
        return holder
    }

    /// One event with a generated ID and no hook: the batch is checked and written in one round
    /// trip, its statement (and its NOTIFY decision) sent before the tenant's lock is taken.
    private func freshAppend(_ stream: String) -> AppendRequest {
        AppendRequest(
            streamID: stream, events: [EventData(id: nil, type: "Happened", data: Data("{}".utf8))], expectedVersion: .any,
            hasFreshIDs: true
        )
    }

    @Test func aLoneListenerSkipsItsNotificationsAndAJoiningOneIsStillWoken() async throws {
        let (a, b, writer, reader, _) = try await twoProcesses()
        defer { Task { await a.shutdown(); await b.shutdown() } }

        // Before A listens, it notifies (nobody looked for other listeners).
        #expect(Self.listener(writer).othersMayListen())
        let own = try #require(writer.externalCommits())
        try await wait("A's listener to find itself alone") { !Self.listener(writer).othersMayListen() }
        let skipped = Self.batcher(writer).notificationsSkipped.load(ordering: .relaxed)
        _ = try await writer.append(request("s-1", [event()]), hook: nil)
        #expect(Self.batcher(writer).notificationsSkipped.load(ordering: .relaxed) == skipped + 1, "a lone listener's batch notified")
        _ = own

        // B starts listening; A appends at once, perhaps before its next look sees B: B is woken
        // either by the NOTIFY or, later, by its own presence wake-up.
        let commits = try #require(reader.externalCommits())
        try await wait("B's listener to connect") { reader.listenerConnectionCount == 1 }
        _ = try await writer.append(request("s-1", [event()]), hook: nil)
        #expect(await next(commits, within: 10), "B was not woken for A's commit")
        try await wait("B's wake-up for writers that had not seen it") { Self.listener(reader).presenceWakeUps.load(ordering: .relaxed) >= 1 }
        // A stream of its own from here, so that the wake-up above cannot answer for the NOTIFY
        // below (an `AsyncStream` ends when a wait for it is cancelled: no draining with a timeout).
        let later = try #require(reader.externalCommits())

        // Once A has seen B, every batch notifies, and B is woken by the NOTIFY itself.
        try await wait("A to see B") { Self.listener(writer).othersMayListen() }
        let before = Self.batcher(writer).notificationsSkipped.load(ordering: .relaxed)
        _ = try await writer.append(request("s-1", [event()]), hook: nil)
        #expect(Self.batcher(writer).notificationsSkipped.load(ordering: .relaxed) == before, "a batch skipped its NOTIFY while B listens")
        #expect(await next(later, within: 10), "B was not woken by A's NOTIFY")

        // B goes: its lock goes with its connection, and A is alone again.
        await b.shutdown()
        try await wait("A to find itself alone again") { !Self.listener(writer).othersMayListen() }
    }

    /// Slow looks, so that A's "alone" answer is still in use when B has joined: B's wake-up comes
    /// 3 + 2 × 2 = 7 s after it joined.
    private static let slowLooks = CommitListener.PresenceTiming(interval: .seconds(2), freshness: .seconds(3))

    @Test func aJoiningListenerIsWokenForACommitThatSkippedItsNotify() async throws {
        let (a, b, writer, reader, own) = try await twoProcesses(timing: Self.slowLooks)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        _ = own
        let joined = ContinuousClock.now
        let commits = try #require(reader.externalCommits())
        try await wait("B's listener to connect") { reader.listenerConnectionCount == 1 }
        // A has not looked since B joined: this batch skips its NOTIFY.
        let skipped = Self.batcher(writer).notificationsSkipped.load(ordering: .relaxed)
        _ = try await writer.append(request("s-1", [event()]), hook: nil)
        #expect(Self.batcher(writer).notificationsSkipped.load(ordering: .relaxed) == skipped + 1, "the batch notified")
        // B learns of the commit all the same, from its wake-up for writers that had not seen it.
        #expect(await next(commits, within: 20), "B was never woken for a commit made before A saw it")
        #expect(Self.listener(reader).presenceWakeUps.load(ordering: .relaxed) == 1)
        #expect(ContinuousClock.now - joined >= .seconds(6), "woken before its presence wake-up: by what?")
        // B never wrote: it never queried `pg_locks` (looks are for writers).
        #expect(Self.listener(reader).looks.load(ordering: .relaxed) == 0)
        #expect(Self.listener(writer).looks.load(ordering: .relaxed) > 0)
    }

    @Test func aBatchThatSkippedItsNotifyAndCommitsAfterTheJoinersWakeUpNotifiesThen() async throws {
        let (a, b, writer, reader, own) = try await twoProcesses(timing: Self.slowLooks)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        _ = own

        // The tenant's append lock, held elsewhere: A's next batch decides (no NOTIFY: alone) and
        // then waits for the lock.
        let holder = try holdingAppendLock(of: writer)
        defer { holder.close() }
        let skipped = Self.batcher(writer).notificationsSkipped.load(ordering: .relaxed)
        let fresh = freshAppend("s-1")
        let append = Task { try await writer.append(fresh, hook: nil) }
        try await wait("A's batch to decide") { Self.batcher(writer).notificationsSkipped.load(ordering: .relaxed) == skipped + 1 }

        // B joins, and its one wake-up comes and goes while A's batch still waits. (B's first
        // stream is kept: a tenant database's listener closes with its last stream.)
        let joining = try #require(reader.externalCommits())
        defer { withExtendedLifetime(joining) {} }
        try await wait("B's wake-up", within: 20) { Self.listener(reader).presenceWakeUps.load(ordering: .relaxed) == 1 }
        let later = try #require(reader.externalCommits())
        try await wait("A to see B") { Self.listener(writer).othersMayListen() }

        // The batch commits now: it notifies after its commit.
        try holder.execute("COMMIT")
        _ = try await append.value
        #expect(Self.batcher(writer).lateNotifications.load(ordering: .relaxed) == 1)
        #expect(await next(later, within: 10), "B was never told of the batch that committed after its wake-up")
    }

    @Test func aBatchThatSkippedItsNotifyAndEndedInDoubtNotifiesOnceItsBackendIsGone() async throws {
        // A's storage deadline is short: its batch gives up waiting for the tenant's lock, in
        // doubt (PostgreSQL has the whole pipeline, COMMIT included, and runs it when the lock
        // comes).
        let (a, b, writer, reader, own) = try await twoProcesses(timing: CommitListener.PresenceTiming(), writerTimeout: .seconds(4))
        defer { Task { await a.shutdown(); await b.shutdown() } }
        _ = own
        let holder = try holdingAppendLock(of: writer)
        defer { holder.close() }
        let fresh = freshAppend("s-2")
        let skipped = Self.batcher(writer).notificationsSkipped.load(ordering: .relaxed)
        do {
            _ = try await writer.append(fresh, hook: nil)
            Issue.record("the append went through while the lock was held")
        } catch let error as MinkError {
            #expect(error.code == .unavailable, "\(error)")
        }
        #expect(Self.batcher(writer).notificationsSkipped.load(ordering: .relaxed) == skipped + 1, "the batch notified")

        // B joins and has its one wake-up while the batch's backend still waits for the lock.
        // (B's first stream is kept: a tenant database's listener closes with its last stream.)
        let joining = try #require(reader.externalCommits())
        defer { withExtendedLifetime(joining) {} }
        try await wait("B's wake-up") { Self.listener(reader).presenceWakeUps.load(ordering: .relaxed) == 1 }
        let later = try #require(reader.externalCommits())

        // The lock comes: the backend commits the batch and goes; A notifies then.
        try holder.execute("COMMIT")
        #expect(await next(later, within: 10), "B was never told of the batch that committed after its deadline")
        // (Counted once the `NOTIFY` was sent: B may be woken just before.)
        try await wait("A's count of notifications after a doubt") { Self.batcher(writer).doubtNotifications.load(ordering: .relaxed) == 1 }
        #expect(try await reader.streamInfo("s-2")?.version == 1, "the batch in doubt did commit")
    }

    @Test func aSessionWhoseLastStatementWasListenCountsAsAListener() async throws {
        // A minkd from before the presence lock (or a tool of its own) LISTENs without the lock.
        let (a, b, writer, _, own) = try await twoProcesses(timing: CommitListener.PresenceTiming())
        defer { Task { await a.shutdown(); await b.shutdown() } }
        _ = own
        let old = try connection(to: writer)
        defer { old.close() }
        try old.execute("LISTEN \(Identifier.quote(writer.scope.backends.configuration.channel))")
        try await wait("A to count the old listener") { Self.listener(writer).othersMayListen() }
        let skipped = Self.batcher(writer).notificationsSkipped.load(ordering: .relaxed)
        _ = try await writer.append(request("s-1", [event()]), hook: nil)
        #expect(Self.batcher(writer).notificationsSkipped.load(ordering: .relaxed) == skipped, "a batch skipped its NOTIFY")
        old.close()
        try await wait("A to find itself alone once the old listener is gone") { !Self.listener(writer).othersMayListen() }
    }
}

import Dispatch
import Foundation
import Mink
@testable import MinkPostgres
import Synchronization
import Testing

/// The one-round-trip path of the group commit (`AppendBatcher+Checked.swift`): a batch of appends
/// without hooks whose IDs the store generated is checked and written by one statement; when a
/// check fails, the batch is decided append by append, each failing alone.
@Suite("PostgreSQL group commit in one round trip", .timeLimit(.minutes(3)))
struct PostgresOneRoundTripTests {
    typealias G = PostgresGroupCommitTests

    /// An append whose IDs the store generated for this call (what the HTTP path sends when the
    /// client chose none).
    static func fresh(_ stream: String, _ count: Int = 1, _ expected: ExpectedVersion = .any) -> AppendRequest {
        var r = request(stream, (0..<count).map { i in event("F", #"{"i":\#(i)}"#) }, expected)
        r.hasFreshIDs = true
        return r
    }

    static func checked(_ s: PostgresStorage) -> Int { G.batcher(s).checkedTransactions.load(ordering: .relaxed) }

    @Test func aLoneAppendTakesOneRoundTrip() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        let before = Self.checked(s)
        let first = try await s.append(Self.fresh("lone-1", 2, .noStream), hook: nil)
        #expect(first.fromVersion == 1 && first.toVersion == 2 && first.fromPosition == 1 && first.toPosition == 2)
        let second = try await s.append(Self.fresh("lone-1", 1, .exact(2)), hook: nil)
        #expect(second.fromVersion == 3 && second.fromPosition == 3)
        #expect(Self.checked(s) == before + 2)
        let stored = try await s.readStream("lone-1", from: 1, limit: 10, direction: .forward)
        #expect(stored.map(\.id) == (first.events + second.events).map(\.id))
        #expect(stored.map(\.version) == [1, 2, 3] && stored.map(\.globalPosition) == [1, 2, 3])
    }

    /// A batch of plain appends, several to one stream, with every kind of expected version:
    /// written by one statement, with the positions and versions the decided path gives, and
    /// the stored rows, the streams' versions and the answers agree.
    @Test func aPlainBatchIsWrittenByOneStatementWithTheDecidedPositions() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        _ = try await s.append(Self.fresh("p-1", 2), hook: nil)  // positions 1-2, p-1 at v2
        let before = Self.checked(s)
        let outcomes = try await G.oneBatch(s, [  // behind hold-1 at position 3
            (Self.fresh("p-1", 1, .exact(2)), nil),  // 0: v3, position 4
            (Self.fresh("p-2", 3, .noStream), nil),  // 1: v1-3, positions 5-7
            (Self.fresh("p-1", 2, .exact(3)), nil),  // 2: sees 0: v4-5, positions 8-9
            (Self.fresh("p-2", 1, .streamExists), nil),  // 3: p-2 exists since 1: v4, position 10
            (Self.fresh("p-3", 1), nil),  // 4: v1, position 11
        ])
        #expect(Self.checked(s) == before + 1, "the batch of plain appends took the one-round-trip path")
        let expected: [(Int64, Int64, UInt64, UInt64)] = [(3, 3, 4, 4), (1, 3, 5, 7), (4, 5, 8, 9), (4, 4, 10, 10), (1, 1, 11, 11)]
        for (i, (fromV, toV, fromP, toP)) in expected.enumerated() {
            let r = try #require(G.value(outcomes[i]), "append \(i): \(outcomes[i])")
            #expect(r.fromVersion == fromV && r.toVersion == toV && r.fromPosition == fromP && r.toPosition == toP, "append \(i): \(r)")
        }
        let all = try await s.readAll(after: 0, filter: .all, limit: 100)
        #expect(all.map(\.globalPosition) == (1...11).map { UInt64($0) })
        let answered = outcomes.compactMap { G.value($0) }.flatMap(\.events)
        #expect(all.dropFirst(3).map(\.id) == answered.map(\.id), "the stored rows are the answered events")
        #expect(all.dropFirst(3).map(\.version) == answered.map(\.version))
        #expect(all.dropFirst(3).map(\.streamID) == answered.map(\.streamID))
        #expect(try await s.streamInfo("p-1")?.version == 5)
        #expect(try await s.streamInfo("p-2")?.version == 4)
        #expect(try await s.streamInfo("p-3")?.version == 1)
    }

    /// One failed check in a plain batch: the statement writes nothing, the batch is decided
    /// append by append, and only that append fails.
    @Test func aFailedCheckFailsOnlyItsAppend() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        let before = Self.checked(s)
        let outcomes = try await G.oneBatch(s, [  // behind hold-1 at position 1
            (Self.fresh("q-1", 1, .noStream), nil),  // 0: v1, position 2
            (Self.fresh("q-1", 1, .exact(5)), nil),  // 1: conflict, actual 1
            (Self.fresh("q-2", 1, .any), nil),  // 2: v1, position 3
            (Self.fresh("q-3", 1, .streamExists), nil),  // 3: no such stream
        ])
        #expect(Self.checked(s) == before, "a batch with a failing check is not written by the statement")
        #expect(G.value(outcomes[0])?.fromPosition == 2)
        let conflict = G.error(outcomes[1])
        #expect(conflict?.code == .concurrencyConflict && conflict?.expectedVersion == 5 && conflict?.actualVersion == 1)
        #expect(G.value(outcomes[2])?.fromPosition == 3)
        #expect(G.error(outcomes[3])?.code == .streamNotFound)
        #expect(try await s.readAll(after: 0, filter: .all, limit: 100).map(\.streamID) == ["hold-1", "q-1", "q-2"])
    }

    /// A plain batch whose appends all fail is answered from the state the statement read under
    /// the lock: nothing is written, no transaction counts as committed, no other round trip.
    @Test func aBatchOfFailuresIsAnsweredFromItsState() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        _ = try await s.append(Self.fresh("r-1", 2), hook: nil)
        let transactions = G.batcher(s).transactionsCommitted.load(ordering: .relaxed)
        let checked = Self.checked(s)
        do {
            let r = try await s.append(Self.fresh("r-1", 1, .noStream), hook: nil)
            Issue.record("a noStream append to an existing stream succeeded: \(r)")
        } catch let e as MinkError {
            #expect(e.code == .concurrencyConflict && e.expectedVersion == 0 && e.actualVersion == 2, "\(e)")
        }
        do {
            let r = try await s.append(Self.fresh("r-2", 1, .streamExists), hook: nil)
            Issue.record("a streamExists append to a missing stream succeeded: \(r)")
        } catch let e as MinkError {
            #expect(e.code == .streamNotFound, "\(e)")
        }
        #expect(G.batcher(s).transactionsCommitted.load(ordering: .relaxed) == transactions)
        #expect(Self.checked(s) == checked)
        #expect(try await s.readAll(after: 0, filter: .all, limit: 10).count == 2)
    }

    /// Deleted streams are the decided path's: a soft-deleted stream counts as new and goes on
    /// from its version, a tombstoned one refuses the append (`410`).
    @Test func deletedStreamsAreDecidedAppendByAppend() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        _ = try await s.append(Self.fresh("soft-1", 2), hook: nil)
        _ = try await s.append(Self.fresh("hard-1", 1), hook: nil)
        _ = try await s.deleteStream("soft-1", expectedVersion: .any, hard: false, hook: nil)
        _ = try await s.deleteStream("hard-1", expectedVersion: .any, hard: true, hook: nil)
        let again = try await s.append(Self.fresh("soft-1", 1, .noStream), hook: nil)
        #expect(again.fromVersion == 3, "a soft-deleted stream's versions go on: \(again)")
        do {
            let r = try await s.append(Self.fresh("hard-1", 1), hook: nil)
            Issue.record("an append to a tombstoned stream succeeded: \(r)")
        } catch let e as MinkError {
            #expect(e.code == .streamDeleted, "\(e)")
        }
        let head = try await s.headPosition()
        #expect(again.toPosition == head, "the append after the deletions is the last event")
        #expect(try await s.readStream("soft-1", from: 1, limit: 10, direction: .forward).map(\.id) == again.events.map(\.id))
    }

    /// The one-round-trip pipeline sends no `BEGIN`/`COMMIT`: the lock and the statement form one
    /// transaction that the server ends at the pipeline's sync point. So once an append has
    /// returned, the tenant's lock is free; a statement that fails in the server (here a trigger
    /// raising) leaves nothing — no row, no stream, no position used, the lock released — and the
    /// connection (the pool's only one) goes on.
    @Test func theCheckedPipelineEndsAtItsSyncPointAndAFailedStatementLeavesNothing() async throws {
        let schema = TestServer.freshName()
        let s = try await TestServer.storage(schema: schema, poolSize: 1)
        defer { Task { await s.shutdown() } }
        let before = Self.checked(s)
        let first = try await s.append(Self.fresh("sync-1"), hook: nil)
        #expect(Self.checked(s) == before + 1, "the append took the one-round-trip path")
        let raw = try PostgresConnection(parameters: s.scope.backends.configuration.connectionParameters(), timeout: .seconds(30))
        defer { raw.close() }
        let key = PostgresValue.text(String(s.scope.appendLockKey))
        func lockIsFree() throws -> Bool {
            let free = try raw.query("SELECT pg_try_advisory_lock($1::int8)", [key]).bool(0, 0) ?? false
            if free { _ = try raw.query("SELECT pg_advisory_unlock($1::int8)", [key]) }
            return free
        }
        #expect(try lockIsFree(), "the tenant's lock was still held after the append returned")

        let q = "\"\(schema)\""
        try raw.execute("""
            CREATE FUNCTION \(q).boom() RETURNS trigger LANGUAGE plpgsql AS $f$
            BEGIN IF NEW.stream_id = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $f$;
            CREATE TRIGGER boom BEFORE INSERT ON \(q).mink_events FOR EACH ROW EXECUTE FUNCTION \(q).boom()
            """)
        do {
            let r = try await s.append(Self.fresh("boom"), hook: nil)
            Issue.record("an append the trigger refuses succeeded: \(r)")
        } catch {
            // Known not to be committed (the server rolled back at the sync point), so not "in
            // doubt"; and in one round trip: the checked path, not a retry through another.
            #expect(!"\(error)".contains("may or may not"), "reported in doubt: \(error)")
            #expect("\(error)".contains("boom"), "the trigger's error: \(error)")
            let inDoubt = G.batcher(s).lastBatchInDoubt.load(ordering: .relaxed)
            let roundTrips = G.batcher(s).lastBatchRoundTrips.load(ordering: .relaxed)
            #expect(!inDoubt)
            #expect(roundTrips == 1)
        }
        #expect(try raw.query("SELECT count(*) FROM \(q).mink_events WHERE stream_id = 'boom'").int64(0, 0) == 0)
        #expect(try raw.query("SELECT count(*) FROM \(q).mink_streams WHERE stream_id = 'boom'").int64(0, 0) == 0)
        #expect(try lockIsFree(), "the tenant's lock was still held after the failed append")

        let checked = Self.checked(s)
        let next = try await s.append(Self.fresh("sync-2"), hook: nil)
        #expect(Self.checked(s) == checked + 1, "the connection went on with the one-round-trip path")
        #expect(next.fromPosition == first.toPosition + 1, "the failed append used no position: \(next)")
        #expect(try lockIsFree())
    }

    /// A server (or database, or role) whose default isolation is REPEATABLE READ: the storage's
    /// connections still run READ COMMITTED, so an append that waited for the tenant's lock sees
    /// the commit it waited for (its statement's snapshot is taken after the lock). Here another
    /// writer holds the lock, commits an event at the next position while the append waits, and
    /// the append then takes the position after it (under REPEATABLE READ it would reuse the
    /// committed position and be refused by the primary key).
    @Test func aRepeatableReadDefaultDoesNotBreakTheLockThenSnapshotOrder() async throws {
        let schema = TestServer.freshName()
        let url = try TestServer.url() + "?options=-c%20default_transaction_isolation%3Drepeatable%5C%20read"
        let s = try await TestServer.storage(schema: schema, poolSize: 1, url: url)
        defer { Task { await s.shutdown() } }
        let first = try await s.append(Self.fresh("rr-1"), hook: nil)
        let raw = try PostgresConnection(parameters: s.scope.backends.configuration.connectionParameters(), timeout: .seconds(30))
        defer { raw.close() }
        #expect(try raw.query("SHOW default_transaction_isolation").string(0, 0) == "repeatable read", "the URL's default applies")
        let key = PostgresValue.text(String(s.scope.appendLockKey))
        try raw.execute("BEGIN")
        _ = try raw.query("SELECT pg_advisory_xact_lock($1::int8)", [key])
        let waiting = Task { try await s.append(Self.fresh("rr-2"), hook: nil) }
        // Until the append waits for the lock (its statement then already started).
        let deadline = ContinuousClock.now + .seconds(20)
        // A bigint advisory key shows in pg_locks as its high half (classid) and low half (objid).
        let k = s.scope.appendLockKey
        let high = String(UInt32(truncatingIfNeeded: k >> 32)), low = String(UInt32(truncatingIfNeeded: k))
        while try raw.query(
            """
            SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1
               AND classid::text::int8 = $1::int8 AND objid::text::int8 = $2::int8
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """, [.text(high), .text(low)]
        ).int64(0, 0) == 0 {
            guard ContinuousClock.now < deadline else {
                Issue.record("the append never waited for the tenant's lock")
                try raw.execute("ROLLBACK")
                _ = try? await waiting.value
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let q = "\"\(schema)\""
        let next = Int64(first.toPosition) + 1
        _ = try raw.query(
            """
            INSERT INTO \(q).mink_events (tenant_id, position, stream_id, version, event_id, type, category, data, metadata, created_at)
            VALUES ($1, $2::int8, 'other-1', 1, 'e-other', 'T', 'other', '\\x7b7d'::bytea, '{}', now())
            """, [.text(s.scope.tenantID), .text(String(next))])
        try raw.execute("COMMIT")
        let r = try await waiting.value
        #expect(r.fromPosition == UInt64(next) + 1, "the append took the position after the commit it waited for: \(r)")
    }
    /// A `lock_timeout` default shorter than the storage deadline (here 100 ms in the URL) is
    /// raised to the deadline, so that an append waiting for its tenant's lock while another
    /// transaction holds it is not failed early; `0` and longer values are kept.
    @Test func aShortLockTimeoutDefaultIsRaisedToTheDeadline() async throws {
        for (option, expected) in [("100ms", "30s"), ("0", "0"), ("1min", "1min")] {
            let url = try TestServer.url() + "?options=-c%20lock_timeout%3D\(option)"
            let s = try await TestServer.storage(schema: TestServer.freshName(), poolSize: 1, url: url)
            defer { Task { await s.shutdown() } }
            _ = try await s.append(Self.fresh("first"), hook: nil)
            let setting = try await s.core.main.pool.withConnection { conn in try conn.query("SHOW lock_timeout").string(0, 0) }
            #expect(setting == expected, "the storage's connection under a default of \(option)")
        }
        // The wait itself: the tenant's lock held for 400 ms elsewhere, under a 100 ms default.
        let url = try TestServer.url() + "?options=-c%20lock_timeout%3D100ms"
        let s = try await TestServer.storage(schema: TestServer.freshName(), poolSize: 1, url: url)
        defer { Task { await s.shutdown() } }
        _ = try await s.append(Self.fresh("first"), hook: nil)
        let holder = try PostgresConnection(parameters: s.scope.backends.configuration.connectionParameters(), timeout: .seconds(30))
        defer { holder.close() }
        try holder.execute("BEGIN")
        _ = try holder.query("SELECT pg_advisory_xact_lock($1::int8)", [.text(String(s.scope.appendLockKey))])
        let waiting = Task { try await s.append(Self.fresh("waits"), hook: nil) }
        try await Task.sleep(for: .milliseconds(400))
        try holder.execute("COMMIT")
        let r = try await waiting.value
        #expect(r.toVersion == 1, "the append waited for the lock: \(r)")
    }

    /// A 201 is a durable append: a server, database or role default of `synchronous_commit = off`
    /// (here in the URL) would let a commit answer before its WAL is flushed, so the storage's
    /// connections raise it to `on`; a value that waits for the local flush (`local`) is kept.
    @Test func aSynchronousCommitOffDefaultIsRaisedToOn() async throws {
        for (option, expected) in [("off", "on"), ("local", "local")] {
            let url = try TestServer.url() + "?options=-c%20synchronous_commit%3D\(option)"
            let s = try await TestServer.storage(schema: TestServer.freshName(), poolSize: 1, url: url)
            defer { Task { await s.shutdown() } }
            let raw = try PostgresConnection(parameters: s.scope.backends.configuration.connectionParameters(), timeout: .seconds(30))
            defer { raw.close() }
            #expect(try raw.query("SHOW synchronous_commit").string(0, 0) == option, "the URL's default applies to a plain session")
            _ = try await s.append(Self.fresh("durable-1"), hook: nil)
            let setting = try await s.core.main.pool.withConnection { conn in try conn.query("SHOW synchronous_commit").string(0, 0) }
            #expect(setting == expected, "the storage's connection under a default of \(option)")
        }
    }
}

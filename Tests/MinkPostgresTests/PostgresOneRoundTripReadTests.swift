import Foundation
import Mink
@testable import MinkPostgres
import Testing

/// The reads and the snapshot write that go to PostgreSQL as one pipeline: a stream's page with
/// its info and rules, the snapshot with the stream's tombstone, a snapshot put, a read-model page
/// with its total — one round trip each (they were two to six), counted on the pool's connection.
@Suite("PostgreSQL reads in one round trip", .timeLimit(.minutes(3)))
struct PostgresOneRoundTripReadTests {
    /// The round trips `body` made on the pool's connection. The pool is quiet and hands out its
    /// last idle connection, so the counter read before and after is that of the connection
    /// `body` borrowed (one connection: `poolSize: 1`). Statements are prepared before (a first
    /// use also sends a `Parse`, not counted as a round trip).
    static func roundTrips(_ s: PostgresStorage, _ body: () async throws -> Void) async throws -> Int {
        let pool = s.scope.backend.pool
        let before = try await pool.withConnection { $0.roundTrips }
        try await body()
        return try await pool.withConnection { $0.roundTrips } - before
    }

    @Test func streamReadsSnapshotsAndReadModelPagesTakeOneRoundTrip() async throws {
        let s = try await TestServer.storage(poolSize: 1)
        defer { Task { await s.shutdown() } }
        let store = EventStore(adapter: s)
        for i in 0..<3 { try await store.append("order-\(i)", events: [EventData(type: "E", data: Data(#"{"n":1}"#.utf8))]) }
        try await s.transaction { tx in
            try tx.putDocument("orders", id: "o-1", json: Data(#"{"status":"open"}"#.utf8))
            try tx.putDocument("orders", id: "o-2", json: Data(#"{"status":"open"}"#.utf8))
        }
        let query = Query().where("status", .equal, "open").limit(1)
        // Once to prepare the statements on the connection.
        _ = try await s.readStreamWithInfo("order-1", from: 1, limit: 10, direction: .forward)
        _ = try await s.storeSnapshot(Snapshot(streamID: "order-1", version: 1, state: Data("{}".utf8)))
        _ = try await s.snapshotUnlessTombstoned(streamID: "order-1")
        _ = try await s.findWithTotal("orders", query: query)
        _ = try await s.readStreamForRetention("order-1", from: 1, limit: 10, direction: .forward)
        _ = try await s.streamInfoForRetention("order-1")

        var page: RetentionAwarePage?
        #expect(try await Self.roundTrips(s) { page = try await s.readStreamWithInfo("order-2", from: 1, limit: 10, direction: .forward) } == 1)
        #expect(page?.events.count == 1 && page?.info.info?.version == 1)
        var stored: Int64?
        #expect(try await Self.roundTrips(s) { stored = try await s.storeSnapshot(Snapshot(streamID: "order-2", version: 1, state: Data("{}".utf8))) } == 1)
        #expect(stored == 1)
        var snapshot: (snapshot: Snapshot?, tombstoned: Bool)?
        #expect(try await Self.roundTrips(s) { snapshot = try await s.snapshotUnlessTombstoned(streamID: "order-2") } == 1)
        #expect(snapshot?.snapshot?.version == 1 && snapshot?.tombstoned == false)
        var found: (documents: [StoredDocument], total: Int64)?
        #expect(try await Self.roundTrips(s) { found = try await s.findWithTotal("orders", query: query) } == 1)
        #expect(found?.documents.count == 1 && found?.total == 2)
        #expect(try await Self.roundTrips(s) { _ = try await s.readStreamForRetention("order-2", from: 1, limit: 10, direction: .forward) } == 1)
        #expect(try await Self.roundTrips(s) { _ = try await s.streamInfoForRetention("order-2") } == 1)
        // Retention rules are written in one round trip too (the lock and one statement).
        try await s.setStreamRetention("order-0", StreamRetention(maxCount: 5))
        #expect(try await Self.roundTrips(s) { try await s.setStreamRetention("order-2", StreamRetention(maxCount: 7)) } == 1)
        #expect(try await s.streamRetention("order-2") == StreamRetention(maxCount: 7))
        #expect(try await Self.roundTrips(s) { try await s.setStreamRetention("order-2", StreamRetention()) } == 1)
        #expect(try await s.streamRetention("order-2") == nil, "empty rules remove them")
    }

    /// The statements of a pipelined read see one snapshot: a hard deletion committing between the
    /// stream's row and its page (a `pg_sleep` between them here) is seen by neither — before, each
    /// statement took its own snapshot, and such a read answered the stream's version with no
    /// events (a session-21 review).
    @Test func aPipelinedReadSeesOneSnapshotWhileADeletionCommits() async throws {
        let s = try await TestServer.storage(poolSize: 2)
        defer { Task { await s.shutdown() } }
        _ = try await s.append(request("gone-1", [event("E", "{}"), event("E", "{}"), event("E", "{}")]), hook: nil)
        let scope = s.scope
        let pool = scope.backend.pool
        async let read: (version: Int64?, events: Int) = pool.withConnection(mappingErrors: false) { conn in
            let r = try PostgresStorage.consistentRead([
                PostgresStorage.streamRowStatement("gone-1", scope), .init("SELECT pg_sleep(0.6)"),
                PostgresStorage.eventsStatement(of: "gone-1", from: 1, limit: 10, direction: .forward, scope),
            ], on: conn)
            return (PostgresStorage.streamRow("gone-1", r[0]).info?.version, r[2].rowCount)
        }
        try await Task.sleep(for: .milliseconds(200))
        let deletion = try await s.deleteStream("gone-1", expectedVersion: .any, hard: true, hook: nil)
        let seen = try await read
        #expect(deletion.deletedEvents == 3)
        #expect(seen.version == 3 && seen.events == 3, "one snapshot: the stream as it was before the deletion, whole: \(seen)")
        #expect(try await s.isTombstoned("gone-1"))
    }

    /// A pipeline that opened a transaction (`BEGIN`, as `findWithTotal`'s) and failed midway
    /// leaves it open in its failed state: the connection's worker rolls it back, and the next
    /// borrower finds an idle connection that works.
    @Test func aPipelinedTransactionThatFailsIsRolledBackBeforeTheNextBorrow() async throws {
        let s = try await TestServer.storage(poolSize: 1)
        defer { Task { await s.shutdown() } }
        let pool = s.scope.backend.pool
        await #expect(throws: PostgresError.self) {
            try await pool.withConnection(mappingErrors: false) { conn in
                _ = try conn.pipelineResults([
                    .init("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"), .init("SELECT 1 / 0"), .init("SELECT 1"), .init("COMMIT"),
                ])
            }
        }
        let (inTransaction, value) = try await pool.withConnection { conn in
            (conn.inTransaction, try conn.query("SELECT 41 + 1").int64(0, 0))
        }
        #expect(!inTransaction && value == 42)
    }
}

import Foundation
import Mink
@testable import MinkPostgres
import Synchronization
import Testing

@Suite("PostgresStorage", .timeLimit(.minutes(3)))
struct PostgresStorageTests {
    @Test func appendAndReadBack() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        let r = try await s.append(request("order-1", [event("A", #"{"n":1}"#), event("B", #"{"n":2}"#)], .noStream), hook: nil)
        #expect(r.fromVersion == 1 && r.toVersion == 2 && r.fromPosition == 1 && r.toPosition == 2 && !r.isReplay)
        let r2 = try await s.append(request("order-2", [event("C")], .noStream), hook: nil)
        #expect(r2.fromPosition == 3)

        let read = try await s.readStream("order-1", from: 1, limit: 10, direction: .forward)
        #expect(read == r.events)
        #expect(try await s.readStream("order-1", from: -1, limit: 1, direction: .backward).map(\.version) == [2])
        #expect(try await s.readStream("order-1", from: 2, limit: 5, direction: .backward).map(\.version) == [2, 1])
        #expect(try await s.readStream("order-1", from: 3, limit: 5, direction: .forward).isEmpty)
        #expect(try await s.readStream("nope", from: 1, limit: 5, direction: .forward).isEmpty)
        #expect(try await s.readAll(after: 0, filter: .all, limit: 10).map(\.globalPosition) == [1, 2, 3])
        #expect(try await s.readAll(after: 1, filter: .all, limit: 1).map(\.globalPosition) == [2])
        #expect(try await s.headPosition() == 3)

        let info = try #require(try await s.streamInfo("order-1"))
        #expect(info.version == 2 && info.eventCount == 2 && info.createdAt == r.events[0].timestamp)
        #expect(try await s.streamInfo("nope") == nil)
    }

    @Test func expectedVersionsAndAtomicity() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        await expectMinkError(.streamNotFound) { try await s.append(request("s-1", [event()], .streamExists), hook: nil) }
        _ = try await s.append(request("s-1", [event()], .noStream), hook: nil)
        let e = await expectMinkError(.concurrencyConflict) {
            try await s.append(request("s-1", [event(), event(), event()], .exact(5)), hook: nil)
        }
        #expect(e?.expectedVersion == 5 && e?.actualVersion == 1)
        await expectMinkError(.concurrencyConflict) { try await s.append(request("s-1", [event()], .noStream), hook: nil) }
        // A failing hook rolls the whole batch back.
        struct Boom: Error {}
        do {
            _ = try await s.append(request("s-1", [event(), event()], .exact(1)), hook: { _, _ in throw Boom() })
            Issue.record("hook error not rethrown")
        } catch is Boom {}
        #expect(try await s.streamInfo("s-1")?.version == 1)
        #expect(try await s.headPosition() == 1)
        _ = try await s.append(request("s-1", [event()], .streamExists), hook: nil)
        #expect(try await s.headPosition() == 2)
    }

    @Test func concurrentAppendsWithSameExpectedVersion() async throws {
        let s = try await TestServer.storage(poolSize: 8)
        defer { Task { await s.shutdown() } }
        _ = try await s.append(request("race-1", [event()], .noStream), hook: nil)
        let outcomes = await withTaskGroup(of: Result<AppendResult, any Error>.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    do { return .success(try await s.append(request("race-1", [event()], .exact(1)), hook: nil)) } catch { return .failure(error) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let wins = outcomes.filter { if case .success = $0 { true } else { false } }
        #expect(wins.count == 1)
        for case .failure(let error) in outcomes {
            let e = try #require(error as? MinkError)
            #expect(e.code == .concurrencyConflict && e.expectedVersion == 1 && e.actualVersion == 2)
        }
        #expect(try await s.streamInfo("race-1")?.version == 2)
    }

    /// The sequence trap: a transaction that got the lower position commits after one with a
    /// higher position. With positions assigned under the tenant lock the second append waits,
    /// so a reader never sees a gap that is filled later.
    @Test func positionsNeverBecomeVisibleOutOfOrder() async throws {
        let s = try await TestServer.storage(poolSize: 6)
        defer { Task { await s.shutdown() } }
        _ = try await s.append(request("warm-1", [event()]), hook: nil)

        let (entered, enteredContinuation) = AsyncStream.makeStream(of: Void.self)
        let slow = Task {
            try await s.append(request("slow-1", [event()]), hook: { _, _ in
                enteredContinuation.yield()
                Thread.sleep(forTimeInterval: 0.6)  // holds the transaction (and its position) open
            })
        }
        var it = entered.makeAsyncIterator()
        _ = await it.next()
        let fast = Task { try await s.append(request("fast-1", [event()]), hook: nil) }

        let stop = Atomic<Bool>(false)
        let reader = Task { () -> [UInt64] in
            var cursor: UInt64 = 0
            var seen: [UInt64] = []
            while !stop.load(ordering: .relaxed) || cursor < 3 {
                for e in try await s.readAll(after: cursor, filter: .all, limit: 100) {
                    #expect(e.globalPosition == cursor + 1, "reader at \(cursor) saw \(e.globalPosition): a gap")
                    cursor = e.globalPosition
                    seen.append(cursor)
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            return seen
        }
        let slowResult = try await slow.value
        let fastResult = try await fast.value
        stop.store(true, ordering: .relaxed)
        #expect(try await reader.value == [1, 2, 3])
        #expect(slowResult.fromPosition == 2)
        #expect(fastResult.fromPosition == 3)
    }

    @Test func readersPollingWhileEightWritersAppend() async throws {
        let s = try await TestServer.storage(poolSize: 10)
        defer { Task { await s.shutdown() } }
        let perWriter = 20
        let total = UInt64(8 * perWriter)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<8 {
                group.addTask {
                    for _ in 0..<perWriter { _ = try await s.append(request("w\(w)-1", [event()]), hook: nil) }
                }
            }
            for _ in 0..<2 {
                group.addTask {
                    var cursor: UInt64 = 0
                    let deadline = ContinuousClock.now + .seconds(30)
                    while cursor < total, ContinuousClock.now < deadline {
                        for e in try await s.readAll(after: cursor, filter: .all, limit: 7) {
                            #expect(e.globalPosition == cursor + 1, "positions must be strictly increasing and dense")
                            cursor = e.globalPosition
                        }
                    }
                    #expect(cursor == total)
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func idempotentAppendAcrossStorageObjects() async throws {
        let schema = TestServer.freshName()
        let a = try await TestServer.storage(schema: schema)
        let b = try await TestServer.storage(schema: schema)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        let req = request("pay-1", [event("Paid", #"{"x":1}"#, id: "e1"), event("Sent", #"{"x":2}"#, id: "e2")], .noStream)
        let first = try await a.append(req, hook: nil)
        let again = try await b.append(req, hook: nil)
        #expect(again.isReplay)
        #expect(again.events == first.events)
        #expect(try await b.headPosition() == 2)
        let changed = request("pay-1", [event("Paid", #"{"x":9}"#, id: "e1")], .noStream)
        let e = await expectMinkError(.duplicateEventID) { try await b.append(changed, hook: nil) }
        #expect(e?.actualVersion == 2)
        await expectMinkError(.duplicateEventID) {
            try await b.append(request("pay-1", [event("Paid", #"{"x":1}"#, id: "e1"), event("New", id: "e3")]), hook: nil)
        }
    }

    @Test func inlineHookCommitsAndRollsBackWithTheAppend() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        _ = try await s.append(request("acct-1", [event("Opened")]), hook: { events, tx in
            try tx.putDocument("accounts", id: "acct-1", json: Data(#"{"version":\#(events.last!.version)}"#.utf8))
            try tx.setCheckpoint("inline", to: events.last!.globalPosition)
            #expect(try tx.document("accounts", id: "acct-1") != nil)
        })
        #expect(try await s.document("accounts", id: "acct-1") == Data(#"{"version":1}"#.utf8))
        #expect(try await s.checkpoint("inline") == 1)

        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await s.append(request("acct-1", [event("Closed")]), hook: { _, tx in
                try tx.putDocument("accounts", id: "acct-1", json: Data(#"{"version":2}"#.utf8))
                try tx.setCheckpoint("inline", to: 2)
                throw Boom()
            })
        }
        #expect(try await s.document("accounts", id: "acct-1") == Data(#"{"version":1}"#.utf8))
        #expect(try await s.checkpoint("inline") == 1)
        #expect(try await s.streamInfo("acct-1")?.version == 1)
    }

    @Test func checkpointAndDocumentsCommitTogether() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await s.transaction { tx in
                try tx.putDocument("m", id: "1", json: Data(#"{"a":1}"#.utf8))
                try tx.setCheckpoint("p", to: 10)
                throw Boom()
            }
        }
        #expect(try await s.document("m", id: "1") == nil)
        #expect(try await s.checkpoint("p") == 0)
        try await s.transaction { tx in
            try tx.putDocument("m", id: "1", json: Data(#"{"a":1}"#.utf8))
            try tx.putDocument("m", id: "2", json: Data(#"{"a":2}"#.utf8))
            try tx.deleteDocument("m", id: "2")
            try tx.setCheckpoint("p", to: 10)
        }
        #expect(try await s.document("m", id: "1") == Data(#"{"a":1}"#.utf8))
        #expect(try await s.document("m", id: "2") == nil)
        #expect(try await s.checkpoint("p") == 10)
        try await s.setCheckpoint("p", to: 12)
        #expect(try await s.checkpoint("p") == 12)
    }

    /// A relaxed transaction (an async projection's batch) is as atomic as a durable one, and its
    /// `SET LOCAL synchronous_commit = off` ends with it: the pooled connection's next
    /// transaction — an append — commits durably again.
    @Test func relaxedTransactionsAreAtomicAndDoNotRelaxTheConnection() async throws {
        let s = try await TestServer.storage(poolSize: 1)
        defer { Task { await s.shutdown() } }
        // The test cluster runs with synchronous_commit off: the one pooled connection is set to
        // `on` for its session, as a production server is.
        try await s.core.main.pool.withConnection { conn in try conn.execute("SET synchronous_commit = on") }
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await s.transaction(.relaxed) { tx in
                try tx.putDocument("m", id: "1", json: Data(#"{"a":1}"#.utf8))
                try tx.setCheckpoint("p", to: 10)
                throw Boom()
            }
        }
        #expect(try await s.document("m", id: "1") == nil)
        #expect(try await s.checkpoint("p") == 0)
        try await s.transaction(.relaxed) { tx in
            try tx.putDocument("m", id: "1", json: Data(#"{"a":1}"#.utf8))
            try tx.setCheckpoint("p", to: 10)
        }
        #expect(try await s.document("m", id: "1") == Data(#"{"a":1}"#.utf8))
        #expect(try await s.checkpoint("p") == 10)
        // A relaxed transaction whose only statement is a read (a document load) still commits.
        try await s.transaction(.relaxed) { tx in _ = try tx.document("m", id: "1") }
        let setting = try await s.core.main.pool.withConnection { conn in
            try conn.query("SHOW synchronous_commit").string(0, 0)
        }
        #expect(setting == "on")
        _ = try await s.append(request("r-1", [event()]), hook: nil)
        #expect(try await s.headPosition() == 1)
    }

    /// A page filtered by several event types is read type by type and merged by position: it
    /// never sorts every event after the checkpoint, even on a table without statistics (a
    /// catch-up right after a bulk load, before autovacuum's first ANALYZE). The pages are the
    /// matching events in position order, whatever the types' order or repetitions.
    @Test func aPageOfSeveralTypesIsMergedByPositionWithoutStatistics() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        // No autovacuum ANALYZE during the test: the table stays without statistics.
        _ = try await s.headPosition()
        try await s.core.main.pool.withConnection { conn in
            try conn.execute("ALTER TABLE \(s.scope.sql.events) SET (autovacuum_enabled = false)")
        }
        for a in 0..<40 {
            let events = (0..<100).map { i in event(i % 10 == 0 ? "Opened" : i % 10 == 5 ? "Closed" : "Noted") }
            _ = try await s.append(request("acct-\(a)", events, .noStream), hook: nil)
        }
        let all = try await s.readAll(after: 0, filter: .all, limit: 10_000)
        #expect(all.count == 4_000)
        for types in [["Opened", "Closed"], ["Closed", "Opened", "Closed"], ["Noted", "Opened"], ["Opened", "Nope"]] {
            let wanted = all.filter { types.contains($0.type) }
            for (after, limit) in [(UInt64(0), 50), (1_234, 7), (3_990, 100), (0, 10_000)] {
                let page = try await s.readAll(after: after, filter: EventFilter(eventTypes: types), limit: limit)
                #expect(page == Array(wanted.filter { $0.globalPosition > after }.prefix(limit)), "\(types) after \(after)")
            }
            let combined = try await s.readAll(after: 0, filter: EventFilter(category: "acct", eventTypes: types, streamIDs: ["acct-3", "acct-7"]), limit: 1_000)
            #expect(combined == wanted.filter { $0.streamID == "acct-3" || $0.streamID == "acct-7" })
        }
        let stats = try await s.core.main.pool.withConnection { conn in
            try conn.query("SELECT coalesce(n_live_tup, 0)::int8 FROM pg_stat_user_tables WHERE relid = '\(s.scope.sql.events)'::regclass AND last_analyze IS NULL AND last_autoanalyze IS NULL").rowCount
        }
        #expect(stats == 1, "the events table must not have statistics yet")
        let (sql, params) = PostgresStorage.readAllQuery(
            events: s.scope.sql.events, tenantID: s.scope.tenantID, after: 100, filter: EventFilter(eventTypes: ["Opened", "Noted"]), limit: 1_000
        )
        let plan = try await s.core.main.pool.withConnection { conn in
            let r = try conn.query("EXPLAIN " + sql, params)
            return (0..<r.rowCount).map { r.string($0, 0) ?? "" }
        }
        // Two spellings of "é" that Swift's `==` takes for one string are two types to PostgreSQL.
        let composed = "caf\u{e9}", decomposed = "cafe\u{301}"
        _ = try await s.append(request("cafe-1", [event(composed), event(decomposed)]), hook: nil)
        let both = try await s.readAll(after: 4_000, filter: EventFilter(eventTypes: [composed, decomposed]), limit: 10)
        #expect(both.map(\.globalPosition) == [4_001, 4_002])
        #expect(plan.contains { $0.contains("Merge Append") }, "\(plan.joined(separator: "\n"))")
        #expect(!plan.contains { $0.contains("Sort  (") }, "\(plan.joined(separator: "\n"))")
    }

    @Test func anyBytesRoundTrip() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        let json = #"{"q":"it's \"quoted\"","u":"żółw 🐢 中文","p":"100% _x_","nul":"a\u0000b","bs":"\\","e":"\u00e9"}"#
        let raw = Data(json.utf8)
        let binary = Data([0x00, 0xFF, 0xFE, 0x27, 0x5C, 0x22, 0x25, 0x5F, 0x0A])
        let meta = Metadata(correlationID: "c'1", causationID: "", userID: "ü", tenantID: nil, custom: ["k%": "v_\"", "": "empty"])
        let stream = "weird-'\"%_ żółw"
        let r = try await s.append(request(stream, [
            EventData(id: "id-'%_", type: "Type'%_\"", data: raw, metadata: meta),
            EventData(id: "bin", type: "Bin", data: binary),
        ]), hook: nil)
        let read = try await s.readStream(stream, from: 1, limit: 10, direction: .forward)
        #expect(read == r.events)
        #expect(read[0].data == raw && read[1].data == binary)
        #expect(read[0].metadata == meta)
        #expect(try await s.readAll(after: 0, filter: EventFilter(streamIDs: [stream]), limit: 10) == r.events)
        #expect(try await s.readAll(after: 0, filter: EventFilter(eventTypes: ["Type'%_\""]), limit: 10).map(\.id) == ["id-'%_"])

        // Documents keep their bytes too, `\u0000` included, and stay queryable.
        let doc = Data(#"{ "name" : "a\u0000b", "n": 1.50 }"#.utf8)
        try await s.transaction { try $0.putDocument("docs", id: "it's", json: doc) }
        #expect(try await s.document("docs", id: "it's") == doc)
        #expect(try await s.find("docs", query: Query().where("n", "=", 1.5)).map(\.json) == [doc])

        // Text that cannot travel in a C string is rejected, not truncated.
        await expectMinkError(.validationFailed) { try await s.append(request("nul\u{0}-1", [event()]), hook: nil) }
    }

    @Test func categoryFilterIsLiteral() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        for stream in ["a%-1", "ab-1", "a_-1", "ax-1", "a%", "A%-2"] {
            _ = try await s.append(request(stream, [event()]), hook: nil)
        }
        func streams(_ category: String) async throws -> [String] {
            try await s.readAll(after: 0, filter: EventFilter(category: category), limit: 100).map(\.streamID)
        }
        #expect(try await streams("a%") == ["a%-1", "a%"])
        #expect(try await streams("a_") == ["a_-1"])
        #expect(try await streams("a") == [])
        #expect(try await streams("ab") == ["ab-1"])
    }

    @Test func snapshotsKeepTheNewest() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        #expect(try await s.loadSnapshot(streamID: "x-1") == nil)
        let big = Data(String(repeating: #"{"k":"value"},"#, count: 2000).utf8)
        try await s.saveSnapshot(Snapshot(streamID: "x-1", version: 5, state: big))
        try await s.saveSnapshot(Snapshot(streamID: "x-1", version: 3, state: Data("old".utf8)))
        #expect(try await s.loadSnapshot(streamID: "x-1")?.state == big)
        try await s.saveSnapshot(Snapshot(streamID: "x-1", version: 7, state: Data("new".utf8)))
        let loaded = try #require(try await s.loadSnapshot(streamID: "x-1"))
        #expect(loaded.version == 7 && loaded.state == Data("new".utf8))
        let t: any SnapshotAdapter = try s.forTenant("other")
        #expect(try await t.loadSnapshot(streamID: "x-1") == nil)
    }

    @Test func readModelQueriesIndexesAndModels() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        try await s.transaction { tx in
            for (id, status, total) in [("o1", "pending", 50), ("o2", "pending", 150), ("o3", "shipped", 300), ("o4", "shipped", 20)] {
                try tx.putDocument("orders", id: id, json: Data(#"{"status":"\#(status)","total":\#(total)}"#.utf8))
            }
            try tx.putDocument("users", id: "u1", json: Data(#"{"name":"x"}"#.utf8))
        }
        try await s.createIndex("orders", field: FieldPath("status"))
        try await s.createIndex("orders", field: FieldPath("status"))
        let q = Query().where("status", "=", "pending").and("total", ">", 100).or("status", "=", "shipped").orderBy("total", descending: true)
        #expect(try await s.find("orders", query: q).map(\.id) == ["o3", "o2", "o4"])
        #expect(try await s.find("orders", query: q.limit(1).offset(1)).map(\.id) == ["o2"])
        #expect(try await s.count("orders", query: q.limit(1)) == 3)
        await expectMinkError(.invalidQuery) { try await s.find("orders", query: Query().where("bad field", "=", 1)) }
        #expect(try await s.modelNames() == ["orders", "users"])
        try await s.dropModel("orders")
        #expect(try await s.modelNames() == ["users"])
        #expect(try await s.count("orders", query: Query()) == 0)
    }

    @Test func migrationsAreRecordedAndIdempotent() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        try await s.migrate()
        try await s.migrate()
        _ = try await s.append(request("m-1", [event()]), hook: nil)
        #expect(try await s.headPosition() == 1)
        // Every migration is recorded once, in order, in the schema's own table.
        let schema = s.scope.sql.schema
        let recorded = try await s.core.main.pool.withConnection { conn in
            let rows = try conn.query("SELECT version, name FROM \(Identifier.quote(schema)).mink_schema_migrations ORDER BY version")
            return (0..<rows.rowCount).map { "\(rows.int64($0, 0) ?? -1) \(rows.string($0, 1) ?? "")" }
        }
        #expect(recorded == Migrations.all.map { "\($0.version) \($0.name)" })
        #expect(Migrations.all.map(\.version) == Array(1...Migrations.latest))
    }

    @Test func sharedTenantsAreIsolated() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        try await checkIsolation(s)
    }

    @Test func schemaTenantsAreIsolated() async throws {
        let prefix = TestServer.freshName("p_")
        let s = try await TestServer.storage(tenancy: .schema(prefix: prefix))
        defer { Task { await s.shutdown() } }
        try await checkIsolation(s)
        await expectMinkError(.invalidTenant) { try s.scoped("Bad Tenant!") }
    }

    @Test func databaseTenantsAreIsolated() async throws {
        let prefix = TestServer.freshName("d_")
        let s = try await TestServer.storage(tenancy: .database(prefix: prefix))
        defer { Task { await s.shutdown() } }
        try await checkIsolation(s)
    }

    private func checkIsolation(_ s: PostgresStorage) async throws {
        let a = try s.scoped("tenant-a")
        let b = try s.scoped("tenant_b")
        _ = try await a.append(request("order-1", [event(), event()]), hook: nil)
        let rb = try await b.append(request("order-1", [event()], .noStream), hook: { _, tx in
            try tx.putDocument("m", id: "1", json: Data("{}".utf8))
        })
        #expect(rb.fromVersion == 1 && rb.fromPosition == 1)
        #expect(try await a.headPosition() == 2)
        #expect(try await b.headPosition() == 1)
        #expect(try await s.headPosition() == 0)
        #expect(try await a.readAll(after: 0, filter: .all, limit: 10).count == 2)
        #expect(try await a.document("m", id: "1") == nil)
        #expect(try await b.document("m", id: "1") != nil)
        #expect(try await a.modelNames() == [])
        let viaProtocol: any EventStoreAdapter = try s.forTenant("tenant-a")
        #expect(try await viaProtocol.streamInfo("order-1")?.version == 2)
    }

    @Test func externalCommitsFireForOtherProcesses() async throws {
        let schema = TestServer.freshName()
        let writer = try await TestServer.storage(schema: schema)
        let other = try await TestServer.storage(schema: schema)
        defer { Task { await writer.shutdown(); await other.shutdown() } }
        let first = try #require(other.externalCommits())
        // The listener connects on the first subscription; wait until it is listening.
        let deadline = ContinuousClock.now + .seconds(10)
        while other.listenerConnectionCount == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(other.listenerConnectionCount == 1)
        // A listener that joins wakes every subscriber once (for writers that had not seen it yet,
        // see `PostgresNotifyPresenceTests`): past that, only notifications wake.
        let listener = other.scope.backend.listener
        while listener.presenceWakeUps.load(ordering: .relaxed) == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(listener.presenceWakeUps.load(ordering: .relaxed) == 1)
        let commits = try #require(other.externalCommits())
        let otherTenant = try #require(try other.scoped("someone-else").externalCommits())

        _ = try await writer.append(request("n-1", [event()]), hook: nil)
        #expect(await next(commits, within: 10), "no notification for the other storage object")
        #expect(await next(otherTenant, within: 0.5) == false, "another tenant's stream must not fire")
        _ = first
    }
}

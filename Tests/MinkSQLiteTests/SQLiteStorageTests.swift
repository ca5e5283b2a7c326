import CSQLite
import Foundation
import Mink
@testable import MinkSQLite
import MinkTestFixtures
import Testing

private struct Boom: Error {}

@Suite("SQLite storage guarantees", .timeLimit(.minutes(3)))
struct SQLiteStorageTests {
    @Test func eightConcurrentAppendsWithTheSameExpectedVersionOneWins() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        try await s.append("race-1", [ev("Start")])
        let outcomes = await withTaskGroup(of: Result<AppendResult, any Error>.self) { group in
            for i in 0..<8 {
                group.addTask {
                    do { return .success(try await s.append("race-1", [ev("Try", #"{"i":\#(i)}"#)], .exact(1))) } catch { return .failure(error) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let wins = outcomes.filter { (try? $0.get()) != nil }
        #expect(wins.count == 1)
        for case .failure(let error) in outcomes {
            let e = try #require(error as? MinkError)
            #expect(e.code == .concurrencyConflict && e.expectedVersion == 1 && e.actualVersion == 2)
        }
        #expect(try await s.readStream("race-1", from: 1, limit: 10, direction: .forward).map(\.version) == [1, 2])
        await s.close()
    }

    @Test func readersNeverSeePositionsOutOfOrderWithEightWriters() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        let writers = 8, appends = 25
        let total = UInt64(writers * appends * 2)
        let seen = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for w in 0..<writers {
                group.addTask {
                    for i in 0..<appends { try await s.append("w\(w)-\(i % 2)", [ev("E"), ev("E")]) }
                    return []
                }
            }
            for _ in 0..<2 {
                group.addTask {
                    var last: UInt64 = 0, positions: [UInt64] = []
                    let deadline = Deadline(.seconds(60))
                    while positions.count < total {
                        try deadline.check("the reader to see \(total) events (it saw \(positions.count))")
                        let page = try await s.readAll(after: last, filter: .all, limit: 37)
                        for e in page {
                            guard e.globalPosition > last else { throw MinkError(.internalError, "\(e.globalPosition) after \(last)") }
                            last = e.globalPosition
                            positions.append(last)
                        }
                    }
                    return positions
                }
            }
            return try await group.reduce(into: [[UInt64]]()) { if !$1.isEmpty { $0.append($1) } }
        }
        #expect(seen.count == 2)
        // A gap filled later would have been skipped by `after: last`, so each reader must have
        // seen every position exactly once.
        for positions in seen { #expect(positions == Array(1...total)) }
        await s.close()
    }

    @Test func idempotentAppendIsRecognisedAfterReopening() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let batch = [ev("A", #"{"a":1}"#, id: "id-1"), ev("B", #"{"b":2}"#, id: "id-2")]
        var s = try await SQLiteStorage.open(path: dir.file())
        let first = try await s.append("idem-1", batch, .noStream)
        await s.close()
        s = try await SQLiteStorage.open(path: dir.file())
        let retry = try await s.append("idem-1", batch, .noStream)
        #expect(retry.isReplay)
        #expect(retry.events == first.events)
        #expect(try await s.headPosition() == 2)
        await #expect(throws: MinkError.self) { try await s.append("idem-1", [ev("A", #"{"a":2}"#, id: "id-1")]) }
        await s.close()
    }

    @Test func aFailingHookInAGroupCommitRollsBackOnlyItsOwnAppend() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for i in 0..<40 {
                group.addTask {
                    do {
                        try await s.append("h-\(i)", [ev("E")], hook: { events, tx in
                            try tx.putDocument("m", id: "\(i)", json: Data(#"{"i":\#(i)}"#.utf8))
                            if i % 3 == 0 { throw Boom() }
                        })
                        return (i, true)
                    } catch { return (i, false) }
                }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        for i in 0..<40 {
            #expect(results[i] == (i % 3 != 0))
            let doc = try await s.document("m", id: "\(i)")
            let info = try await s.streamInfo("h-\(i)")
            #expect((doc != nil) == (i % 3 != 0))
            #expect((info != nil) == (i % 3 != 0))
        }
        let all = try await s.readAll(after: 0, filter: .all, limit: 100)
        #expect(all.map(\.globalPosition) == Array(1...UInt64(all.count)))
        #expect(all.count == (0..<40).filter { $0 % 3 != 0 }.count)
        await s.close()
    }

    @Test func groupCommitPutsConcurrentAppendsInFewerTransactions() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        let before = s.database.transactionsCommitted.load(ordering: .relaxed)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<16 {
                group.addTask { for i in 0..<10 { try await s.append("g-\(w)", [ev("E")], .exact(Int64(i))) } }
            }
            try await group.waitForAll()
        }
        let transactions = s.database.transactionsCommitted.load(ordering: .relaxed) - before
        #expect(try await s.headPosition() == 160)
        #expect(transactions < 160, "160 appends in \(transactions) transactions")
        await s.close()
    }

    @Test func readModelTransactionCommitsDocumentsAndCheckpointTogether() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        try await s.transaction { tx in
            try tx.putDocument("m", id: "a", json: Data(#"{"v":1}"#.utf8))
            try tx.setCheckpoint("p", to: 7)
        }
        await #expect(throws: Boom.self) {
            try await s.transaction { tx in
                try tx.putDocument("m", id: "b", json: Data(#"{"v":2}"#.utf8))
                try tx.setCheckpoint("p", to: 9)
                throw Boom()
            }
        }
        #expect(try await s.checkpoint("p") == 7)
        #expect(try await s.document("m", id: "b") == nil)
        #expect(try await s.document("m", id: "a") == Data(#"{"v":1}"#.utf8))
        await s.close()
    }

    /// Custom metadata stored by earlier versions (Foundation's `JSONEncoder`: escaped slashes)
    /// reads back; stored text that is not an object of strings fails the read with
    /// `serialization_failed` instead of crashing or returning wrong pairs.
    @Test func storedCustomMetadataOfEarlierVersionsReads() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        try await s.append("meta-1", [EventData(type: "T", data: Data("{}".utf8), metadata: Metadata(custom: ["k": "v"]))])
        try await s.database.write { c in
            // What JSONEncoder wrote: escaped slashes, a \u escape.
            try c.run(#"UPDATE mink_events SET metadata_custom = '{"path":"\/a\/b","who":"\u00fc"}' WHERE stream_id = 'meta-1'"#)
            #expect(try c.int(#"SELECT count(*) FROM mink_events WHERE metadata_custom LIKE '%\/a\/b%'"#) == 1)
        }
        let e = try #require(try await s.readStream("meta-1", from: 1, limit: 1, direction: .forward).first)
        #expect(e.metadata.custom == ["path": "/a/b", "who": "ü"])
        try await s.database.write { c in
            try c.run(#"UPDATE mink_events SET metadata_custom = '{"path":1}' WHERE stream_id = 'meta-1'"#)
        }
        do {
            _ = try await s.readStream("meta-1", from: 1, limit: 1, direction: .forward)
            Issue.record("malformed stored metadata was read")
        } catch let error as MinkError {
            #expect(error.code == .serializationFailed)
        }
        await s.close()
    }

    @Test func anyBytesRoundTrip() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        let odd = ["", "nul\u{0}inside", "quote'\"", "ü💥", "%_\\", "a\u{7F}"]
        for (i, text) in odd.enumerated() {
            let stream = "s\(i)-\(text)"
            let data = Data([0, 1, 2, 0xFF, 0xFE, 0x27, 0x22]) + Data(text.utf8)
            try await s.append(stream, [EventData(id: "id-\(text)", type: "T\(text)", data: data, metadata: Metadata(userID: text, custom: [text: text]))])
            let e = try #require(try await s.readStream(stream, from: 1, limit: 1, direction: .forward).first)
            #expect(e.streamID == stream && e.type == "T\(text)" && e.data == data && e.id == "id-\(text)")
            #expect(e.metadata.userID == text && e.metadata.custom == [text: text])
        }
        try await s.append("empty-1", [EventData(id: "", type: "E", data: Data())])
        #expect(try await s.readStream("empty-1", from: 1, limit: 1, direction: .forward).first?.data == Data())
        // Document bytes are kept exactly, even when they are not valid UTF-8 or contain NUL.
        let raw = Data([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x00, 0x22, 0x7D])
        let json = Data(#"{"s":"\u0000 ü 'x' %_"}"#.utf8)
        try await s.transaction { tx in
            try tx.putDocument("raw", id: "r", json: raw)
            try tx.putDocument("json", id: "j\u{0}k", json: json)
        }
        #expect(try await s.document("raw", id: "r") == raw)
        #expect(try await s.document("json", id: "j\u{0}k") == json)
        #expect(try await s.document("json", id: "j") == nil)
        await s.close()
    }

    @Test func busyDatabaseIsATransientUnavailableError() async throws {
        let (s, dir) = try await SQLiteStorage.temporary(configuration: SQLiteConfiguration(busyTimeout: .milliseconds(50)))
        defer { dir.remove() }
        var other: OpaquePointer?
        #expect(sqlite3_open(dir.file(), &other) == SQLITE_OK)
        defer { sqlite3_close(other) }
        #expect(sqlite3_exec(other, "BEGIN IMMEDIATE", nil, nil, nil) == SQLITE_OK)
        do {
            try await s.append("b-1", [ev("E")])
            Issue.record("append succeeded while another connection held the write lock")
        } catch let e as MinkError {
            #expect(e.code == .unavailable && e.isTransient)
            #expect((e.underlying as? SQLiteError)?.code == SQLITE_BUSY)
        }
        #expect(sqlite3_exec(other, "ROLLBACK", nil, nil, nil) == SQLITE_OK)
        try await s.append("b-1", [ev("E")])
        #expect(try await s.headPosition() == 1)
        await s.close()
    }

    @Test func errorsKeepTheirSQLiteCodes() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        // A real constraint violation: one append repeating an event ID breaks
        // UNIQUE (tenant_id, stream_id, event_id); classified by its extended code.
        do {
            try await s.append("dup-1", [ev("A", id: "same"), ev("B", id: "same")])
            Issue.record("an append repeating an event ID succeeded")
        } catch let e as MinkError {
            #expect(e.code == .duplicateEventID && e.streamID == "dup-1" && e.actualVersion == 0)
            let cause = try #require(e.underlying as? SQLiteError)
            #expect(cause.code == SQLITE_CONSTRAINT && cause.isUniqueViolation)
            #expect(cause.extendedCode == SQLiteError.constraintUnique && cause.extendedCode == 2067)  // sqlite3.h's value
        }
        #expect(try await s.headPosition() == 0)

        // A stored document that is not JSON makes a filtered query fail with a plain SQLITE_ERROR;
        // the adapter finds the bad document and reports `.serializationFailed`, the error as cause.
        try await s.transaction { try $0.putDocument("bad", id: "x", json: Data("{not json".utf8)) }
        do {
            _ = try await s.find("bad", query: Query().where("a", "=", 1))
            Issue.record("a query over a document that is not JSON succeeded")
        } catch let e as MinkError {
            #expect(e.code == .serializationFailed)
            #expect((e.underlying as? SQLiteError)?.code == SQLITE_ERROR)
        }
        // The same SQLite code without a bad document stays what it is.
        let plain = SQLiteError(extendedCode: SQLITE_ERROR, message: "no such table")
        #expect(plain.minkError.code == .internalError && (plain.minkError.underlying as? SQLiteError) == plain)
        #expect(SQLiteError(extendedCode: SQLITE_READONLY, message: "ro").minkError.code == .unavailable)
        #expect(SQLiteError(extendedCode: SQLITE_FULL, message: "full").minkError.isTransient)
        await s.close()
    }

    @Test func durabilitySettings() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        let (mode, sync, version) = try await s.database.write { c in
            var mode = ""
            try c.query("PRAGMA journal_mode") { mode = $0.text(0) }
            return (mode, try c.int("PRAGMA synchronous"), try c.int("PRAGMA user_version"))
        }
        #expect(mode == "wal")
        #expect(sync == 2)  // FULL
        #expect(version == SQLiteSchema.currentVersion)
        await s.close()
    }

    /// Relaxed writes (projection batches) commit with `synchronous = NORMAL`, in groups of their
    /// own; every durable write — alone, after a relaxed one, or queued together with relaxed
    /// ones — still commits with FULL.
    @Test func relaxedWritesCommitWithoutAnFsyncAndNeverRelaxADurableOne() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        let level: @Sendable (SQLiteConnection) throws -> Int64? = { try $0.int("PRAGMA synchronous") }
        #expect(try await s.database.write(durability: .relaxed, level) == 1)  // NORMAL
        #expect(try await s.database.write(level) == 2)  // FULL again
        #expect(try await s.database.write(durability: .relaxed, level) == 1)
        // Queued together: each kind gets its own group and its own level.
        let levels = try await withThrowingTaskGroup(of: (Bool, Int?).self) { group in
            for i in 0..<40 {
                let relaxed = i % 2 == 0
                group.addTask { (relaxed, try await s.database.write(durability: relaxed ? .relaxed : .durable, level).map(Int.init)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(levels.count == 40)
        for (relaxed, l) in levels { #expect(l == (relaxed ? 1 : 2), "relaxed \(relaxed) committed at level \(String(describing: l))") }
        // A relaxed read-model transaction commits its documents and checkpoint together.
        try await s.transaction(.relaxed) { tx in
            try tx.putDocument("m", id: "a", json: Data(#"{"n":1}"#.utf8))
            try tx.setCheckpoint("p", to: 7)
        }
        #expect(try await s.document("m", id: "a") == Data(#"{"n":1}"#.utf8))
        #expect(try await s.checkpoint("p") == 7)
        await s.close()
    }

    @Test func configuredNormalIsNeverMadeStricterOrLooser() async throws {
        let (s, dir) = try await SQLiteStorage.temporary(configuration: SQLiteConfiguration(synchronous: .normal))
        defer { dir.remove() }
        let level: @Sendable (SQLiteConnection) throws -> Int64? = { try $0.int("PRAGMA synchronous") }
        #expect(try await s.database.write(durability: .relaxed, level) == 1)
        #expect(try await s.database.write(level) == 1)
        await s.close()
    }

    @Test func closedStorageRefusesWork() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        await s.close()
        do {
            try await s.append("x-1", [ev("E")])
            Issue.record("append after close")
        } catch let e as MinkError { #expect(e.code == .cancelled) }
        await #expect(throws: MinkError.self) { try await s.headPosition() }
    }
}

@Suite("SQLite tenancy", .timeLimit(.minutes(3)))
struct SQLiteTenancyTests {
    @Test func schemaStrategyIsNotSupported() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        do {
            _ = try await SQLiteStorage.open(directory: dir.path, strategy: .schema)
            Issue.record("schema strategy accepted")
        } catch let e as MinkError {
            #expect(e.code == .adapterNotSupported)
        }
    }

    @Test func databaseStrategyKeepsAFilePerTenant() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let s = try await SQLiteStorage.open(directory: dir.path, strategy: .database)
        let acme = try s.scoped("acme")
        try await acme.append("order-1", [ev("A")])
        try await s.append("order-1", [ev("D"), ev("D")])
        #expect(acme.path == dir.file("acme.sqlite") && s.path == dir.file("default.sqlite"))
        #expect(FileManager.default.fileExists(atPath: dir.file("acme.sqlite")))
        #expect(try await acme.headPosition() == 1)
        #expect(try await s.headPosition() == 2)
        #expect(throws: MinkError.self) { try s.scoped("../etc") }
        #expect(!FileManager.default.fileExists(atPath: dir.file("../etc.sqlite")))
        await s.close()
        // Reopened, each tenant finds its own file again.
        let again = try await SQLiteStorage.open(directory: dir.path, strategy: .database)
        #expect(try await again.scoped("acme").readStream("order-1", from: 1, limit: 5, direction: .forward).map(\.type) == ["A"])
        await again.close()
    }

    /// The seed's store-wide settings (`Config{MultiTenancy: …}`) choose the layout.
    @Test func seedConfigChoosesTheLayout() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let s = try await SQLiteStorage.open(directory: dir.path, config: Config(multiTenancy: MultiTenancyConfig(strategy: .databasePerTenant)))
        try await s.scoped("acme").append("order-1", [ev("A")])
        #expect(FileManager.default.fileExists(atPath: dir.file("acme.sqlite")))
        #expect(!FileManager.default.fileExists(atPath: dir.file("mink.sqlite")))
        await s.close()

        let shared = TempDirectory()
        defer { shared.remove() }
        let t = try await SQLiteStorage.open(directory: shared.path, config: Config())
        try await t.scoped("acme").append("order-1", [ev("A")])
        #expect(FileManager.default.fileExists(atPath: shared.file("mink.sqlite")))
        #expect(!FileManager.default.fileExists(atPath: shared.file("acme.sqlite")))
        await t.close()

        do {
            _ = try await SQLiteStorage.open(directory: shared.path, config: Config(multiTenancy: MultiTenancyConfig(strategy: .schemaPerTenant)))
            Issue.record("schema strategy accepted")
        } catch let e as MinkError {
            #expect(e.code == .adapterNotSupported)
        }
    }

    @Test func sharedStrategyKeepsTenantsApartInOneFile() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let s = try await SQLiteStorage.open(directory: dir.path)
        let a = try s.scoped("a"), b = try s.scoped("b")
        try await a.append("x-1", [ev("A")])
        try await b.append("x-1", [ev("B")])
        try await a.append("x-2", [ev("A")])
        #expect(a.path == b.path && a.path == dir.file("mink.sqlite"))
        #expect(try await a.readAll(after: 0, filter: .all, limit: 10).map(\.globalPosition) == [1, 2])
        #expect(try await b.readAll(after: 0, filter: .all, limit: 10).map(\.globalPosition) == [1])
        await s.close()
    }
}

@Suite("SQLite indexes", .timeLimit(.minutes(3)))
struct SQLiteIndexTests {
    @Test func createIndexBuildsAPartialExpressionIndexThatQueriesUse() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        try await s.transaction { tx in
            for i in 0..<500 { try tx.putDocument("orders", id: "\(i)", json: Data(#"{"status":"s\#(i % 50)"}"#.utf8)) }
        }
        try await s.createIndex("orders", field: try FieldPath("status"))
        try await s.createIndex("orders", field: try FieldPath("status"))  // idempotent
        let statement = try SQLiteStorage.readModelSQL.find("orders", tenantID: "default", query: Query().where("status", "=", "s1"))
        let plan = try await s.database.read { c in
            var lines: [String] = []
            try c.query("EXPLAIN QUERY PLAN " + statement.sql, statement.binds.map(SQLiteValue.init)) { lines.append($0.text(3)) }
            return lines.joined(separator: "\n")
        }
        #expect(plan.contains("mink_doc_orders_"), "\(plan)")
        #expect(try await s.count("orders", query: Query().where("status", "=", "s1")) == 10)
        await #expect(throws: MinkError.self) { try await s.createIndex("it's", field: try FieldPath("a")) }
        try await s.dropModel("orders")
        let remaining = try await s.database.read { c in try c.int("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'mink_doc_%'") }
        #expect(remaining == 0)
        await s.close()
    }
}

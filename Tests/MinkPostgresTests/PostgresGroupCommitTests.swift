import Dispatch
import Foundation
import Mink
@testable import MinkPostgres
import Synchronization
import Testing

/// Group commit on PostgreSQL: concurrent appends of a tenant share transactions, and one
/// append's conflict, reused event ID or failing hook fails that append alone.
@Suite("PostgreSQL group commit", .timeLimit(.minutes(3)))
struct PostgresGroupCommitTests {
    /// The batcher of a storage view's tenant.
    static func batcher(_ s: PostgresStorage) -> AppendBatcher { s.scope.backend.appender(for: s.scope) }

    /// Waits until `count` appends are queued behind the batch being written (or fails).
    static func waitForQueued(_ s: PostgresStorage, _ count: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while batcher(s).pendingCount < count {
            guard ContinuousClock.now < deadline else {
                Issue.record("only \(batcher(s).pendingCount) of \(count) appends queued", sourceLocation: sourceLocation)
                throw TestSetupError(description: "appends were not queued")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Starts an append whose hook blocks its batch's transaction until `gate` is signalled (at
    /// most 60 s: a machine busy with other work can be slow to queue them), so that the appends
    /// queued meanwhile form the next batch, in a known order.
    static func holdBatch(_ s: PostgresStorage, _ gate: DispatchSemaphore) async throws -> Task<AppendResult, any Error> {
        let (entered, enteredContinuation) = AsyncStream.makeStream(of: Void.self)
        let held = Task {
            try await s.append(request("hold-1", [event("Held")]), hook: { _, _ in
                enteredContinuation.yield()
                _ = gate.wait(timeout: .now() + 60)  // on the connection's own thread, not the cooperative pool
            })
        }
        var it = entered.makeAsyncIterator()
        _ = await it.next()
        return held
    }

    /// Queues appends one after the other behind a held batch (so that their order in the next
    /// batch is known) and returns their outcomes once that batch is written.
    /// The storage deadline of these tests: far above how long a held batch waits for the
    /// appends queued behind it on a starved machine (the deadline itself is tested by
    /// PostgresDeadlineTests; at the default 10 s a full run once answered the held batch 503).
    static let timeout: Duration = .seconds(120)

    static func oneBatch(
        _ s: PostgresStorage, _ appends: [(AppendRequest, AppendTransactionHook?)]
    ) async throws -> [Result<AppendResult, any Error>] {
        let gate = DispatchSemaphore(value: 0)
        let held = try await holdBatch(s, gate)
        let before = batcher(s).transactionsCommitted.load(ordering: .relaxed)
        var tasks: [Task<AppendResult, any Error>] = []
        for (i, (req, hook)) in appends.enumerated() {
            tasks.append(Task { try await s.append(req, hook: hook) })
            try await waitForQueued(s, i + 1)
        }
        gate.signal()
        _ = try await held.value
        var outcomes: [Result<AppendResult, any Error>] = []
        for t in tasks { outcomes.append(await t.result) }
        let transactions = batcher(s).transactionsCommitted.load(ordering: .relaxed) - before
        #expect(transactions == 2, "the held batch and one batch for the \(appends.count) queued appends: \(transactions)")
        return outcomes
    }

    static func error(_ r: Result<AppendResult, any Error>) -> MinkError? {
        if case .failure(let e) = r { return e as? MinkError }
        return nil
    }

    static func value(_ r: Result<AppendResult, any Error>) -> AppendResult? {
        if case .success(let v) = r { return v }
        return nil
    }

    @Test func concurrentAppendsShareTransactionsAndStayDense() async throws {
        let s = try await TestServer.storage(poolSize: 4, timeout: Self.timeout)
        defer { Task { await s.shutdown() } }
        let writers = 64, perWriter = 10
        // Half the writers append to their own stream with exact versions, the other half to
        // four shared streams with `.any`.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                group.addTask {
                    for i in 0..<perWriter {
                        if w % 2 == 0 {
                            let r = try await s.append(request("own\(w)-1", [event("E")], .exact(Int64(i))), hook: nil)
                            #expect(r.toVersion == Int64(i + 1))
                        } else {
                            _ = try await s.append(request("shared-\(w % 4)", [event("E"), event("F")]), hook: nil)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let appends = writers * perWriter
        let transactions = Self.batcher(s).transactionsCommitted.load(ordering: .relaxed)
        #expect(Self.batcher(s).appendsCommitted.load(ordering: .relaxed) == appends)
        #expect(transactions < appends, "\(appends) appends in \(transactions) transactions: no batching")

        let all = try await s.readAll(after: 0, filter: .all, limit: 10_000)
        let total = writers / 2 * perWriter + writers / 2 * perWriter * 2
        #expect(all.map(\.globalPosition) == (1...UInt64(total)).map { $0 }, "positions dense")
        var byStream: [String: [Int64]] = [:]
        for e in all { byStream[e.streamID, default: []].append(e.version) }
        for (stream, versions) in byStream {
            #expect(versions == (1...Int64(versions.count)).map { $0 }, "versions of \(stream) dense and in position order")
        }
        #expect(byStream.count == writers / 2 + 2)
        #expect(try await s.streamInfo("shared-1")?.version == Int64(writers / 4 * perWriter * 2))
    }

    /// Two storages on one schema (two processes) appending together: each batcher notices the
    /// other's commits (a head it did not leave) and gathers its batches for contention, waiting
    /// for the callers it has just answered; a lone storage never does. Positions stay dense and
    /// every append is there once.
    @Test func batchesGatherUnderAnotherWritersContention() async throws {
        let schema = TestServer.freshName()
        let a = try await TestServer.storage(schema: schema, poolSize: 2, timeout: Self.timeout)
        let b = try await TestServer.storage(schema: schema, poolSize: 2, timeout: Self.timeout)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        // IDs generated by the store, as over HTTP: the one-round-trip batches.
        func fresh(_ stream: String, _ expected: ExpectedVersion) -> AppendRequest {
            AppendRequest(streamID: stream, events: [event()], expectedVersion: expected, hasFreshIDs: true)
        }
        for i in 0..<20 { _ = try await a.append(fresh("alone-\(i % 3)", .any), hook: nil) }
        #expect(Self.batcher(a).contendedBatches.load(ordering: .relaxed) == 0, "a lone writer saw contention")
        #expect(Self.batcher(a).contentionPauses.load(ordering: .relaxed) == 0, "a lone writer paused")

        let writers = 16, perWriter = 25
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                let s = w % 2 == 0 ? a : b
                group.addTask {
                    for i in 0..<perWriter {
                        let r = try await s.append(fresh("w\(w)", .exact(Int64(i))), hook: nil)
                        #expect(r.toVersion == Int64(i + 1))
                    }
                }
            }
            try await group.waitForAll()
        }
        let contended = Self.batcher(a).contendedBatches.load(ordering: .relaxed) + Self.batcher(b).contendedBatches.load(ordering: .relaxed)
        let pauses = Self.batcher(a).contentionPauses.load(ordering: .relaxed) + Self.batcher(b).contentionPauses.load(ordering: .relaxed)
        #expect(contended > 0, "neither batcher noticed the other's commits")
        #expect(pauses > 0, "no batch was gathered for contention")
        let all = try await a.readAll(after: 0, filter: .all, limit: 10_000)
        #expect(all.map(\.globalPosition) == (1...UInt64(20 + writers * perWriter)).map { $0 }, "positions dense")
        for w in 0..<writers {
            #expect(all.filter { $0.streamID == "w\(w)" }.map(\.version) == (1...Int64(perWriter)).map { $0 })
        }
    }

    /// Counts a stream's events in a document per stream (a fold: over several appends' events
    /// at once it writes what it writes append by append); an event of type "Poison" fails it.
    /// Records the positions of every call.
    final class CountingHook: Sendable {
        struct Boom: Error {}
        let calls = Mutex<[[UInt64]]>([])
        var hook: AppendTransactionHook {
            { [self] events, tx in
                calls.withLock { $0.append(events.map(\.globalPosition)) }
                var counts: [String: Int] = [:]
                for e in events {
                    if e.type == "Poison" { throw Boom() }
                    if counts[e.streamID] == nil {
                        let stored = try tx.document("counts", id: e.streamID).flatMap { Int(String(decoding: $0, as: UTF8.self)) }
                        counts[e.streamID] = stored ?? 0
                    }
                    counts[e.streamID]! += 1
                }
                for (id, n) in counts { try tx.putDocument("counts", id: id, json: Data("\(n)".utf8)) }
            }
        }
    }

    /// Appends whose hooks share a hook group run the hook once for the whole batch, over the
    /// events of every append written, in log order; conflicts and hookless appends are left
    /// out. When that run fails, the batch is decided append by append: the failing append fails
    /// alone and the others are written with their hooks' writes. Hooks of different groups (or
    /// none) never run together.
    @Test func appendsOfOneHookGroupRunTheirHookOnceForTheBatch() async throws {
        let s = try await TestServer.storage(timeout: Self.timeout)
        defer { Task { await s.shutdown() } }
        let counting = CountingHook()
        final class Group: Sendable {}
        let group = Group(), other = Group()
        func hooked(_ stream: String, _ types: [String], _ expected: ExpectedVersion = .any, group g: Group? = nil) -> (AppendRequest, AppendTransactionHook?) {
            (AppendRequest(streamID: stream, events: types.map { event($0) }, expectedVersion: expected, hookGroup: ObjectIdentifier(g ?? group)), counting.hook)
        }
        let first = try await Self.oneBatch(s, [
            hooked("a", ["E", "E"]),                                       // positions 2, 3
            hooked("b", ["E"]),                                            // 4
            (request("plain", [event()]), nil),                            // 5: no hook
            hooked("a", ["E"], .exact(7)),                                 // conflict: not written
            hooked("a", ["E"], .exact(2)),                                 // 6
            hooked("c", ["E"]),                                            // 7
        ])
        #expect(Self.error(first[3])?.code == .concurrencyConflict)
        for i in [0, 1, 2, 4, 5] { #expect(Self.value(first[i]) != nil, "append \(i): \(first[i])") }
        #expect(counting.calls.withLock { $0 } == [[2, 3, 4, 6, 7]], "one run of the hook over the written appends' events")
        #expect(Self.batcher(s).batchHookRuns.load(ordering: .relaxed) == 1)
        #expect(try await s.document("counts", id: "a") == Data("3".utf8))
        #expect(try await s.document("counts", id: "b") == Data("1".utf8))

        counting.calls.withLock { $0 = [] }
        let second = try await Self.oneBatch(s, [
            hooked("a", ["E"]),                                            // 9
            hooked("b", ["E", "Poison"]),                                  // fails alone
            hooked("c", ["E"]),                                            // 10
        ])
        #expect(Self.value(second[0])?.fromPosition == 9)
        if case .failure(let e) = second[1] { #expect(e is CountingHook.Boom, "\(e)") } else { Issue.record("the poisoned append succeeded") }
        #expect(Self.value(second[2])?.fromPosition == 10)
        #expect(Self.batcher(s).batchHookFallbacks.load(ordering: .relaxed) == 1)
        #expect(counting.calls.withLock { $0 } == [[9, 10, 11, 12], [9], [10, 11], [10]], "the run for the batch, then append by append")
        #expect(try await s.document("counts", id: "a") == Data("4".utf8))
        #expect(try await s.document("counts", id: "b") == Data("1".utf8), "nothing of the failed append")
        #expect(try await s.document("counts", id: "c") == Data("2".utf8))

        counting.calls.withLock { $0 = [] }
        _ = try await Self.oneBatch(s, [hooked("a", ["E"]), hooked("b", ["E"], group: other)])
        #expect(counting.calls.withLock { $0 }.count == 2, "hooks of two groups run apart")
        #expect(Self.batcher(s).batchHookRuns.load(ordering: .relaxed) == 1)
        #expect(try await s.streamInfo("b")?.version == 2)
    }

    /// An ``EventStore``'s inline projections give its appends one hook group: a batch of them
    /// runs the projections once.
    @Test func anEventStoresInlineProjectionsRunOncePerBatch() async throws {
        struct Counter: InlineProjection {
            let name = "counter"
            let handledEvents: [String] = []
            func apply(_ event: Event, in tx: any ReadModelTransaction) throws {
                let n = try tx.document("n", id: "all").flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
                try tx.putDocument("n", id: "all", json: Data("\(n + 1)".utf8))
            }
        }
        let s = try await TestServer.storage(timeout: Self.timeout)
        defer { Task { await s.shutdown() } }
        let store = EventStore(adapter: s, inlineProjections: [Counter()])
        let gate = DispatchSemaphore(value: 0)
        let held = try await Self.holdBatch(s, gate)
        var tasks: [Task<AppendResult, any Error>] = []
        for i in 0..<5 {
            tasks.append(Task { try await store.append("s-\(i)", events: [EventData(type: "E", data: Data("{}".utf8))]) })
            try await Self.waitForQueued(s, i + 1)
        }
        gate.signal()
        _ = try await held.value
        for t in tasks { _ = try await t.value }
        #expect(Self.batcher(s).batchHookRuns.load(ordering: .relaxed) == 1)
        #expect(try await s.document("n", id: "all") == Data("5".utf8))
    }

    /// An event store's inline projections are the parts of its hook: what they read goes ahead
    /// in rounds, for all of them at once — three projections each reading a generations row and
    /// then a document cost two round trips of reads, not six: five for a lone append (state,
    /// the two rounds, the writes with `RELEASE`, the insert with `COMMIT`), where it was nine.
    @Test func inlineProjectionsReadAheadTogether() async throws {
        struct TwoReads: InlineProjection {
            let name: String
            let handledEvents: [String] = []
            func apply(_ event: Event, in tx: any ReadModelTransaction) throws {
                let model = "\(name)_g\(try tx.checkpoint("gen-\(name)"))"
                let n = try tx.document(model, id: "x").flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
                try tx.putDocument(model, id: "x", json: Data("\(n + 1)".utf8))
            }
        }
        let s = try await TestServer.storage(timeout: Self.timeout)
        defer { Task { await s.shutdown() } }
        let store = EventStore(adapter: s, inlineProjections: [TwoReads(name: "p"), TwoReads(name: "q"), TwoReads(name: "r")])
        for round in 1...3 {
            try await store.append("s-1", events: [EventData(type: "E", data: Data("{}".utf8))])
            #expect(Self.batcher(s).lastBatchRoundTrips.load(ordering: .relaxed) == 5, "round \(round)")
        }
        for p in ["p", "q", "r"] { #expect(try await s.document("\(p)_g0", id: "x") == Data("3".utf8)) }
    }

    @Test func conflictsAndReusedIDsInOneBatchFailAlone() async throws {
        let s = try await TestServer.storage(timeout: Self.timeout)
        defer { Task { await s.shutdown() } }
        let a = event("A", #"{"a":1}"#, id: "id-a")
        let outcomes = try await Self.oneBatch(s, [
            (request("c-1", [a], .noStream), nil),  // 0: v1
            (request("c-1", [event()], .exact(0)), nil),  // 1: conflict with 0, in the same batch
            (request("c-1", [event("B", id: "id-b")], .exact(1)), nil),  // 2: v2
            (request("c-1", [a], .noStream), nil),  // 3: a retry of 0 (replay, though 0 is in this batch)
            (request("c-1", [event("A", #"{"a":2}"#, id: "id-a")]), nil),  // 4: id-a reused for another event
            (request("d-1", [event(id: "twice"), event(id: "twice")]), nil),  // 5: one ID twice in the append
            (request("c-1", [event("C")], .streamExists), nil),  // 6: v3
            (request("e-1", [event()], .streamExists), nil),  // 7: no such stream
            (request("d-1", [event("D", id: "twice")], .noStream), nil),  // 8: 5 wrote nothing: v1
        ])
        let r0 = try #require(Self.value(outcomes[0]))
        #expect(r0.fromVersion == 1 && r0.fromPosition == 2 && !r0.isReplay)
        let conflict = Self.error(outcomes[1])
        #expect(conflict?.code == .concurrencyConflict && conflict?.expectedVersion == 0 && conflict?.actualVersion == 1)
        let r2 = try #require(Self.value(outcomes[2]))
        #expect(r2.fromVersion == 2 && r2.fromPosition == 3)
        let replay = try #require(Self.value(outcomes[3]))
        #expect(replay.isReplay && replay.events == r0.events)
        let reused = Self.error(outcomes[4])
        #expect(reused?.code == .duplicateEventID && reused?.actualVersion == 2)
        #expect(Self.error(outcomes[5])?.code == .duplicateEventID)
        let r6 = try #require(Self.value(outcomes[6]))
        #expect(r6.fromVersion == 3 && r6.fromPosition == 4)
        #expect(Self.error(outcomes[7])?.code == .streamNotFound)
        let r8 = try #require(Self.value(outcomes[8]))
        #expect(r8.fromVersion == 1 && r8.fromPosition == 5)

        let all = try await s.readAll(after: 0, filter: .all, limit: 100)
        #expect(all.map(\.globalPosition) == [1, 2, 3, 4, 5])
        #expect(all.map(\.streamID) == ["hold-1", "c-1", "c-1", "c-1", "d-1"])
        #expect(try await s.readStream("c-1", from: 1, limit: 10, direction: .forward).map(\.id) == ["id-a", "id-b", r6.events[0].id])
        // A retry in a later batch still finds the events by ID.
        let again = try await s.append(request("c-1", [event("B", id: "id-b")], .exact(1)), hook: nil)
        #expect(again.isReplay && again.fromPosition == 3)
        // Appends 0 and 2 of the batch are back to back in c-1 (versions 1–2, positions 2–3), but
        // each has a commit time of its own (the batch's plus its place in it), as stored: a
        // "retry" stitched from them is a reuse of IDs, not a replay (it was answered `200`).
        #expect(r0.events[0].timestamp != r2.events[0].timestamp)
        #expect(all[1].timestamp == r0.events[0].timestamp && all[2].timestamp == r2.events[0].timestamp, "stored as answered")
        await expectMinkError(.duplicateEventID) {
            try await s.append(request("c-1", [a, event("B", id: "id-b")], .noStream), hook: nil)
        }
    }

    /// Appends whose IDs the store generated (no lookup of stored IDs) batched with retries and
    /// reused IDs (looked up): each is decided as if alone.
    @Test func freshIDsBatchWithLookedUpIDs() async throws {
        let s = try await TestServer.storage(timeout: Self.timeout)
        defer { Task { await s.shutdown() } }
        func fresh(_ stream: String, _ count: Int, _ expected: ExpectedVersion = .any) -> AppendRequest {
            var r = request(stream, (0..<count).map { _ in event("F") }, expected)
            r.hasFreshIDs = true
            return r
        }
        let first = try await s.append(request("f-1", [event("A", id: "id-a")]), hook: nil)  // position 1
        let freshLone = try await s.append(fresh("f-1", 1, .exact(1)), hook: nil)  // a batch of its own: v2, position 2
        #expect(freshLone.fromVersion == 2 && freshLone.fromPosition == 2)
        let outcomes = try await Self.oneBatch(s, [  // behind hold-1 at position 3
            (fresh("f-1", 2, .exact(2)), nil),  // 0: v3-4, positions 4-5
            (request("f-1", [event("A", id: "id-a")]), nil),  // 1: a retry of `first`: replay
            (fresh("g-1", 1, .noStream), nil),  // 2: v1, position 6
            (fresh("f-1", 1, .exact(2)), nil),  // 3: conflict with 0
            (request("f-1", [event("B", id: "id-b")], .exact(4)), nil),  // 4: v5, position 7
        ])
        let r0 = try #require(Self.value(outcomes[0]))
        #expect(r0.fromVersion == 3 && r0.toVersion == 4 && r0.fromPosition == 4 && r0.toPosition == 5)
        let replay = try #require(Self.value(outcomes[1]))
        #expect(replay.isReplay && replay.events == first.events)
        let r2 = try #require(Self.value(outcomes[2]))
        #expect(r2.fromVersion == 1 && r2.fromPosition == 6)
        let conflict = Self.error(outcomes[3])
        #expect(conflict?.code == .concurrencyConflict && conflict?.actualVersion == 4)
        let r4 = try #require(Self.value(outcomes[4]))
        #expect(r4.fromVersion == 5 && r4.fromPosition == 7)
        let all = try await s.readAll(after: 0, filter: .all, limit: 100)
        #expect(all.map(\.globalPosition) == [1, 2, 3, 4, 5, 6, 7])
        #expect(try await s.streamInfo("f-1")?.version == 5)
    }

    @Test func aFailingHookFailsOnlyItsAppend() async throws {
        let s = try await TestServer.storage(timeout: Self.timeout)
        defer { Task { await s.shutdown() } }
        struct Boom: Error {}
        func put(_ id: String) -> AppendTransactionHook {
            { events, tx in
                try tx.putDocument("m", id: id, json: Data(#"{"v":\#(events.last!.globalPosition)}"#.utf8))
            }
        }
        let outcomes = try await Self.oneBatch(s, [
            (request("h-1", [event()], .noStream), put("a")),  // 0: position 2
            (request("h-2", [event()], .noStream), { @Sendable _, tx in  // 1: writes, then throws
                try tx.putDocument("m", id: "b", json: Data("{}".utf8))
                try tx.setCheckpoint("p", to: 99)
                throw Boom()
            }),
            (request("h-2", [event()], .noStream), put("c")),  // 2: 1 wrote nothing: h-2 is new, position 3
            (request("h-3", [event()], .noStream), { @Sendable _, tx in  // 3: a statement fails (not a JSON object for jsonb)
                try tx.putDocument("m", id: "d", json: Data("{\"x\":1}".utf8))
                try tx.putDocument("m", id: "d2", json: Data("not json".utf8))
            }),
            (request("h-4", [event()], .noStream), { @Sendable _, _ in throw Boom() }),  // 4: throws before any statement
            (request("h-3", [event()], .noStream), put("e")),  // 5: position 4
            (request("h-5", [event()], .noStream), { @Sendable _, tx in  // 6: a write sent with a read, then throws
                try tx.putDocument("m", id: "f", json: Data("{}".utf8))
                #expect(try tx.document("m", id: "f") == Data("{}".utf8), "a read sees the hook's earlier write")
                throw Boom()
            }),
            (request("h-6", [event()], .noStream), { @Sendable _, tx in  // 7: a value libpq cannot send, in the hook's first round trip
                try tx.putDocument("m", id: "g\u{0}h", json: Data("{}".utf8))
                _ = try tx.document("m", id: "a")
            }),
            (request("h-7", [event()], .noStream), put("i")),  // 8: position 5
        ])
        #expect(Self.value(outcomes[0])?.fromPosition == 2)
        if case .failure(let e) = outcomes[1] { #expect(e is Boom, "\(e)") } else { Issue.record("the throwing hook's append succeeded") }
        #expect(Self.value(outcomes[2])?.fromPosition == 3)
        if case .success = outcomes[3] { Issue.record("the append whose hook's statement failed succeeded") }
        if case .failure(let e) = outcomes[4] { #expect(e is Boom, "\(e)") } else { Issue.record("the throwing hook's append succeeded") }
        #expect(Self.value(outcomes[5])?.fromPosition == 4)
        if case .failure(let e) = outcomes[6] { #expect(e is Boom, "\(e)") } else { Issue.record("the throwing hook's append succeeded") }
        if case .success = outcomes[7] { Issue.record("the append whose hook wrote a NUL succeeded") }
        #expect(Self.value(outcomes[8])?.fromPosition == 5, "\(outcomes[8])")
        #expect(try await s.document("m", id: "i") == Data(#"{"v":5}"#.utf8))

        #expect(try await s.readAll(after: 0, filter: .all, limit: 100).map(\.streamID) == ["hold-1", "h-1", "h-2", "h-3", "h-7"])
        #expect(try await s.document("m", id: "a") == Data(#"{"v":2}"#.utf8))
        #expect(try await s.document("m", id: "c") == Data(#"{"v":3}"#.utf8))
        #expect(try await s.document("m", id: "e") == Data(#"{"v":4}"#.utf8))
        for gone in ["b", "d", "d2", "f"] { #expect(try await s.document("m", id: gone) == nil, "document \(gone) of a failed append") }
        #expect(try await s.checkpoint("p") == 0)
        #expect(try await s.streamInfo("h-4") == nil)
        #expect(try await s.streamInfo("h-5") == nil)
    }

    /// The batch's connection is terminated while its transaction is open: every append of the
    /// batch fails with a transient `.unavailable`, none is stored, and the next appends work.
    @Test func aBatchWhoseConnectionDiesFailsWholeAndTransient() async throws {
        let s = try await TestServer.storage(timeout: Self.timeout)
        let other = try await TestServer.storage(timeout: Self.timeout)
        defer { Task { await s.shutdown(); await other.shutdown() } }
        let gate = DispatchSemaphore(value: 0)
        let (entered, enteredContinuation) = AsyncStream.makeStream(of: Void.self)
        let held = Task {
            try await s.append(request("dies-1", [event()]), hook: { _, _ in
                enteredContinuation.yield()
                _ = gate.wait(timeout: .now() + 10)
            })
        }
        var it = entered.makeAsyncIterator()
        _ = await it.next()
        // The session holding the tenant's append lock is the batch's.
        let bits = UInt64(bitPattern: s.scope.appendLockKey)
        let terminated = try await other.core.main.pool.withConnection { conn in
            try conn.query(
                """
                SELECT pg_terminate_backend(pid) FROM pg_locks
                WHERE locktype = 'advisory' AND granted AND classid = $1::oid AND objid = $2::oid AND objsubid = 1
                """,
                [.int(bits >> 32), .int(bits & 0xffff_ffff)]
            ).rowCount
        }
        #expect(terminated == 1)
        gate.signal()
        let outcome = await held.result
        guard case .failure(let error) = outcome, let e = error as? MinkError else {
            Issue.record("an append whose connection died reported \(outcome)")
            return
        }
        #expect(e.code == .unavailable && e.isTransient, "\(e)")
        #expect(try await s.readAll(after: 0, filter: .all, limit: 10).isEmpty)
        let next = try await s.append(request("dies-1", [event()], .noStream), hook: nil)
        #expect(next.fromPosition == 1)
    }

    /// Tenants have batchers of their own: one tenant's held batch does not delay another's.
    @Test func tenantsBatchApart() async throws {
        let s = try await TestServer.storage(timeout: Self.timeout)
        defer { Task { await s.shutdown() } }
        let gate = DispatchSemaphore(value: 0)
        let held = try await Self.holdBatch(s, gate)
        let acme = try s.scoped("acme")
        let r = try await acme.append(request("a-1", [event()]), hook: nil)
        #expect(r.fromPosition == 1)
        gate.signal()
        #expect(try await held.value.fromPosition == 1)
    }

    /// Lone appends go through the one-append statement (``Statements/appendOne(channel:)``) in
    /// one round trip, with the answers of the batch statement: each expected version passing or
    /// failing on the stream as it is, dense positions and versions, several events; a
    /// soft-deleted stream (which the statement leaves to the decided path) appended to again.
    @Test func loneAppendsAreCheckedInOneRoundTrip() async throws {
        let s = try await TestServer.storage(timeout: Self.timeout)
        defer { Task { await s.shutdown() } }
        let b = Self.batcher(s)
        func append(_ stream: String, _ n: Int, _ expected: ExpectedVersion) async throws -> AppendResult {
            // IDs generated for this call (as the store does): the batch statements' path.
            try await s.append(
                AppendRequest(streamID: stream, events: (0..<n).map { _ in event() }, expectedVersion: expected, hasFreshIDs: true), hook: nil
            )
        }
        func failure(_ stream: String, _ expected: ExpectedVersion) async -> MinkError? {
            do {
                _ = try await append(stream, 1, expected)
                return nil
            } catch {
                return error as? MinkError
            }
        }
        let checked = b.checkedTransactions.load(ordering: .relaxed)
        let first = try await append("lone-1", 3, .noStream)
        #expect(b.lastBatchRoundTrips.load(ordering: .relaxed) == 1)
        #expect(first.events.map(\.version) == [1, 2, 3])
        #expect(first.events.map(\.globalPosition) == [1, 2, 3])
        let second = try await append("lone-2", 1, .any)
        #expect(second.events.map(\.globalPosition) == [4])
        #expect(second.events.map(\.version) == [1])
        #expect(try await append("lone-1", 2, .exact(3)).events.map(\.version) == [4, 5])
        #expect(try await append("lone-1", 1, .streamExists).events.map(\.globalPosition) == [7])
        #expect(b.checkedTransactions.load(ordering: .relaxed) - checked == 4)
        #expect(b.lastBatchRoundTrips.load(ordering: .relaxed) == 1)

        let stale = await failure("lone-1", .exact(3))
        #expect(stale?.code == .concurrencyConflict)
        #expect(stale?.actualVersion == 6)
        #expect(await failure("lone-1", .noStream)?.code == .concurrencyConflict)
        #expect(await failure("lone-3", .streamExists)?.code == .streamNotFound)
        #expect(await failure("lone-3", .exact(2))?.code == .concurrencyConflict)
        // Nothing of the failed appends was written: the next position follows the last success.
        #expect(try await append("lone-3", 1, .noStream).events.map(\.globalPosition) == [8])

        _ = try await s.deleteStream("lone-2", expectedVersion: .any, hard: false, hook: nil)
        let again = try await append("lone-2", 1, .noStream)
        #expect(again.events.map(\.version) == [2], "a soft-deleted stream's versions go on")
        let stored = try await s.readStream("lone-1", from: 1, limit: 100, direction: .forward)
        #expect(stored.map(\.version) == [1, 2, 3, 4, 5, 6])
        #expect(try await s.streamInfo("lone-1")?.version == 6)
    }
}

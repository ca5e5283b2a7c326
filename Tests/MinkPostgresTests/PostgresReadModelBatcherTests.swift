import Dispatch
import Foundation
@testable import Mink
@testable import MinkPostgres
import Synchronization
import Testing

/// Grouped read-model transactions (`ReadModelBatcher`): the bodies waiting when a connection
/// takes them commit in one transaction, each with its own result; a failing body — one that
/// throws, or whose write the server refuses — fails alone and takes nothing of the others.
@Suite("PostgreSQL grouped read-model transactions", .timeLimit(.minutes(3)))
struct PostgresReadModelBatcherTests {
    static func batcher(_ s: PostgresStorage) -> ReadModelBatcher { s.scope.backend.readModelBatcher(for: s.scope) }

    static func json(_ text: String) -> Data { Data(text.utf8) }

    /// Runs a body that holds the batcher's connection until `release` is called, then queues
    /// `bodies` behind it, in order (waiting until all are queued) and releases it; returns each body's
    /// outcome, in order.
    static func group<T: Sendable>(
        _ s: PostgresStorage, _ bodies: [@Sendable (any ReadModelTransaction) throws -> T]
    ) async throws -> [Result<T, any Error>] {
        let gate = DispatchSemaphore(value: 0)
        let holding = Atomic<Bool>(false)
        let holder = Task {
            try await s.groupedTransaction { tx -> Int in
                holding.store(true, ordering: .sequentiallyConsistent)
                _ = gate.wait(timeout: .now() + 30)
                try tx.putDocument("held", id: "h", json: json(#"{"held":true}"#))
                return 0
            }
        }
        try await waitUntil("the first body runs") { holding.load(ordering: .sequentiallyConsistent) }
        // Queued one at a time, so the queue's order is the bodies' order (tasks started
        // together reach the queue in any order).
        var tasks: [Task<Result<T, any Error>, Never>] = []
        for (k, body) in bodies.enumerated() {
            tasks.append(Task { () -> Result<T, any Error> in
                do { return .success(try await s.groupedTransaction(body)) } catch { return .failure(error) }
            })
            try await waitUntil("\(k + 1) bodies queued") { batcher(s).pendingCount == k + 1 }
        }
        gate.signal()
        _ = try await holder.value
        var out: [Result<T, any Error>] = []
        for t in tasks { out.append(await t.value) }
        return out
    }

    static func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !condition() {
            if ContinuousClock.now > deadline { throw TestSetupError(description: "timed out waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    @Test func waitingBodiesCommitInOneTransactionEachWithItsOwnResult() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        let b = Self.batcher(s)
        let (groups, bodies) = (b.groups.load(ordering: .relaxed), b.groupedBodies.load(ordering: .relaxed))
        let results = try await Self.group(s, (0..<5).map { i in { tx in
            // Each reads what the one before it wrote in the same transaction, as if run in turn.
            let before = try tx.document("m", id: "d\(i - 1)")
            try tx.putDocument("m", id: "d\(i)", json: Self.json(#"{"i":\#(i)}"#))
            try tx.setCheckpoint("p\(i)", to: UInt64(10 + i))
            return (i, before != nil)
        } })
        let values = try results.map { try $0.get() }
        #expect(values.map(\.0) == [0, 1, 2, 3, 4])
        #expect(values.map(\.1) == [false, true, true, true, true])
        #expect(b.groups.load(ordering: .relaxed) == groups + 1)
        #expect(b.groupedBodies.load(ordering: .relaxed) == bodies + 5)
        for i in 0..<5 {
            #expect(try await s.document("m", id: "d\(i)") == Self.json(#"{"i":\#(i)}"#))
            #expect(try await s.checkpoint("p\(i)") == UInt64(10 + i))
        }
    }

    /// The bodies of a group send what they read before their first write together, in the
    /// group's first round trip; every body then runs without one and the writes of all go with
    /// `COMMIT`: two round trips for a group of three copy batches (fence, checkpoint check,
    /// document load, writes each), as for one alone. Their reads see the writes of the bodies
    /// before them.
    @Test func aGroupOfCopyBatchesIsTwoRoundTrips() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        try await s.transaction { tx in for p in 0..<3 { try tx.setCheckpoint("p\(p)", to: 5) } }
        let body = { (p: Int, round: Int) -> @Sendable (any ReadModelTransaction) throws -> Int in
            { tx in
                try tx.checkCheckpoints(["p\(p)"]) { v in
                    if v[0] != UInt64(5 + round) { throw MinkError(.cancelled, "p\(p) at \(v[0]), not \(5 + round)") }
                }
                let docs = try tx.documents("m\(p)", ids: ["a", "b"])
                let n = docs["a"].map { Int(String(decoding: $0, as: UTF8.self).filter(\.isNumber)) ?? 0 } ?? 0
                try tx.putDocuments("m\(p)", [(id: "a", json: Self.json(#"{"n":\#(n + 1)}"#))])
                // Read back after its own write: from what the transaction wrote, no round trip.
                guard try tx.document("m\(p)", id: "a") == Self.json(#"{"n":\#(n + 1)}"#) else {
                    throw MinkError(.internalError, "own write not seen")
                }
                try tx.setCheckpoint("p\(p)", to: UInt64(6 + round))
                return n + 1
            }
        }
        // Two rounds (preparations are not counted, whichever connection a round gets).
        for round in 0..<2 {
            let results = try await Self.group(s, (0..<3).map { p in body(p, round) })
            #expect(try results.map { try $0.get() } == [round + 1, round + 1, round + 1])
        }
        #expect(Self.batcher(s).lastGroupRoundTrips.load(ordering: .relaxed) == 2)
        for p in 0..<3 {
            #expect(try await s.document("m\(p)", id: "a") == Self.json(#"{"n":2}"#))
            #expect(try await s.checkpoint("p\(p)") == 7)
        }
        // A body reads what the bodies before it in the group wrote.
        let chained = try await Self.group(s, (0..<3).map { i in { tx in
            let before = try tx.document("shared", id: "x").map { String(decoding: $0, as: UTF8.self) }
            try tx.putDocument("shared", id: "x", json: Self.json(#"{"by":\#(i)}"#))
            return before ?? "none"
        } })
        #expect(try chained.map { try $0.get() } == ["none", #"{"by":0}"#, #"{"by":1}"#])
    }

    /// A read refused before it is sent (a NUL in an ID) and swallowed by its body leaves the
    /// writes queued before it queued — an earlier body's included (they go with the next round
    /// trip): the earlier body's success is true, and what the later one reads is what is stored.
    @Test func aSwallowedReadRefusedBeforeSendingKeepsTheWritesQueuedBeforeIt() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        let results = try await Self.group(s, [
            { @Sendable tx -> String in
                _ = try tx.document("m", id: "w0")
                try tx.putDocument("m", id: "w0", json: Self.json(#"{"by":0}"#))
                return "ok"
            },
            { @Sendable tx -> String in
                _ = try tx.document("m", id: "w1")
                _ = try? tx.document("m", id: "bad\u{0}id")
                let seen = try tx.document("m", id: "w0").map { String(decoding: $0, as: UTF8.self) } ?? "nil"
                try tx.putDocument("m", id: "w1", json: Self.json(#"{"by":1}"#))
                return seen
            },
        ])
        #expect(try results[0].get() == "ok")
        #expect(try results[1].get() == #"{"by":0}"#)
        #expect(try await s.document("m", id: "w0") == Self.json(#"{"by":0}"#), "body 0 was answered success: its write is stored")
        #expect(try await s.document("m", id: "w1") == Self.json(#"{"by":1}"#))
    }

    @Test func aBodyThatThrowsFailsAloneAndKeepsNothing() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        let b = Self.batcher(s)
        let fallbacks = b.fallbacks.load(ordering: .relaxed)
        let runs = Mutex<[Int: Int]>([:])
        let results = try await Self.group(s, (0..<4).map { i in { tx in
            runs.withLock { $0[i, default: 0] += 1 }
            try tx.putDocument("m", id: "d\(i)", json: Self.json(#"{"i":\#(i)}"#))
            if i == 2 { throw MinkError.validation("body 2 refuses") }
            return i
        } })
        for i in [0, 1, 3] { #expect(try results[i].get() == i) }
        #expect(throws: MinkError.self) { try results[2].get() }
        #expect(b.fallbacks.load(ordering: .relaxed) == fallbacks + 1)
        // Each ran once to its first read or write (nothing sent: it stops there), then the
        // group ran up to body 2 and was rolled back; then each body alone.
        #expect(runs.withLock { $0 } == [0: 3, 1: 3, 2: 3, 3: 2])
        for i in [0, 1, 3] { #expect(try await s.document("m", id: "d\(i)") == Self.json(#"{"i":\#(i)}"#)) }
        #expect(try await s.document("m", id: "d2") == nil)
    }

    /// A write the server refuses fails in the round trip of the next body's read (or of the
    /// commit): the group falls back, and only the body that wrote it fails.
    @Test func aWriteTheServerRefusesFailsOnlyItsBody() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        let fallbacks = Self.batcher(s).fallbacks.load(ordering: .relaxed)
        let results = try await Self.group(s, (0..<3).map { i in { tx in
            _ = try tx.document("m", id: "other")
            try tx.putDocument("m", id: "d\(i)", json: Self.json(i == 1 ? "{not json" : #"{"i":\#(i)}"#))
            return i
        } })
        #expect(try results[0].get() == 0)
        #expect(try results[2].get() == 2)
        #expect(throws: (any Error).self) { try results[1].get() }
        #expect(try await s.document("m", id: "d0") != nil)
        #expect(try await s.document("m", id: "d1") == nil)
        #expect(try await s.document("m", id: "d2") != nil)
        #expect(Self.batcher(s).fallbacks.load(ordering: .relaxed) == fallbacks + 1, "the group was tried first")
    }

    /// A failed deferred check stays failed: a body whose read carried another body's check and
    /// swallowed the error (`try?`), or a body that swallows its own read, cannot commit the
    /// writes the check guards.
    @Test func aFailedCheckCannotBeSwallowed() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        try await s.transaction { tx in try tx.setCheckpoint("a", to: 50) }
        let results = try await Self.group(s, [
            { @Sendable tx in
                try tx.checkCheckpoints(["a"]) { v in if v[0] >= 50 { throw MinkError(.cancelled, "ahead") } }
                try tx.putDocument("m", id: "guarded", json: Self.json("{}"))
                try tx.setCheckpoint("a", to: 60)
                return 0
            },
            { @Sendable tx in
                // Carries the first body's check, and swallows what it throws.
                _ = try? tx.document("m", id: "x")
                try tx.putDocument("m", id: "second", json: Self.json("{}"))
                return 1
            },
        ])
        #expect(throws: MinkError.self) { try results[0].get() }
        #expect(try results[1].get() == 1)
        #expect(try await s.document("m", id: "guarded") == nil)
        #expect(try await s.checkpoint("a") == 50)
        #expect(try await s.document("m", id: "second") != nil)
        // Alone: the body swallows its own read's error; its commit still fails.
        await #expect(throws: MinkError.self) {
            try await s.groupedTransaction { tx in
                try tx.checkCheckpoints(["a"]) { v in if v[0] >= 50 { throw MinkError(.cancelled, "ahead") } }
                _ = try? tx.document("m", id: "x")
                try tx.putDocument("m", id: "alone", json: Self.json("{}"))
            }
        }
        #expect(try await s.document("m", id: "alone") == nil)
    }

    /// A body waiting for a row lock (a rebuild's batch holds its projection's lease row) does not
    /// hold up the tenant's other grouped transactions: after the lock timeout it runs on a
    /// connection of its own, and waits there.
    @Test func aBodyWaitingForALockDoesNotHoldUpTheOthers() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        try await s.transaction { tx in try tx.setCheckpoint("lease-row", to: 1) }
        let gate = DispatchSemaphore(value: 0)
        let locked = Atomic<Bool>(false)
        let holder = Task {
            try await s.transaction { tx in
                try (tx as! PostgresReadModelTransaction).checkLockedLeaseEpoch("lease-row") { _ in }
                _ = try tx.document("m", id: "x")
                locked.store(true, ordering: .sequentiallyConsistent)
                _ = gate.wait(timeout: .now() + 30)
            }
        }
        try await Self.waitUntil("the row is locked") { locked.load(ordering: .sequentiallyConsistent) }
        let waiting = Task {
            try await s.groupedTransaction { tx in
                try (tx as! PostgresReadModelTransaction).checkLockedLeaseEpoch("lease-row") { _ in }
                _ = try tx.document("m", id: "x")
                try tx.putDocument("m", id: "waited", json: Self.json("{}"))
            }
        }
        // Submitted after the one waiting for the lock: answered while the lock is still held.
        try await s.groupedTransaction { tx in try tx.putDocument("m", id: "free", json: Self.json("{}")) }
        #expect(try await s.document("m", id: "free") != nil)
        #expect(try await s.document("m", id: "waited") == nil)
        gate.signal()
        try await holder.value
        try await waiting.value
        #expect(try await s.document("m", id: "waited") != nil)
    }

    /// A copy's batch whose checkpoint is already at or past its first event (the retry of a
    /// batch whose commit went through while its answer was lost) applies only the events after
    /// the checkpoint: the fast path's deferred check sends it to the path that reads first.
    @Test func aBatchBehindItsCheckpointAppliesOnlyTheEventsAfterIt() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        let copy = ReadModelCopyProjection(inner: Counter(), readModels: s, generation: 1, lease: NoFence())
        let events = (1...7).map { p in
            Event(id: "e\(p)", streamID: "s", type: "Tick", data: Self.json("{}"), version: Int64(p), globalPosition: UInt64(p), timestamp: Date())
        }
        try await copy.apply(Array(events[0..<5]), through: 5)
        #expect(try await s.document("counts", id: "c") == Self.json(#"{"n":5}"#))
        try await copy.apply(Array(events[2..<7]), through: 7)
        #expect(try await s.document("counts", id: "c") == Self.json(#"{"n":7}"#), "events 3-5 were applied already")
        #expect(try await s.checkpoint("counter") == 7)
    }
    /// `checkCheckpoints` goes with the next read and is checked before anything after it is
    /// sent: the values are those stored, and a failing check commits nothing.
    @Test func aCheckedCheckpointReadGuardsTheWritesAfterIt() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        try await s.transaction { tx in
            try tx.setCheckpoint("a", to: 7)
            try tx.setCheckpoint("b", to: 9)
        }
        let seen = Mutex<[UInt64]>([])
        try await s.transaction(.relaxed) { tx in
            try tx.checkCheckpoints(["b", "missing", "a"]) { v in seen.withLock { $0 = v } }
            _ = try tx.document("m", id: "x")
            try tx.putDocument("m", id: "ok", json: Self.json("{}"))
        }
        #expect(seen.withLock { $0 } == [9, 0, 7])
        await #expect(throws: MinkError.self) {
            try await s.transaction(.relaxed) { tx in
                try tx.checkCheckpoints(["a"]) { v in if v[0] == 7 { throw MinkError(.cancelled, "moved") } }
                try tx.putDocument("m", id: "guarded", json: Self.json("{}"))
                try tx.setCheckpoint("a", to: 8)
            }
        }
        #expect(try await s.document("m", id: "guarded") == nil)
        #expect(try await s.checkpoint("a") == 7)
        #expect(try await s.document("m", id: "ok") != nil)
    }
}


private struct NoFence: ProjectionLease {
    func lost() async {}
    func release() async {}
}

/// Counts the events it applied in one document (a read and a write per event).
private struct Counter: InlineProjection, ReadModelProjection {
    var name: String { "counter" }
    var handledEvents: [String] { ["Tick"] }
    var readModelName: String { "counts" }

    func apply(_ event: Event, in tx: any ReadModelTransaction) throws {
        let n = try tx.document(readModelName, id: "c").map { Int(String(decoding: $0, as: UTF8.self).filter(\.isNumber)) ?? 0 } ?? 0
        try tx.putDocument(readModelName, id: "c", json: Data(#"{"n":\#(n + 1)}"#.utf8))
    }
}

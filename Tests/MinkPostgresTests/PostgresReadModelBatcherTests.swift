import Dispatch
import Foundation
import Mink
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
    /// `bodies` behind it (waiting until all are queued) and releases it; returns each body's
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
        let tasks = bodies.map { body in Task { () -> Result<T, any Error> in
            do { return .success(try await s.groupedTransaction(body)) } catch { return .failure(error) }
        } }
        try await waitUntil("\(bodies.count) bodies queued") { batcher(s).pendingCount == bodies.count }
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
        // The group ran once and was rolled back; then each body alone.
        #expect(runs.withLock { $0 } == [0: 2, 1: 2, 2: 2, 3: 1])
        for i in [0, 1, 3] { #expect(try await s.document("m", id: "d\(i)") == Self.json(#"{"i":\#(i)}"#)) }
        #expect(try await s.document("m", id: "d2") == nil)
    }

    /// A write the server refuses fails in the round trip of the next body's read (or of the
    /// commit): the group falls back, and only the body that wrote it fails.
    @Test func aWriteTheServerRefusesFailsOnlyItsBody() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
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

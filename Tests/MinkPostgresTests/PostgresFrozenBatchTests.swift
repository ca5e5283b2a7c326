import Foundation
import Mink
import Synchronization
@testable import MinkPostgres
import Testing

/// A batch transaction that holds the tenant's append lock across round trips (a hook runs between
/// them) and then stops answering — its process frozen: here a hook that sleeps — is ended by the
/// server after half the storage timeout, so another process's append to the tenant, waiting for
/// the lock, goes through within its own deadline. Before (session 21) such a transaction kept the
/// lock for the session default, 3 × the storage timeout (at least 30 s), and the waiting append
/// failed with `unavailable` at its deadline.
@Suite("PostgreSQL frozen batch holding the append lock", .timeLimit(.minutes(2)))
struct PostgresFrozenBatchTests {
    /// Two storages on one schema (two processes). `freeze` runs on `frozen` with a hook that
    /// signals it holds the lock and then sleeps past the session's end; meanwhile `other` appends
    /// to the tenant, and must commit after waiting for the frozen session to end, within its own
    /// deadline. Returns the frozen operation's outcome.
    static func whileFrozen(
        _ what: String, prepare: (_ frozen: PostgresStorage, _ other: PostgresStorage) async throws -> Void,
        freeze: @escaping @Sendable (_ frozen: PostgresStorage, _ hook: @escaping AppendTransactionHook) async throws -> Void,
        then check: (_ other: PostgresStorage) async throws -> Void
    ) async throws -> Result<Void, any Error> {
        let schema = TestServer.freshName()
        // A storage timeout long enough for a loaded CI machine to set the storages up (4 s was
        // not); the frozen session then ends after 6 s.
        let frozen = try await TestServer.storage(schema: schema, timeout: .seconds(12))
        let other = try await TestServer.storage(schema: schema, timeout: .seconds(12))
        defer { Task { await frozen.shutdown(); await other.shutdown() } }
        try await prepare(frozen, other)

        let holding = Atomic<Bool>(false)
        let stuck = Task {
            try await freeze(frozen) { _, _ in
                holding.store(true, ordering: .releasing)  // hooks run once the transaction holds the lock
                sleep(14)
            }
        }
        let by = ContinuousClock.now + .seconds(30)
        while !holding.load(ordering: .acquiring), ContinuousClock.now < by { try await Task.sleep(for: .milliseconds(10)) }
        let held = holding.load(ordering: .acquiring)
        try #require(held, "the frozen \(what) took the lock")
        let started = ContinuousClock.now
        let result = try await other.append(request("moving-1", [event("Moved")]), hook: nil)
        let waited = started.duration(to: .now)
        #expect(result.fromVersion == 1, "the other process's append committed")
        #expect(waited >= .seconds(4) && waited < .seconds(12), "it waited \(waited) for the lock (the frozen session ends after 6 s), less than its deadline")
        let outcome = await stuck.result
        try await check(other)
        return outcome
    }

    @Test func anotherProcessesAppendGoesThroughWhileABatchHoldingTheLockIsFrozen() async throws {
        #expect(AppendBatcher.lockHoldingIdleLimit(.seconds(4)) == "2000ms")
        #expect(AppendBatcher.lockHoldingIdleLimit(.milliseconds(500)) == "1000ms")
        let outcome = try await Self.whileFrozen("batch", prepare: { frozen, other in
            _ = try await other.append(request("warm-1", [event()]), hook: nil)  // both migrated and warm
            _ = try await frozen.append(request("warm-2", [event()]), hook: nil)
        }, freeze: { frozen, hook in
            _ = try await frozen.append(request("stuck-1", [event("Held")]), hook: hook)
        }, then: { other in
            // The frozen batch's session was ended: nothing of it is stored.
            let stored = try await other.readStream("stuck-1", from: 1, limit: 10, direction: .forward)
            #expect(stored.isEmpty)
        })
        if case .success = outcome { Issue.record("the frozen batch committed after its session was ended") }
    }

    /// The same for a stream deletion, whose record goes through the inline projections' hooks
    /// inside its transaction (under the tenant's append lock).
    @Test func anotherProcessesAppendGoesThroughWhileADeletionHoldingTheLockIsFrozen() async throws {
        let outcome = try await Self.whileFrozen("deletion", prepare: { frozen, other in
            _ = try await other.append(request("doomed-1", [event()]), hook: nil)
            _ = try await frozen.append(request("warm-2", [event()]), hook: nil)
        }, freeze: { frozen, hook in
            _ = try await frozen.deleteStream("doomed-1", expectedVersion: .any, hard: false, hook: hook)
        }, then: { other in
            let kept = try await other.readStream("doomed-1", from: 1, limit: 10, direction: .forward)
            #expect(kept.count == 1, "nothing deleted")
        })
        if case .success = outcome { Issue.record("the frozen deletion committed after its session was ended") }
    }
}

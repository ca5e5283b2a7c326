import Dispatch
import Foundation
import Mink
@testable import MinkPostgres
import Synchronization
import Testing

/// Projection leases: session-level advisory locks on a dedicated connection.
@Suite("PostgreSQL projection leases", .timeLimit(.minutes(3)))
struct PostgresLeaseTests {
    @Test func oneHolderAtATimeAndReleaseHandsOver() async throws {
        let schema = TestServer.freshName()
        let a = try await TestServer.storage(schema: schema)
        let b = try await TestServer.storage(schema: schema)
        let other = try await TestServer.storage()  // another schema: its own locks
        defer { Task { await a.shutdown(); await b.shutdown(); await other.shutdown() } }

        let lease = try #require(try await a.tryAcquire(tenant: "default", projection: "orders"))
        #expect(try await b.tryAcquire(tenant: "default", projection: "orders") == nil)
        #expect(try await a.tryAcquire(tenant: "default", projection: "orders") == nil, "one holder per process too")
        let otherTenant = try await b.tryAcquire(tenant: "acme", projection: "orders")
        let otherName = try await b.tryAcquire(tenant: "default", projection: "users")
        let otherSchema = try await other.tryAcquire(tenant: "default", projection: "orders")
        #expect(otherTenant != nil && otherName != nil && otherSchema != nil)

        await lease.release()
        await lease.lost()  // a released lease reports itself ended at once
        let taken = try await b.tryAcquire(tenant: "default", projection: "orders")
        #expect(taken != nil)
        #expect(try await a.tryAcquire(tenant: "default", projection: "orders") == nil)
        #expect(a.leaseConnectionCount == 1 && b.leaseConnectionCount == 1)
    }

    @Test func aBrokenSessionLosesItsLeasesAndAnotherProcessTakesOver() async throws {
        let schema = TestServer.freshName()
        let a = try await TestServer.storage(schema: schema)
        let b = try await TestServer.storage(schema: schema)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        let lease = try #require(try await a.tryAcquire(tenant: "default", projection: "orders"))
        let pid = try #require(a.core.leases.backendPID)

        let lost = Task { await lease.lost(); return true }
        try await Task.sleep(for: .milliseconds(300))
        // End A's lease session from outside, as a server restart or a dead network would.
        try await b.core.main.pool.withConnection { conn in
            _ = try conn.query("SELECT pg_terminate_backend($1::int4)", [.int(Int(pid))])
        }
        let signalled = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await lost.value }
            group.addTask { try? await Task.sleep(for: .seconds(5)); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        #expect(signalled, "lost() must return when the session ends")
        let taken = try await b.tryAcquire(tenant: "default", projection: "orders")
        #expect(taken != nil, "the lock is free once the session ended")
        await lease.release()  // releasing a lost lease is harmless
        await taken?.release()
        // A reconnects for its next lease.
        #expect(try await a.tryAcquire(tenant: "default", projection: "orders") != nil)
        #expect(a.leaseConnectionCount == 2)
    }

    /// A holder that stops running (SIGSTOP, a debugger, a VM pause) keeps its connection open,
    /// so the server keeps its locks: its lease session's heartbeat stops, and after
    /// `leaseStaleAfter` another process ends that session and takes the lease; the frozen
    /// holder's batches are fenced out when it wakes. A holder whose heartbeat runs is never taken
    /// over. Before, a frozen holder kept its projections for as long as it was frozen.
    @Test func aFrozenHolderIsTakenOverAfterItsHeartbeatStops() async throws {
        let schema = TestServer.freshName()
        func open() async throws -> PostgresStorage {
            var config = PostgresConfiguration(connectionString: try TestServer.url(), poolSize: 2, schema: schema, connectTimeoutSeconds: 30, timeout: .seconds(30))
            config.leaseStaleAfter = .seconds(6)
            return try await PostgresStorage(configuration: config)
        }
        let a = try await open(), b = try await open()
        defer { Task { await a.shutdown(); await b.shutdown() } }
        let leaseA = try await Self.acquire(a)
        #expect(try await Self.applyBatch(a, lease: leaseA, holder: "A", events: [1]) == [1])

        // Alive (heartbeats every 2 s): never taken over, however long it holds the lease.
        let alive = ContinuousClock.now + .seconds(8)
        while ContinuousClock.now < alive {
            #expect(try await b.tryAcquire(tenant: "default", projection: "counter") == nil, "a live holder was taken over")
            try await Task.sleep(for: .milliseconds(500))
        }

        // Frozen: no heartbeat; the connection stays open. B takes over once 6 s have passed.
        a.core.leases.heartbeatsPaused = true
        let frozenAt = ContinuousClock.now
        var leaseB: (any ProjectionLease)?
        while leaseB == nil, ContinuousClock.now - frozenAt < .seconds(20) {
            leaseB = try await b.tryAcquire(tenant: "default", projection: "counter")
            if leaseB == nil { try await Task.sleep(for: .milliseconds(250)) }
        }
        let taken = try #require(leaseB, "the frozen holder's lease was not taken over within 20 s")
        // Stale 6 s after its last heartbeat, which came up to 2 s before the freeze.
        #expect(ContinuousClock.now - frozenAt >= .milliseconds(3_900), "taken over before the holder was stale")

        // A wakes: its next batch commits nothing, and its lease reports itself lost.
        do {
            let applied = try await Self.applyBatch(a, lease: leaseA, holder: "A", events: [1, 2])
            Issue.record("the woken holder committed \(applied) after the take-over")
        } catch let e as MinkError {
            #expect(e.code == .leaseLost)
        }
        await leaseA.lost()
        #expect(try await Self.applyBatch(b, lease: taken, holder: "B", events: [1, 2]) == [2])
        await taken.release()
    }

    @Test func lostReturnsWhenTheWaitingTaskIsCancelled() async throws {
        let a = try await TestServer.storage()
        defer { Task { await a.shutdown() } }
        let lease = try #require(try await a.tryAcquire(tenant: "default", projection: "p"))
        let waiter = Task { await lease.lost() }
        try await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        await waiter.value
        await lease.release()
    }

    // MARK: Fencing

    /// A holder whose lease session broke (A) has a batch in flight that has not fenced yet when
    /// another process (B) takes the lease over: A's batch must commit nothing, and B, which reads
    /// its starting checkpoint after taking the lease, applies every event exactly once.
    @Test func aBatchThatFencesAfterATakeOverCommitsNothing() async throws {
        let schema = TestServer.freshName()
        let a = try await TestServer.storage(schema: schema)
        let b = try await TestServer.storage(schema: schema)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        let leaseA = try await Self.acquire(a)
        #expect(try await Self.applyBatch(a, lease: leaseA, holder: "A", events: [1]) == [1])

        let gate = Gate(beforeFence: true)
        let batchA = Task { try await Self.applyBatch(a, lease: leaseA, holder: "A", events: [1, 2, 3], gate: gate) }
        try await gate.waitUntilEntered()
        try await Self.terminateLeaseSession(of: a, via: b)
        let leaseB = try await Self.acquire(b)
        let start = try await b.checkpoint("counter")
        #expect(start == 1)
        gate.open()
        do {
            let applied = try await batchA.value
            Issue.record("A's batch committed \(applied) after B took the lease over")
        } catch let e as MinkError {
            #expect(e.code == .leaseLost)
        }
        await leaseA.lost()  // a failed fence ends the lease at once

        #expect(try await Self.applyBatch(b, lease: leaseB, holder: "B", events: [1, 2, 3]) == [2, 3])
        #expect(try await Self.appliers(b, positions: 1...3) == [1: ["A"], 2: ["B"], 3: ["B"]])
        #expect(try await b.checkpoint("counter") == 3)
        await leaseB.release()
    }

    /// A's batch has fenced (and read its state) when A's lease session breaks: B's take-over
    /// waits for that batch, which commits, and B starts after it — no event is applied twice
    /// and the checkpoint only moves forward.
    @Test func aTakeOverWaitsForAFencedBatchAndStartsAfterIt() async throws {
        let schema = TestServer.freshName()
        let a = try await TestServer.storage(schema: schema)
        let b = try await TestServer.storage(schema: schema)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        let leaseA = try await Self.acquire(a)
        #expect(try await Self.applyBatch(a, lease: leaseA, holder: "A", events: [1]) == [1])

        let gate = Gate(beforeFence: false)
        let batchA = Task { try await Self.applyBatch(a, lease: leaseA, holder: "A", events: [1, 2], gate: gate) }
        try await gate.waitUntilEntered()
        try await Self.terminateLeaseSession(of: a, via: b)
        let finishedB = Flag()
        let runB = Task { () -> (UInt64, [UInt64], any ProjectionLease) in
            defer { finishedB.set() }
            let leaseB = try await Self.acquire(b)
            let start = try await b.checkpoint("counter")
            return (start, try await Self.applyBatch(b, lease: leaseB, holder: "B", events: [1, 2]), leaseB)
        }
        // B either finished (no fencing: it did not wait for A) or waits for A's batch's row lock.
        let deadline = ContinuousClock.now + .seconds(10)
        while !finishedB.isSet, try await Self.lockWaiters(schema, via: a) == 0 {
            guard ContinuousClock.now < deadline else { throw TestSetupError(description: "B neither took the lease nor waited") }
            try await Task.sleep(for: .milliseconds(20))
        }
        gate.open()
        #expect(try await batchA.value == [2], "fenced before the take-over, A's batch commits")
        let (start, appliedB, leaseB) = try await runB.value
        #expect(start == 2, "B starts after A's last batch")
        #expect(appliedB == [])
        #expect(try await Self.appliers(b, positions: 1...2) == [1: ["A"], 2: ["A"]])
        #expect(try await b.checkpoint("counter") == 2)
        // A's lease is fenced out now.
        await #expect(throws: MinkError.self) { try await Self.applyBatch(a, lease: leaseA, holder: "A", events: [3]) }
        await leaseB.release()
    }

    /// A process that has just started its engine (its first lease request not yet answered)
    /// answers a status request with what the holder stored — running, its checkpoint — not
    /// `stopped, checkpoint 0` (a black-box audit: every process but the holder said so until its
    /// first lease attempt).
    @Test func aJustStartedStandbyShowsTheHoldersProgress() async throws {
        let schema = TestServer.freshName()
        let a = try await TestServer.storage(schema: schema)
        let b = try await TestServer.storage(schema: schema)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        let storeA = EventStore(adapter: a)
        for i in 1...6 { try await storeA.append("s-\(i)", events: [EventData(type: "Tick", data: Data("{}".utf8))]) }
        let engineA = ProjectionEngine(store: storeA)
        await engineA.registerReadModel(TickProjection(holder: "A"), mode: .async, readModels: a, leases: a)
        try await engineA.start()
        #expect(try await engineA.waitUntilCaughtUp("ticks", to: 6, timeout: .seconds(20)).checkpoint == 6)

        let engineB = ProjectionEngine(store: EventStore(adapter: b))
        await engineB.registerReadModel(TickProjection(holder: "B"), mode: .async, readModels: b, leases: b)
        try await engineB.start()
        let status = try await engineB.status("ticks")
        #expect(status.state == .running && status.checkpoint == 6 && status.runningHere == false, "\(status)")
        await engineB.stop()
        await engineA.stop()
    }

    /// The same through the engine: A's runner is inside a batch (its handler blocked after the
    /// batch's first read, which carried the fence) when A's lease session ends; B's engine takes over only after that batch committed, A's runner stops
    /// at its next fence without faulting, and every event is applied exactly once.
    @Test func anEngineTakeOverAppliesEveryEventOnce() async throws {
        let schema = TestServer.freshName()
        let a = try await TestServer.storage(schema: schema)
        let b = try await TestServer.storage(schema: schema)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        let storeA = EventStore(adapter: a)
        for i in 1...6 { try await storeA.append("s-\(i)", events: [EventData(type: "Tick", data: Data("{}".utf8))]) }
        let options = AsyncOptions(batchSize: 2, retryPolicy: RetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(10)))

        let gate = Gate(beforeFence: false)
        let engineA = ProjectionEngine(store: storeA)
        await engineA.registerReadModel(TickProjection(holder: "A", gate: gate, blockAt: 3), mode: .async, readModels: a, options: options, leases: a)
        try await engineA.start()
        try await gate.waitUntilEntered()
        try await Self.terminateLeaseSession(of: a, via: b)
        let engineB = ProjectionEngine(store: EventStore(adapter: b))
        await engineB.registerReadModel(TickProjection(holder: "B"), mode: .async, readModels: b, options: options, leases: b)
        try await engineB.start()
        // B either ran (no fencing) or waits for the row lock of A's batch.
        let deadline = ContinuousClock.now + .seconds(15)
        while try await Self.lockWaiters(schema, via: a) == 0, try await engineB.status("ticks").checkpoint < 6 {
            guard ContinuousClock.now < deadline else { throw TestSetupError(description: "B neither took over nor waited") }
            try await Task.sleep(for: .milliseconds(20))
        }
        gate.open()

        let status = try await engineB.waitUntilCaughtUp("ticks", to: 6, timeout: .seconds(20))
        #expect(status.checkpoint == 6 && status.state == .running)
        let appliers = try await Self.appliers(b, positions: 1...6)
        #expect((1...6).allSatisfy { appliers[$0]?.count == 1 }, "every event applied exactly once: \(appliers)")
        #expect(appliers[3] == ["A"] && appliers[4] == ["A"], "A's batch in flight was fenced before the take-over")
        #expect(try await engineA.status("ticks").state != .faulted)
        await engineA.stop()
        await engineB.stop()
        #expect(try await b.checkpoint("ticks") == 6)
    }

    /// Takes the lease of projection `counter`, retrying while the server has not yet ended a
    /// terminated session.
    static func acquire(_ storage: PostgresStorage) async throws -> any ProjectionLease {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            if let lease = try await storage.tryAcquire(tenant: "default", projection: "counter") { return lease }
            guard ContinuousClock.now < deadline else { throw TestSetupError(description: "the lease was never granted") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// One batch as a read-model runner applies it: fence, read the stored checkpoint, apply the
    /// events after it — one document per application, so a second application shows — and
    /// store the checkpoint. Returns the positions applied.
    /// The fence's check rides on the transaction's next read; a transaction that fences and
    /// then only writes must still fail before its `COMMIT` is sent when the lease was taken over.
    @Test func aFenceFollowedOnlyByWritesIsCheckedBeforeTheCommit() async throws {
        let schema = TestServer.freshName()
        let a = try await TestServer.storage(schema: schema)
        let b = try await TestServer.storage(schema: schema)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        let leaseA = try await Self.acquire(a)
        try await Self.terminateLeaseSession(of: a, via: b)
        let leaseB = try await Self.acquire(b)
        do {
            try await a.transaction(.relaxed) { tx in
                try leaseA.fence(tx)
                try tx.putDocument("applied", id: "late-A", json: Data("{}".utf8))
                try tx.setCheckpoint("counter", to: 99)
            }
            Issue.record("a fenced write-only transaction committed after the take-over")
        } catch let e as MinkError {
            #expect(e.code == .leaseLost)
        }
        #expect(try await b.document("applied", id: "late-A") == nil)
        #expect(try await b.checkpoint("counter") != 99)
        await leaseB.release()
    }

    static func applyBatch(
        _ storage: PostgresStorage, lease: any ProjectionLease, holder: String, events: [UInt64], gate: Gate? = nil
    ) async throws -> [UInt64] {
        try await storage.transaction { tx in
            if let gate, gate.beforeFence { gate.pass() }
            try lease.fence(tx)
            let done = try tx.checkpoint("counter")
            let applying = events.filter { $0 > done }
            if let gate, !gate.beforeFence { gate.pass() }
            for p in applying { try tx.putDocument("applied", id: "\(p)-\(holder)", json: Data("{}".utf8)) }
            if let last = applying.last { try tx.setCheckpoint("counter", to: last) }
            return applying
        }
    }

    /// Which holders applied each position.
    static func appliers(_ storage: PostgresStorage, positions: ClosedRange<UInt64>) async throws -> [UInt64: [String]] {
        var out: [UInt64: [String]] = [:]
        for p in positions {
            for holder in ["A", "B"] where try await storage.document("applied", id: "\(p)-\(holder)") != nil {
                out[p, default: []].append(holder)
            }
        }
        return out
    }

    /// Ends A's lease session from outside, as a network loss on that one connection would.
    static func terminateLeaseSession(of a: PostgresStorage, via b: PostgresStorage) async throws {
        let pid = try #require(a.core.leases.backendPID)
        try await b.core.main.pool.withConnection { conn in
            _ = try conn.query("SELECT pg_terminate_backend($1::int4)", [.int(Int(pid))])
        }
    }

    /// How many statements on the schema's tables wait for a lock.
    static func lockWaiters(_ schema: String, via storage: PostgresStorage) async throws -> Int64 {
        try await storage.core.main.pool.withConnection { conn in
            try conn.query(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0",
                [.text(schema + "\".mink_checkpoints")]
            ).int64(0, 0) ?? 0
        }
    }
}

/// Holds a read-model transaction's body — on its connection's queue, never Swift's cooperative
/// pool — until the test opens the gate.
final class Gate: Sendable {
    /// Whether the body waits before fencing (else after fencing and reading its state).
    let beforeFence: Bool
    private let entered = Flag()
    private let opened = DispatchSemaphore(value: 0)

    init(beforeFence: Bool) { self.beforeFence = beforeFence }

    func pass() {
        entered.set()
        opened.wait()
        opened.signal()
    }

    /// Lets every waiting and later body through (each one passing lets the next through).
    func open() { opened.signal() }

    func waitUntilEntered() async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !entered.isSet {
            guard ContinuousClock.now < deadline else { throw TestSetupError(description: "the batch never reached the gate") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// A flag set once, read from any thread.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    func set() { value.store(true, ordering: .sequentiallyConsistent) }

    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}

/// A read-model projection writing one document per application of an event (`<position>-<holder>`
/// in model `applied`), so that an event applied twice shows; it blocks on `gate` at `blockAt`.
struct TickProjection: InlineProjection, ReadModelProjection {
    let holder: String
    var gate: Gate?
    var blockAt: UInt64 = 0

    var name: String { "ticks" }
    var handledEvents: [String] { ["Tick"] }
    var readModelName: String { "applied" }

    func apply(_ event: Event, in transaction: any ReadModelTransaction) throws {
        // A read first: a batch's fence (and its checkpoint check) go with its first read, so the
        // batch blocked below has fenced already.
        _ = try transaction.document(readModelName, id: "none")
        if event.globalPosition == blockAt { gate?.pass() }
        try transaction.putDocument(readModelName, id: "\(event.globalPosition)-\(holder)", json: Data("{}".utf8))
    }
}

import Foundation
import Mink
import Synchronization

/// Gathers one tenant's grouped read-model transactions (``PostgresStorage/groupedTransaction(_:)``:
/// the small batches of async projections that keep up with the log) into one PostgreSQL
/// transaction.
///
/// Why: one append wakes every live projection of its tenant, and each ran a transaction of its
/// own — for three projections three hand-offs to a connection's thread, six round trips and
/// three commits per append, which was most of the CPU of a server appending 1,000 events/s
/// (the live probe of `Benchmarks/compare/projections.sh`). Gathered, the three batches cost one
/// hand-off, two round trips (what every body reads before its first write, then the writes of
/// all with `COMMIT`; see ``runGroup(_:on:)``) and one commit.
///
/// A group is what waits when a connection takes it (at most ``maxBodies``): a lone body runs at
/// once, alone; a body arriving while a group runs waits for it rather than running beside it on
/// another connection (measured: +0.1–0.2 ms at the median of a live projection's latency, for a
/// third of the commits and a fifth less CPU). Its bodies run one after the other in one
/// `.relaxed` transaction; if one throws or the commit fails, the transaction is rolled back and
/// every body of the group runs again in a transaction of its own, so each gets its own outcome
/// and a failing body never takes another's writes with it (a body may run three times: a run
/// that sends nothing and stops at its first read, to learn what it reads; the group's, rolled
/// back; its own).
final class ReadModelBatcher: Sendable {
    struct Job: Sendable {
        let body: @Sendable (any ReadModelTransaction) throws -> Void
        /// Called once, on the connection's queue: `nil` when the body's transaction committed,
        /// else what failed it (``PostgresError``s unmapped).
        let answer: @Sendable ((any Error)?) -> Void
    }

    /// The most bodies in one transaction.
    static let maxBodies = 16
    /// Groups run per borrowed connection before it goes back to the pool.
    static let groupsPerConnection = 8

    private let queue: DrainQueue<Job>
    private let scope: Scope
    /// Transactions that ran more than one body, and how many bodies they ran (committed).
    let groups = Atomic<Int>(0)
    let groupedBodies = Atomic<Int>(0)
    /// Groups rolled back and run again body by body.
    let fallbacks = Atomic<Int>(0)
    /// The round trips of the last group that committed.
    let lastGroupRoundTrips = Atomic<Int>(0)

    init(scope: Scope, pool: ConnectionPool) {
        self.scope = scope
        self.queue = DrainQueue(pool: pool)
    }

    private var writer: DrainQueue<Job>.Writer {
        .init(run: { conn in self.runGroups(on: conn) }, fail: { jobs, error in for j in jobs { j.answer(error) } })
    }

    /// Runs `body` in the next group; returns when its transaction committed.
    /// - Throws: what failed its transaction (``PostgresError``s unmapped), `.cancelled` after
    ///   ``close()``.
    func run(_ body: @escaping @Sendable (any ReadModelTransaction) throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let job = Job(body: body) { error in
                if let error { continuation.resume(throwing: error) } else { continuation.resume() }
            }
            if !queue.enqueue(job, writer: writer) {
                continuation.resume(throwing: MinkError(.cancelled, "storage is shut down"))
            }
        }
    }

    /// Bodies queued and not yet taken into a group.
    var pendingCount: Int { queue.pendingCount }

    /// Fails the bodies still waiting; later ones fail with `.cancelled`.
    func close() async {
        let (left, drain) = queue.close()
        for j in left { j.answer(MinkError(.cancelled, "storage is shut down")) }
        await drain?.value
    }

    /// On the connection's queue: runs groups until nothing waits (`false`) or the connection
    /// broke or ran its share of groups (`true`: more may wait).
    private func runGroups(on conn: PostgresConnection) -> Bool {
        for i in 0..<Self.groupsPerConnection {
            if i > 0, conn.hasQueuedTaskJobs() { return true }
            let jobs = queue.take { pending in
                let n = min(pending.count, Self.maxBodies)
                defer { pending.removeFirst(n) }
                return Array(pending.prefix(n))
            }
            if jobs.isEmpty { return false }
            runGroup(jobs, on: conn)
            if !conn.isOpen { return true }
        }
        return true
    }

    /// Sent first in every transaction of the batcher: a body must not hold the tenant's one
    /// drain (and the bodies grouped with it) while it waits for a row lock — the lease row its
    /// fence locks is held for a whole batch by a rebuild's builder of the same projection.
    static let lockTimeout = PostgresConnection.PipelineStatement("SET LOCAL lock_timeout = '10ms'", prepare: true)

    private func runGroup(_ jobs: [Job], on conn: PostgresConnection) {
        // Several groups run on one borrowed connection: each gets the whole storage timeout.
        conn.renewDeadline()
        guard jobs.count > 1 else { return runAlone(jobs[0], on: conn) }
        let tx = PostgresReadModelTransaction(connection: conn, scope: scope, deferring: true, durability: .relaxed, prelude: [Self.lockTimeout])
        let roundTrips = conn.roundTrips
        var running = 0
        do {
            // What each body reads before its first write, for all of them in the first round
            // trip: then every body runs without one (the fold of an async projection loads its
            // documents once, after its fence and checkpoint check), and the writes of all go
            // with `COMMIT` — two round trips for the group, as for one body alone.
            var reads: [PostgresReadModelTransaction.FirstRead] = []
            for j in jobs { reads += PostgresReadModelTransaction.firstReads(of: j.body, connection: conn, scope: scope) }
            try tx.prefetch(reads)
            for (k, j) in jobs.enumerated() {
                running = k
                try j.body(tx)
            }
            running = jobs.count
            try tx.commit()
            tx.close()
        } catch {
            tx.close()
            conn.renewDeadline()
            conn.rollbackIfNeeded()
            // A broken connection: the body that threw gets its own error, the others a
            // transient one (their runners retry) — never another body's error (a lost lease
            // of one projection must not stop the others).
            guard conn.isOpen else {
                for (k, j) in jobs.enumerated() {
                    j.answer(k == running ? error : MinkError(
                        .unavailable, "PostgreSQL connection lost during a grouped read-model transaction", isTransient: true
                    ))
                }
                return
            }
            fallbacks.add(1, ordering: .relaxed)
            for j in jobs { runAlone(j, on: conn) }
            return
        }
        groups.add(1, ordering: .relaxed)
        groupedBodies.add(jobs.count, ordering: .relaxed)
        lastGroupRoundTrips.store(conn.roundTrips - roundTrips, ordering: .relaxed)
        for j in jobs { j.answer(nil) }
    }

    /// One body in a transaction of its own (as ``PostgresStorage/transaction(_:_:)`` runs it,
    /// with the lock timeout). A body that waited too long for a lock is answered
    /// ``LockBusy``: its caller runs it on a connection of its own, where it may wait.
    private func runAlone(_ job: Job, on conn: PostgresConnection) {
        conn.renewDeadline()
        do {
            try PostgresReadModelTransaction.run(on: conn, scope: scope, durability: .relaxed, prelude: [Self.lockTimeout], job.body)
            job.answer(nil)
        } catch {
            job.answer((error as? PostgresError)?.sqlState == "55P03" ? LockBusy() : error)
        }
    }

    /// A body's transaction waited longer than ``lockTimeout`` for a row lock.
    struct LockBusy: Error {}
}

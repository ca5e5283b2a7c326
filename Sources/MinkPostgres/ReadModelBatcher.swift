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
/// hand-off, four round trips (a body's writes go with the next body's first read) and one
/// commit.
///
/// A group is what waits when a connection takes it (at most ``maxBodies``), so it costs no
/// added latency: a lone body runs at once, alone. Its bodies run one after the other in one
/// `.relaxed` transaction; if one throws or the commit fails, the transaction is rolled back and
/// every body of the group runs again in a transaction of its own, so each gets its own outcome
/// and a failing body never takes another's writes with it (a body may run twice; every run but
/// the last is rolled back).
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
        for _ in 0..<Self.groupsPerConnection {
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

    private func runGroup(_ jobs: [Job], on conn: PostgresConnection) {
        // Several groups run on one borrowed connection: each gets the whole storage timeout.
        conn.renewDeadline()
        guard jobs.count > 1 else { return runAlone(jobs[0], on: conn) }
        let tx = PostgresReadModelTransaction(connection: conn, scope: scope, deferring: true, durability: .relaxed)
        do {
            for j in jobs { try j.body(tx) }
            try tx.commit()
            tx.close()
        } catch {
            tx.close()
            conn.rollbackIfNeeded()
            // A broken connection fails them all (the callers retry); otherwise each alone.
            guard conn.isOpen else {
                for j in jobs { j.answer(error) }
                return
            }
            fallbacks.add(1, ordering: .relaxed)
            for j in jobs { runAlone(j, on: conn) }
            return
        }
        groups.add(1, ordering: .relaxed)
        groupedBodies.add(jobs.count, ordering: .relaxed)
        for j in jobs { j.answer(nil) }
    }

    /// One body in a transaction of its own (as ``PostgresStorage/transaction(_:_:)`` runs it).
    private func runAlone(_ job: Job, on conn: PostgresConnection) {
        let tx = PostgresReadModelTransaction(connection: conn, scope: scope, deferring: true, durability: .relaxed)
        do {
            try job.body(tx)
            try tx.commit()
            tx.close()
            job.answer(nil)
        } catch {
            tx.close()
            conn.rollbackIfNeeded()
            job.answer(error)
        }
    }
}

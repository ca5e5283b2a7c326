import Dispatch
import Foundation
import Logging
import Mink

/// Projection leases (``ProjectionLeaseProvider``): in a deployment of several minkd processes on
/// one database, each async projection of each tenant runs in exactly one process at a time.
///
/// A lease is a session-level advisory lock, `pg_try_advisory_lock(key)`, where `key` is a 64-bit
/// hash of the tenant's schema (or database), the tenant and the projection. The locks are held on
/// one dedicated connection per storage — never a pooled one, whose session would outlive the
/// lease or be shared — and released with `pg_advisory_unlock` when the engine stops the
/// projection. If the process dies, the server ends the session and frees its locks at once; if
/// the session breaks (server restart, `pg_terminate_backend`, network loss detected by TCP
/// keepalives), every lease of the session is lost: ``ProjectionLease/lost()`` returns, the engine
/// stops the runners, and another process (or this one, once it reconnects) takes over.
///
/// Fencing: a holder notices a broken session only after a while (the next health check, or TCP
/// keepalives for a silent network), and meanwhile the pool's connections may still work. So each
/// lease also carries an epoch, the `lease_epoch` of the tenant's `<projection>#lease` checkpoint
/// row: right after taking the lock, the new holder increments it (the upsert locks the row, so
/// it waits for a batch of the old holder that holds the row) and remembers the value; every
/// batch transaction of the holder's runners first locks the row (`SELECT … FOR UPDATE`, see
/// ``ProjectionLease/fence(_:)``) and rolls back with `.leaseLost` unless the epoch is still its
/// own. A batch of the old holder therefore either committed before the new holder's increment —
/// and the new holder, which reads its starting checkpoint after the increment, starts after it —
/// or fails and commits nothing. A row of its own, rather than a copy's checkpoint row, so the
/// lock never delays appends (the inline hook writes copy checkpoints during rebuilds).
extension PostgresStorage: ProjectionLeaseProvider {
    /// Tries to take the lease of a tenant's projection without waiting, and makes it the one
    /// current fencing epoch of the projection.
    /// - Returns: the lease, or `nil` when another process (or another holder in this one) has it.
    /// - Throws: `.invalidTenant`; `.unavailable` when the server cannot be reached.
    public func tryAcquire(tenant: String, projection: String) async throws -> (any ProjectionLease)? {
        try TenantID.validate(tenant)
        let scope = core.scope(for: tenant)
        let key = Identifier.lockKey("mink-projection:\(scope.readyKey):\(tenant):\(projection)")
        guard let lease = try await core.leases.tryAcquire(key: key) else { return nil }
        let row = Self.leaseRow(projection)
        do {
            // Never brings a deleted tenant back (a standby taking the lease of a deleted
            // tenant's projection; see `withConnection(recreating:_:)`).
            let epoch = try await PostgresStorage(core: core, scope: scope).withConnection(recreating: false) { conn, scope in
                try conn.query(
                    """
                    INSERT INTO \(scope.sql.checkpoints) AS c (tenant_id, projection, position, lease_epoch) VALUES ($1, $2, 0, 1)
                    ON CONFLICT (tenant_id, projection) DO UPDATE SET lease_epoch = c.lease_epoch + 1, updated_at = now()
                    RETURNING lease_epoch
                    """,
                    [.text(scope.tenantID), .text(row)]
                ).int64(0, 0)
            }
            guard let epoch else { throw MinkError(.internalError, "no lease epoch returned for projection \(projection)") }
            return FencedProjectionLease(lease: lease, projection: projection, row: row, scope: scope, epoch: epoch)
        } catch {
            await lease.release()
            throw error
        }
    }

    /// The checkpoint row whose `lease_epoch` fences a projection's lease.
    static func leaseRow(_ projection: String) -> String { "\(projection)#lease" }

    /// How many times the lease connection was (re)established (tests watch it).
    public var leaseConnectionCount: Int { core.leases.connections }
}

/// The dedicated connection holding a storage's projection leases, and its health check.
final class LeaseSession: @unchecked Sendable {
    // Invariant for @unchecked Sendable: `connection`, `held`, `timer`, `closed` and
    // `connectionCount` are read and written only on `queue`; every libpq call on the connection
    // therefore runs there, one at a time, never on Swift's cooperative pool.
    private let queue = DispatchQueue(label: "mink.postgres.leases")
    private let parameters: [(String, String)]
    private let timeout: Duration
    private let logger: Logger
    private var connection: PostgresConnection?
    private var held: [Int64: PostgresProjectionLease] = [:]
    private var timer: DispatchSourceTimer?
    private var closed = false
    private var connectionCount = 0
    /// When the session last ran its heartbeat (on `queue`).
    private var lastHeartbeat = ContinuousClock.now
    /// Tests: no heartbeats (a frozen holder, as seen from other processes).
    var heartbeatsPaused: Bool {
        get { queue.sync { paused } }
        set { queue.sync { paused = newValue } }
    }
    private var paused = false
    /// A holder whose session has not run a heartbeat for this long is taken over.
    private let staleAfter: Duration
    /// How often the connection is checked for a break while leases are held.
    static let checkInterval: DispatchTimeInterval = .milliseconds(200)
    /// How often a session holding leases runs a query, so that `pg_stat_activity.state_change`
    /// tells other processes it is alive (an idle session sends nothing otherwise).
    static let heartbeatInterval: Duration = .seconds(2)

    init(parameters: [(String, String)], timeout: Duration, staleAfter: Duration, logger: Logger) {
        self.timeout = timeout
        self.staleAfter = staleAfter
        // Keepalives detect a silently lost network within about 25 s.
        self.parameters = parameters + [
            ("application_name", "minkd-leases"), ("keepalives_idle", "10"), ("keepalives_interval", "5"), ("keepalives_count", "3"),
        ]
        self.logger = logger
    }

    var connections: Int { queue.sync { connectionCount } }

    /// The server process of the lease connection, if open (tests end the session with it).
    var backendPID: Int32? { queue.sync { connection?.backendPID } }

    private func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    func tryAcquire(key: Int64) async throws -> PostgresProjectionLease? {
        try await run { try self.acquireOnQueue(key) }
    }

    private func acquireOnQueue(_ key: Int64) throws -> PostgresProjectionLease? {
        guard !closed else { throw MinkError(.cancelled, "storage is shut down") }
        if held[key] != nil { return nil }
        do {
            let conn = try connected()
            let r = try conn.query("SELECT pg_try_advisory_lock($1::int8)", [.int(key)])
            if r.bool(0, 0) != true {
                guard try takeOverFromStaleHolder(key, on: conn) else { return nil }
            }
        } catch let e as PostgresError {
            if connection.map({ !$0.isOpen }) ?? false { sessionBroke() }
            throw e.minkError
        }
        let lease = PostgresProjectionLease(key: key, session: self)
        held[key] = lease
        return lease
    }

    private func connected() throws -> PostgresConnection {
        if let c = connection {
            if c.isOpen { return c }
            sessionBroke()
        }
        let c = try PostgresConnection(parameters: parameters, timeout: timeout)
        // The lease statements lock and update rows other processes update too: READ COMMITTED
        // whatever the server's default; and a lease's commit is durable (see ``ConnectionWorker``).
        do {
            try c.execute("SET default_transaction_isolation = 'read committed'; " + ConnectionWorker.durableCommits)
        } catch {
            c.close()
            throw error
        }
        connection = c
        connectionCount += 1
        startTimer()
        return c
    }

    private func startTimer() {
        guard timer == nil else { return }
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now() + Self.checkInterval, repeating: Self.checkInterval)
        t.setEventHandler { [weak self] in self?.check() }
        t.resume()
        timer = t
    }

    /// On `queue`, when the lock of `key` is held elsewhere: if the holder is another minkd's lease
    /// session whose heartbeat stopped more than `staleAfter` ago (a frozen process: its
    /// connection stays open, so the server keeps its locks), ends that session and waits up to a
    /// second for the lock. Whether the lock is now this session's.
    private func takeOverFromStaleHolder(_ key: Int64, on conn: PostgresConnection) throws -> Bool {
        // A bigint advisory lock shows in pg_locks as classid = its high 32 bits, objid = its low
        // 32 bits, objsubid = 1.
        let stale = try conn.query(
            """
            SELECT a.pid, extract(epoch FROM now() - a.state_change)::int8 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.classid = ((($1::int8) >> 32) & 4294967295)::oid AND l.objid = (($1::int8) & 4294967295)::oid
              AND a.application_name = 'minkd-leases' AND a.state = 'idle' AND a.pid <> pg_backend_pid()
              AND a.state_change < now() - make_interval(secs => $2::float8)
            """,
            [.int(key), .text(String(Double(staleAfter.components.seconds) + Double(staleAfter.components.attoseconds) / 1e18))]
        )
        guard let pid = stale.int64(0, 0) else { return false }
        logger.warning("taking over projection leases from a process whose lease session stopped answering", metadata: [
            "pid": "\(pid)", "silentSeconds": "\(stale.int64(0, 1) ?? 0)",
        ])
        do {
            _ = try conn.query("SELECT pg_terminate_backend($1::int4)", [.int(pid)])
        } catch let e as PostgresError where e.sqlState == "42501" {
            logger.warning("cannot end the stale lease session (no permission to signal it)", metadata: ["pid": "\(pid)", "error": "\(e.message)"])
            return false
        }
        // The server frees the locks as the backend exits.
        let deadline = ContinuousClock.now + .seconds(1)
        repeat {
            if try conn.query("SELECT pg_try_advisory_lock($1::int8)", [.int(key)]).bool(0, 0) == true { return true }
            usleep(20_000)
        } while ContinuousClock.now < deadline
        return false
    }

    /// On `queue`: an idle session has nothing to read; input means a notice, or that the server
    /// ended the session (libpq then reports the connection bad). While leases are held, a
    /// heartbeat query every ``heartbeatInterval``.
    private func check() {
        guard let c = connection else { return }
        if !held.isEmpty, !paused, ContinuousClock.now - lastHeartbeat >= Self.heartbeatInterval {
            lastHeartbeat = .now
            do {
                _ = try c.query("SELECT 1")
            } catch {
                if !c.isOpen { sessionBroke() }
                return
            }
        }
        var fds = pollfd(fd: c.socket, events: Int16(POLLIN), revents: 0)
        guard poll(&fds, 1, 0) != 0 else { return }
        do {
            try c.consumeInput()
            _ = c.notifications()
        } catch {
            sessionBroke()
            return
        }
        if !c.isOpen { sessionBroke() }
    }

    /// On `queue`: the session ended, so the server released every lock it held.
    private func sessionBroke() {
        connection?.close()
        connection = nil
        let lost = held
        held = [:]
        if !lost.isEmpty, !closed {
            logger.warning("projection lease session lost; projections stop here and move to another process", metadata: [
                "leases": "\(lost.count)",
            ])
        }
        for lease in lost.values { lease.end() }
    }

    func release(_ lease: PostgresProjectionLease) async {
        _ = try? await run { self.releaseOnQueue(lease) }
    }

    private func releaseOnQueue(_ lease: PostgresProjectionLease) {
        defer { lease.end() }
        guard held[lease.key] === lease else { return }
        held[lease.key] = nil
        guard let c = connection else { return }
        do {
            try c.query("SELECT pg_advisory_unlock($1::int8)", [.int(lease.key)])
        } catch {
            if !c.isOpen { sessionBroke() }
        }
    }

    /// Releases every lease (they end) and closes the connection.
    func shutdown() async {
        _ = try? await run {
            self.closed = true
            self.timer?.cancel()
            self.timer = nil
            self.sessionBroke()
        }
    }
}

/// A held projection lease of a ``LeaseSession``.
final class PostgresProjectionLease: ProjectionLease {
    let key: Int64
    private let session: LeaseSession
    private let ended: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init(key: Int64, session: LeaseSession) {
        self.key = key
        self.session = session
        (ended, continuation) = AsyncStream.makeStream(of: Void.self)
    }

    /// Returns when the session holding the lock ended, the lease was released, or the waiting
    /// task is cancelled.
    func lost() async {
        for await _ in ended {}
    }

    /// Unlocks (when the session is still there) and ends the lease.
    func release() async {
        await session.release(self)
    }

    func end() { continuation.finish() }
}

/// A held lease with its fencing epoch: read-model transactions of the lease's tenant check that
/// the epoch is still the stored one (see ``PostgresStorage/tryAcquire(tenant:projection:)``).
struct FencedProjectionLease: ProjectionLease {
    let lease: PostgresProjectionLease
    let projection: String
    /// The checkpoint row holding the epoch.
    let row: String
    /// Where the row lives: a transaction of another database, schema or tenant cannot fence.
    let scope: Scope
    /// The value this holder wrote; a later holder writes a greater one.
    let epoch: Int64

    func lost() async { await lease.lost() }

    func release() async { await lease.release() }

    /// Locks the epoch row until `tx` ends and checks the epoch is still this lease's (with the
    /// transaction's next read, before any later statement is sent); when not,
    /// the lease ends (``lost()`` returns) and `.leaseLost` is thrown.
    func fence(_ tx: any ReadModelTransaction) throws {
        guard let ptx = tx as? PostgresReadModelTransaction, ptx.scope.readyKey == scope.readyKey,
            ptx.scope.tenantID == scope.tenantID
        else {
            throw MinkError(.internalError, "projection \(projection): a lease fences only transactions of its own tenant's storage")
        }
        // Checked with the transaction's next read (every fencing caller reads next), before
        // any write of the batch is sent: one round trip less per batch.
        try ptx.checkLockedLeaseEpoch(row) { [lease, epoch, projection] stored in
            guard stored == epoch else {
                lease.end()
                throw MinkError.leaseLost(projection)
            }
        }
    }
}

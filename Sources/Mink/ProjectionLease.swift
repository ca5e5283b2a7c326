/// Decides which process runs an async projection of a tenant, when several processes share one
/// storage (several minkd processes on one PostgreSQL database).
///
/// The engine asks for the lease before it starts a projection's runners and stops them when the
/// lease is lost; a process without the lease keeps the projection on standby (its status comes
/// from storage) and asks again every few seconds, so the projection moves to another process
/// when the one running it stops.
///
/// PostgreSQL implements it with a session-level advisory lock per (tenant, projection):
/// `pg_try_advisory_lock(key)`, `key` a 64-bit hash of the tenant's schema, the tenant and the
/// projection, on a dedicated connection of the storage (not a pooled one) that stays open while
/// leases are held; the lock is released by `pg_advisory_unlock` or, if the process dies, by the
/// server when the session ends. ``lost()`` returns when that connection breaks. Storage that only one process can open
/// (SQLite, memory) uses ``LocalProjectionLeaseProvider``, which always grants.
///
/// A holder may learn late that it lost its lease (a broken connection is noticed after a while),
/// so a lease is also a fencing token: every read-model transaction of the holder's runners calls
/// ``ProjectionLease/fence(_:)`` first, and a holder whose lease was taken over commits nothing.
public protocol ProjectionLeaseProvider: Sendable {
    /// Tries to take the lease of a projection of a tenant without waiting.
    /// - Returns: the lease, or `nil` when another process holds it.
    /// - Throws: when storage cannot be asked (the engine retries later).
    func tryAcquire(tenant: String, projection: String) async throws -> (any ProjectionLease)?
}

/// A held projection lease.
public protocol ProjectionLease: Sendable {
    /// Returns when the lease is lost (for example its database session ended) or released.
    func lost() async
    /// Gives the lease up.
    func release() async
    /// Fencing: checks, as the first step of a read-model transaction of the storage that granted
    /// the lease, that the lease has not been taken over by another holder since, and keeps it
    /// from being taken over until the transaction ends — so work done under a lost lease never
    /// commits, even when the holder has not noticed the loss yet.
    ///
    /// Why it is needed: ``lost()`` returns only once the holder notices the loss, while a new
    /// holder may already run; without the check a batch begun before the loss could commit after
    /// the new holder read its starting checkpoint, and its events would be applied twice.
    /// - Parameter tx: the transaction, as handed to ``ReadModelStore/transaction(_:)``.
    /// - Throws: `.leaseLost` when another holder took the lease over (the caller stops; the
    ///   transaction is rolled back), or what the storage threw.
    func fence(_ tx: any ReadModelTransaction) throws
}

extension ProjectionLease {
    /// No fencing: for leases that cannot be taken over while held (one process owns the storage).
    public func fence(_ tx: any ReadModelTransaction) throws {}
}

/// The lease provider of storage that one process owns: every lease is granted at once and is
/// never lost.
public struct LocalProjectionLeaseProvider: ProjectionLeaseProvider {
    /// Creates the provider.
    public init() {}

    /// Always grants.
    public func tryAcquire(tenant: String, projection: String) async throws -> (any ProjectionLease)? {
        LocalLease()
    }

    private struct LocalLease: ProjectionLease {
        func lost() async {
            // Never lost: wait until the waiting task is cancelled (the runner stops).
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
        }

        func release() async {}
    }
}

import Foundation
import Mink
@testable import MinkPostgres
import Testing

/// Projection leases: session-level advisory locks on a dedicated connection.
@Suite("PostgreSQL projection leases")
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
}

import Foundation
import Mink
import MinkConfig
import MinkHTTP
@testable import MinkPostgres
import MinkServer
import Testing

/// Two servers on one PostgreSQL database (two minkd processes behind a load balancer): a tenant
/// deleted through one is forgotten by the other (`TenantCatalog.externalDeletions()`).
@Suite("PostgreSQL: tenant deletion across processes", .timeLimit(.minutes(2)))
struct PostgresTenantDeletionAcrossProcessesTests {
    static let ops = TestToken.headers("ops")

    /// Before: B kept the tenant's open subscriptions (silent, and after the tenant was created
    /// again they skipped its new events up to the old position), and took the deleted tenant as
    /// existing — a write through B with `autoCreate` off created it again.
    @Test(arguments: [TenantStorageKind.postgresShared, .postgresSchema, .postgresDatabase])
    func aTenantDeletedThroughAnotherProcessIsForgottenHere(_ kind: TenantStorageKind) async throws {
        let schema = PostgresTestDatabase.freshName("t_")
        let prefix = PostgresTestDatabase.freshName("tp_") + "_"
        // An async projection in both processes: one runs it for the tenant, the other waits on
        // standby — and neither may create the deleted tenant's schema or database again (a
        // standby's status refresh and a stopping holder's did).
        let projections = try MinkdConfiguration.parse(yaml: ordersYAML(mode: "async")).projections
        let setUp: @Sendable (inout MinkdConfiguration) -> Void = { config in
            kind.configure(&config, directory: NSTemporaryDirectory())
            config.tenancy.schemaPrefix = prefix
            config.auth.enabled = true
            config.auth.tokens = TestToken.standard
            config.tenancy.autoCreate = false
            config.projections = projections
        }
        func open() async throws -> ServerStorage {
            if kind == .postgresShared { return try await PostgresTestDatabase.storage(schema: schema) }
            var config = MinkdConfiguration()
            setUp(&config)
            // A new layout beside the other tests' data in the shared test database, on purpose.
            return try await ServerStorage.open(config, newLayout: .create)
        }
        let a = try await TestServer.start(storage: try await open(), configure: setUp)
        let b: TestServer
        do { b = try await TestServer.start(storage: try await open(), configure: setUp) } catch {
            await a.stop()
            throw error
        }
        do {
            try await check(a, b, kind)
        } catch {
            await b.stop()
            await a.stop()
            throw error
        }
        await b.stop()
        await a.stop()
    }

    /// A process that has not yet heard of a deletion (its notice still on the way) and keeps
    /// writing to the tenant: the write finds the schema or database gone and the tenant is not
    /// created again — `404` with `autoCreate` off; with it on, `503` (retry) and the next write
    /// creates the tenant afresh from position 1. Before, the write recreated the deleted
    /// tenant's storage and went on (a black-box audit: 814 of 814 writes accepted after the
    /// deletion through the other process, the schema back within 2 s, the tenant listed again
    /// after a restart).
    @Test(arguments: [TenantStorageKind.postgresSchema, .postgresDatabase], [false, true])
    func aWriteThatFindsItsTenantDeletedElsewhereDoesNotUndoTheDeletion(_ kind: TenantStorageKind, _ autoCreate: Bool) async throws {
        let prefix = PostgresTestDatabase.freshName("tg_") + "_"
        let setUp: @Sendable (inout MinkdConfiguration) -> Void = { config in
            kind.configure(&config, directory: NSTemporaryDirectory())
            config.tenancy.schemaPrefix = prefix
            config.auth.enabled = true
            config.auth.tokens = TestToken.standard
            config.tenancy.autoCreate = autoCreate
        }
        var config = MinkdConfiguration()
        setUp(&config)
        let s = try await TestServer.start(storage: try await ServerStorage.open(config, newLayout: .create), configure: setUp)
        do {
            let acme = TestToken.headers("acme-rw")
            #expect(try await s.request("POST", "/v1/admin/tenants", json: #"{"id":"acme"}"#, headers: Self.ops).status == 201)
            #expect(try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A1"]), headers: acme).status == 201)
            // Deleted by "another process" whose notice has not arrived: its storage dropped.
            let pg = try #require(s.server.store.adapter as? PostgresStorage)
            let url = try #require(config.storage.url)
            let name = "\(prefix)acme"
            if kind == .postgresDatabase {
                try await PostgresTestDatabase.execute(url, "DROP DATABASE \(name) WITH (FORCE)")
            } else {
                try await PostgresTestDatabase.execute(url, "DROP SCHEMA \(name) CASCADE")
            }
            let write = try await s.request("POST", "/v1/streams/order-1", json: appendBody(["B1"]), headers: acme)
            #expect(write.status == (autoCreate ? 503 : 404), "\(kind) autoCreate \(autoCreate): \(write.text)")
            #expect(try await PostgresTestDatabase.ownStorageExists(pg, tenant: "acme") == false, "the write created the deleted tenant again")
            let next = try await s.request("POST", "/v1/streams/order-1", json: appendBody(["C1"]), headers: acme)
            if autoCreate {
                #expect(next.status == 201 && next["fromPosition"] == .int(1), "created afresh: \(next.text)")
            } else {
                #expect(next.status == 404, "\(next.text)")
                #expect(try await PostgresTestDatabase.ownStorageExists(pg, tenant: "acme") == false)
            }
        } catch {
            await s.stop()
            throw error
        }
        await s.stop()
    }

    private func check(_ a: TestServer, _ b: TestServer, _ kind: TenantStorageKind) async throws {
        let acme = TestToken.headers("acme-rw")
        #expect(try await a.request("POST", "/v1/admin/tenants", json: #"{"id":"acme"}"#, headers: Self.ops).status == 201)
        #expect(try await a.request("POST", "/v1/streams/order-1", json: appendBody(["A1"]), headers: acme).status == 201)
        // B knows the tenant (a write through it) and serves a live subscription of it.
        #expect(try await b.request("POST", "/v1/streams/order-1", json: appendBody(["A2"]), headers: acme).status == 201)
        var (live, replayed) = try await b.openLive("/v1/subscriptions/all", headers: acme)
        #expect(replayed.filter { $0.event == "message" }.count == 2, "\(replayed)")

        let deleted = try await a.request("DELETE", "/v1/admin/tenants/acme?confirm=acme", headers: Self.ops)
        #expect(deleted.status == 200, "\(deleted.text)")
        // B's stream ends (with no byte for 10 s the client throws instead: keepalives are 15 s
        // apart), with nothing more delivered.
        var after: [SSEEvent] = []
        while let e = try await live.next() { after.append(e) }
        #expect(after.filter { $0.event == "message" }.isEmpty, "after the deletion: \(after)")

        if kind == .postgresDatabase {
            // B let go of the dropped database (its pool and LISTEN connection): its listener
            // would otherwise try to reconnect to a database that no longer exists, for good.
            let pg = try #require(b.server.store.adapter as? PostgresStorage)
            let deadline = ContinuousClock.now + .seconds(10)
            while pg.core.backends.tenantDatabases.contains(where: { $0.hasSuffix("acme") }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(!pg.core.backends.tenantDatabases.contains { $0.hasSuffix("acme") }, "\(pg.core.backends.tenantDatabases)")
        }
        // Two lease intervals later (standbys refresh, a new holder would activate): nothing
        // created the tenant again.
        try await Task.sleep(for: .seconds(3))
        if kind != .postgresShared {
            let pg = try #require(a.server.store.adapter as? PostgresStorage)
            #expect(try await PostgresTestDatabase.ownStorageExists(pg, tenant: "acme") == false, "the deleted tenant's storage came back")
        }
        // Neither process takes the tenant as existing: with autoCreate off a write is 404, not a new tenant.
        for server in [b, a] {
            let write = try await server.request("POST", "/v1/streams/order-1", json: appendBody(["B1"]), headers: acme)
            #expect(write.status == 404, "\(write.text)")
        }
        let listed = try await b.request("GET", "/v1/admin/tenants", headers: Self.ops)
        #expect(!listed.text.contains(#""acme""#), "\(listed.text)")

        // Created again through A: B serves the new tenant from position 1, nothing of the old one.
        #expect(try await a.request("POST", "/v1/admin/tenants", json: #"{"id":"acme"}"#, headers: Self.ops).status == 201)
        let again = try await b.request("POST", "/v1/streams/order-1", json: appendBody(["N1"]), headers: acme)
        #expect(again.status == 201 && again["fromPosition"] == .int(1), "\(again.text)")
        let events = try await b.caughtUp("/v1/subscriptions/all", headers: acme)
        #expect(events.count == 1 && events.first?.data.contains(#""type":"N1""#) == true, "\(events)")
    }
}

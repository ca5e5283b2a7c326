import Foundation
import Mink
import MinkPostgres
@testable import MinkServer
import Testing

/// Several minkd processes on one PostgreSQL database: the timed scavenger runs in one of them
/// at a time (the `$scavenger` lease); every process used to scavenge the same rules at once.
@Suite("PostgreSQL: one scavenger at a time", .timeLimit(.minutes(2)))
struct PostgresScavengerLeaseTests {
    @Test func aPassIsSkippedWhileAnotherProcessHoldsTheScavengersLease() async throws {
        let schema = PostgresTestDatabase.freshName("t_")
        let storage = try await PostgresTestDatabase.storage(schema: schema)
        // "Another process": a second storage on the same schema, with its own lease session.
        let other = try await PostgresStorage(configuration: PostgresConfiguration(connectionString: try PostgresTestDatabase.url(), poolSize: 1, schema: schema))
        defer { Task { await other.shutdown() } }
        try await withServer(storage: storage) { s in
            for _ in 0..<3 { try #require(try await s.request("POST", "/v1/streams/r-1", json: appendBody(["A"])).status == 201) }
            try #require(try await s.request("PUT", "/v1/streams/r-1/metadata", json: #"{"maxCount":1}"#).status == 200)
            let stored = "SELECT count(*) FROM \(schema).mink_events WHERE stream_id = 'r-1'"
            let url = try PostgresTestDatabase.url()

            let lease = try #require(try await other.tryAcquire(tenant: ScavengerService.lease.tenant, projection: ScavengerService.lease.name))
            await ScavengerService(server: s.server).pass()
            #expect(try await PostgresTestDatabase.value(url, stored) == "3", "the other process holds the lease: nothing removed here")

            await lease.release()
            await ScavengerService(server: s.server).pass()
            #expect(try await PostgresTestDatabase.value(url, stored) == "1", "the lease free, the pass runs")
            // A manual scavenge runs whatever the lease.
            try #require(try await s.request("POST", "/v1/streams/r-1", json: appendBody(["B"])).status == 201)
            let held = try #require(try await other.tryAcquire(tenant: ScavengerService.lease.tenant, projection: ScavengerService.lease.name))
            #expect(try await s.request("POST", "/v1/admin/scavenge").text == #"{"deletedEvents":1}"#)
            await held.release()
        }
    }
}

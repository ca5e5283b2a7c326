import Foundation
import Mink
import MinkPostgres
import MinkTesting
import Testing

/// The shared adapter conformance suite of `MinkTesting`, against PostgreSQL: a fresh schema (or
/// schema prefix) per case, once per tenancy strategy (`.database` creates a database per tenant).
@Suite("PostgreSQL storage conformance", .timeLimit(.minutes(3)))
struct PostgresConformanceTests {
    @Test(arguments: AdapterConformance.cases)
    func sharedTables(_ check: AdapterConformance.Case) async throws {
        let storage = try await TestServer.storage(poolSize: 4)
        try await check.run { ConformanceStorage(storage) }
        await storage.shutdown()
    }

    @Test(arguments: AdapterConformance.cases)
    func schemaPerTenant(_ check: AdapterConformance.Case) async throws {
        let storage = try await TestServer.storage(tenancy: .schema(prefix: TestServer.freshName("p_") + "_"), poolSize: 4)
        try await check.run { ConformanceStorage(storage) }
        await storage.shutdown()
    }

    @Test(arguments: AdapterConformance.cases)
    func databasePerTenant(_ check: AdapterConformance.Case) async throws {
        let storage = try await TestServer.storage(tenancy: .database(prefix: TestServer.freshName("d_") + "_"), poolSize: 4)
        try await check.run { ConformanceStorage(storage) }
        await storage.shutdown()
    }
}

import MinkConfig
import MinkServer
import Testing

@testable import MinkStorageWiring

/// CONFIG.md: `storage.pool` is "postgres connections per tenant database" — the configured
/// database's pool and, with `database` tenancy, every tenant database's pool alike.
@Suite("storage.pool wiring", .timeLimit(.minutes(1)))
struct PostgresPoolWiringTests {
    @Test func poolSizesEveryTenantDatabasesPool() throws {
        for strategy in ["shared", "schema", "database"] {
            let configuration = try MinkdConfiguration.parse(yaml: """
                storage: {url: "postgresql://minkd@127.0.0.1:5432/minkd", pool: 7}
                tenancy: {strategy: \(strategy)}
                """)
            let postgres = try ServerStorage.postgresConfiguration(configuration)
            #expect(postgres.poolSize == 7, "\(strategy)")
            #expect(postgres.tenantPoolSize == 7, "\(strategy): a tenant database's pool")
        }
    }
}

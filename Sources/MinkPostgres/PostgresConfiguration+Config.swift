import Mink

extension PostgresConfiguration.Tenancy {
    /// The layout the seed's multi-tenancy settings ask for: shared tables, or a schema or a
    /// database per tenant named `schemaPrefix + tenantID`.
    public init(_ settings: MultiTenancyConfig) {
        switch settings.strategy {
        case .shared: self = .shared
        case .schema: self = .schema(prefix: settings.schemaPrefix)
        case .database: self = .database(prefix: settings.schemaPrefix)
        }
    }
}

extension PostgresConfiguration {
    /// A configuration laid out by the seed's store-wide settings (`go-mink.Config{MultiTenancy:
    /// …}`); every other setting keeps its default.
    public init(connectionString: String, config: Config) {
        self.init(connectionString: connectionString, tenancy: Tenancy(config.multiTenancy))
    }
}

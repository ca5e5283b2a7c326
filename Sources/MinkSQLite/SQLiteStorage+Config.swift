import Mink

extension SQLiteStorage.TenancyStrategy {
    /// The strategy the seed's multi-tenancy settings ask for (`schema` is PostgreSQL's only:
    /// opening a SQLite storage with it throws `.adapterNotSupported`).
    public init(_ settings: MultiTenancyConfig) {
        switch settings.strategy {
        case .shared: self = .shared
        case .schema: self = .schema
        case .database: self = .database
        }
    }
}

extension SQLiteStorage {
    /// Opens storage under a data directory laid out by the seed's store-wide settings
    /// (`go-mink.Config{MultiTenancy: …}`): one file for every tenant, or one file per tenant.
    /// - Throws: `.adapterNotSupported` for the schema strategy, `.unavailable`, `.internalError`.
    public static func open(
        directory: String, config: Config, configuration: SQLiteConfiguration = SQLiteConfiguration()
    ) async throws -> SQLiteStorage {
        try await open(directory: directory, strategy: TenancyStrategy(config.multiTenancy), configuration: configuration)
    }
}

/// How tenants are kept apart in storage (seed: `TenantStrategy`).
public enum TenantStrategy: String, Sendable, Hashable, CaseIterable, Codable {
    /// Shared tables with a `tenant_id` in every key (seed: `SharedTable`).
    case shared
    /// A PostgreSQL schema per tenant (seed: `SchemaPerTenant`); not available on SQLite.
    case schema
    /// A database per tenant: a SQLite file or a PostgreSQL database (seed: `DatabasePerTenant`).
    case database

    /// Seed spelling of ``shared``.
    public static let sharedTable = TenantStrategy.shared
    /// Seed spelling of ``schema``.
    public static let schemaPerTenant = TenantStrategy.schema
    /// Seed spelling of ``database``.
    public static let databasePerTenant = TenantStrategy.database
}

/// Multi-tenancy settings (seed: `MultiTenancyConfig`).
public struct MultiTenancyConfig: Sendable, Hashable {
    /// The isolation strategy.
    public var strategy: TenantStrategy
    /// The prefix of per-tenant PostgreSQL schemas (`tenant_` + tenant ID).
    public var schemaPrefix: String
    /// Whether a tenant is created by its first write (otherwise only by an administrator).
    public var autoCreate: Bool

    /// Creates settings; defaults: shared tables, prefix `tenant_`, auto-create on.
    public init(strategy: TenantStrategy = .shared, schemaPrefix: String = "tenant_", autoCreate: Bool = true) {
        self.strategy = strategy
        self.schemaPrefix = schemaPrefix
        self.autoCreate = autoCreate
    }
}

/// Store-wide settings (seed: `Config`).
public struct Config: Sendable, Hashable {
    /// Multi-tenancy settings.
    public var multiTenancy: MultiTenancyConfig

    /// Creates settings.
    public init(multiTenancy: MultiTenancyConfig = MultiTenancyConfig()) { self.multiTenancy = multiTenancy }
}

/// The underlying error of a storage call that found its tenant's own storage gone — the tenant
/// was deleted, perhaps through another process that this one has not heard from yet. The
/// storage creates nothing then; the server applies its existence rules again (an unknown
/// tenant is `404`, or is created afresh by the next write with `tenancy.autoCreate`).
public struct TenantStorageGone: Error, Sendable, Equatable {
    public let tenantID: String
    public init(tenantID: String) { self.tenantID = tenantID }
}

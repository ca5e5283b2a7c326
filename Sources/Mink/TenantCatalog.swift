/// The registry of a storage's tenants: which exist, and creating and deleting them
/// (HTTP-API.md section 9, `tenancy.autoCreate`).
///
/// A tenant *exists* once it was created through ``createTenant(_:)`` (minkd calls it on a
/// tenant's first write when `autoCreate` is on, or for `POST /v1/admin/tenants`). Reading an
/// unknown tenant through a scoped adapter answers as for an empty tenant and never creates it.
/// The `default` tenant always exists and cannot be deleted.
///
/// Every ID passed in must already have passed ``TenantID/validate(_:)``; implementations
/// validate again before an ID reaches a file name, schema name or SQL.
///
/// What each strategy does:
/// - `shared`: a registry table (`mink_tenants`); deletion removes the tenant's rows from every
///   table in one transaction;
/// - `schema` (PostgreSQL): creation creates and migrates the schema `schemaPrefix + id`; deletion
///   drops it (`DROP SCHEMA … CASCADE`);
/// - `database`: creation creates and migrates the tenant's database (SQLite file, PostgreSQL
///   database); deletion closes its connections and removes it.
public protocol TenantCatalog: Sendable {
    /// The existing tenants' IDs, sorted; always contains `default`.
    func tenants() async throws -> [String]

    /// Whether a tenant exists.
    /// - Throws: `.invalidTenant`, storage errors.
    func tenantExists(_ tenantID: String) async throws -> Bool

    /// Creates a tenant (registering it, creating its schema or database); idempotent.
    /// - Returns: `true` when the tenant was created now, `false` when it already existed.
    /// - Throws: `.invalidTenant`, storage errors.
    @discardableResult
    func createTenant(_ tenantID: String) async throws -> Bool

    /// Deletes a tenant with all its data: events, streams, snapshots, checkpoints, read models.
    /// - Returns: `false` when the tenant did not exist.
    /// - Throws: `.invalidTenant`; `.validationFailed` for `default`; storage errors.
    @discardableResult
    func deleteTenant(_ tenantID: String) async throws -> Bool

    /// The IDs of tenants that other processes on the same storage deleted, as they are
    /// deleted (PostgreSQL: a `NOTIFY` on the main database), so that this process forgets them:
    /// ends their subscriptions, stops their projections, no longer takes them as existing.
    /// `nil` (the default) for a storage that one process owns.
    func externalDeletions() -> AsyncStream<String>?

    /// Lets go of what this process still holds of a tenant another process deleted (its
    /// database's connections, what it knows to be migrated); called once the tenant is
    /// forgotten here. Default: nothing.
    func releaseDeletedTenant(_ tenantID: String) async
}

extension TenantCatalog {
    public func externalDeletions() -> AsyncStream<String>? { nil }
    public func releaseDeletedTenant(_ tenantID: String) async {}
}

extension TenantID {
    /// Refuses to delete the `default` tenant (shared by the catalogs).
    /// - Throws: `.invalidTenant` for a malformed ID, `.validationFailed` for `default`.
    public static func validateDeletable(_ id: String) throws {
        try validate(id)
        if id == TenantID.default { throw MinkError.validation("the default tenant cannot be deleted") }
    }
}

import Foundation
import Mink

/// The tenant catalog of both SQLite strategies.
///
/// - `shared`: the `mink_tenants` table of the one file is the registry; deleting a tenant
///   removes its rows from every table in one transaction.
/// - `database`: a tenant exists when its file `<directory>/<tenant>.sqlite` exists; creating
///   one creates and migrates the file, deleting one closes its connections and removes the file
///   with its `-wal` and `-shm` companions.
///
/// Any view of the storage answers for the whole storage (the catalog is not tenant-scoped).
extension SQLiteStorage: TenantCatalog {
    /// The tables holding tenant data, every one keyed by `tenant_id`.
    static let tenantTables = [
        "mink_events", "mink_streams", "mink_snapshots", "mink_checkpoints", "mink_documents", "mink_stream_metadata",
    ]

    public func tenants() async throws -> [String] {
        if let tenantFiles {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: tenantFiles.directory) } catch {
                throw MinkError(.unavailable, "cannot list the data directory: \(error.localizedDescription)", isTransient: true, underlying: error)
            }
            var ids: Set<String> = [TenantID.default]
            for name in names where name.hasSuffix(".sqlite") {
                let id = String(name.dropLast(".sqlite".count))
                if (try? TenantID.validate(id)) != nil { ids.insert(id) }
            }
            return ids.sorted()
        }
        return try await database.read { c in
            var ids: [String] = []
            try c.query("SELECT tenant_id FROM mink_tenants ORDER BY tenant_id") { ids.append($0.text(0)) }
            return ids
        }
    }

    public func tenantExists(_ tenantID: String) async throws -> Bool {
        try TenantID.validate(tenantID)
        if tenantID == TenantID.default { return true }
        if let tenantFiles {
            return FileManager.default.fileExists(atPath: Self.file(tenantID, in: tenantFiles.directory))
        }
        return try await database.read { c in
            try c.int("SELECT 1 FROM mink_tenants WHERE tenant_id = ?", [.text(tenantID)]) != nil
        }
    }

    @discardableResult
    public func createTenant(_ tenantID: String) async throws -> Bool {
        try TenantID.validate(tenantID)
        if let tenantFiles {
            let existed = try await tenantExists(tenantID)
            try await tenantFiles.database(for: tenantID).prepare()
            return !existed
        }
        let micros = Date().microsecondsSince1970()
        return try await database.write { c in
            try c.run("INSERT OR IGNORE INTO mink_tenants (tenant_id, created_at) VALUES (?, ?)", [.text(tenantID), .int(micros)])
            return (try c.int("SELECT changes()") ?? 0) > 0
        }
    }

    @discardableResult
    public func deleteTenant(_ tenantID: String) async throws -> Bool {
        try TenantID.validateDeletable(tenantID)
        if let tenantFiles {
            let path = Self.file(tenantID, in: tenantFiles.directory)
            let existed = FileManager.default.fileExists(atPath: path)
            if let db = tenantFiles.remove(tenantID) { await db.close() }
            for suffix in ["", "-wal", "-shm", "-journal"] where FileManager.default.fileExists(atPath: path + suffix) {
                do { try FileManager.default.removeItem(atPath: path + suffix) } catch {
                    throw MinkError(.unavailable, "cannot remove a tenant's database file: \(error.localizedDescription)", isTransient: true, underlying: error)
                }
            }
            // A request that raced with the deletion may have opened the file again before it was
            // removed; its connections would keep reading the removed file: close them too.
            if let db = tenantFiles.remove(tenantID) { await db.close() }
            return existed
        }
        return try await database.write { c in
            var removed = false
            for table in Self.tenantTables + ["mink_tenants"] {
                try c.run("DELETE FROM \(table) WHERE tenant_id = ?", [.text(tenantID)])
                if (try c.int("SELECT changes()") ?? 0) > 0 { removed = true }
            }
            return removed
        }
    }
}

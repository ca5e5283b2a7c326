import Foundation
import Mink
@testable import MinkSQLite
import Testing

/// The tenant catalog of both SQLite strategies (and of `InMemoryStorage`, the reference).
@Suite("SQLite tenant catalog", .timeLimit(.minutes(3)))
struct TenantCatalogTests {
    enum Kind: String, CaseIterable, Sendable { case memory, shared, database }

    static func open(_ kind: Kind, _ dir: TempDirectory) async throws -> (any TenantCatalog & EventStoreAdapter, close: @Sendable () async -> Void) {
        switch kind {
        case .memory: return (InMemoryStorage(), {})
        case .shared:
            let s = try await SQLiteStorage.open(directory: dir.path, strategy: .shared)
            return (s, { await s.close() })
        case .database:
            let s = try await SQLiteStorage.open(directory: dir.path, strategy: .database)
            return (s, { await s.close() })
        }
    }

    /// A data directory laid out for the other strategy is refused at open, saying which: the
    /// shared file was listed as a tenant `mink` under `database` (deleting it deleted every
    /// tenant's data), and a per-tenant directory opened under `shared` looked empty. A directory
    /// holding both (a tenant really named `mink`) opens.
    @Test func aDirectoryOfTheOtherLayoutIsRefused() async throws {
        for (first, second, file) in [(SQLiteStorage.TenancyStrategy.shared, SQLiteStorage.TenancyStrategy.database, "mink.sqlite"),
                                      (.database, .shared, "default.sqlite")] {
            let dir = TempDirectory()
            defer { dir.remove() }
            let s = try await SQLiteStorage.open(directory: dir.path, strategy: first)
            _ = try await s.append(AppendRequest(streamID: "s-1", events: [EventData(type: "A", data: Data("{}".utf8))], expectedVersion: .any), hook: nil)
            await s.close()
            do {
                let wrong = try await SQLiteStorage.open(directory: dir.path, strategy: second)
                await wrong.close()
                Issue.record("\(first) directory opened as \(second)")
            } catch let e as MinkError {
                #expect(e.code == .validationFailed && e.message.contains(file) && e.message.contains("strategy is \(second.rawValue)"), "\(e)")
            }
            let again = try await SQLiteStorage.open(directory: dir.path, strategy: first)
            #expect(try await again.headPosition() == 1, "the data is still there under its own strategy")
            await again.close()
        }
        // Both files: a database-per-tenant directory with a tenant named `mink`.
        let dir = TempDirectory()
        defer { dir.remove() }
        let s = try await SQLiteStorage.open(directory: dir.path, strategy: .database)
        #expect(try await s.createTenant("mink"))
        await s.close()
        let again = try await SQLiteStorage.open(directory: dir.path, strategy: .database)
        #expect(try await again.tenants() == ["default", "mink"])
        await again.close()
        // That directory is still a per-tenant one: opened under `shared`, `mink.sqlite` (tenant
        // `mink`'s file) would have been taken for the shared database and every other tenant
        // would have seemed gone.
        do {
            let wrong = try await SQLiteStorage.open(directory: dir.path, strategy: .shared)
            await wrong.close()
            Issue.record("a per-tenant directory with a tenant named mink opened as shared")
        } catch let e as MinkError {
            #expect(e.code == .validationFailed && e.message.contains("default.sqlite") && e.message.contains("strategy is shared"), "\(e)")
        }
    }

    @Test(arguments: Kind.allCases)
    func createListDeleteAndIsolation(_ kind: Kind) async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let (storage, close) = try await Self.open(kind, dir)
        #expect(try await storage.tenants() == ["default"])
        #expect(try await storage.tenantExists("default"))
        #expect(try await !storage.tenantExists("acme"))

        // Reading an unknown tenant answers as for an empty one and creates nothing.
        let acme = try storage.forTenant("acme")
        #expect(try await acme.headPosition() == 0)
        #expect(try await acme.readAll(after: 0, filter: EventFilter(), limit: 10).isEmpty)
        #expect(try await acme.streamInfo("s-1") == nil)
        #expect(try await !storage.tenantExists("acme"))
        if kind == .database { #expect(!FileManager.default.fileExists(atPath: dir.file("acme.sqlite"))) }

        #expect(try await storage.createTenant("acme"))
        #expect(try await !storage.createTenant("acme"))
        #expect(try await storage.createTenant("globex"))
        #expect(try await storage.tenants() == ["acme", "default", "globex"])

        let globex = try storage.forTenant("globex")
        try await acme.append("s-1", [ev("A"), ev("B")])
        try await globex.append("s-1", [ev("G")])
        let snapshots: any SnapshotAdapter = try (storage as! any SnapshotAdapter).forTenant("acme")
        try await snapshots.saveSnapshot(Snapshot(streamID: "s-1", version: 2, state: Data("{}".utf8)))
        let models: any ReadModelStore = try (storage as! any ReadModelStore).forTenant("acme")
        try await models.transaction { tx in
            try tx.putDocument("orders", id: "o-1", json: Data("{}".utf8))
            try tx.setCheckpoint("orders", to: 2)
        }

        #expect(try await storage.deleteTenant("acme"))
        #expect(try await !storage.deleteTenant("acme"))
        #expect(try await storage.tenants() == ["default", "globex"])
        if kind == .database {
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("acme.") }
            #expect(leftovers.isEmpty, "\(leftovers)")
        }
        let again = try storage.forTenant("acme")
        #expect(try await again.headPosition() == 0)
        #expect(try await again.streamInfo("s-1") == nil)
        let snapshotsAgain: any SnapshotAdapter = try (storage as! any SnapshotAdapter).forTenant("acme")
        #expect(try await snapshotsAgain.loadSnapshot(streamID: "s-1") == nil)
        let modelsAgain: any ReadModelStore = try (storage as! any ReadModelStore).forTenant("acme")
        #expect(try await modelsAgain.document("orders", id: "o-1") == nil)
        #expect(try await modelsAgain.checkpoint("orders") == 0)
        // The other tenant is untouched; a re-created tenant starts at position 1.
        #expect(try await globex.headPosition() == 1)
        try await storage.createTenant("acme")
        let result = try await storage.forTenant("acme").append("s-1", [ev("N")])
        #expect(result.fromPosition == 1 && result.fromVersion == 1)

        await #expect(throws: MinkError.self) { try await storage.deleteTenant("default") }
        for bad in ["../x", "A", String(repeating: "a", count: 64), "%00", ""] {
            await #expect(throws: MinkError.self) { try await storage.createTenant(bad) }
            await #expect(throws: MinkError.self) { try await storage.deleteTenant(bad) }
            await #expect(throws: MinkError.self) { try await storage.tenantExists(bad) }
        }
        await close()
    }

    /// A file written before the catalog existed lists the tenants that have data.
    @Test func upgradeRegistersTenantsWithData() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let s = try await SQLiteStorage.open(directory: dir.path, strategy: .shared)
        try await s.scoped("acme").append("s-1", [ev("A")])
        try await s.database.write { c in
            // Back to schema 1: without the catalog (2) and the stream life cycle (3).
            try c.execute("""
                DROP TABLE mink_tenants; DROP TABLE mink_stream_metadata; ALTER TABLE mink_streams DROP COLUMN deleted;
                PRAGMA user_version = 1
                """)
        }
        await s.close()
        let reopened = try await SQLiteStorage.open(directory: dir.path, strategy: .shared)
        #expect(try await reopened.tenants() == ["acme", "default"])
        await reopened.close()
    }

    /// The database strategy lists the tenant files found in the data directory.
    @Test func databaseStrategyListsTenantFiles() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let s = try await SQLiteStorage.open(directory: dir.path, strategy: .database)
        try await s.scoped("acme").append("s-1", [ev("A")])
        _ = FileManager.default.createFile(atPath: dir.file("Not-A-Tenant.sqlite"), contents: Data())
        _ = FileManager.default.createFile(atPath: dir.file("notes.txt"), contents: Data())
        #expect(try await s.tenants() == ["acme", "default"])
        await s.close()
    }
}

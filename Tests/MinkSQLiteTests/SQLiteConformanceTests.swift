import Foundation
import Mink
import MinkSQLite
import MinkTesting
import Testing

/// The shared adapter conformance suite of `MinkTesting`, against SQLite: a fresh temporary file
/// per case, once with every tenant in one file and once with a file per tenant.
@Suite("SQLite storage conformance", .timeLimit(.minutes(3)))
struct SQLiteConformanceTests {
    @Test(arguments: AdapterConformance.cases)
    func sharedFile(_ check: AdapterConformance.Case) async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let storage = try await SQLiteStorage.open(directory: dir.path, strategy: .shared)
        try await check.run { ConformanceStorage(storage) }
        await storage.close()
    }

    @Test(arguments: AdapterConformance.cases)
    func filePerTenant(_ check: AdapterConformance.Case) async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let storage = try await SQLiteStorage.open(directory: dir.path, strategy: .database)
        try await check.run { ConformanceStorage(storage) }
        await storage.close()
    }
}

import Foundation
import Mink
import MinkSQLite

/// A fresh temporary directory, removed when the process ends is not guaranteed: tests call
/// ``TempDirectory/remove()`` themselves.
struct TempDirectory {
    let path: String

    init() {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("mink-sqlite-\(UUID().uuidString.lowercased())")
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String = "mink.sqlite") -> String { (path as NSString).appendingPathComponent(name) }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

extension SQLiteStorage {
    /// Fresh storage in a new temporary file.
    static func temporary(configuration: SQLiteConfiguration = SQLiteConfiguration()) async throws -> (SQLiteStorage, TempDirectory) {
        let dir = TempDirectory()
        return (try await SQLiteStorage.open(path: dir.file(), configuration: configuration), dir)
    }
}

/// An event to append.
func ev(_ type: String, _ json: String = "{}", id: String? = nil) -> EventData {
    EventData(id: id ?? UUID().uuidString.lowercased(), type: type, data: Data(json.utf8))
}

extension EventStoreAdapter {
    /// Appends with less ceremony.
    @discardableResult
    func append(_ stream: String, _ events: [EventData], _ expected: ExpectedVersion = .any, hook: AppendTransactionHook? = nil) async throws -> AppendResult {
        try await append(AppendRequest(streamID: stream, events: events, expectedVersion: expected), hook: hook)
    }
}

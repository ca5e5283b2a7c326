import Foundation
import Mink

/// Read-model writes on the writer connection, inside the savepoint of an append (inline
/// projections) or of a read-model transaction: they commit with it or not at all.
///
/// Valid only while the closure it was handed to runs; afterwards every call throws.
final class SQLiteReadModelTransaction: ReadModelTransaction {
    private var connection: SQLiteConnection?
    private let tenantID: String

    init(connection: SQLiteConnection, tenantID: String) {
        self.connection = connection
        self.tenantID = tenantID
    }

    /// Ends the transaction's validity (called when its closure returns).
    func finish() { connection = nil }

    private func live() throws -> SQLiteConnection {
        guard let connection else {
            throw MinkError(.internalError, "a read-model transaction was used after its closure returned")
        }
        return connection
    }

    func document(_ model: String, id: String) throws -> Data? {
        var doc: Data?
        try live().query(
            "SELECT doc FROM mink_documents WHERE tenant_id = ? AND model = ? AND id = ?", [.text(tenantID), .text(model), .text(id)]
        ) { doc = $0.bytes(0) }
        return doc
    }

    func putDocument(_ model: String, id: String, json: Data) throws {
        try live().run(
            "INSERT INTO mink_documents (tenant_id, model, id, doc) VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, model, id) DO UPDATE SET doc = excluded.doc",
            [.text(tenantID), .text(model), .text(id), .textBytes(json)]
        )
    }

    func deleteDocument(_ model: String, id: String) throws {
        try live().run("DELETE FROM mink_documents WHERE tenant_id = ? AND model = ? AND id = ?", [.text(tenantID), .text(model), .text(id)])
    }

    func checkpoint(_ projection: String) throws -> UInt64 {
        UInt64(try live().int("SELECT position FROM mink_checkpoints WHERE tenant_id = ? AND projection = ?", [.text(tenantID), .text(projection)]) ?? 0)
    }

    func setCheckpoint(_ projection: String, to position: UInt64) throws {
        try live().run(
            "INSERT INTO mink_checkpoints (tenant_id, projection, position) VALUES (?, ?, ?) ON CONFLICT (tenant_id, projection) DO UPDATE SET position = excluded.position",
            [.text(tenantID), .text(projection), .int(Int64(clamping: position))]
        )
    }
}

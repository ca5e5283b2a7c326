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

    /// One query for the whole batch: the IDs go in as one JSON array read by `json_each`, so the
    /// statement's text (and its prepared statement) is the same whatever the batch's size.
    func documents(_ model: String, ids: [String]) throws -> [String: Data] {
        if ids.count == 1 { return try document(model, id: ids[0]).map { [ids[0]: $0] } ?? [:] }
        var out: [String: Data] = [:]
        guard !ids.isEmpty else { return out }
        try live().query(
            "SELECT id, doc FROM mink_documents WHERE tenant_id = ? AND model = ? AND id IN (SELECT value FROM json_each(?))",
            [.text(tenantID), .text(model), .textBytes(Self.jsonArray(ids))]
        ) { out[$0.text(0)] = $0.bytes(1) }
        return out
    }

    /// SQLite runs in this process: a prepared upsert per document costs no round trip, and one
    /// statement per row keeps clear of the bound-parameter limit.
    func putDocuments(_ model: String, _ documents: [(id: String, json: Data)]) throws {
        for d in documents { try putDocument(model, id: d.id, json: d.json) }
    }

    func deleteDocuments(_ model: String, ids: [String]) throws {
        guard !ids.isEmpty else { return }
        try live().run(
            "DELETE FROM mink_documents WHERE tenant_id = ? AND model = ? AND id IN (SELECT value FROM json_each(?))",
            [.text(tenantID), .text(model), .textBytes(Self.jsonArray(ids))]
        )
    }

    /// `ids` as a JSON array of strings.
    static func jsonArray(_ ids: [String]) -> Data {
        var writer = JSONWriter(capacity: ids.count * 16 + 2)
        writer.beginArray()
        for id in ids { writer.string(id) }
        writer.endArray()
        return Data(writer.bytes)
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

    /// On the writer connection: every committed append, and this transaction's own writes.
    func events(after position: UInt64, limit: Int) throws -> [Event]? {
        var out: [Event] = []
        guard limit > 0 else { return out }
        try live().query(
            "SELECT \(SQLiteStorage.eventColumns) FROM mink_events WHERE tenant_id = ? AND position > ? ORDER BY position LIMIT ?",
            [.text(tenantID), .int(Int64(clamping: position)), .int(Int64(limit))]
        ) { out.append(try SQLiteStorage.event($0)) }
        return out
    }
}

import Foundation
import Mink

/// Read-model writes on the connection of an open transaction (an append's or a
/// ``PostgresStorage/transaction(_:)``'s).
///
/// Calls are synchronous libpq calls on the connection's own queue; the value is valid only while
/// the closure it was handed to runs (afterwards every call throws `.internalError`).
final class PostgresReadModelTransaction: ReadModelTransaction {
    private let connection: PostgresConnection
    let scope: Scope
    private var isOpen = true
    /// Set up `SAVEPOINT <name>` before the first statement (an append's hook in a batch).
    private let savepoint: String?
    /// Whether the savepoint was set (the hook ran a statement).
    private(set) var savepointSet = false

    /// - Parameter savepoint: a savepoint to set before the first statement, so that a failing
    ///   hook can be rolled back alone; a hook that runs no statement then costs no round trip.
    init(connection: PostgresConnection, scope: Scope, savepoint: String? = nil) {
        self.connection = connection
        self.scope = scope
        self.savepoint = savepoint
    }

    func close() { isOpen = false }

    private func conn() throws -> PostgresConnection {
        guard isOpen else { throw MinkError(.internalError, "read-model transaction used after it ended") }
        if let savepoint, !savepointSet {
            try connection.execute("SAVEPOINT \(savepoint)")
            savepointSet = true
        }
        return connection
    }

    func document(_ model: String, id: String) throws -> Data? {
        let r = try conn().query(
            "SELECT raw FROM \(scope.sql.documents) WHERE tenant_id = $1 AND model = $2 AND id = $3",
            [.text(scope.tenantID), .text(model), .text(id)], prepare: true
        )
        return r.rowCount == 0 ? nil : r.bytes(0, 0)
    }

    func putDocument(_ model: String, id: String, json: Data) throws {
        try conn().query(
            """
            INSERT INTO \(scope.sql.documents) (tenant_id, model, id, doc, raw) VALUES ($1, $2, $3, $4::jsonb, $5::bytea)
            ON CONFLICT (tenant_id, model, id) DO UPDATE SET doc = EXCLUDED.doc, raw = EXCLUDED.raw, updated_at = now()
            """,
            [.text(scope.tenantID), .text(model), .text(id), .text(jsonbText(json)), .bytes(json)], prepare: true
        )
    }

    func deleteDocument(_ model: String, id: String) throws {
        try conn().query(
            "DELETE FROM \(scope.sql.documents) WHERE tenant_id = $1 AND model = $2 AND id = $3",
            [.text(scope.tenantID), .text(model), .text(id)], prepare: true
        )
    }

    /// One query for the whole batch (`id = ANY($3)`, the IDs as one binary `text[]`).
    func documents(_ model: String, ids: [String]) throws -> [String: Data] {
        if ids.count == 1 { return try document(model, id: ids[0]).map { [ids[0]: $0] } ?? [:] }
        guard !ids.isEmpty else { return [:] }
        let r = try conn().query(
            "SELECT id, raw FROM \(scope.sql.documents) WHERE tenant_id = $1 AND model = $2 AND id = ANY($3::text[])",
            [.text(scope.tenantID), .text(model), .bytes(try Self.textArray(ids))], prepare: true
        )
        var out: [String: Data] = [:]
        out.reserveCapacity(r.rowCount)
        for i in 0..<r.rowCount {
            if let id = r.string(i, 0), let raw = r.bytes(i, 1) { out[id] = raw }
        }
        return out
    }

    /// One multi-row upsert: the IDs, the `jsonb` texts and the exact bytes go in as three binary
    /// arrays (`unnest`), so the statement's text is the same for every batch. Each ID once:
    /// PostgreSQL refuses to upsert one row twice in one statement.
    func putDocuments(_ model: String, _ documents: [(id: String, json: Data)]) throws {
        if documents.count == 1 { return try putDocument(model, id: documents[0].id, json: documents[0].json) }
        guard !documents.isEmpty else { return }
        let unique = DocumentBatch.unique(documents)
        try conn().query(
            """
            INSERT INTO \(scope.sql.documents) (tenant_id, model, id, doc, raw)
            SELECT $1, $2, u.id, u.doc::jsonb, u.raw FROM unnest($3::text[], $4::text[], $5::bytea[]) AS u(id, doc, raw)
            ON CONFLICT (tenant_id, model, id) DO UPDATE SET doc = EXCLUDED.doc, raw = EXCLUDED.raw, updated_at = now()
            """,
            [
                .text(scope.tenantID), .text(model), .bytes(try Self.textArray(unique.map(\.id))),
                .bytes(try Self.textArray(unique.map { jsonbText($0.json) })), .bytes(BinaryArray.bytea(unique.map(\.json))),
            ],
            prepare: true
        )
    }

    /// One statement for every ID.
    func deleteDocuments(_ model: String, ids: [String]) throws {
        if ids.count == 1 { return try deleteDocument(model, id: ids[0]) }
        guard !ids.isEmpty else { return }
        try conn().query(
            "DELETE FROM \(scope.sql.documents) WHERE tenant_id = $1 AND model = $2 AND id = ANY($3::text[])",
            [.text(scope.tenantID), .text(model), .bytes(try Self.textArray(ids))], prepare: true
        )
    }

    /// A binary `text[]`; NUL is refused here with the error a single text parameter gets
    /// (the server would refuse it too, less clearly).
    private static func textArray(_ values: [String]) throws -> Data {
        if values.contains(where: { $0.utf8.contains(0) }) {
            throw PostgresError(sqlState: "22021", message: "text values cannot contain a NUL character")
        }
        return BinaryArray.text(values)
    }

    func checkpoint(_ projection: String) throws -> UInt64 {
        let r = try conn().query(
            "SELECT position FROM \(scope.sql.checkpoints) WHERE tenant_id = $1 AND projection = $2",
            [.text(scope.tenantID), .text(projection)], prepare: true
        )
        return r.rowCount == 0 ? 0 : UInt64(r.int64(0, 0) ?? 0)
    }

    func setCheckpoint(_ projection: String, to position: UInt64) throws {
        try conn().query(
            """
            INSERT INTO \(scope.sql.checkpoints) (tenant_id, projection, position) VALUES ($1, $2, $3::int8)
            ON CONFLICT (tenant_id, projection) DO UPDATE SET position = EXCLUDED.position, updated_at = now()
            """,
            [.text(scope.tenantID), .text(projection), .int(min(position, UInt64(Int64.max)))], prepare: true
        )
    }

    /// The lease epoch stored on a checkpoint row, its row locked until the transaction ends
    /// (`FOR UPDATE`); `nil` when the row does not exist.
    func lockedLeaseEpoch(_ row: String) throws -> Int64? {
        let r = try conn().query(
            "SELECT lease_epoch FROM \(scope.sql.checkpoints) WHERE tenant_id = $1 AND projection = $2 FOR UPDATE",
            [.text(scope.tenantID), .text(row)], prepare: true
        )
        return r.rowCount == 0 ? nil : r.int64(0, 0)
    }
}

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

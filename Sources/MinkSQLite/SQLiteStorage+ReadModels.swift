import CSQLite
import Foundation
import Mink
import MinkSQL

extension SQLiteStorage {
    /// Model names are inlined (when plain) so that partial indexes from ``createIndex(_:field:)`` apply.
    static let readModelSQL = ReadModelSQL(dialect: .sqlite, inlinesModelNames: true)

    public func document(_ model: String, id: String) async throws -> Data? {
        let tenantID = self.tenantID
        return try await database.read { c in
            var doc: Data?
            try c.query(
                "SELECT doc FROM mink_documents WHERE tenant_id = ? AND model = ? AND id = ?", [.text(tenantID), .text(model), .text(id)]
            ) { doc = $0.bytes(0) }
            return doc
        }
    }

    public func find(_ model: String, query: Query) async throws -> [StoredDocument] {
        let statement = try Self.readModelSQL.find(model, tenantID: tenantID, query: query)
        let values = statement.binds.map(SQLiteValue.init)
        let tenantID = self.tenantID
        return try await database.read { c in
            var out: [StoredDocument] = []
            do {
                try c.query(statement.sql, values) { out.append(StoredDocument(id: $0.text(0), json: $0.bytes(1))) }
            } catch let error as SQLiteError where error.code == SQLITE_ERROR {
                throw Self.documentQueryFailure(error, model: model, tenantID: tenantID, on: c)
            }
            return out
        }
    }

    public func count(_ model: String, query: Query) async throws -> Int64 {
        let statement = try Self.readModelSQL.count(model, tenantID: tenantID, query: query)
        let values = statement.binds.map(SQLiteValue.init)
        let tenantID = self.tenantID
        return try await database.read { c in
            do { return try c.int(statement.sql, values) ?? 0 } catch let error as SQLiteError where error.code == SQLITE_ERROR {
                throw Self.documentQueryFailure(error, model: model, tenantID: tenantID, on: c)
            }
        }
    }

    /// Both statements in one read transaction: one snapshot of the WAL for the page and the total.
    public func findWithTotal(_ model: String, query: Query) async throws -> (documents: [StoredDocument], total: Int64) {
        let find = try Self.readModelSQL.find(model, tenantID: tenantID, query: query)
        let count = try Self.readModelSQL.count(model, tenantID: tenantID, query: query)
        let findValues = find.binds.map(SQLiteValue.init), countValues = count.binds.map(SQLiteValue.init)
        let tenantID = self.tenantID
        return try await database.read { c in
            try c.inOneSnapshot {
                var out: [StoredDocument] = []
                do {
                    try c.query(find.sql, findValues) { out.append(StoredDocument(id: $0.text(0), json: $0.bytes(1))) }
                    return (out, try c.int(count.sql, countValues) ?? 0)
                } catch let error as SQLiteError where error.code == SQLITE_ERROR {
                    throw Self.documentQueryFailure(error, model: model, tenantID: tenantID, on: c)
                }
            }
        }
    }

    /// What a query over documents that failed with a plain `SQLITE_ERROR` means. `json_extract`
    /// fails so on a stored document that is not JSON, and SQLite has no result code of its own
    /// for that: the cause is found by asking the database, never by reading the message. When
    /// the model holds such a document the failure is `.serializationFailed` (as the in-memory
    /// adapter reports it), otherwise the SQLite error itself.
    static func documentQueryFailure(_ error: SQLiteError, model: String, tenantID: String, on c: SQLiteConnection) -> any Error {
        let invalid = try? c.int(
            "SELECT 1 FROM mink_documents WHERE tenant_id = ? AND model = ? AND json_valid(doc) = 0 LIMIT 1", [.text(tenantID), .text(model)]
        )
        guard invalid != nil else { return error }
        return MinkError(.serializationFailed, "a stored read-model document of \(model) is not valid JSON", underlying: error)
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any ReadModelTransaction) throws -> T) async throws -> T {
        try await transaction(.durable, body)
    }

    /// A `.relaxed` transaction commits without an fsync when its group commit holds only
    /// relaxed writes (``SQLiteDatabase/write(policy:durability:_:)``).
    public func transaction<T: Sendable>(
        _ durability: CommitDurability, _ body: @Sendable (any ReadModelTransaction) throws -> T
    ) async throws -> T {
        let tenantID = self.tenantID
        return try await withoutActuallyEscaping(body) { body in
            // `body` must not outlive this call: the box drops it before `withoutActuallyEscaping`
            // checks, however long the writer keeps its job.
            let box = BodyBox(body)
            defer { box.clear() }
            // The deadline never answers while `body` runs (it must not run after this call
            // returned): queued, or waiting for its commit, the caller gets 503 at the deadline;
            // a batch answered while waiting for its commit may still commit (a projection's
            // retry then finds the checkpoint moved, see `TransactionalAsyncProjection`).
            return try await database.write(policy: .outsideBody, durability: durability) { c in
                let tx = SQLiteReadModelTransaction(connection: c, tenantID: tenantID)
                defer { tx.finish() }
                return try box.call(tx)
            }
        }
    }

    public func dropModel(_ model: String) async throws {
        let tenantID = self.tenantID
        try await database.write { c in
            try c.run("DELETE FROM mink_documents WHERE tenant_id = ? AND model = ?", [.text(tenantID), .text(model)])
            // Indexes are shared by the tenants of a file: drop them once no tenant has documents left.
            guard try c.int("SELECT 1 FROM mink_documents WHERE model = ? LIMIT 1", [.text(model)]) == nil else { return }
            var names: [String] = []
            try c.query("SELECT name FROM mink_document_indexes WHERE model = ?", [.text(model)]) { names.append($0.text(0)) }
            for name in names {
                // `name` was built by `createIndex` from checked parts; quote it all the same.
                try c.execute("DROP INDEX IF EXISTS \(try SQLIdentifier(name).quoted)")
            }
            try c.run("DELETE FROM mink_document_indexes WHERE model = ?", [.text(model)])
        }
    }

    /// Creates a partial expression index for `field` of `model`:
    /// `CREATE INDEX … ON mink_documents (tenant_id, json_extract(doc, '$.field')) WHERE model = 'model'`.
    ///
    /// The model name appears in the index definition as a literal, so it must be a plain name
    /// (`^[A-Za-z_][A-Za-z0-9_]*$`, at most 40 bytes).
    /// - Throws: `.validationFailed` for another model name.
    public func createIndex(_ model: String, field: FieldPath) async throws {
        guard ReadModelSQL.isIndexableModelName(model) else {
            throw MinkError(.validationFailed, "cannot index model \"\(model.prefix(80))\": indexed model names must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 40 bytes)")
        }
        let name = try SQLIdentifier("mink_doc_\(model)_\(Self.hex(field.description))")
        let expression = try Self.readModelSQL.fieldExpression(field)
        let sql = "CREATE INDEX IF NOT EXISTS \(name.quoted) ON mink_documents (tenant_id, \(expression)) WHERE model = \(SQLLiteral.quoted(model))"
        try await database.write { c in
            try c.execute(sql)
            // Without statistics the planner prefers the primary key (it also gives ID order);
            // a bounded ANALYZE lets it weigh the new index by its selectivity.
            try c.execute("PRAGMA analysis_limit = 1000; ANALYZE mink_documents")
            try c.run(
                "INSERT OR IGNORE INTO mink_document_indexes (model, field, name) VALUES (?, ?, ?)",
                [.text(model), .text(field.description), .text(name.name)]
            )
        }
    }

    /// A 64-bit FNV-1a hash of `text` in hex: index names stay short and distinct per field.
    static func hex(_ text: String) -> String {
        let s = String(FNV1a.hash64(text), radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    public func modelNames() async throws -> [String] {
        let tenantID = self.tenantID
        return try await database.read { c in
            var names: [String] = []
            try c.query("SELECT DISTINCT model FROM mink_documents WHERE tenant_id = ? ORDER BY model", [.text(tenantID)]) { names.append($0.text(0)) }
            return names
        }
    }
}

/// Holds a non-escaping closure for the duration of one write.
final class BodyBox<T>: @unchecked Sendable {
    // Invariant: `body` is called only on the writer queue while the caller awaits the write, and
    // cleared by the caller after the write resumed it; the two never overlap.
    private var body: (@Sendable (any ReadModelTransaction) throws -> T)?

    init(_ body: @escaping @Sendable (any ReadModelTransaction) throws -> T) { self.body = body }

    func call(_ tx: any ReadModelTransaction) throws -> T {
        guard let body else { throw MinkError(.cancelled, "the read-model transaction was abandoned") }
        return try body(tx)
    }

    func clear() { body = nil }
}

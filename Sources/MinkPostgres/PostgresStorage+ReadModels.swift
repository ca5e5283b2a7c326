import Foundation
import Mink

extension PostgresStorage {
    public func document(_ model: String, id: String) async throws -> Data? {
        try await transaction { try $0.document(model, id: id) }
    }

    /// The documents matching a query, sorted and paged.
    ///
    /// Until the SQL generator (`MinkSQL`) is wired in, the model's documents are read and the
    /// query is evaluated with the reference semantics (`Query.apply(to:)`).
    public func find(_ model: String, query: Query) async throws -> [StoredDocument] {
        let query = try query.validated()
        let rows = try await withConnection { conn, scope in
            let r = try conn.query(
                "SELECT id, raw FROM \(scope.sql.documents) WHERE tenant_id = $1 AND model = $2",
                [.text(scope.tenantID), .text(model)], prepare: true
            )
            return (0..<r.rowCount).map { (id: r.string($0, 0) ?? "", json: r.bytes($0, 1) ?? Data()) }
        }
        var raw: [String: Data] = [:]
        var parsed: [(id: String, document: JSONValue)] = []
        parsed.reserveCapacity(rows.count)
        for row in rows {
            raw[row.id] = row.json
            parsed.append((row.id, try JSONValue(json: row.json)))
        }
        return query.apply(to: parsed).map { StoredDocument(id: $0.id, json: raw[$0.id] ?? Data()) }
    }

    public func count(_ model: String, query: Query) async throws -> Int64 {
        Int64(try await find(model, query: query.unpaged).count)
    }

    /// Runs `body` in one transaction on one connection: its document writes and checkpoints
    /// commit together or not at all.
    public func transaction<T: Sendable>(_ body: @Sendable (any ReadModelTransaction) throws -> T) async throws -> T {
        try await withConnection { conn, scope in
            try conn.transaction {
                let tx = PostgresReadModelTransaction(connection: conn, scope: scope)
                defer { tx.close() }
                return try body(tx)
            }
        }
    }

    /// Removes every document of a model and the indexes created for it.
    public func dropModel(_ model: String) async throws {
        try await withConnection { conn, scope in
            try conn.transaction {
                let sql = scope.sql
                let r = try conn.query(
                    "DELETE FROM \(sql.documentIndexes) WHERE tenant_id = $1 AND model = $2 RETURNING index_name",
                    [.text(scope.tenantID), .text(model)]
                )
                for i in 0..<r.rowCount {
                    if let name = r.string(i, 0) {
                        try conn.execute("DROP INDEX IF EXISTS \(Identifier.quote(sql.schema)).\(Identifier.quote(name))")
                    }
                }
                try conn.query("DELETE FROM \(sql.documents) WHERE tenant_id = $1 AND model = $2", [.text(scope.tenantID), .text(model)])
            }
        }
    }

    /// Creates an expression index on `doc #> '{path}'` for this tenant's documents of `model`
    /// (a partial index, so tenants and models do not share one).
    public func createIndex(_ model: String, field: FieldPath) async throws {
        guard !model.utf8.contains(0) else { throw MinkError.validation("model names cannot contain NUL") }
        try await withConnection { conn, scope in
            let sql = scope.sql
            let name = "mink_doc_" + String(Identifier.fnv1a64("\(sql.schema)\u{0}\(scope.tenantID)\u{0}\(model)\u{0}\(field)"), radix: 16)
            let path = Identifier.literal("{" + field.components.joined(separator: ",") + "}")
            try conn.transaction {
                try conn.execute("""
                    CREATE INDEX IF NOT EXISTS \(Identifier.quote(name)) ON \(sql.documents) ((doc #> \(path)))
                    WHERE tenant_id = \(Identifier.literal(scope.tenantID)) AND model = \(Identifier.literal(model))
                    """)
                try conn.query(
                    """
                    INSERT INTO \(sql.documentIndexes) (tenant_id, model, field, index_name) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (tenant_id, model, field) DO NOTHING
                    """,
                    [.text(scope.tenantID), .text(model), .text(field.description), .text(name)]
                )
            }
        }
    }

    public func modelNames() async throws -> [String] {
        try await withConnection { conn, scope in
            let r = try conn.query(
                "SELECT DISTINCT model FROM \(scope.sql.documents) WHERE tenant_id = $1", [.text(scope.tenantID)], prepare: true
            )
            return (0..<r.rowCount).compactMap { r.string($0, 0) }.sorted()
        }
    }
}

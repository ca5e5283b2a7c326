import Mink

/// The schema, as migrations numbered by `PRAGMA user_version`.
///
/// Every table carries `tenant_id`, so one file can hold many tenants (`.shared`); with one file
/// per tenant (`.database`) the column simply holds the same value on every row.
enum SQLiteSchema {
    /// Migration `i` takes the schema from version `i` to `i + 1`. Append only; never edit one
    /// that has shipped.
    static let migrations: [String] = [
        """
        CREATE TABLE mink_events (
            seq INTEGER PRIMARY KEY,          -- commit order across tenants, assigned by the single writer
            tenant_id TEXT NOT NULL,
            position INTEGER NOT NULL,        -- the tenant's global position: dense, 1, 2, 3, …
            stream_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            type TEXT NOT NULL,
            category TEXT NOT NULL,           -- StreamID.category(of: stream_id), compared literally
            data BLOB NOT NULL,
            correlation_id TEXT,
            causation_id TEXT,
            user_id TEXT,
            metadata_tenant_id TEXT,
            metadata_custom TEXT,             -- JSON object of string pairs, NULL when empty
            created_at INTEGER NOT NULL,      -- Unix time in microseconds
            UNIQUE (tenant_id, position),
            UNIQUE (tenant_id, stream_id, version),
            UNIQUE (tenant_id, stream_id, event_id)
        );
        CREATE INDEX mink_events_category ON mink_events (tenant_id, category, position);
        CREATE INDEX mink_events_type ON mink_events (tenant_id, type, position);
        CREATE TABLE mink_streams (
            tenant_id TEXT NOT NULL,
            stream_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, stream_id)
        ) WITHOUT ROWID;
        CREATE TABLE mink_snapshots (
            tenant_id TEXT NOT NULL,
            stream_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            state BLOB NOT NULL,
            created_at REAL NOT NULL,         -- seconds since 2001-01-01 (Date's own Double, exact)
            PRIMARY KEY (tenant_id, stream_id)
        );
        CREATE TABLE mink_checkpoints (
            tenant_id TEXT NOT NULL,
            projection TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, projection)
        ) WITHOUT ROWID;
        CREATE TABLE mink_documents (
            tenant_id TEXT NOT NULL,
            model TEXT NOT NULL,
            id TEXT NOT NULL,
            doc TEXT NOT NULL,                -- the JSON bytes exactly as put
            UNIQUE (tenant_id, model, id)
        );
        CREATE TABLE mink_document_indexes (
            model TEXT NOT NULL,
            field TEXT NOT NULL,
            name TEXT NOT NULL,
            PRIMARY KEY (model, field)
        ) WITHOUT ROWID;
        """,
        // 2: the tenant catalog of the `shared` strategy. Tenants that already have data are
        // registered, so that an upgraded file lists them.
        """
        CREATE TABLE mink_tenants (
            tenant_id TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL       -- Unix time in microseconds
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO mink_tenants (tenant_id, created_at)
            SELECT tenant_id, CAST(strftime('%s', 'now') AS INTEGER) * 1000000 FROM (
                SELECT 'default' AS tenant_id
                UNION SELECT tenant_id FROM mink_streams
                UNION SELECT tenant_id FROM mink_snapshots
                UNION SELECT tenant_id FROM mink_checkpoints
                UNION SELECT tenant_id FROM mink_documents
            );
        """,
        // 3: stream life cycle. `deleted`: 0 live, 1 soft-deleted (no events, the version
        // counter kept), 2 hard-deleted (a tombstone, for ever). Retention rules per stream, which
        // may exist before the stream's first event. Listing pages along mink_streams' primary
        // key (tenant_id, stream_id), the table being WITHOUT ROWID: the key is the table.
        """
        ALTER TABLE mink_streams ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE mink_stream_metadata (
            tenant_id TEXT NOT NULL,
            stream_id TEXT NOT NULL,
            max_count INTEGER,
            max_age_seconds INTEGER,
            truncate_before INTEGER,
            PRIMARY KEY (tenant_id, stream_id)
        ) WITHOUT ROWID;
        """,
    ]

    /// The schema version this code writes.
    static var currentVersion: Int64 { Int64(migrations.count) }

    /// Brings the file's schema up to date, one migration per transaction.
    /// - Throws: `.internalError` when the file was written by a newer version.
    static func migrate(_ connection: SQLiteConnection) throws {
        let version = try connection.int("PRAGMA user_version") ?? 0
        guard version <= currentVersion else {
            throw MinkError(.internalError, "the database \(connection.path) has schema version \(version), newer than this minkd (\(currentVersion))")
        }
        for i in Int(version)..<migrations.count {
            try connection.run("BEGIN IMMEDIATE")
            do {
                try connection.execute(migrations[i])
                try connection.execute("PRAGMA user_version = \(i + 1)")
                try connection.run("COMMIT")
            } catch {
                try? connection.run("ROLLBACK")
                throw error
            }
        }
    }
}

/// The versioned schema of a PostgreSQL storage.
///
/// Each schema (the shared one, or one per tenant) has a `mink_schema_migrations` table listing the
/// versions applied. ``apply(on:schema:)`` runs the missing ones in order, in one transaction under
/// an advisory lock, so several processes starting at once migrate exactly once. Migrations are
/// append-only: a released migration is never edited, a change is a new version.
enum Migrations {
    struct Migration: Sendable {
        let version: Int
        let name: String
        /// The SQL, given the quoted schema name and, in a tenant's own schema or database, the
        /// tenant ID (validated).
        let sql: @Sendable (_ schema: String, _ tenant: String?) -> String
    }

    static let all: [Migration] = [
        Migration(version: 1, name: "events, streams, snapshots, checkpoints, documents") { s, _ in
            """
            CREATE TABLE \(s).mink_events (
                tenant_id text COLLATE "C" NOT NULL,
                position bigint NOT NULL,
                stream_id text COLLATE "C" NOT NULL,
                version bigint NOT NULL,
                event_id text COLLATE "C" NOT NULL,
                type text COLLATE "C" NOT NULL,
                category text COLLATE "C" NOT NULL,
                data bytea NOT NULL,
                metadata text NOT NULL,
                created_at timestamptz NOT NULL,
                CONSTRAINT mink_events_position_key PRIMARY KEY (tenant_id, position),
                CONSTRAINT mink_events_version_key UNIQUE (tenant_id, stream_id, version),
                CONSTRAINT mink_events_event_id_key UNIQUE (tenant_id, stream_id, event_id)
            );
            CREATE INDEX mink_events_category_idx ON \(s).mink_events (tenant_id, category, position);
            CREATE INDEX mink_events_type_idx ON \(s).mink_events (tenant_id, type, position);
            CREATE TABLE \(s).mink_streams (
                tenant_id text COLLATE "C" NOT NULL,
                stream_id text COLLATE "C" NOT NULL,
                version bigint NOT NULL,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                PRIMARY KEY (tenant_id, stream_id)
            );
            CREATE TABLE \(s).mink_snapshots (
                tenant_id text COLLATE "C" NOT NULL,
                stream_id text COLLATE "C" NOT NULL,
                version bigint NOT NULL,
                state bytea NOT NULL,
                created_at timestamptz NOT NULL,
                PRIMARY KEY (tenant_id, stream_id)
            );
            CREATE TABLE \(s).mink_checkpoints (
                tenant_id text COLLATE "C" NOT NULL,
                projection text COLLATE "C" NOT NULL,
                position bigint NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, projection)
            );
            CREATE TABLE \(s).mink_documents (
                tenant_id text COLLATE "C" NOT NULL,
                model text COLLATE "C" NOT NULL,
                id text COLLATE "C" NOT NULL,
                doc jsonb NOT NULL,
                raw bytea NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, model, id)
            );
            CREATE TABLE \(s).mink_document_indexes (
                tenant_id text COLLATE "C" NOT NULL,
                model text COLLATE "C" NOT NULL,
                field text COLLATE "C" NOT NULL,
                index_name text NOT NULL,
                PRIMARY KEY (tenant_id, model, field)
            );
            """
        },
        Migration(version: 2, name: "tenant registry") { s, tenant in
            // The tenant catalog (`TenantCatalog`): with `.shared` tenancy the registry of every
            // tenant, where the tenants that already have data are registered (so that an
            // upgraded database lists them); in a tenant's own schema or database it names that
            // tenant (names made from long tenant IDs end with a hash and cannot be read back).
            let register = tenant.map { "SELECT \(Identifier.literal($0))" } ?? """
                SELECT 'default' UNION SELECT tenant_id FROM \(s).mink_streams
                UNION SELECT tenant_id FROM \(s).mink_snapshots UNION SELECT tenant_id FROM \(s).mink_checkpoints
                UNION SELECT tenant_id FROM \(s).mink_documents
                """
            return """
                CREATE TABLE \(s).mink_tenants (
                    tenant_id text COLLATE "C" PRIMARY KEY,
                    created_at timestamptz NOT NULL DEFAULT now()
                );
                INSERT INTO \(s).mink_tenants (tenant_id) \(register);
                """
        },
        Migration(version: 3, name: "projection lease epochs") { s, _ in
            // The fencing token of projection leases: bumped by each new holder (on the
            // `<projection>#lease` row) and checked by every batch (`PostgresStorage+Leases.swift`).
            "ALTER TABLE \(s).mink_checkpoints ADD COLUMN lease_epoch bigint NOT NULL DEFAULT 0;"
        },
        Migration(version: 4, name: "stream life cycle: deletion state, retention metadata") { s, _ in
            // `deleted`: 0 live, 1 soft-deleted (no events, the version counter kept), 2
            // hard-deleted (a tombstone, for ever). Retention rules may exist before the stream's
            // first event. Listing pages along mink_streams' primary key (tenant_id, stream_id),
            // whose collation is "C": bytewise order, and `LIKE 'prefix%'` is a key range.
            """
            ALTER TABLE \(s).mink_streams ADD COLUMN deleted smallint NOT NULL DEFAULT 0;
            CREATE TABLE \(s).mink_stream_metadata (
                tenant_id text COLLATE "C" NOT NULL,
                stream_id text COLLATE "C" NOT NULL,
                max_count bigint,
                max_age_seconds bigint,
                truncate_before bigint,
                PRIMARY KEY (tenant_id, stream_id)
            );
            """
        },
    ]

    /// The newest version.
    static var latest: Int { all.last?.version ?? 0 }

    /// What ``apply(on:schema:registering:)`` did.
    struct Result: Sendable {
        /// Whether the schema was created now.
        var createdSchema: Bool
        /// The versions applied now.
        var applied: [Int]
    }

    /// Creates the schema if needed, applies the missing migrations and, with `registering`,
    /// registers that tenant in the schema's `mink_tenants` (a tenant's own schema or database).
    /// - Throws: ``PostgresError``.
    @discardableResult
    /// - Parameter create: whether a missing schema is created; when `false` (a read, which
    ///   must create nothing) a missing schema throws ``MissingTenantStorage``.
    static func apply(on conn: PostgresConnection, schema: String, registering tenant: String? = nil, create: Bool = true) throws -> Result {
        let s = Identifier.quote(schema)
        let key = Identifier.lockKey("mink-migrate:" + schema)
        return try conn.transaction(begin: "SELECT pg_advisory_xact_lock(\(key))") {
            // CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the schema exists:
            // only ask for it when the schema is missing.
            let created = try conn.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [.text(schema)]).rowCount == 0
            if created {
                guard create else { throw MissingTenantStorage() }
                try conn.execute("CREATE SCHEMA \(s)")
            }
            try conn.execute("""
                CREATE TABLE IF NOT EXISTS \(s).mink_schema_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let rows = try conn.query("SELECT version FROM \(s).mink_schema_migrations")
            let done = Set((0..<rows.rowCount).compactMap { rows.int64($0, 0).map(Int.init) })
            var applied: [Int] = []
            for m in all where !done.contains(m.version) {
                try conn.execute(m.sql(s, tenant))
                try conn.query("INSERT INTO \(s).mink_schema_migrations (version, name) VALUES ($1, $2)", [.int(m.version), .text(m.name)])
                applied.append(m.version)
            }
            if let tenant {
                try conn.query("INSERT INTO \(s).mink_tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING", [.text(tenant)])
            }
            return Result(createdSchema: created, applied: applied)
        }
    }
}

/// A tenant's own schema or database does not exist, and the caller (a read) must not create it.
struct MissingTenantStorage: Error {}

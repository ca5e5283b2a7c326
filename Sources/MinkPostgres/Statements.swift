/// The SQL of one schema's tables, built once per scope from the quoted schema name.
///
/// Only the schema name is spliced into the text (validated and quoted); every value is a bound
/// parameter. `$1` is always the tenant ID.
struct Statements: Sendable {
    let schema: String
    let events: String
    let streams: String
    let streamMetadata: String
    let snapshots: String
    let checkpoints: String
    let documents: String
    let documentIndexes: String

    /// The `timestamptz` for an expression of microseconds since 1970 (a parameter, a column).
    static func timestamp(_ microseconds: String) -> String {
        "('epoch'::timestamptz + \(microseconds) * interval '1 microsecond')"
    }

    /// The columns of an event row, decoded by `EventRow`.
    static let eventColumns =
        "event_id, stream_id, type, data, metadata, version, position, (extract(epoch FROM created_at) * 1000000)::int8"

    init(schema: String) {
        let s = Identifier.quote(schema)
        self.schema = schema
        events = "\(s).mink_events"
        streams = "\(s).mink_streams"
        streamMetadata = "\(s).mink_stream_metadata"
        snapshots = "\(s).mink_snapshots"
        checkpoints = "\(s).mink_checkpoints"
        documents = "\(s).mink_documents"
        documentIndexes = "\(s).mink_document_indexes"
    }

    /// The state a batch of appends whose event IDs are all fresh is checked against, one row per
    /// stream of the batch (`$2::text[]`, in order): the tenant's head position, the stream's
    /// version (NULL: no stream) and its deletion state (0 live, 1 soft-deleted, 2 tombstone). Prepared once per connection: its only plans are the primary
    /// key backwards for the head and the streams' key per stream, whatever the statistics say,
    /// so a generic plan is safe — and an unprepared statement costs a planning of ~1 ms per batch,
    /// which is what a lone append's latency is made of (measured: 366 appends/s for one client
    /// with ``batchState`` planned per batch).
    var batchVersions: String {
        """
        SELECT coalesce((SELECT position FROM \(events) WHERE tenant_id = $1 ORDER BY position DESC LIMIT 1), 0),
               (SELECT version FROM \(streams) WHERE tenant_id = $1 AND stream_id = s.id),
               (SELECT deleted FROM \(streams) WHERE tenant_id = $1 AND stream_id = s.id)
        FROM unnest($2::text[]) WITH ORDINALITY AS s(id, n)
        ORDER BY s.n
        """
    }

    /// The state a batch of appends is checked against, one row per stream of the batch
    /// (`$2::text[]`, in order): the tenant's head position, the stream's version (NULL: no
    /// stream), and how many of the batch's (stream, event ID) pairs (`$3::text[]`, `$4::text[]`)
    /// of that stream are already stored (retries), and the stream's deletion state.
    var batchState: String {
        // Shapes that leave the planner one sensible index each (see ConnectionWorker on plans):
        // the primary key backwards for the head, the stream's key, and one unique-key probe per
        // (stream, event ID) pair. The probes are scalar subqueries on purpose: an `EXISTS` or
        // `IN` would be turned into a semi-join, which a generic plan made while the table was
        // small may run as a hash join over every event of the tenant (measured: 100-event
        // appends 10× slower as the table grew). No `LIMIT` in the probe (the unique key allows one
        // row at most): with a LIMIT, a plan made on an empty table preferred the primary key,
        // filtering every event of the tenant, per probe. `known` is computed once.
        """
        WITH known AS MATERIALIZED (
            SELECT u.stream, count(*) AS n FROM unnest($3::text[], $4::text[]) AS u(stream, id)
            WHERE (SELECT true FROM \(events) e
                   WHERE e.tenant_id = $1 AND e.stream_id = u.stream AND e.event_id = u.id)
            GROUP BY u.stream)
        SELECT coalesce((SELECT position FROM \(events) WHERE tenant_id = $1 ORDER BY position DESC LIMIT 1), 0),
               (SELECT version FROM \(streams) WHERE tenant_id = $1 AND stream_id = s.id),
               coalesce((SELECT k.n FROM known k WHERE k.stream = s.id), 0),
               (SELECT deleted FROM \(streams) WHERE tenant_id = $1 AND stream_id = s.id)
        FROM unnest($2::text[]) WITH ORDINALITY AS s(id, n)
        ORDER BY s.n
        """
    }

    /// The stored events with the given (stream, event ID) pairs (`$2::text[]`, `$3::text[]`),
    /// by stream and version.
    var storedEvents: String {
        // One unique-key probe per pair (OFFSET 0 keeps the lateral subquery from being pulled up
        // into a join the planner might hash; no LIMIT, see `batchState`).
        """
        SELECT e.* FROM unnest($2::text[], $3::text[]) AS u(stream, id)
        CROSS JOIN LATERAL (
            SELECT \(Self.eventColumns) FROM \(events)
            WHERE tenant_id = $1 AND stream_id = u.stream AND event_id = u.id OFFSET 0) AS e
        ORDER BY e.stream_id, e.version
        """
    }

    /// A whole batch of appends in one statement, for the one-round-trip path of the group commit
    /// (``AppendBatcher``): reads the state (head position, each stream's version and deletion
    /// state), checks every append's expected version against it — each append seeing the
    /// versions the earlier appends of the batch would leave — and, only if every append passes
    /// on live streams, inserts every row, moves the streams' versions and sends the NOTIFY.
    /// Positions are the head + the row's place in the batch, versions the stream's version + the
    /// rows of the stream before it: exactly what ``AppendBatcher`` computes from the same state.
    ///
    /// Parameters: $1 tenant, $2 commit time (µs since 1970); per append $3 stream, $4 category,
    /// $5 expected version (-1 any, -2 the stream must exist, else that version, 0 = no stream),
    /// $6 event count; per event row $7 the append's index (from 1), $8 event ID, $9 type, $10
    /// data (`bytea[]`), $11 metadata; $12 NOTIFY payload. Returns one row per append, in order:
    /// head, the stream's stored version (NULL: no stream), its deletion state, whether the batch
    /// was written, rows inserted, streams and NOTIFYs (unused), and the last position and the sum
    /// of the versions written (checked against what the answers say). Arrays are bound in binary
    /// format, so the text does not depend on the batch's size and is prepared once per connection.
    func appendChecked(channel: String) -> String {
        let ts = Self.timestamp("$2::int8")
        // Shapes that keep one index probe per stream whatever the statistics (see `batchState`):
        // a LATERAL subquery kept apart by OFFSET 0 for the streams' key, the primary key
        // backwards for the head.
        return """
            WITH a AS MATERIALIZED (
                SELECT u.n, u.stream, u.category, u.expected, u.cnt, cur.version, cur.deleted,
                       coalesce(sum(u.cnt) OVER (PARTITION BY u.stream ORDER BY u.n ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::int8 AS prior,
                       coalesce(sum(u.cnt) OVER (ORDER BY u.n ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::int8 AS before
                FROM unnest($3::text[], $4::text[], $5::int8[], $6::int8[]) WITH ORDINALITY AS u(stream, category, expected, cnt, n)
                LEFT JOIN LATERAL (
                    SELECT s.version, s.deleted FROM \(streams) s WHERE s.tenant_id = $1 AND s.stream_id = u.stream OFFSET 0
                ) AS cur ON true),
            h AS MATERIALIZED (
                SELECT coalesce((SELECT position FROM \(events) WHERE tenant_id = $1 ORDER BY position DESC LIMIT 1), 0) AS head),
            ok AS MATERIALIZED (
                SELECT coalesce(bool_and(coalesce(a.deleted, 0) = 0 AND CASE a.expected
                    WHEN -1 THEN true
                    WHEN -2 THEN coalesce(a.version, 0) + a.prior > 0
                    ELSE coalesce(a.version, 0) + a.prior = a.expected END), false) AS ok
                FROM a),
            ins AS (
                INSERT INTO \(events) (tenant_id, stream_id, category, created_at, position, version, event_id, type, data, metadata)
                SELECT $1, a.stream, a.category, \(Self.timestamp("($2::int8 + a.n - 1)")), h.head + r.j, coalesce(a.version, 0) + a.prior + r.j - a.before,
                       r.id, r.type, r.data, r.metadata
                FROM unnest($7::int8[], $8::text[], $9::text[], $10::bytea[], $11::text[]) WITH ORDINALITY AS r(app, id, type, data, metadata, j)
                JOIN a ON a.n = r.app CROSS JOIN h CROSS JOIN ok
                WHERE ok.ok
                RETURNING position, version),
            st AS (
                INSERT INTO \(streams) (tenant_id, stream_id, version, created_at, updated_at)
                SELECT $1, a.stream, max(coalesce(a.version, 0) + a.prior + a.cnt), \(ts), \(ts)
                FROM a CROSS JOIN ok WHERE ok.ok GROUP BY a.stream
                ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
                RETURNING 1),
            nt AS (SELECT pg_notify(\(Identifier.literal(channel)), $12) FROM ok WHERE ok.ok AND $12::text IS NOT NULL)
            SELECT h.head, a.version, a.deleted, ok.ok, (SELECT count(*) FROM ins), (SELECT count(*) FROM st), (SELECT count(*) FROM nt),
                   (SELECT coalesce(max(position), 0) FROM ins), (SELECT coalesce(sum(version), 0)::int8 FROM ins)
            FROM a CROSS JOIN h CROSS JOIN ok
            ORDER BY a.n
            """
    }

    /// ``appendChecked(channel:)`` for a batch of one append: the same checks, rows and answer
    /// (one row, the same columns), without what only a batch of several needs — the windows
    /// over the batch's appends, the join of rows to their append, the grouping of the streams'
    /// versions.
    /// PostgreSQL runs it in less time (pgbench, the same transaction, one client: 2,850 / 2,621 vs
    /// 2,636 / 2,215 per s): the lock is held for less, and a lone client waits less.
    ///
    /// Parameters: $1 tenant, $2 commit time (µs since 1970), $3 stream, $4 category, $5 expected
    /// version (as in ``appendChecked(channel:)``); per event row $6 event ID, $7 type, $8 data
    /// (`bytea[]`), $9 metadata; $10 NOTIFY payload.
    func appendOne(channel: String) -> String {
        let ts = Self.timestamp("$2::int8")
        return """
            WITH c AS MATERIALIZED (
                SELECT coalesce((SELECT position FROM \(events) WHERE tenant_id = $1 ORDER BY position DESC LIMIT 1), 0) AS head,
                       s.version, s.deleted
                FROM (SELECT 1) AS one LEFT JOIN \(streams) s ON s.tenant_id = $1 AND s.stream_id = $3),
            ok AS MATERIALIZED (
                SELECT coalesce(c.deleted, 0) = 0 AND CASE $5::int8
                    WHEN -1 THEN true
                    WHEN -2 THEN coalesce(c.version, 0) > 0
                    ELSE coalesce(c.version, 0) = $5::int8 END AS ok
                FROM c),
            ins AS (
                INSERT INTO \(events) (tenant_id, stream_id, category, created_at, position, version, event_id, type, data, metadata)
                SELECT $1, $3, $4, \(ts), c.head + r.j, coalesce(c.version, 0) + r.j, r.id, r.type, r.data, r.metadata
                FROM unnest($6::text[], $7::text[], $8::bytea[], $9::text[]) WITH ORDINALITY AS r(id, type, data, metadata, j)
                CROSS JOIN c CROSS JOIN ok
                WHERE ok.ok
                RETURNING position, version),
            st AS (
                INSERT INTO \(streams) (tenant_id, stream_id, version, created_at, updated_at)
                SELECT $1, $3, coalesce(c.version, 0) + cardinality($6::text[]), \(ts), \(ts)
                FROM c CROSS JOIN ok WHERE ok.ok
                ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
                RETURNING 1),
            nt AS (SELECT pg_notify(\(Identifier.literal(channel)), $10) FROM ok WHERE ok.ok AND $10::text IS NOT NULL)
            SELECT c.head, c.version, c.deleted, ok.ok, (SELECT count(*) FROM ins), (SELECT count(*) FROM st), (SELECT count(*) FROM nt),
                   (SELECT coalesce(max(position), 0) FROM ins), (SELECT coalesce(sum(version), 0)::int8 FROM ins)
            FROM c CROSS JOIN ok
            """
    }

    /// Writes a batch of appends in one statement: every event row, every stream's new version,
    /// and the NOTIFY. Parameters: $1 tenant, $2 commit time (µs since 1970); per event row $3
    /// stream, $4 category, $5 position, $6 version, $7 event ID, $8 type (`text[]`/`int8[]`),
    /// $9 data (`bytea[]`), $10 metadata, $14 commit time (µs since 1970, per row: each append of
    /// a batch has its own); per stream $11 stream, $12 version; $13 NOTIFY payload.
    /// Arrays are bound in binary format (``BinaryArray``), so the text is the same for every
    /// batch size and is prepared once per connection.
    func insertBatch(channel: String) -> String {
        let ts = Self.timestamp("$2::int8")
        return """
            WITH ins AS (
                INSERT INTO \(events) (tenant_id, stream_id, category, created_at, position, version, event_id, type, data, metadata)
                SELECT $1, u.stream, u.category, \(Self.timestamp("u.created")), u.position, u.version, u.id, u.type, u.data, u.metadata
                FROM unnest($3::text[], $4::text[], $5::int8[], $6::int8[], $7::text[], $8::text[], $9::bytea[], $10::text[], $14::int8[])
                     AS u(stream, category, position, version, id, type, data, metadata, created)
                RETURNING 1),
            st AS (
                INSERT INTO \(streams) (tenant_id, stream_id, version, created_at, updated_at)
                SELECT $1, v.stream, v.version, \(ts), \(ts) FROM unnest($11::text[], $12::int8[]) AS v(stream, version)
                ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at,
                    created_at = CASE WHEN \(streams).deleted = 0 THEN \(streams).created_at ELSE EXCLUDED.created_at END,
                    deleted = 0
                RETURNING 1)
            SELECT (SELECT pg_notify(\(Identifier.literal(channel)), $13::text) WHERE $13::text IS NOT NULL), (SELECT count(*) FROM ins),
                   (SELECT count(*) FROM st)
            """
    }
}

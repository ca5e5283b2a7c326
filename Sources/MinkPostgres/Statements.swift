/// The SQL of one schema's tables, built once per scope from the quoted schema name.
///
/// Only the schema name is spliced into the text (validated and quoted); every value is a bound
/// parameter. `$1` is always the tenant ID.
struct Statements: Sendable {
    let schema: String
    let events: String
    let streams: String
    let snapshots: String
    let checkpoints: String
    let documents: String
    let documentIndexes: String

    /// The columns of an event row, decoded by `EventRow`.
    static let eventColumns =
        "event_id, stream_id, type, data, metadata, version, position, (extract(epoch FROM created_at) * 1000000)::int8"

    init(schema: String) {
        let s = Identifier.quote(schema)
        self.schema = schema
        events = "\(s).mink_events"
        streams = "\(s).mink_streams"
        snapshots = "\(s).mink_snapshots"
        checkpoints = "\(s).mink_checkpoints"
        documents = "\(s).mink_documents"
        documentIndexes = "\(s).mink_document_indexes"
    }

    /// Head position, stream version and how many of the given event IDs the stream has.
    var appendState: String {
        // Shapes that leave the planner one sensible index each (see ConnectionWorker on plans):
        // the primary key backwards for the head, the stream's key, and one unique-key probe per
        // event ID.
        """
        SELECT coalesce((SELECT position FROM \(events) WHERE tenant_id = $1 ORDER BY position DESC LIMIT 1), 0),
               (SELECT version FROM \(streams) WHERE tenant_id = $1 AND stream_id = $2),
               (SELECT count(*) FROM unnest($3::text[]) AS u(id)
                WHERE EXISTS (SELECT 1 FROM \(events) e WHERE e.tenant_id = $1 AND e.stream_id = $2 AND e.event_id = u.id))
        """
    }

    var eventsByID: String {
        "SELECT \(Self.eventColumns) FROM \(events) WHERE tenant_id = $1 AND stream_id = $2 AND event_id = ANY($3::text[]) ORDER BY version"
    }

    /// Inserts `rows` events; the last chunk of an append also updates the stream and notifies.
    /// Parameters: $1 tenant, $2 stream, $3 category, $4 commit time (µs since 1970), then per row
    /// position, version, event ID, type, data, metadata; with `finish`, then stream version and
    /// NOTIFY payload.
    func insertEvents(rows: Int, finish: Bool, channel: String) -> String {
        let ts = "('epoch'::timestamptz + $4::int8 * interval '1 microsecond')"
        var values: [String] = []
        values.reserveCapacity(rows)
        for r in 0..<rows {
            let b = 4 + r * 6
            values.append("($1, $2, $3, \(ts), $\(b + 1)::int8, $\(b + 2)::int8, $\(b + 3), $\(b + 4), $\(b + 5)::bytea, $\(b + 6))")
        }
        let insert = """
            INSERT INTO \(events) (tenant_id, stream_id, category, created_at, position, version, event_id, type, data, metadata)
            VALUES \(values.joined(separator: ", "))
            """
        guard finish else { return insert }
        let n = 4 + rows * 6
        return """
            WITH ins AS (\(insert) RETURNING 1),
            st AS (INSERT INTO \(streams) (tenant_id, stream_id, version, created_at, updated_at)
                   VALUES ($1, $2, $\(n + 1)::int8, \(ts), \(ts))
                   ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
                   RETURNING 1)
            SELECT pg_notify(\(Identifier.literal(channel)), $\(n + 2)), (SELECT count(*) FROM ins), (SELECT count(*) FROM st)
            """
    }
}

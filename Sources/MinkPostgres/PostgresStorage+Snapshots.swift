import Foundation
import Mink

extension PostgresStorage {
    /// Stores a snapshot unless a newer one is stored. Large states are compressed by PostgreSQL
    /// itself (TOAST compresses `bytea` values over ~2 KiB), so the adapter stores them as given.
    public func saveSnapshot(_ snapshot: Snapshot) async throws {
        _ = try await storeSnapshot(snapshot)
    }

    /// ``saveSnapshot(_:)`` in one round trip: the tenant's lock and one statement — the stream's
    /// state, the upsert unless the stream is deleted, the version stored afterwards — pipelined
    /// as one transaction (it was `BEGIN` and the lock, the state, the upsert, `COMMIT`, then a
    /// read of the stored version: five round trips). Under the tenant's append lock, as a
    /// deletion runs: without it, a snapshot put while a deletion ran could commit after the
    /// deletion removed the stream's snapshots and come back describing deleted events (a
    /// black-box audit, 2026-12-07).
    public func storeSnapshot(_ snapshot: Snapshot) async throws -> Int64 {
        try await withConnection { conn, scope in
            let r = try conn.pipelineResults([
                .init("SELECT pg_advisory_xact_lock($1::int8)", [.int(scope.appendLockKey)], prepare: true),
                .init(
                    """
                    WITH st AS (SELECT deleted FROM \(scope.sql.streams) WHERE tenant_id = $1::text AND stream_id = $2::text),
                    up AS (
                        INSERT INTO \(scope.sql.snapshots) (tenant_id, stream_id, version, state, created_at)
                        SELECT $1::text, $2::text, $3::int8, $4::bytea, 'epoch'::timestamptz + $5::int8 * interval '1 microsecond'
                        WHERE coalesce((SELECT deleted FROM st), 0) = 0
                        ON CONFLICT (tenant_id, stream_id) DO UPDATE
                        SET version = EXCLUDED.version, state = EXCLUDED.state, created_at = EXCLUDED.created_at
                        WHERE \(scope.sql.snapshots).version <= EXCLUDED.version
                        RETURNING version)
                    SELECT (SELECT deleted FROM st),
                           coalesce((SELECT version FROM up),
                                    (SELECT version FROM \(scope.sql.snapshots) WHERE tenant_id = $1::text AND stream_id = $2::text))
                    """,
                    [.text(scope.tenantID), .text(snapshot.streamID), .int(snapshot.version), .bytes(snapshot.state),
                     .int(EventRow.microseconds(snapshot.createdAt))],
                    prepare: true
                ),
            ])
            // A deleted stream's state rolled nothing in: the upsert's condition kept it out.
            switch r[1].int64(0, 0) {
            case 2?: throw MinkError.streamDeleted(snapshot.streamID)
            case 1?: throw MinkError.streamNotFound(snapshot.streamID)
            default: return r[1].int64(0, 1) ?? snapshot.version
            }
        }
    }

    /// The newest snapshot of a stream; `createdAt` has microsecond precision.
    public func loadSnapshot(streamID: String) async throws -> Snapshot? {
        try await withReadConnection(empty: nil) { conn, scope in
            let r = try conn.query(
                """
                SELECT version, state, (extract(epoch FROM created_at) * 1000000)::int8
                FROM \(scope.sql.snapshots) WHERE tenant_id = $1 AND stream_id = $2
                """,
                [.text(scope.tenantID), .text(streamID)], prepare: true
            )
            return Self.snapshot(of: streamID, r)
        }
    }

    /// The snapshot in the first row of `r` (version, state, creation time in microseconds), or
    /// `nil` when there is none (no row, or a `NULL` version of an outer join).
    static func snapshot(of streamID: String, _ r: PostgresResult) -> Snapshot? {
        guard r.rowCount == 1, let version = r.int64(0, 0) else { return nil }
        return Snapshot(
            streamID: streamID, version: version, state: r.bytes(0, 1) ?? Data(), createdAt: EventRow.date(microseconds: r.int64(0, 2) ?? 0)
        )
    }
}

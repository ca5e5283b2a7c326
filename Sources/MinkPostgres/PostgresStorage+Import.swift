import Foundation
import Mink

extension PostgresStorage: EventImporting {
    /// Imports into this tenant in one transaction that holds the tenant's append lock
    /// (`pg_advisory_xact_lock`, the one every append batch takes) from the emptiness check to the
    /// commit: an append of the tenant, in any process, either committed before (the import then
    /// fails with `.tenantNotEmpty`) or waits for the import and continues after its head (positions
    /// are max + 1 under that lock, so nothing else needs moving). An append waiting longer than
    /// `storage.timeoutSeconds` fails with `503` as any slow storage call does.
    ///
    /// The source is read batch by batch on the connection's thread; each batch is one multi-row
    /// insert, with the operation's deadline renewed per batch. `NOTIFY` at the end wakes the
    /// subscribers of other processes.
    public func importEvents(from source: any EventImportSource, hook: AppendTransactionHook?) async throws -> ImportSummary {
        let channel = core.configuration.channel
        return try await withConnection { conn, scope in
            try conn.transaction(begin: "") {
                let sql = scope.sql
                let tenant = PostgresValue.text(scope.tenantID)
                _ = try conn.query("SELECT pg_advisory_xact_lock($1::int8)", [.int(scope.appendLockKey)])
                let busy = try conn.query(
                    "SELECT (SELECT 1 FROM \(sql.events) WHERE tenant_id = $1 LIMIT 1), (SELECT 1 FROM \(sql.streams) WHERE tenant_id = $1 LIMIT 1)",
                    [tenant]
                )
                if busy.int64(0, 0) != nil || busy.int64(0, 1) != nil {
                    throw MinkError(.tenantNotEmpty, "tenant \(scope.tenantID) already has events; import only into a tenant without events")
                }
                var events: Int64 = 0
                var head: UInt64 = 0
                var streams = Set<String>()
                while let batch = try source.nextBatch() {
                    if batch.isEmpty { continue }
                    conn.renewDeadline()
                    // Written up to and including each deletion record, which is applied before
                    // the events after it: it removes the events of its stream imported before it
                    // (whose IDs a later event of the stream may use again, as in the source).
                    var rest = batch[...]
                    while !rest.isEmpty {
                        let end = try rest.firstIndex { try ImportedDeletion.of($0) != nil }.map { $0 + 1 } ?? rest.endIndex
                        try Self.importSegment(Array(rest[..<end]), scope: scope, on: conn)
                        rest = rest[end...]
                    }
                    if let hook {
                        let tx = PostgresReadModelTransaction(connection: conn, scope: scope)
                        defer { tx.close() }
                        try hook(batch, tx)
                    }
                    streams.formUnion(batch.map(\.streamID))
                    events += Int64(batch.count)
                    head = batch.last!.globalPosition
                }
                if events > 0 {
                    _ = try conn.query("SELECT pg_notify($1, $2)", [.text(channel), .text(scope.notifyKey)])
                }
                return ImportSummary(events: events, streams: Int64(streams.count), head: head)
            }
        }
    }

    /// Writes imported events (at most one deletion record, the last) in one statement, then
    /// applies the deletion.
    static func importSegment(_ segment: [Event], scope: Scope, on conn: PostgresConnection) throws {
        var touched: [String: (version: Int64, first: Int64, last: Int64)] = [:]
        var order: [String] = []
        var deletion: (record: ImportedDeletion, micros: Int64)?
        for e in segment {
            let micros = EventRow.microseconds(e.timestamp)
            if let t = touched[e.streamID] {
                touched[e.streamID] = (e.version, t.first, micros)
            } else {
                touched[e.streamID] = (e.version, micros, micros)
                order.append(e.streamID)
            }
            if let d = try ImportedDeletion.of(e) {
                deletion = (d, micros)
                // Its events are removed below: the stream's row is the deletion's.
                if touched.removeValue(forKey: d.streamID) != nil { order.removeAll { $0 == d.streamID } }
            }
        }
        do {
            _ = try conn.query(scope.sql.importBatch, [
                .text(scope.tenantID),
                .bytes(BinaryArray.text(segment.map(\.streamID))),
                .bytes(BinaryArray.text(segment.map { StreamID.category(of: $0.streamID) })),
                .bytes(BinaryArray.int8(segment.map { Int64($0.globalPosition) })),
                .bytes(BinaryArray.int8(segment.map(\.version))),
                .bytes(BinaryArray.text(segment.map(\.id))),
                .bytes(BinaryArray.text(segment.map(\.type))),
                .bytes(BinaryArray.bytea(segment.map(\.data))),
                .bytes(BinaryArray.text(try segment.map { try EventRow.encodeMetadata($0.metadata) })),
                .bytes(BinaryArray.int8(segment.map { EventRow.microseconds($0.timestamp) })),
                .bytes(BinaryArray.text(order)),
                .bytes(BinaryArray.int8(order.map { touched[$0]!.version })),
                .bytes(BinaryArray.int8(order.map { touched[$0]!.first })),
                .bytes(BinaryArray.int8(order.map { touched[$0]!.last })),
            ], prepare: true)
        } catch let error as PostgresError where error.isUniqueViolation {
            // Positions and versions were checked by the validator: an event ID repeats.
            throw MinkError(
                .invalidImport,
                "an event ID appears twice in one stream (in the events at positions \(segment.first!.globalPosition)–\(segment.last!.globalPosition))",
                underlying: error
            )
        }
        if let deletion { try applyImportedDeletion(deletion.record, scope: scope, at: deletion.micros, on: conn) }
    }

    /// The effect of an imported `$StreamDeleted` record: the deleted stream's version counter is
    /// kept at least at `lastVersion`, so that a later append continues after it and a (stream,
    /// version) pair is never reused.
    /// The stream is marked as the deletion left it (`deleted`: 1 soft-deleted, 2 a tombstone
    /// for a hard delete): a stream soft-deleted and written again later gets its later events
    /// from a later batch, whose stream upsert marks it live again (a tombstone stays). The one
    /// statement of this rule: the import calls it inside its transaction,
    /// ``PostgresStorage/applyImportedDeletion(streamID:lastVersion:hard:)`` in a transaction of
    /// its own under the tenant's append lock.
    /// A stream with no row yet gets the record's time (`micros`; now when `nil`) as its creation
    /// and update time, as on SQLite.
    static func applyImportedDeletion(_ deletion: ImportedDeletion, scope: Scope, at micros: Int64? = nil, on conn: PostgresConnection) throws {
        let tenant = PostgresValue.text(scope.tenantID)
        // The events the deletion removed (an export taken while the stream was deleted holds
        // some of them before the record).
        _ = try conn.query(
            "DELETE FROM \(scope.sql.events) WHERE tenant_id = $1 AND stream_id = $2 AND version <= $3::int8",
            [tenant, .text(deletion.streamID), .int(deletion.lastVersion)]
        )
        let hasEvents = try conn.query(
            "SELECT 1 FROM \(scope.sql.events) WHERE tenant_id = $1 AND stream_id = $2 LIMIT 1", [tenant, .text(deletion.streamID)]
        ).rowCount == 1
        let deleted: Int64 = deletion.hard ? 2 : (hasEvents ? 0 : 1)
        _ = try conn.query(
            """
            INSERT INTO \(scope.sql.streams) AS t (tenant_id, stream_id, version, created_at, updated_at, deleted)
            VALUES ($1, $2, $3::int8, coalesce(\(Statements.timestamp("$5::int8")), now()), coalesce(\(Statements.timestamp("$5::int8")), now()), $4::int2)
            ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = greatest(t.version, EXCLUDED.version),
            deleted = CASE WHEN EXCLUDED.deleted = 2 OR t.deleted = 2 THEN 2 ELSE EXCLUDED.deleted END
            """,
            [tenant, .text(deletion.streamID), .int(deletion.lastVersion), .int(deleted), micros.map { .int($0) } ?? .null]
        )
    }
}

extension Statements {
    /// Inserts a batch of imported events with their own positions, versions and commit times,
    /// and moves the streams' versions. Parameters: $1 tenant; per event $2 stream, $3 category,
    /// $4 position, $5 version, $6 event ID, $7 type, $8 data, $9 metadata, $10 time (µs since
    /// 1970); per stream $11 stream, $12 last version, $13 first and $14 last time.
    var importBatch: String {
        let ts = Statements.timestamp
        return """
            WITH ins AS (
                INSERT INTO \(events) (tenant_id, stream_id, category, created_at, position, version, event_id, type, data, metadata)
                SELECT $1, u.stream, u.category, \(ts("u.at")), u.position, u.version, u.id, u.type, u.data, u.metadata
                FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[], $7::text[], $8::bytea[], $9::text[], $10::int8[])
                     AS u(stream, category, position, version, id, type, data, metadata, at)
                RETURNING 1)
            INSERT INTO \(streams) (tenant_id, stream_id, version, created_at, updated_at)
            SELECT $1, v.stream, v.version, \(ts("v.first")), \(ts("v.last"))
            FROM unnest($11::text[], $12::int8[], $13::int8[], $14::int8[]) AS v(stream, version, first, last)
            WHERE (SELECT count(*) FROM ins) >= 0
            ON CONFLICT (tenant_id, stream_id) DO UPDATE
                SET version = GREATEST(\(streams).version, EXCLUDED.version), updated_at = EXCLUDED.updated_at,
                    deleted = CASE WHEN \(streams).deleted = 2 THEN 2 ELSE 0 END,
                    created_at = CASE WHEN \(streams).deleted = 1 THEN EXCLUDED.created_at
                        ELSE LEAST(\(streams).created_at, EXCLUDED.created_at) END
            """
    }
}

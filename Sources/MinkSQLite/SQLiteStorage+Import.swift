import Foundation
import Mink

extension SQLiteStorage: EventImporting {
    /// Imports into this tenant as one write of the group commit (its own savepoint): the writer
    /// connection is held for the whole import, so an append of the same file either committed
    /// before (then the tenant has events: `.tenantNotEmpty`) or runs after the import committed
    /// and continues after its head. The source is read on the writer's thread, batch by batch,
    /// so memory does not grow with the input; any error rolls the savepoint back.
    public func importEvents(from source: any EventImportSource, hook: AppendTransactionHook?) async throws -> ImportSummary {
        let tenantID = self.tenantID
        // An import must start within the storage timeout, but once under way its caller waits
        // for the outcome: a long import answered 503 while it goes on to commit would leave the
        // caller in doubt about a whole tenant's events (and its source may be closed under it).
        return try await database.write(policy: .untilStarted) { c in
            try Self.importEvents(from: source, hook: hook, tenantID: tenantID, on: c)
        }
    }

    static func importEvents(
        from source: any EventImportSource, hook: AppendTransactionHook?, tenantID: String, on c: SQLiteConnection
    ) throws -> ImportSummary {
        let tenant = SQLiteValue.text(tenantID)
        if try c.int("SELECT 1 FROM mink_events WHERE tenant_id = ? LIMIT 1", [tenant]) != nil
            || c.int("SELECT 1 FROM mink_streams WHERE tenant_id = ? LIMIT 1", [tenant]) != nil {
            throw MinkError(.tenantNotEmpty, "tenant \(tenantID) already has events; import only into a tenant without events")
        }
        var events: Int64 = 0
        var head: UInt64 = 0
        var streams = Set<String>()
        func optional(_ s: String?) -> SQLiteValue { s.map { .text($0) } ?? .null }
        while let batch = try source.nextBatch() {
            // Per stream of the batch: its last version and first/last commit time.
            var touched: [String: (version: Int64, first: Int64, last: Int64)] = [:]
            for e in batch {
                let micros = e.timestamp.microsecondsSince1970()
                let custom: SQLiteValue = e.metadata.custom.isEmpty ? .null : .textBytes(Data(Metadata.customJSON(e.metadata.custom)))
                do {
                    try c.run(
                        """
                        INSERT INTO mink_events (tenant_id, position, stream_id, version, event_id, type, category, data, \
                        correlation_id, causation_id, user_id, metadata_tenant_id, metadata_custom, created_at) \
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                        [
                            tenant, .int(Int64(e.globalPosition)), .text(e.streamID), .int(e.version), .text(e.id), .text(e.type),
                            .text(StreamID.category(of: e.streamID)), .blob(e.data), optional(e.metadata.correlationID),
                            optional(e.metadata.causationID), optional(e.metadata.userID), optional(e.metadata.tenantID), custom,
                            .int(micros),
                        ]
                    )
                } catch let error as SQLiteError where error.isUniqueViolation {
                    // Positions and versions were checked by the validator: the event ID repeats.
                    throw MinkError(
                        .invalidImport, "event ID \(e.id) appears twice in stream \(e.streamID) (position \(e.globalPosition))",
                        streamID: e.streamID, position: e.globalPosition, underlying: error
                    )
                }
                if let t = touched[e.streamID] {
                    touched[e.streamID] = (e.version, t.first, micros)
                } else {
                    touched[e.streamID] = (e.version, micros, micros)
                }
                if let deletion = try ImportedDeletion.of(e) {
                    try applyImportedDeletion(deletion, tenantID: tenantID, at: micros, on: c)
                    // Its events imported so far are gone: the stream's row is the deletion's
                    // until it is written again.
                    touched[deletion.streamID] = nil
                }
                streams.insert(e.streamID)
                events += 1
                head = e.globalPosition
            }
            for (stream, t) in touched {
                try c.run(
                    """
                    INSERT INTO mink_streams (tenant_id, stream_id, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?) \
                    ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = max(version, excluded.version), \
                    updated_at = excluded.updated_at, deleted = CASE WHEN deleted = 2 THEN 2 ELSE 0 END, \
                    created_at = CASE WHEN deleted = 1 THEN excluded.created_at ELSE min(created_at, excluded.created_at) END
                    """,
                    [tenant, .text(stream), .int(t.version), .int(t.first), .int(t.last)]
                )
            }
            if let hook {
                let tx = SQLiteReadModelTransaction(connection: c, tenantID: tenantID)
                defer { tx.finish() }
                try hook(batch, tx)
            }
        }
        return ImportSummary(events: events, streams: Int64(streams.count), head: head)
    }

    /// The effect of an imported `$StreamDeleted` record: the deleted stream's version counter is
    /// kept at least at `lastVersion`, so that a later append continues after it and a (stream,
    /// version) pair is never reused.
    /// The stream is marked as the deletion left it (`deleted`: 1 soft-deleted, 2 a tombstone
    /// for a hard delete): a stream soft-deleted and written again later gets its later events
    /// from a later batch, whose stream upsert marks it live again (a tombstone stays). The one
    /// statement of this rule: the import calls it inside its transaction,
    /// ``SQLiteStorage/applyImportedDeletion(streamID:lastVersion:hard:)`` in a write of its own.
    static func applyImportedDeletion(_ deletion: ImportedDeletion, tenantID: String, at micros: Int64, on c: SQLiteConnection) throws {
        let key: [SQLiteValue] = [.text(tenantID), .text(deletion.streamID)]
        // The events the deletion removed (an export taken while the stream was deleted holds
        // some of them before the record).
        try c.run("DELETE FROM mink_events WHERE tenant_id = ? AND stream_id = ? AND version <= ?", key + [.int(deletion.lastVersion)])
        let hasEvents = try c.int("SELECT 1 FROM mink_events WHERE tenant_id = ? AND stream_id = ? LIMIT 1", key) != nil
        let deleted: Int64 = deletion.hard ? 2 : (hasEvents ? 0 : 1)
        try c.run(
            """
            INSERT INTO mink_streams (tenant_id, stream_id, version, created_at, updated_at, deleted) VALUES (?, ?, ?, ?, ?, ?) \
            ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = max(mink_streams.version, excluded.version), \
            deleted = CASE WHEN excluded.deleted = 2 OR mink_streams.deleted = 2 THEN 2 ELSE excluded.deleted END
            """,
            key + [.int(deletion.lastVersion), .int(micros), .int(micros), .int(deleted)]
        )
    }
}

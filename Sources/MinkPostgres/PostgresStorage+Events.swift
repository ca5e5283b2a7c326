import Foundation
import Mink

extension PostgresStorage {
    /// Events per INSERT statement (6 parameters each; PostgreSQL allows 65,535 per statement).
    static let insertChunk = 1000

    /// Appends events atomically (see ``EventStoreAdapter/append(_:hook:)``).
    ///
    /// One transaction: take the tenant's advisory lock (`pg_advisory_xact_lock`), read the head
    /// position and the stream's version, recognise a retry by its event IDs
    /// (`InMemoryStorage.replay(of:in:)`), check the expected version, insert the events at
    /// `head + 1 …`, update the stream, `NOTIFY`, run the hook, commit. The lock is held until
    /// the commit, so a later append of the tenant reads a head that includes this one: positions
    /// are dense and committed in order.
    public func append(_ request: AppendRequest, hook: AppendTransactionHook?) async throws -> AppendResult {
        let now = EventRow.microseconds(Date())
        let timestamp = EventRow.date(microseconds: now)
        let category = StreamID.category(of: request.streamID)
        let rows = try request.events.map { e in
            (id: e.id ?? UUID().uuidString.lowercased(), event: e, metadata: try EventRow.encodeMetadata(e.metadata))
        }
        let ids = request.events.compactMap(\.id)
        let channel = core.configuration.channel
        return try await withConnection { conn, scope in
            let sql = scope.sql
            let tenant = PostgresValue.text(scope.tenantID)
            let stream = PostgresValue.text(request.streamID)
            return try conn.transaction(begin: "SELECT pg_advisory_xact_lock(\(scope.appendLockKey))") {
                let state = try conn.query(sql.appendState, [tenant, stream, .textArray(ids)], prepare: true)
                let head = state.int64(0, 0) ?? 0
                let current = state.int64(0, 1) ?? 0
                if (state.int64(0, 2) ?? 0) > 0 {
                    let existing = try EventRow.decodeAll(try conn.query(sql.eventsByID, [tenant, stream, .textArray(ids)]))
                    if let replay = try InMemoryStorage.replay(of: request, in: existing, currentVersion: current) { return replay }
                }
                try request.expectedVersion.check(streamID: request.streamID, currentVersion: current)

                var events: [Event] = []
                events.reserveCapacity(rows.count)
                for (i, r) in rows.enumerated() {
                    events.append(Event(
                        id: r.id, streamID: request.streamID, type: r.event.type, data: r.event.data, metadata: r.event.metadata,
                        version: current + Int64(i) + 1, globalPosition: UInt64(head) + UInt64(i) + 1, timestamp: timestamp
                    ))
                }
                do {
                    var start = 0
                    while start < rows.count {
                        let end = min(start + Self.insertChunk, rows.count)
                        let finish = end == rows.count
                        var params: [PostgresValue] = [tenant, stream, .text(category), .int(now)]
                        params.reserveCapacity(4 + (end - start) * 6 + 2)
                        for i in start..<end {
                            params.append(.int(events[i].globalPosition))
                            params.append(.int(events[i].version))
                            params.append(.text(rows[i].id))
                            params.append(.text(rows[i].event.type))
                            params.append(.bytes(rows[i].event.data))
                            params.append(.text(rows[i].metadata))
                        }
                        if finish {
                            params.append(.int(current + Int64(rows.count)))
                            params.append(.text(scope.notifyKey))
                        }
                        let text = sql.insertEvents(rows: end - start, finish: finish, channel: channel)
                        try conn.query(text, params, prepare: end - start <= 4)
                        start = end
                    }
                } catch let e as PostgresError where e.isUniqueViolation {
                    // Unreachable while every writer takes the tenant lock; kept as a last line of defence.
                    if e.constraint == "mink_events_event_id_key" {
                        throw MinkError(
                            .duplicateEventID, "an event ID is used twice in stream \(request.streamID)", streamID: request.streamID, underlying: e
                        )
                    }
                    throw MinkError(.concurrencyConflict, "concurrent append to stream \(request.streamID)", streamID: request.streamID, underlying: e)
                }
                if let hook {
                    let tx = PostgresReadModelTransaction(connection: conn, scope: scope)
                    defer { tx.close() }
                    try hook(events, tx)
                }
                return AppendResult(streamID: request.streamID, events: events)
            }
        }
    }

    public func readStream(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws -> [Event] {
        guard limit > 0 else { return [] }
        return try await withReadConnection(empty: []) { conn, scope in
            let t = scope.sql.events
            let c = Statements.eventColumns
            switch direction {
            case .forward:
                return try EventRow.decodeAll(try conn.query(
                    "SELECT \(c) FROM \(t) WHERE tenant_id = $1 AND stream_id = $2 AND version >= $3::int8 ORDER BY version LIMIT $4::int8",
                    [.text(scope.tenantID), .text(streamID), .int(max(version, 1)), .int(limit)], prepare: true
                ))
            case .backward:
                let upper = version < 0 ? Int64.max : version
                return try EventRow.decodeAll(try conn.query(
                    "SELECT \(c) FROM \(t) WHERE tenant_id = $1 AND stream_id = $2 AND version <= $3::int8 ORDER BY version DESC LIMIT $4::int8",
                    [.text(scope.tenantID), .text(streamID), .int(upper), .int(limit)], prepare: true
                ))
            }
        }
    }

    public func streamInfo(_ streamID: String) async throws -> StreamInfo? {
        try await withReadConnection(empty: nil) { conn, scope in
            let r = try conn.query(
                """
                SELECT version, (extract(epoch FROM created_at) * 1000000)::int8, (extract(epoch FROM updated_at) * 1000000)::int8
                FROM \(scope.sql.streams) WHERE tenant_id = $1 AND stream_id = $2
                """,
                [.text(scope.tenantID), .text(streamID)], prepare: true
            )
            guard r.rowCount == 1, let version = r.int64(0, 0) else { return nil }
            return StreamInfo(
                streamID: streamID, version: version, eventCount: version,
                createdAt: EventRow.date(microseconds: r.int64(0, 1) ?? 0), updatedAt: EventRow.date(microseconds: r.int64(0, 2) ?? 0)
            )
        }
    }

    public func readAll(after position: UInt64, filter: EventFilter, limit: Int) async throws -> [Event] {
        guard limit > 0 else { return [] }
        return try await withReadConnection(empty: []) { conn, scope in
            var sql = "SELECT \(Statements.eventColumns) FROM \(scope.sql.events) WHERE tenant_id = $1 AND position > $2::int8"
            var params: [PostgresValue] = [.text(scope.tenantID), .int(min(position, UInt64(Int64.max)))]
            if let category = filter.category {
                // Equality on the stored category: `%` and `_` are never wildcards.
                params.append(.text(category))
                sql += " AND category = $\(params.count)"
            }
            if !filter.eventTypes.isEmpty {
                params.append(.textArray(filter.eventTypes))
                sql += " AND type = ANY($\(params.count)::text[])"
            }
            if !filter.streamIDs.isEmpty {
                params.append(.textArray(filter.streamIDs))
                sql += " AND stream_id = ANY($\(params.count)::text[])"
            }
            params.append(.int(limit))
            sql += " ORDER BY position LIMIT $\(params.count)::int8"
            return try EventRow.decodeAll(try conn.query(sql, params, prepare: true))
        }
    }

    public func headPosition() async throws -> UInt64 {
        try await withReadConnection(empty: 0) { conn, scope in
            let r = try conn.query(
                "SELECT coalesce(max(position), 0) FROM \(scope.sql.events) WHERE tenant_id = $1", [.text(scope.tenantID)], prepare: true
            )
            return UInt64(r.int64(0, 0) ?? 0)
        }
    }
}

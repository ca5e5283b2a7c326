import Foundation
import Mink
import MinkSQL

extension PostgresStorage: StreamLifecycleAdapter {
    /// One page along mink_streams' primary key `(tenant_id, stream_id)` (collation "C":
    /// bytewise), from `after`: an index range scan per page, never a full scan. A prefix is a
    /// `LIKE 'prefix%'` (a key range under "C"), a category the range `[category, category.)`.
    /// Streams without a stored event are skipped by a probe of the `(tenant_id, stream_id,
    /// version)` key of mink_events.
    public func listStreams(_ query: StreamListQuery) async throws -> [StreamInfo] {
        guard query.limit > 0, !query.matchesNothing else { return [] }
        // No stream ID holds U+0000 (see `readAll`).
        if [query.category, query.prefix, query.after].contains(where: { $0?.containsNUL == true }) { return [] }
        return try await withReadConnection(empty: []) { conn, scope in
            let (sql, params) = Self.listStreamsStatement(query, scope: scope)
            let r = try conn.query(sql, params)
            return (0..<r.rowCount).map { i in
                let version = r.int64(i, 1) ?? 0
                return StreamInfo(
                    streamID: r.string(i, 0) ?? "", version: version, eventCount: version - (r.int64(i, 4) ?? version) + 1,
                    createdAt: EventRow.date(microseconds: r.int64(i, 2) ?? 0), updatedAt: EventRow.date(microseconds: r.int64(i, 3) ?? 0)
                )
            }
        }
    }

    /// PostgreSQL's plan for one page of ``listStreams(_:)`` (`EXPLAIN`, one line per row), for
    /// benchmarks that check a page is an index range scan on the streams' primary key.
    /// - Parameter analyze: `EXPLAIN (ANALYZE, BUFFERS)`: runs the page and shows what it read.
    public func listStreamsQueryPlan(_ query: StreamListQuery, analyze: Bool = false) async throws -> [String] {
        try await withReadConnection(empty: []) { conn, scope in
            let (sql, params) = Self.listStreamsStatement(query, scope: scope)
            let r = try conn.query((analyze ? "EXPLAIN (ANALYZE, BUFFERS) " : "EXPLAIN ") + sql, params)
            return (0..<r.rowCount).map { r.string($0, 0) ?? "" }
        }
    }

    /// The statement of one listing page and its parameters.
    static func listStreamsStatement(_ query: StreamListQuery, scope: Scope) -> (sql: String, params: [PostgresValue]) {
        var params: [PostgresValue] = [.text(scope.tenantID)]
        func bind(_ v: PostgresValue) -> String {
            params.append(v)
            return "$\(params.count)"
        }
        var conditions = ["s.tenant_id = $1", "s.deleted = 0", "f.first IS NOT NULL"]
        if let after = query.after { conditions.append("s.stream_id > \(bind(.text(after)))") }
        if let prefix = query.prefix, !prefix.isEmpty {
            conditions.append("s.stream_id LIKE \(bind(.text(SQLPattern.escapeLike(prefix) + "%")))")
        }
        if let category = query.category {
            // Within [category, category.), the IDs at or after `category-` are `category-…`.
            let c = bind(.text(category))
            conditions.append(
                "s.stream_id >= \(c) AND s.stream_id < \(bind(.text(category + "."))) "
                    + "AND (s.stream_id = \(c) OR s.stream_id >= \(bind(.text(category + "-"))))"
            )
        }
        let limit = bind(.int(Int64(query.limit)))
        let sql = """
            SELECT s.stream_id, s.version, (extract(epoch FROM s.created_at) * 1000000)::int8,
                   (extract(epoch FROM s.updated_at) * 1000000)::int8, f.first
            FROM \(scope.sql.streams) s
            CROSS JOIN LATERAL (SELECT min(e.version) AS first FROM \(scope.sql.events) e
                                WHERE e.tenant_id = s.tenant_id AND e.stream_id = s.stream_id) f
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY s.stream_id LIMIT \(limit)::int8
            """
        return (sql, params)
    }

    /// Runs under the tenant's append lock (the one every append batch takes), so the record's
    /// position comes after every committed append and before every later one.
    public func deleteStream(_ streamID: String, expectedVersion: ExpectedVersion, hard: Bool, hook: AppendTransactionHook?) async throws -> StreamDeletion {
        let tenantID = self.tenantID
        let record = StreamDeletedRecord.request(streamID: streamID, lastVersion: 0, deletedEvents: 0, hard: hard, tenantID: tenantID)
        let metadata = try EventRow.encodeMetadata(record.events[0].metadata)
        let recordID = record.events[0].id!
        do {
            let idleLimit = AppendBatcher.lockHoldingIdleLimit(core.configuration.timeout)
            return try await withConnection { conn, scope in
                let sql = scope.sql
                let tenant = PostgresValue.text(scope.tenantID)
                // The inline projections' hooks run inside, holding the tenant's append lock
                // between round trips: as an append batch, the transaction ends on the server when
                // its process freezes midway (``AppendBatcher/lockHoldingIdleLimit(_:)``).
                let begin = "SELECT set_config('idle_in_transaction_session_timeout', '\(idleLimit)', true); "
                    + "SELECT pg_advisory_xact_lock(\(scope.appendLockKey))"
                return try conn.transaction(begin: begin) {
                    let row = try conn.query(
                        "SELECT version, deleted FROM \(sql.streams) WHERE tenant_id = $1 AND stream_id = $2", [tenant, .text(streamID)]
                    )
                    guard row.rowCount == 1 else { throw MinkError.streamNotFound(streamID) }
                    let version = row.int64(0, 0) ?? 0
                    let deleted = row.int64(0, 1) ?? 0
                    if deleted == 2 { throw MinkError.streamDeleted(streamID) }
                    if deleted == 1, !hard { throw MinkError.streamNotFound(streamID) }
                    try expectedVersion.check(streamID: streamID, currentVersion: deleted == 1 ? 0 : version)
                    // The record's position is taken before the events go: the head may be one of them.
                    let head = try conn.query(
                        "SELECT coalesce((SELECT position FROM \(sql.events) WHERE tenant_id = $1 ORDER BY position DESC LIMIT 1), 0)", [tenant]
                    ).int64(0, 0) ?? 0
                    let removed = try conn.query("DELETE FROM \(sql.events) WHERE tenant_id = $1 AND stream_id = $2", [tenant, .text(streamID)]).affectedRows
                    try conn.query("DELETE FROM \(sql.snapshots) WHERE tenant_id = $1 AND stream_id = $2", [tenant, .text(streamID)])
                    try conn.query(
                        "UPDATE \(sql.streams) SET deleted = $3::int2 WHERE tenant_id = $1 AND stream_id = $2",
                        [tenant, .text(streamID), .int(hard ? 2 : 1)]
                    )
                    let logVersion = (try conn.query(
                        "SELECT version FROM \(sql.streams) WHERE tenant_id = $1 AND stream_id = $2", [tenant, .text(StreamID.deletions)]
                    ).int64(0, 0) ?? 0) + 1
                    let data = StreamDeletedRecord.data(streamID: streamID, lastVersion: version, deletedEvents: Int64(removed), hard: hard)
                    let micros = EventRow.microseconds(Date())
                    let ts = Statements.timestamp("$4::int8")
                    try conn.query(
                        """
                        INSERT INTO \(sql.events) (tenant_id, stream_id, category, created_at, position, version, event_id, type, data, metadata)
                        VALUES ($1, $2, $2, \(ts), $5::int8, $6::int8, $7, $3, $8::bytea, $9);
                        """,
                        [tenant, .text(StreamID.deletions), .text(StreamID.streamDeletedType), .int(micros),
                         .int(head + 1), .int(logVersion), .text(recordID), .bytes(data), .text(metadata)]
                    )
                    try conn.query(
                        """
                        INSERT INTO \(sql.streams) (tenant_id, stream_id, version, created_at, updated_at) VALUES ($1, $2, $3::int8, now(), now())
                        ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
                        """,
                        [tenant, .text(StreamID.deletions), .int(logVersion)]
                    )
                    if let hook {
                        // Inline projections, in the deletion's transaction (a failure rolls it back).
                        let event = Event(
                            id: recordID, streamID: StreamID.deletions, type: StreamID.streamDeletedType, data: data,
                            metadata: record.events[0].metadata, version: logVersion, globalPosition: UInt64(head + 1),
                            timestamp: EventRow.date(microseconds: micros)
                        )
                        let tx = PostgresReadModelTransaction(connection: conn, scope: scope)
                        defer { tx.close() }
                        try hook([event], tx)
                    }
                    // Wakes the subscribers of every process, as an append's commit does.
                    try conn.query("SELECT pg_notify($1, $2)", [.text(scope.backends.configuration.channel), .text(scope.notifyKey)])
                    return StreamDeletion(
                        streamID: streamID, deletedEvents: Int64(removed), lastVersion: version, hard: hard, position: UInt64(head + 1)
                    )
                }
            }
        } catch let e as PostgresError {
            throw e.mappedForMink()
        }
    }

    public func isTombstoned(_ streamID: String) async throws -> Bool {
        try await withReadConnection(empty: false) { conn, scope in try Self.isTombstoned(streamID, on: conn, scope) }
    }

    public func streamRetention(_ streamID: String) async throws -> StreamRetention? {
        try await withReadConnection(empty: nil) { conn, scope in try Self.retention(of: streamID, on: conn, scope) }
    }

    public func readStreamForRetention(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws
        -> RetentionAwareRead
    {
        // One round trip and one snapshot: the rules, the tombstone and the page, pipelined in a
        // read-only REPEATABLE READ transaction. The page is read whatever the rules (a stream
        // with rules is read again under them: rare).
        try await withReadConnection(empty: RetentionAwareRead(retention: nil, events: [], tombstoned: false)) { conn, scope in
            var statements = [Self.retentionStatement(streamID, scope), Self.tombstoneStatement(streamID, scope)]
            if limit > 0 { statements.append(Self.eventsStatement(of: streamID, from: version, limit: limit, direction: direction, scope)) }
            let r = try Self.consistentRead(statements, on: conn)
            if let rules = Self.retention(r[0]), !rules.isEmpty {
                return RetentionAwareRead(retention: rules, events: [], tombstoned: false)
            }
            let events = limit > 0 ? try EventRow.decodeAll(r[2]) : []
            return RetentionAwareRead(retention: nil, events: events, tombstoned: events.isEmpty && Self.tombstoned(r[1]))
        }
    }

    public func streamInfoForRetention(_ streamID: String) async throws -> RetentionAwareInfo {
        try await withReadConnection(empty: RetentionAwareInfo(info: nil, retention: nil, tombstoned: false)) { conn, scope in
            let r = try Self.consistentRead([Self.streamRowStatement(streamID, scope), Self.retentionStatement(streamID, scope)], on: conn)
            return Self.retentionAwareInfo(streamID, row: r[0], rules: r[1])
        }
    }

    public func readStreamWithInfo(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws
        -> RetentionAwarePage
    {
        let empty = RetentionAwarePage(info: RetentionAwareInfo(info: nil, retention: nil, tombstoned: false), events: [])
        // One round trip for what took four, and one snapshot — the page never holds versions the
        // info does not, and a deletion is seen by both or neither: the stream's row, its rules
        // and the page, pipelined in a read-only REPEATABLE READ transaction.
        return try await withReadConnection(empty: empty) { conn, scope in
            var statements = [Self.streamRowStatement(streamID, scope), Self.retentionStatement(streamID, scope)]
            if limit > 0 { statements.append(Self.eventsStatement(of: streamID, from: version, limit: limit, direction: direction, scope)) }
            let r = try Self.consistentRead(statements, on: conn)
            let info = Self.retentionAwareInfo(streamID, row: r[0], rules: r[1])
            guard info.info != nil, info.retention == nil, limit > 0 else { return RetentionAwarePage(info: info, events: []) }
            return RetentionAwarePage(info: info, events: try EventRow.decodeAll(r[2]))
        }
    }

    /// Runs read statements as one pipeline in one read-only REPEATABLE READ transaction — one
    /// round trip, one snapshot for all of them (without `BEGIN`, a pipeline's implicit transaction
    /// gives each statement its own snapshot under READ COMMITTED: a deletion or an append
    /// committing between two of them was seen by one only). Returns their results. On a failure
    /// the transaction is left failed, and the connection's worker rolls it back
    /// (``ConnectionWorker``).
    static func consistentRead(_ statements: [PostgresConnection.PipelineStatement], on conn: PostgresConnection) throws -> [PostgresResult] {
        let r = try conn.pipelineResults([.init("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")] + statements + [.init("COMMIT")])
        return Array(r[1...statements.count])
    }

    public func snapshotUnlessTombstoned(streamID: String) async throws -> (snapshot: Snapshot?, tombstoned: Bool) {
        try await withReadConnection(empty: (nil, false)) { conn, scope in
            let r = try conn.query(
                """
                SELECT sn.version, sn.state, (extract(epoch FROM sn.created_at) * 1000000)::int8, s.deleted
                FROM (SELECT 1) AS one
                LEFT JOIN \(scope.sql.streams) s ON s.tenant_id = $1 AND s.stream_id = $2
                LEFT JOIN \(scope.sql.snapshots) sn ON sn.tenant_id = $1 AND sn.stream_id = $2
                """,
                [.text(scope.tenantID), .text(streamID)], prepare: true
            )
            if r.int64(0, 3) == 2 { return (nil, true) }
            return (Self.snapshot(of: streamID, r), false)
        }
    }

    /// The stream's row whatever its state (``streamRow(_:_:)`` decodes it): its deletion state,
    /// version, times and first stored version.
    static func streamRowStatement(_ streamID: String, _ scope: Scope) -> PostgresConnection.PipelineStatement {
        .init(
            """
            SELECT deleted, version, (extract(epoch FROM created_at) * 1000000)::int8, (extract(epoch FROM updated_at) * 1000000)::int8,
                   (SELECT min(e.version) FROM \(scope.sql.events) e WHERE e.tenant_id = s.tenant_id AND e.stream_id = s.stream_id)
            FROM \(scope.sql.streams) s WHERE tenant_id = $1 AND stream_id = $2
            """,
            [.text(scope.tenantID), .text(streamID)], prepare: true
        )
    }

    /// The result of ``streamRowStatement(_:_:)``: the info of a live stream (as ``info(of:on:_:)``),
    /// and whether the stream carries a tombstone.
    static func streamRow(_ streamID: String, _ r: PostgresResult) -> (info: StreamInfo?, tombstoned: Bool) {
        guard r.rowCount == 1 else { return (nil, false) }
        let deleted = r.int64(0, 0)
        guard deleted == 0, let version = r.int64(0, 1) else { return (nil, deleted == 2) }
        return (StreamInfo(
            streamID: streamID, version: version, eventCount: r.int64(0, 4).map { version - $0 + 1 } ?? 0,
            createdAt: EventRow.date(microseconds: r.int64(0, 2) ?? 0), updatedAt: EventRow.date(microseconds: r.int64(0, 3) ?? 0)
        ), false)
    }

    /// What ``streamInfoForRetention(_:)`` answers from the stream's row and its rules.
    static func retentionAwareInfo(_ streamID: String, row: PostgresResult, rules: PostgresResult) -> RetentionAwareInfo {
        let (info, tombstoned) = streamRow(streamID, row)
        guard let info else { return RetentionAwareInfo(info: nil, retention: nil, tombstoned: tombstoned) }
        let retention = Self.retention(rules)
        return RetentionAwareInfo(info: info, retention: retention?.isEmpty == false ? retention : nil, tombstoned: false)
    }

    static func isTombstoned(_ streamID: String, on conn: PostgresConnection, _ scope: Scope) throws -> Bool {
        tombstoned(try conn.query(tombstoneStatement(streamID, scope)))
    }

    /// The stream's deletion state (``tombstoned(_:)`` reads it).
    static func tombstoneStatement(_ streamID: String, _ scope: Scope) -> PostgresConnection.PipelineStatement {
        .init("SELECT deleted FROM \(scope.sql.streams) WHERE tenant_id = $1 AND stream_id = $2", [.text(scope.tenantID), .text(streamID)], prepare: true)
    }

    /// Whether ``tombstoneStatement(_:_:)``'s result says the stream carries a tombstone.
    static func tombstoned(_ r: PostgresResult) -> Bool { r.rowCount == 1 && r.int64(0, 0) == 2 }

    static func retention(of streamID: String, on conn: PostgresConnection, _ scope: Scope) throws -> StreamRetention? {
        retention(try conn.query(retentionStatement(streamID, scope)))
    }

    /// The stream's retention rules (``retention(_:)`` decodes them).
    static func retentionStatement(_ streamID: String, _ scope: Scope) -> PostgresConnection.PipelineStatement {
        .init(
            "SELECT max_count, max_age_seconds, truncate_before FROM \(scope.sql.streamMetadata) WHERE tenant_id = $1 AND stream_id = $2",
            [.text(scope.tenantID), .text(streamID)], prepare: true
        )
    }

    /// The rules of ``retentionStatement(_:_:)``'s result; `nil` when the stream has none.
    static func retention(_ r: PostgresResult) -> StreamRetention? {
        guard r.rowCount == 1 else { return nil }
        return StreamRetention(maxCount: r.int64(0, 0), maxAgeSeconds: r.int64(0, 1), truncateBefore: r.int64(0, 2))
    }

    public func streamRetentions(_ streamIDs: [String]) async throws -> [String: StreamRetention] {
        if streamIDs.isEmpty { return [:] }
        return try await withReadConnection(empty: [:]) { conn, scope in
            let r = try conn.query(
                "SELECT stream_id, max_count, max_age_seconds, truncate_before FROM \(scope.sql.streamMetadata) WHERE tenant_id = $1 AND stream_id = ANY($2::text[])",
                [.text(scope.tenantID), .textArray(streamIDs)], prepare: true
            )
            var rules: [String: StreamRetention] = [:]
            for i in 0..<r.rowCount {
                let rule = StreamRetention(maxCount: r.int64(i, 1), maxAgeSeconds: r.int64(i, 2), truncateBefore: r.int64(i, 3))
                if !rule.isEmpty, let id = r.string(i, 0) { rules[id] = rule }
            }
            return rules
        }
    }

    /// One round trip: the tenant's append lock (so that no deletion commits between the check and
    /// the write: a deletion takes the same lock) and one statement — the stream's deletion state,
    /// and unless it is a tombstone the rules' upsert or removal — pipelined as one transaction
    /// (it was `BEGIN`, the state, the write and `COMMIT`, without the lock).
    public func setStreamRetention(_ streamID: String, _ retention: StreamRetention) async throws {
        try await withConnection { conn, scope in
            func v(_ x: Int64?) -> PostgresValue { x.map { .int($0) } ?? .null }
            let table = scope.sql.streamMetadata
            let r = try conn.pipelineResults([
                .init("SELECT pg_advisory_xact_lock($1::int8)", [.int(scope.appendLockKey)], prepare: true),
                .init(
                    """
                    WITH st AS (SELECT deleted FROM \(scope.sql.streams) WHERE tenant_id = $1::text AND stream_id = $2::text),
                    ok AS (SELECT coalesce((SELECT deleted FROM st), 0) <> 2 AS ok),
                    removed AS (
                        DELETE FROM \(table) WHERE tenant_id = $1::text AND stream_id = $2::text AND $6::bool AND (SELECT ok FROM ok)
                        RETURNING 1),
                    stored AS (
                        INSERT INTO \(table) (tenant_id, stream_id, max_count, max_age_seconds, truncate_before)
                        SELECT $1::text, $2::text, $3::int8, $4::int8, $5::int8 WHERE NOT $6::bool AND (SELECT ok FROM ok)
                        ON CONFLICT (tenant_id, stream_id) DO UPDATE SET max_count = EXCLUDED.max_count,
                            max_age_seconds = EXCLUDED.max_age_seconds, truncate_before = EXCLUDED.truncate_before
                        RETURNING 1)
                    SELECT (SELECT ok FROM ok), (SELECT count(*) FROM removed), (SELECT count(*) FROM stored)
                    """,
                    [.text(scope.tenantID), .text(streamID), v(retention.maxCount), v(retention.maxAgeSeconds), v(retention.truncateBefore),
                     .text(retention.isEmpty ? "true" : "false")],
                    prepare: true
                ),
            ])
            if r[1].bool(0, 0) == false { throw MinkError.streamDeleted(streamID) }
        }
    }

    /// One short transaction removing at most `limit` events, under the tenant's append lock.
    /// Deleting events below the head never changes the next position (the head itself is
    /// kept), but without the lock a batch and a stream's deletion (or another process's batch)
    /// deleted the same rows in different orders: PostgreSQL found a deadlock and aborted one of
    /// them (`40P01`, a `503` on a healthy database; a black-box audit saw it in 9 rounds of 20).
    /// With the lock they take turns, as appends do; a batch is short (`limit` rows, 100 by
    /// default), so appends wait for it at most that long.
    public func scavengeBatch(now: Date, limit: Int) async throws -> Int {
        let nowMicros = EventRow.microseconds(now)
        return try await withReadConnection(empty: 0) { conn, scope in
            let tenant = PostgresValue.text(scope.tenantID)
            return try conn.transaction(begin: "SELECT pg_advisory_xact_lock(\(scope.appendLockKey))") {
                let rules = try conn.query(
                    """
                    SELECT m.stream_id, s.version, m.max_count, m.max_age_seconds, m.truncate_before
                    FROM \(scope.sql.streamMetadata) m
                    JOIN \(scope.sql.streams) s ON s.tenant_id = m.tenant_id AND s.stream_id = m.stream_id
                    WHERE m.tenant_id = $1 AND s.deleted = 0
                    """,
                    [tenant]
                )
                let head = try conn.query(
                    "SELECT coalesce((SELECT position FROM \(scope.sql.events) WHERE tenant_id = $1 ORDER BY position DESC LIMIT 1), 0)", [tenant]
                ).int64(0, 0) ?? 0
                var removed = 0
                for i in 0..<rules.rowCount where removed < limit {
                    let streamID = rules.string(i, 0) ?? ""
                    let retention = StreamRetention(maxCount: rules.int64(i, 2), maxAgeSeconds: rules.int64(i, 3), truncateBefore: rules.int64(i, 4))
                    let first = retention.firstKeptVersion(streamVersion: rules.int64(i, 1) ?? 0)
                    let cutoff: PostgresValue = retention.cutoffMicroseconds(nowMicros: nowMicros).map { .int($0) } ?? .null
                    removed += try conn.query(
                        """
                        DELETE FROM \(scope.sql.events) WHERE tenant_id = $1 AND stream_id = $2 AND version IN (
                            SELECT version FROM \(scope.sql.events) WHERE tenant_id = $1 AND stream_id = $2 AND position <> $3::int8
                            AND (version < $4::int8 OR created_at < 'epoch'::timestamptz + $5::int8 * interval '1 microsecond')
                            ORDER BY version LIMIT $6::int8)
                        """,
                        [tenant, .text(streamID), .int(head), .int(first), cutoff, .int(Int64(limit - removed))]
                    ).affectedRows
                }
                // Other processes' subscription hubs forget their memory of recent events, which
                // may hold what was removed (delivered at commit).
                if removed > 0 {
                    try conn.query("SELECT pg_notify($1, $2)", [
                        .text(scope.backends.configuration.channel), .text(scope.notifyKey + Self.removalSuffix),
                    ])
                }
                return removed
            }
        }
    }

    public func applyImportedDeletion(streamID: String, lastVersion: Int64, hard: Bool) async throws {
        try await withConnection { conn, scope in
            // Serialised with the tenant's appends, as the import (which holds the same lock).
            try conn.transaction(begin: "SELECT pg_advisory_xact_lock(\(scope.appendLockKey))") {
                try Self.applyImportedDeletion(ImportedDeletion(streamID: streamID, lastVersion: lastVersion, hard: hard), scope: scope, on: conn)
            }
        }
    }
}

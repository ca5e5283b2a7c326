import Foundation
import Mink

extension SQLiteStorage: StreamLifecycleAdapter {
    /// One page along mink_streams' primary key `(tenant_id, stream_id)` — the table is WITHOUT
    /// ROWID, so the key is the table and a page is one range scan from `after`, never a full
    /// scan. A prefix (and a category: the ID itself or `category-…`) becomes a key range too.
    /// Streams without a stored event (deleted, scavenged empty) are skipped by a probe of
    /// mink_events' `(tenant_id, stream_id, version)` key.
    public func listStreams(_ query: StreamListQuery) async throws -> [StreamInfo] {
        guard query.limit > 0, !query.matchesNothing else { return [] }
        let (sql, binds) = Self.listStreamsStatement(query, tenantID: tenantID)
        return try await database.read { c in
            var out: [StreamInfo] = []
            try c.query(sql, binds) { r in
                out.append(StreamInfo(
                    streamID: r.text(0), version: r.int(1), eventCount: r.int(1) - r.int(4) + 1,
                    createdAt: Self.date(micros: r.int(2)), updatedAt: Self.date(micros: r.int(3))
                ))
            }
            return out
        }
    }

    /// SQLite's plan for one page of ``listStreams(_:)`` (the `detail` column of `EXPLAIN QUERY
    /// PLAN`, one line per step), for benchmarks and tests that check a page is an index range
    /// (`SEARCH … USING PRIMARY KEY`), never a `SCAN` of the table or a sort.
    public func listStreamsQueryPlan(_ query: StreamListQuery) async throws -> [String] {
        let (sql, binds) = Self.listStreamsStatement(query, tenantID: tenantID)
        return try await database.read { c in
            var lines: [String] = []
            try c.query("EXPLAIN QUERY PLAN " + sql, binds) { r in lines.append(r.text(3)) }
            return lines
        }
    }

    /// The statement of one listing page and its values.
    static func listStreamsStatement(_ query: StreamListQuery, tenantID: String) -> (sql: String, binds: [SQLiteValue]) {
        var conditions = ["s.tenant_id = ?", "s.deleted = 0"]
        var values: [SQLiteValue] = [.text(tenantID)]
        if let after = query.after {
            conditions.append("s.stream_id > ?")
            values.append(.text(after))
        }
        func range(_ prefix: String) -> String {
            values.append(.text(prefix))
            guard let upper = StreamID.prefixUpperBound(prefix) else { return "s.stream_id >= ?" }
            // The upper bound may not be UTF-8; SQLite's BINARY collation compares the bytes.
            values.append(.textBytes(Data(upper)))
            return "(s.stream_id >= ? AND s.stream_id < ?)"
        }
        if let prefix = query.prefix, !prefix.isEmpty { conditions.append(range(prefix)) }
        if let category = query.category {
            values.append(.text(category))
            conditions.append("(s.stream_id = ? OR \(range(category + "-")))")
        }
        values.append(.int(Int64(query.limit)))
        let sql = """
            SELECT s.stream_id, s.version, s.created_at, s.updated_at, \
            (SELECT MIN(version) FROM mink_events e WHERE e.tenant_id = s.tenant_id AND e.stream_id = s.stream_id) AS first \
            FROM mink_streams s WHERE \(conditions.joined(separator: " AND ")) AND first IS NOT NULL \
            ORDER BY s.stream_id LIMIT ?
            """
        return (sql, values)
    }

    public func deleteStream(_ streamID: String, expectedVersion: ExpectedVersion, hard: Bool, hook: AppendTransactionHook?) async throws -> StreamDeletion {
        let tenantID = self.tenantID
        return try await database.write { c in
            let key: [SQLiteValue] = [.text(tenantID), .text(streamID)]
            var found: (version: Int64, deleted: Int64)?
            try c.query("SELECT version, deleted FROM mink_streams WHERE tenant_id = ? AND stream_id = ?", key) { r in
                found = (r.int(0), r.int(1))
            }
            guard let found else { throw MinkError.streamNotFound(streamID) }
            if found.deleted == 2 { throw MinkError.streamDeleted(streamID) }
            if found.deleted == 1, !hard { throw MinkError.streamNotFound(streamID) }
            try expectedVersion.check(streamID: streamID, currentVersion: found.deleted == 1 ? 0 : found.version)
            let count = try c.int("SELECT COUNT(*) FROM mink_events WHERE tenant_id = ? AND stream_id = ?", key) ?? 0
            // The record first: its position is computed from the head, which may be an event of
            // this stream; deleting first would hand that position out again.
            let record = try Self.append(
                StreamDeletedRecord.request(streamID: streamID, lastVersion: found.version, deletedEvents: count, hard: hard, tenantID: tenantID),
                tenantID: tenantID, hook: hook, on: c
            )
            try c.run("DELETE FROM mink_events WHERE tenant_id = ? AND stream_id = ?", key)
            try c.run("DELETE FROM mink_snapshots WHERE tenant_id = ? AND stream_id = ?", key)
            try c.run("UPDATE mink_streams SET deleted = ? WHERE tenant_id = ? AND stream_id = ?", [.int(hard ? 2 : 1)] + key)
            return StreamDeletion(streamID: streamID, deletedEvents: count, lastVersion: found.version, hard: hard, position: record.toPosition)
        }
    }

    public func isTombstoned(_ streamID: String) async throws -> Bool {
        let tenantID = self.tenantID
        return try await database.read { c in try Self.isTombstoned(streamID, tenantID: tenantID, on: c) }
    }

    public func streamRetention(_ streamID: String) async throws -> StreamRetention? {
        let tenantID = self.tenantID
        return try await database.read { c in try Self.retention(of: streamID, tenantID: tenantID, on: c) }
    }

    public func readStreamForRetention(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws
        -> RetentionAwareRead
    {
        let tenantID = self.tenantID
        // One read transaction — one snapshot, one trip through a reader's queue — for all three.
        return try await database.read { c in
            try c.inOneSnapshot {
                if let rules = try Self.retention(of: streamID, tenantID: tenantID, on: c), !rules.isEmpty {
                    return RetentionAwareRead(retention: rules, events: [], tombstoned: false)
                }
                let events = try Self.events(of: streamID, tenantID: tenantID, from: version, limit: limit, direction: direction, on: c)
                let tombstoned = events.isEmpty ? try Self.isTombstoned(streamID, tenantID: tenantID, on: c) : false
                return RetentionAwareRead(retention: nil, events: events, tombstoned: tombstoned)
            }
        }
    }

    public func streamInfoForRetention(_ streamID: String) async throws -> RetentionAwareInfo {
        let tenantID = self.tenantID
        return try await database.read { c in try c.inOneSnapshot { try Self.retentionAwareInfo(streamID, tenantID: tenantID, on: c) } }
    }

    public func readStreamWithInfo(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws
        -> RetentionAwarePage
    {
        let tenantID = self.tenantID
        // One read transaction — one snapshot: the page never holds versions the info does not,
        // and a deletion is seen by both or neither — for the info and the page.
        return try await database.read { c in
            try c.inOneSnapshot {
                let info = try Self.retentionAwareInfo(streamID, tenantID: tenantID, on: c)
                guard info.info != nil, info.retention == nil else { return RetentionAwarePage(info: info, events: []) }
                let events = try Self.events(of: streamID, tenantID: tenantID, from: version, limit: limit, direction: direction, on: c)
                return RetentionAwarePage(info: info, events: events)
            }
        }
    }

    /// ``streamInfoForRetention(_:)`` on a connection.
    static func retentionAwareInfo(_ streamID: String, tenantID: String, on c: SQLiteConnection) throws -> RetentionAwareInfo {
        guard let info = try info(of: streamID, tenantID: tenantID, on: c) else {
            return RetentionAwareInfo(info: nil, retention: nil, tombstoned: try isTombstoned(streamID, tenantID: tenantID, on: c))
        }
        let rules = try retention(of: streamID, tenantID: tenantID, on: c)
        return RetentionAwareInfo(info: info, retention: rules?.isEmpty == false ? rules : nil, tombstoned: false)
    }

    public func snapshotUnlessTombstoned(streamID: String) async throws -> (snapshot: Snapshot?, tombstoned: Bool) {
        let tenantID = self.tenantID
        // One read transaction (one snapshot, one trip through a reader's queue) for both.
        return try await database.read { c in
            try c.inOneSnapshot {
                if try Self.isTombstoned(streamID, tenantID: tenantID, on: c) { return (nil, true) }
                return (try Self.snapshot(of: streamID, tenantID: tenantID, on: c), false)
            }
        }
    }

    static func isTombstoned(_ streamID: String, tenantID: String, on c: SQLiteConnection) throws -> Bool {
        try c.int("SELECT deleted FROM mink_streams WHERE tenant_id = ? AND stream_id = ?", [.text(tenantID), .text(streamID)]) == 2
    }

    static func retention(of streamID: String, tenantID: String, on c: SQLiteConnection) throws -> StreamRetention? {
        var retention: StreamRetention?
        try c.query(
            "SELECT max_count, max_age_seconds, truncate_before FROM mink_stream_metadata WHERE tenant_id = ? AND stream_id = ?",
            [.text(tenantID), .text(streamID)]
        ) { r in
            retention = StreamRetention(
                maxCount: r.isNull(0) ? nil : r.int(0), maxAgeSeconds: r.isNull(1) ? nil : r.int(1),
                truncateBefore: r.isNull(2) ? nil : r.int(2)
            )
        }
        return retention
    }

    public func streamRetentions(_ streamIDs: [String]) async throws -> [String: StreamRetention] {
        let tenantID = self.tenantID
        return try await database.read { c in
            var rules: [String: StreamRetention] = [:]
            for start in stride(from: 0, to: streamIDs.count, by: 500) {
                let chunk = streamIDs[start..<min(start + 500, streamIDs.count)]
                let list = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                try c.query(
                    "SELECT stream_id, max_count, max_age_seconds, truncate_before FROM mink_stream_metadata WHERE tenant_id = ? AND stream_id IN (\(list))",
                    [.text(tenantID)] + chunk.map { .text($0) }
                ) { r in
                    let rule = StreamRetention(
                        maxCount: r.isNull(1) ? nil : r.int(1), maxAgeSeconds: r.isNull(2) ? nil : r.int(2),
                        truncateBefore: r.isNull(3) ? nil : r.int(3))
                    if !rule.isEmpty { rules[r.text(0)] = rule }
                }
            }
            return rules
        }
    }

    public func setStreamRetention(_ streamID: String, _ retention: StreamRetention) async throws {
        let tenantID = self.tenantID
        try await database.write { c in
            let key: [SQLiteValue] = [.text(tenantID), .text(streamID)]
            if try c.int("SELECT deleted FROM mink_streams WHERE tenant_id = ? AND stream_id = ?", key) == 2 {
                throw MinkError.streamDeleted(streamID)
            }
            if retention.isEmpty {
                try c.run("DELETE FROM mink_stream_metadata WHERE tenant_id = ? AND stream_id = ?", key)
                return
            }
            func v(_ x: Int64?) -> SQLiteValue { x.map { .int($0) } ?? .null }
            try c.run(
                """
                INSERT INTO mink_stream_metadata (tenant_id, stream_id, max_count, max_age_seconds, truncate_before) \
                VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, stream_id) DO UPDATE SET max_count = excluded.max_count, \
                max_age_seconds = excluded.max_age_seconds, truncate_before = excluded.truncate_before
                """,
                key + [v(retention.maxCount), v(retention.maxAgeSeconds), v(retention.truncateBefore)]
            )
        }
    }

    /// One write transaction removing at most `limit` events: short enough that appends queued
    /// behind it (group commit) wait a few milliseconds at most.
    public func scavengeBatch(now: Date, limit: Int) async throws -> Int {
        let tenantID = self.tenantID
        let nowMicros = now.microsecondsSince1970()
        // Most tenants have no rules: answered by a reader, so the periodic scavenger neither
        // takes the writer nor creates a tenant's file for them.
        let hasRules = try await database.read { c in
            try c.int("SELECT 1 FROM mink_stream_metadata WHERE tenant_id = ? LIMIT 1", [.text(tenantID)]) != nil
        }
        guard hasRules else { return 0 }
        return try await database.write { c in
            var rules: [(streamID: String, version: Int64, retention: StreamRetention)] = []
            try c.query(
                """
                SELECT m.stream_id, s.version, m.max_count, m.max_age_seconds, m.truncate_before FROM mink_stream_metadata m \
                JOIN mink_streams s ON s.tenant_id = m.tenant_id AND s.stream_id = m.stream_id \
                WHERE m.tenant_id = ? AND s.deleted = 0
                """,
                [.text(tenantID)]
            ) { r in
                rules.append((r.text(0), r.int(1), StreamRetention(
                    maxCount: r.isNull(2) ? nil : r.int(2), maxAgeSeconds: r.isNull(3) ? nil : r.int(3),
                    truncateBefore: r.isNull(4) ? nil : r.int(4)
                )))
            }
            // The tenant's last event stays: the next append's position counts from it.
            let head = try c.int("SELECT MAX(position) FROM mink_events WHERE tenant_id = ?", [.text(tenantID)]) ?? 0
            var removed = 0
            for rule in rules where removed < limit {
                let first = rule.retention.firstKeptVersion(streamVersion: rule.version)
                let cutoff = rule.retention.cutoffMicroseconds(nowMicros: nowMicros) ?? Int64.min
                try c.run(
                    """
                    DELETE FROM mink_events WHERE tenant_id = ? AND stream_id = ? AND version IN (\
                    SELECT version FROM mink_events WHERE tenant_id = ? AND stream_id = ? AND position <> ? \
                    AND (version < ? OR created_at < ?) ORDER BY version LIMIT ?)
                    """,
                    [.text(tenantID), .text(rule.streamID), .text(tenantID), .text(rule.streamID), .int(head), .int(first),
                     .int(cutoff), .int(Int64(limit - removed))]
                )
                removed += c.changes
            }
            return removed
        }
    }

    public func applyImportedDeletion(streamID: String, lastVersion: Int64, hard: Bool) async throws {
        let tenantID = self.tenantID
        try await database.write { c in
            let micros = Date().microsecondsSince1970()
            try Self.applyImportedDeletion(
                ImportedDeletion(streamID: streamID, lastVersion: lastVersion, hard: hard), tenantID: tenantID, at: micros, on: c
            )
        }
    }
}

import Foundation
import Mink
import MinkSQL

extension SQLiteStorage {
    static let eventColumns = """
        position, stream_id, version, event_id, type, data, correlation_id, causation_id, user_id, \
        metadata_tenant_id, metadata_custom, created_at
        """

    /// Decodes a row selected with ``eventColumns``.
    static func event(_ r: SQLiteRow) throws -> Event {
        // A JSONReader, not a JSONDecoder per event read.
        let custom = r.isNull(10) ? [:] : try Metadata.custom(fromJSON: [UInt8](r.bytes(10)))
        return Event(
            id: r.text(3), streamID: r.text(1), type: r.text(4), data: r.bytes(5),
            metadata: Metadata(
                correlationID: r.optionalText(6), causationID: r.optionalText(7), userID: r.optionalText(8),
                tenantID: r.optionalText(9), custom: custom
            ),
            version: r.int(2), globalPosition: UInt64(r.int(0)), timestamp: date(micros: r.int(11))
        )
    }

    /// The same computation on write and read, so a stored event's timestamp is bit-identical to
    /// the one the append returned.
    static func date(micros: Int64) -> Date { Date(microsecondsSince1970: micros) }

    // MARK: Append

    public func append(_ request: AppendRequest, hook: AppendTransactionHook?) async throws -> AppendResult {
        let tenantID = self.tenantID
        return try await database.write { connection in
            try Self.append(request, tenantID: tenantID, hook: hook, on: connection)
        }
    }

    /// The append itself, on the writer connection inside the write's savepoint.
    static func append(_ request: AppendRequest, tenantID: String, hook: AppendTransactionHook?, on c: SQLiteConnection) throws -> AppendResult {
        let streamID = request.streamID
        var current: Int64 = 0, deleted: Int64 = 0
        try c.query(
            "SELECT version, deleted FROM mink_streams WHERE tenant_id = ? AND stream_id = ?", [.text(tenantID), .text(streamID)]
        ) { r in
            current = r.int(0)
            deleted = r.int(1)
        }
        if deleted == 2 { throw MinkError.streamDeleted(streamID) }

        // Idempotency: only the stored events whose IDs the request reuses matter to the rule.
        // IDs the store generated for this call cannot be stored yet: no lookup.
        let ids = request.hasFreshIDs ? [] : request.events.compactMap(\.id)
        if current > 0, !ids.isEmpty {
            var known: [Event] = []
            for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
                let list = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                try c.query(
                    "SELECT \(eventColumns) FROM mink_events WHERE tenant_id = ? AND stream_id = ? AND event_id IN (\(list))",
                    [.text(tenantID), .text(streamID)] + chunk.map { .text($0) }
                ) { known.append(try event($0)) }
            }
            if !known.isEmpty {
                known.sort { $0.version < $1.version }
                // `replay` sees only the matching events, not the whole stream: it is told the version.
                if let replay = try InMemoryStorage.replay(of: request, in: known, currentVersion: current) { return replay }
            }
        }
        // A soft-deleted stream counts as not existing for the check, but its versions go on.
        try request.expectedVersion.check(streamID: streamID, currentVersion: deleted == 1 ? 0 : current)

        // The writer remembers the head the previous append left (the common case in a group
        // commit: appends one after the other); anything else written since makes it look again.
        let head = try c.rememberedHead(tenant: tenantID)
            ?? c.int("SELECT MAX(position) FROM mink_events WHERE tenant_id = ?", [.text(tenantID)]) ?? 0
        let micros = Date().microsecondsSince1970()
        let now = date(micros: micros)
        let category = StreamID.category(of: streamID)
        var stored: [Event] = []
        stored.reserveCapacity(request.events.count)
        // The events of an append usually share their custom metadata: encoded once per distinct
        // value in a row.
        var lastCustom: (value: [String: String], encoded: SQLiteValue)?
        for (i, e) in request.events.enumerated() {
            let event = Event(
                id: e.id ?? UUID.random().lowercasedText, streamID: streamID, type: e.type, data: e.data,
                metadata: e.metadata, version: current + Int64(i) + 1, globalPosition: UInt64(head + Int64(i) + 1),
                timestamp: now
            )
            var custom: SQLiteValue = .null
            if !e.metadata.custom.isEmpty {
                if let lastCustom, lastCustom.value == e.metadata.custom {
                    custom = lastCustom.encoded
                } else {
                    custom = .textBytes(Data(Metadata.customJSON(e.metadata.custom)))
                    lastCustom = (e.metadata.custom, custom)
                }
            }
            func optional(_ s: String?) -> SQLiteValue { s.map { .text($0) } ?? .null }
            do {
                try c.run(
                    """
                    INSERT INTO mink_events (tenant_id, position, stream_id, version, event_id, type, category, data, \
                    correlation_id, causation_id, user_id, metadata_tenant_id, metadata_custom, created_at) \
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    [
                        .text(tenantID), .int(Int64(event.globalPosition)), .text(streamID), .int(event.version), .text(event.id),
                        .text(e.type), .text(category), .blob(e.data), optional(e.metadata.correlationID),
                        optional(e.metadata.causationID), optional(e.metadata.userID), optional(e.metadata.tenantID), custom,
                        .int(micros),
                    ]
                )
            } catch let error as SQLiteError where error.isUniqueViolation {
                // The request itself repeats an event ID (stored IDs were handled above; positions
                // and versions are assigned by this single writer, so they cannot collide).
                throw MinkError(
                    .duplicateEventID, "event ID \(event.id) appears twice in the append to stream \(streamID)", streamID: streamID,
                    actualVersion: current, underlying: error
                )
            }
            stored.append(event)
        }
        try c.run(
            """
            INSERT INTO mink_streams (tenant_id, stream_id, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?) \
            ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at, \
            created_at = CASE mink_streams.deleted WHEN 0 THEN mink_streams.created_at ELSE excluded.created_at END, deleted = 0
            """,
            [.text(tenantID), .text(streamID), .int(current + Int64(stored.count)), .int(micros), .int(micros)]
        )
        if let hook {
            let tx = SQLiteReadModelTransaction(connection: c, tenantID: tenantID)
            defer { tx.finish() }
            try hook(stored, tx)
        }
        // Last, after everything that can fail: a failed append's savepoint is rolled back, and a
        // head remembered before that would be ahead of the stored one.
        c.rememberHead(head + Int64(stored.count), tenant: tenantID)
        return AppendResult(streamID: streamID, events: stored)
    }

    // MARK: Reading

    public func readStream(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws -> [Event] {
        guard limit > 0 else { return [] }
        let tenantID = self.tenantID
        return try await database.read { c in
            try Self.events(of: streamID, tenantID: tenantID, from: version, limit: limit, direction: direction, on: c)
        }
    }

    /// A page of a stream, on a connection (``readStream(_:from:limit:direction:)``).
    static func events(
        of streamID: String, tenantID: String, from version: Int64, limit: Int, direction: ReadDirection, on c: SQLiteConnection
    ) throws -> [Event] {
        guard limit > 0 else { return [] }
        var out: [Event] = []
        switch direction {
        case .forward:
            try c.query(
                "SELECT \(eventColumns) FROM mink_events WHERE tenant_id = ? AND stream_id = ? AND version >= ? ORDER BY version ASC LIMIT ?",
                [.text(tenantID), .text(streamID), .int(max(version, 1)), .int(Int64(limit))]
            ) { out.append(try event($0)) }
        case .backward:
            // -1 (or anything past the end) means "from the last event".
            let upper = version < 0 ? Int64.max : version
            try c.query(
                "SELECT \(eventColumns) FROM mink_events WHERE tenant_id = ? AND stream_id = ? AND version <= ? ORDER BY version DESC LIMIT ?",
                [.text(tenantID), .text(streamID), .int(upper), .int(Int64(limit))]
            ) { out.append(try event($0)) }
        }
        return out
    }

    public func streamInfo(_ streamID: String) async throws -> StreamInfo? {
        let tenantID = self.tenantID
        return try await database.read { c in try Self.info(of: streamID, tenantID: tenantID, on: c) }
    }

    /// A stream's info, on a connection (``streamInfo(_:)``).
    static func info(of streamID: String, tenantID: String, on c: SQLiteConnection) throws -> StreamInfo? {
        var info: StreamInfo?
        try c.query(
            """
            SELECT version, created_at, updated_at, \
            (SELECT MIN(version) FROM mink_events e WHERE e.tenant_id = s.tenant_id AND e.stream_id = s.stream_id) \
            FROM mink_streams s WHERE tenant_id = ? AND stream_id = ? AND deleted = 0
            """,
            [.text(tenantID), .text(streamID)]
        ) { r in
            // Deletions and the scavenger remove the oldest events: the stored ones are
            // MIN(version) up to the version.
            info = StreamInfo(
                streamID: streamID, version: r.int(0), eventCount: r.isNull(3) ? 0 : r.int(0) - r.int(3) + 1,
                createdAt: date(micros: r.int(1)), updatedAt: date(micros: r.int(2))
            )
        }
        return info
    }

    public func readAll(after position: UInt64, filter: EventFilter, limit: Int) async throws -> [Event] {
        try await readAll(after: position, filter: filter, limit: limit, maxBytes: .max)
    }

    /// Steps the page's rows only until they hold `maxBytes` of data: the rest are never read.
    public func readAll(after position: UInt64, filter: EventFilter, limit: Int, maxBytes: Int) async throws -> [Event] {
        guard limit > 0 else { return [] }
        let tenantID = self.tenantID
        var b = SQLBuilder(dialect: .sqlite)
        var conditions = ["tenant_id = \(b.bind(.text(tenantID)))", "position > \(b.bind(.int(Int64(clamping: position))))"]
        conditions += EventFilterSQL().conditions(filter, into: &b)
        let sql = "SELECT \(Self.eventColumns) FROM mink_events WHERE \(conditions.joined(separator: " AND ")) ORDER BY position ASC LIMIT \(b.bind(.int(Int64(limit))))"
        let values = b.binds.map(SQLiteValue.init)
        return try await database.read { c in
            var out: [Event] = []
            var bytes = 0
            try c.scan(sql, values, while: { row in
                guard bytes < maxBytes else { return false }
                let e = try Self.event(row)
                bytes += e.data.count
                out.append(e)
                return true
            })
            return out
        }
    }

    public func headPosition() async throws -> UInt64 {
        let tenantID = self.tenantID
        return try await database.read { c in
            UInt64(try c.int("SELECT MAX(position) FROM mink_events WHERE tenant_id = ?", [.text(tenantID)]) ?? 0)
        }
    }

    // MARK: Snapshots

    public func saveSnapshot(_ snapshot: Snapshot) async throws {
        _ = try await storeSnapshot(snapshot)
    }

    public func storeSnapshot(_ snapshot: Snapshot) async throws -> Int64 {
        let tenantID = self.tenantID
        return try await database.write { c in
            // In the write, so that no deletion commits between the check and the snapshot (a
            // snapshot put while a deletion ran came back after it, describing deleted events).
            switch try c.int("SELECT deleted FROM mink_streams WHERE tenant_id = ? AND stream_id = ?", [.text(tenantID), .text(snapshot.streamID)]) {
            case 2?: throw MinkError.streamDeleted(snapshot.streamID)
            case 1?: throw MinkError.streamNotFound(snapshot.streamID)
            default: break
            }
            try c.run(
                """
                INSERT INTO mink_snapshots (tenant_id, stream_id, version, state, created_at) VALUES (?, ?, ?, ?, ?) \
                ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = excluded.version, state = excluded.state, \
                created_at = excluded.created_at WHERE excluded.version >= mink_snapshots.version
                """,
                [.text(tenantID), .text(snapshot.streamID), .int(snapshot.version), .blob(snapshot.state),
                 .double(snapshot.createdAt.timeIntervalSinceReferenceDate)]
            )
            // The version stored now: this one, or the newer one the upsert kept.
            return try c.int("SELECT version FROM mink_snapshots WHERE tenant_id = ? AND stream_id = ?", [.text(tenantID), .text(snapshot.streamID)])
                ?? snapshot.version
        }
    }

    public func loadSnapshot(streamID: String) async throws -> Snapshot? {
        let tenantID = self.tenantID
        return try await database.read { c in try Self.snapshot(of: streamID, tenantID: tenantID, on: c) }
    }

    /// The stream's snapshot, on a connection.
    static func snapshot(of streamID: String, tenantID: String, on c: SQLiteConnection) throws -> Snapshot? {
        var snapshot: Snapshot?
        try c.query(
            "SELECT version, state, created_at FROM mink_snapshots WHERE tenant_id = ? AND stream_id = ?",
            [.text(tenantID), .text(streamID)]
        ) { r in
            snapshot = Snapshot(
                streamID: streamID, version: r.int(0), state: r.bytes(1), createdAt: Date(timeIntervalSinceReferenceDate: r.double(2))
            )
        }
        return snapshot
    }
}

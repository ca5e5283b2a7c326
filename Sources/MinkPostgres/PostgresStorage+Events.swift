import Foundation
import Mink

extension PostgresStorage {
    /// Appends events atomically (see ``EventStoreAdapter/append(_:hook:)``), committed together
    /// with the other appends waiting for the tenant (``AppendBatcher``).
    ///
    /// The batch's transaction takes the tenant's advisory lock (`pg_advisory_xact_lock`), reads
    /// the head position and the streams' versions, and then treats each append as if it were
    /// alone: recognise a retry by its event IDs (`InMemoryStorage.replay(of:in:)`), check the
    /// expected version, give the events the positions after the head, run the hook in a
    /// savepoint; one insert writes every row, updates the streams and sends `NOTIFY`, then
    /// `COMMIT`. The lock is held until the commit, so the next batch of the tenant, in any
    /// process, reads a head that includes this one: positions are dense and committed in order.
    /// A conflict, a reused event ID or a failing hook fails that append alone.
    public func append(_ request: AppendRequest, hook: AppendTransactionHook?) async throws -> AppendResult {
        // The request's clock starts here: however long the tenant's preparation or the batches
        // queued before it take, its caller is answered by then.
        let deadline = ContinuousClock.now + core.configuration.timeout
        let rows = try AppendBatcher.rows(of: request)
        let scope = self.scope
        try await core.ensureReady(scope)
        do {
            return try await scope.backend.appender(for: scope).append(request, rows: rows, hook: hook, deadline: deadline)
        } catch let e as PostgresError where scope.ownsStorage && e.isMissingStorage {
            // Dropped (by a tenant deletion in another process) since it was migrated here: not
            // created again here — see `withConnection(recreating:_:)`.
            core.markDeleted(scope)
            throw Self.tenantGone(scope)
        } catch {
            throw error.mappedForMink()
        }
    }

    public func readStream(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws -> [Event] {
        guard limit > 0 else { return [] }
        return try await withReadConnection(empty: []) { conn, scope in
            try Self.events(of: streamID, from: version, limit: limit, direction: direction, on: conn, scope)
        }
    }

    /// A page of a stream, on a connection (``readStream(_:from:limit:direction:)``).
    static func events(
        of streamID: String, from version: Int64, limit: Int, direction: ReadDirection, on conn: PostgresConnection, _ scope: Scope
    ) throws -> [Event] {
        guard limit > 0 else { return [] }
        return try EventRow.decodeAll(try conn.query(eventsStatement(of: streamID, from: version, limit: limit, direction: direction, scope)))
    }

    /// The statement of ``events(of:from:limit:direction:on:_:)`` (`limit` > 0), prepared.
    static func eventsStatement(
        of streamID: String, from version: Int64, limit: Int, direction: ReadDirection, _ scope: Scope
    ) -> PostgresConnection.PipelineStatement {
        let t = scope.sql.events
        let c = Statements.eventColumns
        switch direction {
        case .forward:
            return .init(
                "SELECT \(c) FROM \(t) WHERE tenant_id = $1 AND stream_id = $2 AND version >= $3::int8 ORDER BY version LIMIT $4::int8",
                [.text(scope.tenantID), .text(streamID), .int(max(version, 1)), .int(Int64(limit))], prepare: true
            )
        case .backward:
            let upper = version < 0 ? Int64.max : version
            return .init(
                "SELECT \(c) FROM \(t) WHERE tenant_id = $1 AND stream_id = $2 AND version <= $3::int8 ORDER BY version DESC LIMIT $4::int8",
                [.text(scope.tenantID), .text(streamID), .int(upper), .int(Int64(limit))], prepare: true
            )
        }
    }

    public func streamInfo(_ streamID: String) async throws -> StreamInfo? {
        try await withReadConnection(empty: nil) { conn, scope in try Self.info(of: streamID, on: conn, scope) }
    }

    /// A stream's info, on a connection (``streamInfo(_:)``): `nil` for a missing or deleted stream.
    static func info(of streamID: String, on conn: PostgresConnection, _ scope: Scope) throws -> StreamInfo? {
        streamRow(streamID, try conn.query(streamRowStatement(streamID, scope))).info
    }

    public func readAll(after position: UInt64, filter: EventFilter, limit: Int) async throws -> [Event] {
        guard limit > 0 else { return [] }
        // PostgreSQL text cannot hold U+0000, so no stored value matches a filter value with one:
        // nothing, as on the other storages (PostgreSQL would refuse the parameter).
        var filter = filter
        if filter.category?.containsNUL == true { return [] }
        // A list is "any of": its values that cannot match go; none left matches nothing.
        if filter.eventTypes.contains(where: \.containsNUL) {
            filter.eventTypes.removeAll(where: \.containsNUL)
            if filter.eventTypes.isEmpty { return [] }
        }
        if filter.streamIDs.contains(where: \.containsNUL) {
            filter.streamIDs.removeAll(where: \.containsNUL)
            if filter.streamIDs.isEmpty { return [] }
        }
        let matchable = filter
        return try await withReadConnection(empty: []) { conn, scope in
            let (sql, params) = Self.readAllQuery(events: scope.sql.events, tenantID: scope.tenantID, after: position, filter: matchable, limit: limit)
            return try EventRow.decodeAllBinary(try conn.query(sql, params, prepare: true, binaryResult: true))
        }
    }

    /// The whole log's page (what the subscription hub reads) bounded in PostgreSQL by what its
    /// events' data weigh: the rows after the one that reaches `maxBytes` are never sent (their
    /// sizes come from `octet_length`, which a TOASTed value answers from its header). Filtered
    /// reads cut the page after reading it (the default).
    public func readAll(after position: UInt64, filter: EventFilter, limit: Int, maxBytes: Int) async throws -> [Event] {
        guard filter == .all, maxBytes < Int.max, limit > 0 else {
            return Array(try await readAll(after: position, filter: filter, limit: limit).prefix(byteBudget: maxBytes))
        }
        return try await withReadConnection(empty: []) { conn, scope in
            let sql = """
                SELECT \(EventRow.binaryColumns) FROM (SELECT \(EventRow.binaryColumns), \
                sum(octet_length(data)) OVER (ORDER BY position) - octet_length(data) AS before \
                FROM \(scope.sql.events) WHERE tenant_id = $1 AND position > $2::int8 ORDER BY position LIMIT $3::int8) AS e \
                WHERE before < $4::int8 ORDER BY position
                """
            let params: [PostgresValue] = [
                .text(scope.tenantID), .int(min(position, UInt64(Int64.max))), .int(limit), .int(maxBytes),
            ]
            return try EventRow.decodeAllBinary(try conn.query(sql, params, prepare: true, binaryResult: true))
        }
    }

    /// The most event types a filtered read merges type by type (see ``readAllQuery(events:tenantID:after:filter:limit:)``).
    static let mergedTypesLimit = 32

    /// The page query of ``readAll(after:filter:limit:)``.
    ///
    /// With two or more event types it is one branch per type, each `ORDER BY position LIMIT n`
    /// on the `(tenant_id, type, position)` index, merged by position (PostgreSQL's Merge Append):
    /// a page reads about `limit` rows whatever the statistics. `type = ANY($n)` in one scan
    /// cannot keep position order on that index: without statistics — a catch-up right after a
    /// bulk load or an import, before autovacuum's first ANALYZE — PostgreSQL chose it and sorted
    /// every event after the checkpoint for each page (90–100 ms per 10,000-event page of a
    /// 100,000-event tenant, quadratic over a catch-up; measured 2026-12-06).
    static func readAllQuery(events: String, tenantID: String, after position: UInt64, filter: EventFilter, limit: Int) -> (String, [PostgresValue]) {
        var params: [PostgresValue] = [.text(tenantID), .int(min(position, UInt64(Int64.max)))]
        var common = "tenant_id = $1 AND position > $2::int8"
        if let category = filter.category {
            // Equality on the stored category: `%` and `_` are never wildcards.
            params.append(.text(category))
            common += " AND category = $\(params.count)"
        }
        if !filter.streamIDs.isEmpty {
            params.append(.textArray(filter.streamIDs))
            common += " AND stream_id = ANY($\(params.count)::text[])"
        }
        // Each type once, compared as bytes (as PostgreSQL compares them; Swift's `==` would
        // take two canonically equivalent spellings for one type).
        var seen = Set<[UInt8]>()
        let types = filter.eventTypes.filter { seen.insert(Array($0.utf8)).inserted }
        let select = "SELECT \(EventRow.binaryColumns) FROM \(events) WHERE \(common)"
        if types.count >= 2, types.count <= mergedTypesLimit {
            params.append(.textArray(types))
            let typesParam = params.count
            params.append(.int(limit))
            let limitParam = "$\(params.count)::int8"
            let branches = (1...types.count).map { i in
                "(\(select) AND type = ($\(typesParam)::text[])[\(i)] ORDER BY position LIMIT \(limitParam))"
            }
            let sql = "SELECT * FROM (\(branches.joined(separator: " UNION ALL "))) AS e ORDER BY position LIMIT \(limitParam)"
            return (sql, params)
        }
        var sql = select
        if types.count == 1 {
            params.append(.text(types[0]))
            sql += " AND type = $\(params.count)"
        } else if !types.isEmpty {
            params.append(.textArray(types))
            sql += " AND type = ANY($\(params.count)::text[])"
        }
        params.append(.int(limit))
        sql += " ORDER BY position LIMIT $\(params.count)::int8"
        return (sql, params)
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

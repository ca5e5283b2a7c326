import Foundation
import Mink

/// Read-model writes on the connection of an open transaction (an append's or a
/// ``PostgresStorage/transaction(_:)``'s).
///
/// Calls are synchronous libpq calls on the connection's own queue; the value is valid only while
/// the closure it was handed to runs (afterwards every call throws `.internalError`).
final class PostgresReadModelTransaction: ReadModelTransaction {
    private let connection: PostgresConnection
    let scope: Scope
    private var isOpen = true
    /// Set up `SAVEPOINT <name>` before the first statement (an append's hook in a batch).
    private let savepoint: String?
    /// Whether `SAVEPOINT` went to the server (in a round trip that ran; it is queued with the
    /// hook's first statement and sent with its first read, or with ``releaseSavepoint()``).
    private(set) var savepointSent = false
    /// Whether `SAVEPOINT` is queued in `deferred`, not sent yet.
    private var savepointQueued = false
    /// Whether the transaction is begun and its writes are sent lazily (see ``init(connection:scope:deferring:)``).
    private let defers: Bool
    /// Whether `BEGIN` was sent.
    private var begun = false
    /// Writes not sent yet.
    private var deferred: [PostgresConnection.PipelineStatement] = []
    /// Reads among `deferred` (by index) whose results are checked as soon as the round trip
    /// carrying them returns, before anything after it is sent (``checkLater(_:_:_:)``).
    private var checks: [(index: Int, check: (PostgresResult) throws -> Void)] = []
    /// How the commit waits for the WAL flush (a transaction of its own only).
    private let durability: CommitDurability
    /// The error of a deferred check that failed: every later call (and ``commit()``) throws it
    /// again, so a read whose error the caller swallowed (a projection's `try?`, or the next body
    /// of a grouped transaction carrying this one's checks) can never let the writes the check
    /// guards commit.
    private var failedCheck: (any Error)?
    /// A recording run (``firstReads(of:connection:scope:knowing:)``): the reads the body made
    /// before it stopped, and whether it has stopped. `nil`: a real transaction.
    private var recording: (reads: [FirstRead], stopped: Bool)?
    /// What ``prefetch(_:)`` read, kept current by this transaction's own writes: a read these
    /// answer sends nothing, a check they answer runs at once.
    private var cache = PrefetchCache()

    /// - Parameter savepoint: a savepoint to set before the first statement, so that a failing
    ///   hook can be rolled back alone; a hook that runs no statement then costs no round trip.
    ///   With a savepoint (an append's hook inside its batch's transaction) the statements are
    ///   deferred as in a transaction of its own: `SAVEPOINT` goes with the first read, each
    ///   read carries the writes before it, and ``releaseSavepoint()`` sends the last writes with
    ///   `RELEASE` — three inline projections (a load and a write each) cost four round trips
    ///   per append, not eight, while the batch holds the tenant's lock.
    init(connection: PostgresConnection, scope: Scope, savepoint: String? = nil) {
        self.connection = connection
        self.scope = scope
        self.savepoint = savepoint
        self.defers = savepoint != nil
        // Inside the batch's transaction: never `BEGIN`.
        self.begun = savepoint != nil
        self.durability = .durable
    }

    /// Ends a hook's savepoint: sends the writes not sent yet and `RELEASE SAVEPOINT` in one round
    /// trip (nothing when the hook ran no statement).
    /// - Throws: the failing statement's ``PostgresError`` (the caller rolls back to the savepoint).
    func releaseSavepoint() throws {
        guard let savepoint, savepointQueued || savepointSent else { return }
        _ = try sendDeferred(then: [PostgresConnection.PipelineStatement("RELEASE SAVEPOINT \(savepoint)", prepare: true)])
    }

    /// A transaction of its own (``PostgresStorage/transaction(_:)``) that saves round trips:
    /// `BEGIN` goes with the first statement, and the writes wait for the next read or for
    /// ``commit()``, each sent with it in one round trip (libpq pipeline mode). A batch of an
    /// async projection then costs one round trip per read and one for its writes, checkpoint and
    /// `COMMIT` together (rather than one per statement). In order, in the same transaction: a
    /// read sees the writes before it, and a failing write fails the read or the commit after it.
    /// - Parameter durability: `.relaxed` sends `SET LOCAL synchronous_commit = off` with the
    ///   `COMMIT` (see ``CommitDurability``).
    /// - Parameter prelude: statements sent first, right after `BEGIN` (deferring only).
    init(
        connection: PostgresConnection, scope: Scope, deferring: Bool, durability: CommitDurability = .durable,
        prelude: [PostgresConnection.PipelineStatement] = []
    ) {
        self.connection = connection
        self.scope = scope
        self.savepoint = nil
        self.defers = deferring
        self.durability = durability
        if deferring { self.deferred = prelude }
    }

    /// Runs `body` in a deferring transaction of its own on `connection`: commits it, or rolls it
    /// back and rethrows (``PostgresStorage/transaction(_:_:)``, and each body ``ReadModelBatcher``
    /// runs alone).
    static func run<T>(
        on connection: PostgresConnection, scope: Scope, durability: CommitDurability,
        prelude: [PostgresConnection.PipelineStatement] = [], _ body: (any ReadModelTransaction) throws -> T
    ) throws -> T {
        let tx = PostgresReadModelTransaction(connection: connection, scope: scope, deferring: true, durability: durability, prelude: prelude)
        defer { tx.close() }
        do {
            let result = try body(tx)
            try tx.commit()
            return result
        } catch {
            connection.rollbackIfNeeded()
            throw error
        }
    }

    /// Sends the deferred writes and `COMMIT` (nothing at all when no statement ran: then no
    /// transaction was begun).
    /// - Throws: ``PostgresError``; the caller rolls back.
    func commit() throws {
        guard defers else { return }
        let c = try conn()
        guard begun || !deferred.isEmpty else { return }
        // A checked read never goes out with COMMIT: what it guards must fail before anything
        // commits. (The callers always read after it, so this costs nothing in practice.)
        if !checks.isEmpty { _ = try sendDeferred(then: []) }
        var statements = begun ? [] : [PostgresConnection.PipelineStatement("BEGIN", prepare: true)]
        statements += deferred
        if durability == .relaxed { statements.append(PostgresConnection.PipelineStatement("SET LOCAL synchronous_commit = off", prepare: true)) }
        statements.append(PostgresConnection.PipelineStatement("COMMIT", prepare: true))
        deferred = []
        begun = true
        if statements.count == 1 {
            try c.execute("COMMIT")
        } else {
            _ = try Self.pipelined { try c.pipeline(statements) }
        }
    }

    /// A statement whose rows are needed now: sent with the deferred writes (and `BEGIN`) before it.
    @discardableResult
    private func read(_ sql: String, _ params: [PostgresValue]) throws -> PostgresResult {
        let c = try conn()
        guard defers, !begun || !deferred.isEmpty else { return try c.query(sql, params, prepare: true) }
        return try sendDeferred(then: [PostgresConnection.PipelineStatement(sql, params, prepare: true)]).last!
    }

    /// Sends `BEGIN` (if not yet sent), the deferred statements and `then` in one round trip,
    /// runs the checks of the deferred reads, and returns every result.
    private func sendDeferred(then: [PostgresConnection.PipelineStatement]) throws -> [PostgresResult] {
        let c = try conn()
        let offset = begun ? 0 : 1
        var statements = begun ? [] : [PostgresConnection.PipelineStatement("BEGIN", prepare: true)]
        statements += deferred + then
        let pending = checks
        // `SAVEPOINT`, when queued, is the first deferred statement (queued by the hook's first
        // call): it exists to roll back to once this round trip ran it — even if a statement
        // after it failed — and not if the pipeline failed before it was sent.
        let savepointIndex = savepointQueued ? offset : nil
        func sent() {
            deferred = []
            checks = []
            begun = true
            savepointQueued = false
        }
        let results: [PostgresResult]
        do {
            results = try c.pipeline(statements)
            sent()
            if savepointIndex != nil { savepointSent = true }
        } catch let failure as PostgresConnection.PipelineFailure {
            // Refused before anything was sent (a value libpq cannot send): what was queued stays
            // queued, for the next round trip or the commit — dropping it would let a body that
            // swallows this error commit without the writes queued before it (its own, or an
            // earlier body's in a group).
            if failure.sent {
                sent()
                if let savepointIndex, failure.index > savepointIndex { savepointSent = true }
            }
            throw failure.error
        }
        do {
            for (index, check) in pending { try check(results[offset + index]) }
        } catch {
            failedCheck = error
            throw error
        }
        return results
    }

    /// A read whose result is only checked: sent with the next round trip (deferred) and checked
    /// when it returns, before anything after it is sent — so a lease fence costs no round trip
    /// of its own. Without deferring, run and checked now.
    private func checkLater(_ sql: String, _ params: [PostgresValue], _ check: @escaping (PostgresResult) throws -> Void) throws {
        let c = try conn()
        guard defers else { return try check(c.query(sql, params, prepare: true)) }
        deferred.append(PostgresConnection.PipelineStatement(sql, params, prepare: true))
        checks.append((deferred.count - 1, check))
    }

    /// A statement whose result is not needed: deferred when the transaction defers.
    private func write(_ sql: String, _ params: [PostgresValue]) throws {
        let c = try conn()
        if defers {
            deferred.append(PostgresConnection.PipelineStatement(sql, params, prepare: true))
        } else {
            try c.query(sql, params, prepare: true)
        }
    }

    /// Statements whose results are not needed, in one round trip (or deferred).
    private func writeAll(_ statements: [PostgresConnection.PipelineStatement]) throws {
        let c = try conn()
        if defers {
            deferred += statements
        } else {
            _ = try Self.pipelined { try c.pipeline(statements) }
        }
    }

    /// A pipeline's failure as the failing statement's error.
    private static func pipelined<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let failure as PostgresConnection.PipelineFailure { throw failure.error }
    }

    func close() { isOpen = false }

    private func conn() throws -> PostgresConnection {
        guard isOpen else { throw MinkError(.internalError, "read-model transaction used after it ended") }
        if let failedCheck { throw failedCheck }
        if recording != nil { try stopRecording(nil) }
        if let savepoint, !savepointSent, !savepointQueued {
            deferred.append(PostgresConnection.PipelineStatement("SAVEPOINT \(savepoint)", prepare: true))
            savepointQueued = true
        }
        return connection
    }

    func document(_ model: String, id: String) throws -> Data? {
        if recording != nil {
            if let known = cache.documents[model]?[id] { return known }
            try stopRecording(.documents(model: model, ids: [id]))
        }
        if let hit = cache.documents[model]?[id] {
            _ = try conn()
            return hit
        }
        let r = try read(
            "SELECT raw FROM \(scope.sql.documents) WHERE tenant_id = $1 AND model = $2 AND id = $3",
            [.text(scope.tenantID), .text(model), .text(id)]
        )
        return r.rowCount == 0 ? nil : r.bytes(0, 0)
    }

    func putDocument(_ model: String, id: String, json: Data) throws {
        try write(
            """
            INSERT INTO \(scope.sql.documents) (tenant_id, model, id, doc, raw) VALUES ($1, $2, $3, $4::jsonb, $5::bytea)
            ON CONFLICT (tenant_id, model, id) DO UPDATE SET doc = EXCLUDED.doc, raw = EXCLUDED.raw, updated_at = now()
            """,
            [.text(scope.tenantID), .text(model), .text(id), .text(jsonbText(json)), .bytes(json)]
        )
        cache.wrote(model, id, json)
    }

    func deleteDocument(_ model: String, id: String) throws {
        try write(
            "DELETE FROM \(scope.sql.documents) WHERE tenant_id = $1 AND model = $2 AND id = $3",
            [.text(scope.tenantID), .text(model), .text(id)]
        )
        cache.wrote(model, id, nil)
    }

    /// One query for the whole batch, the IDs as one binary `text[]`: a subquery per ID, each a
    /// lookup of the full primary key.
    ///
    /// Why not `WHERE … AND id = ANY($3)`: its generic plan (prepared statements are planned once
    /// per connection, see `ConnectionWorker`), made while the model was small, keeps `id = ANY`
    /// as a filter over every document of the model — each batch then compared its IDs with the
    /// whole model (measured: 145 ms per 10,000-event batch during a 100,000-event catch-up,
    /// 1.6 s at 20,000 documents; this form: 12–17 ms, whatever the model's size). A join with
    /// `unnest` is no better: the planner hashes the whole model. A subquery in the select list is
    /// never flattened, so it is always one index lookup per ID.
    func documents(_ model: String, ids: [String]) throws -> [String: Data] {
        if recording != nil {
            if ids.isEmpty { return [:] }
            if let known = cache.documents(model, ids) { return known }
            try stopRecording(.documents(model: model, ids: ids.filter { cache.documents[model]?[$0] == nil }))
        }
        if ids.count == 1 { return try document(model, id: ids[0]).map { [ids[0]: $0] } ?? [:] }
        guard !ids.isEmpty else { return [:] }
        if let hits = cache.documents(model, ids) {
            _ = try conn()
            return hits
        }
        let (sql, params) = try documentsQuery(model, ids)
        let r = try read(sql, params)
        var out: [String: Data] = [:]
        out.reserveCapacity(r.rowCount)
        for i in 0..<r.rowCount {
            // `raw` is NULL for an ID without a document.
            if let id = r.string(i, 0), !r.isNull(i, 1), let raw = r.bytes(i, 1) { out[id] = raw }
        }
        return out
    }

    /// One multi-row upsert: the IDs, the `jsonb` texts and the exact bytes go in as three binary
    /// arrays (`unnest`), so the statement's text is the same for every batch. Each ID once:
    /// PostgreSQL refuses to upsert one row twice in one statement.
    func putDocuments(_ model: String, _ documents: [(id: String, json: Data)]) throws {
        if documents.count == 1 { return try putDocument(model, id: documents[0].id, json: documents[0].json) }
        guard !documents.isEmpty else { return }
        let unique = DocumentBatch.unique(documents)
        try write(
            """
            INSERT INTO \(scope.sql.documents) (tenant_id, model, id, doc, raw)
            SELECT $1, $2, u.id, u.doc::jsonb, u.raw FROM unnest($3::text[], $4::text[], $5::bytea[]) AS u(id, doc, raw)
            ON CONFLICT (tenant_id, model, id) DO UPDATE SET doc = EXCLUDED.doc, raw = EXCLUDED.raw, updated_at = now()
            """,
            [
                .text(scope.tenantID), .text(model), .bytes(try Self.textArray(unique.map(\.id))),
                .bytes(try Self.textArray(unique.map { jsonbText($0.json) })), .bytes(BinaryArray.bytea(unique.map(\.json))),
            ]
        )
        for d in unique { cache.wrote(model, d.id, d.json) }
    }

    /// A `DELETE` by primary key per ID, all in one round trip (pipelined, or deferred with the
    /// transaction's other writes). Not `id = ANY($3)`: its generic plan scans every document of
    /// the model (see ``documents(_:ids:)``); a `USING unnest(…)` join hashes them all.
    func deleteDocuments(_ model: String, ids: [String]) throws {
        if ids.count == 1 { return try deleteDocument(model, id: ids[0]) }
        guard !ids.isEmpty else { return }
        if ids.contains(where: { $0.utf8.contains(0) }) {
            throw PostgresError(sqlState: "22021", message: "text values cannot contain a NUL character")
        }
        let sql = "DELETE FROM \(scope.sql.documents) WHERE tenant_id = $1 AND model = $2 AND id = $3"
        try writeAll(ids.map { PostgresConnection.PipelineStatement(sql, [.text(scope.tenantID), .text(model), .text($0)], prepare: true) })
        for id in ids { cache.wrote(model, id, nil) }
    }

    /// A binary `text[]`; NUL is refused here with the error a single text parameter gets
    /// (the server would refuse it too, less clearly).
    private static func textArray(_ values: [String]) throws -> Data {
        if values.contains(where: { $0.utf8.contains(0) }) {
            throw PostgresError(sqlState: "22021", message: "text values cannot contain a NUL character")
        }
        return BinaryArray.text(values)
    }

    func checkpoint(_ projection: String) throws -> UInt64 {
        if recording != nil {
            if let known = cache.checkpoints[projection] { return known }
            try stopRecording(.checkpoints([projection]))
        }
        if let hit = cache.checkpoints[projection] {
            _ = try conn()
            return hit
        }
        let r = try read(
            "SELECT position FROM \(scope.sql.checkpoints) WHERE tenant_id = $1 AND projection = $2",
            [.text(scope.tenantID), .text(projection)]
        )
        return r.rowCount == 0 ? 0 : UInt64(r.int64(0, 0) ?? 0)
    }

    func checkpoints(_ projections: [String]) throws -> [UInt64] {
        if recording != nil {
            if let known = cache.checkpoints(projections) { return known }
            try stopRecording(.checkpoints(projections.filter { cache.checkpoints[$0] == nil }))
        }
        if projections.count == 1 { return [try checkpoint(projections[0])] }
        if let hits = cache.checkpoints(projections) {
            _ = try conn()
            return hits
        }
        let (sql, params) = try checkpointsQuery(projections)
        return try Self.decodeCheckpoints(read(sql, params), count: projections.count)
    }

    /// The checkpoints query goes with the transaction's next read (``checkLater(_:_:_:)``).
    func checkCheckpoints(_ projections: [String], _ check: @escaping @Sendable ([UInt64]) throws -> Void) throws {
        if recording != nil {
            if cache.checkpoints(projections) == nil { try record(.checkpoints(projections)) }
            return
        }
        if let hits = cache.checkpoints(projections) { return try checkNow { try check(hits) } }
        let (sql, params) = try checkpointsQuery(projections)
        try checkLater(sql, params) { r in try check(Self.decodeCheckpoints(r, count: projections.count)) }
    }

    /// One primary-key probe per name, in the names' order (the shape of `documents`: safe in a
    /// generic plan); NULL for a name without a row.
    private func checkpointsQuery(_ projections: [String]) throws -> (String, [PostgresValue]) {
        (
            """
            SELECT (SELECT c.position FROM \(scope.sql.checkpoints) c WHERE c.tenant_id = $1 AND c.projection = u.p)
            FROM unnest($2::text[]) WITH ORDINALITY AS u(p, n) ORDER BY u.n
            """,
            [.text(scope.tenantID), .bytes(try Self.textArray(projections))]
        )
    }

    private static func decodeCheckpoints(_ r: PostgresResult, count: Int) throws -> [UInt64] {
        guard r.rowCount == count else {
            throw MinkError(.internalError, "checkpoints: \(r.rowCount) rows for \(count) names")
        }
        return (0..<r.rowCount).map { r.isNull($0, 0) ? 0 : UInt64(r.int64($0, 0) ?? 0) }
    }

    func setCheckpoint(_ projection: String, to position: UInt64) throws {
        try write(
            """
            INSERT INTO \(scope.sql.checkpoints) (tenant_id, projection, position) VALUES ($1, $2, $3::int8)
            ON CONFLICT (tenant_id, projection) DO UPDATE SET position = EXCLUDED.position, updated_at = now()
            """,
            [.text(scope.tenantID), .text(projection), .int(min(position, UInt64(Int64.max)))]
        )
        cache.checkpoints[projection] = min(position, UInt64(Int64.max))
    }

    /// The tenant's append lock (`pg_advisory_xact_lock`, the one every append batch takes
    /// before it reads the streams' state), held until this transaction ends: waits for the
    /// batch under way to commit, and keeps the next one out.
    /// On the transaction's connection, with the deferred statements before it (one round trip).
    func events(after position: UInt64, limit: Int) throws -> [Event]? {
        guard limit > 0 else { return [] }
        let r = try read(
            "SELECT \(Statements.eventColumns) FROM \(scope.sql.events) WHERE tenant_id = $1 AND position > $2::int8 ORDER BY position LIMIT $3::int8",
            [.text(scope.tenantID), .int(min(position, UInt64(Int64.max))), .int(Int64(limit))]
        )
        return try EventRow.decodeAll(r)
    }

    func excludeAppends() throws {
        if recording != nil { try stopRecording(nil) }
        try read("SELECT pg_advisory_xact_lock($1::int8)", [.int(scope.appendLockKey)])
    }

    /// Locks a checkpoint row until the transaction ends (`FOR UPDATE`) and checks the lease
    /// epoch stored on it (`nil` when the row does not exist) with the round trip that carries
    /// the next read, before anything after that read is sent (``checkLater(_:_:_:)``).
    func checkLockedLeaseEpoch(_ row: String, _ check: @escaping (Int64?) throws -> Void) throws {
        if recording != nil {
            if cache.leaseEpochs[row] == nil { try record(.leaseEpoch(row)) }
            return
        }
        if let hit = cache.leaseEpochs[row] { return try checkNow { try check(hit) } }
        let (sql, params) = leaseEpochQuery(row)
        try checkLater(sql, params) { r in try check(r.rowCount == 0 ? nil : r.int64(0, 0)) }
    }

    /// The lease epoch on a checkpoint row, the row locked until the transaction ends.
    private func leaseEpochQuery(_ row: String) -> (String, [PostgresValue]) {
        (
            "SELECT lease_epoch FROM \(scope.sql.checkpoints) WHERE tenant_id = $1 AND projection = $2 FOR UPDATE",
            [.text(scope.tenantID), .text(row)]
        )
    }

    /// Each ID with its document's bytes (NULL without one): the shape of ``documents(_:ids:)``.
    private func documentsQuery(_ model: String, _ ids: [String]) throws -> (String, [PostgresValue]) {
        (
            """
            SELECT u.id, (SELECT d.raw FROM \(scope.sql.documents) d WHERE d.tenant_id = $1 AND d.model = $2 AND d.id = u.id)
            FROM unnest($3::text[]) AS u(id)
            """,
            [.text(scope.tenantID), .text(model), .bytes(try Self.textArray(ids))]
        )
    }
}

// MARK: - Reading ahead for a grouped transaction

extension PostgresReadModelTransaction {
    /// A read a body makes before its first write: sent for every body of a group in one round
    /// trip (``prefetch(_:)``).
    enum FirstRead {
        /// The lease epoch on a checkpoint row, locked (a lease fence).
        case leaseEpoch(String)
        case checkpoints([String])
        case documents(model: String, ids: [String])
    }

    /// Values read ahead, and the transaction's own writes since (a body sees the writes of the
    /// bodies before it, as if each ran in turn).
    struct PrefetchCache {
        /// By model and ID; `.some(nil)`: no such document.
        var documents: [String: [String: Data?]] = [:]
        var checkpoints: [String: UInt64] = [:]
        /// `.some(nil)`: no such row.
        var leaseEpochs: [String: Int64?] = [:]

        mutating func wrote(_ model: String, _ id: String, _ json: Data?) {
            documents[model, default: [:]][id] = .some(json)
        }

        /// The documents of `ids` that exist, when every one of them is known.
        func documents(_ model: String, _ ids: [String]) -> [String: Data]? {
            guard let known = documents[model] else { return nil }
            var out: [String: Data] = [:]
            for id in ids {
                guard let value = known[id] else { return nil }
                if let value { out[id] = value }
            }
            return out
        }

        func checkpoints(_ keys: [String]) -> [UInt64]? {
            var out: [UInt64] = []
            out.reserveCapacity(keys.count)
            for k in keys {
                guard let v = checkpoints[k] else { return nil }
                out.append(v)
            }
            return out
        }
    }

    /// The recording run stopped at the body's first plain read or write.
    struct RecordingStopped: Error {}

    /// Runs `body` without sending anything: it goes until its first plain read `known` cannot
    /// answer, or its first write (a fence and a checkpoint check are noted and it goes on; a
    /// read `known` answers gets that real value; any other read is noted and it stops — the body
    /// never sees a made-up value), and returns what it read meanwhile. What the body does after
    /// stopping (it may catch the error) fails the same way; its outcome is of no interest — the
    /// body runs again for real.
    static func firstReads(
        of body: (any ReadModelTransaction) throws -> Void, connection: PostgresConnection, scope: Scope,
        knowing known: PrefetchCache = PrefetchCache()
    ) -> [FirstRead] {
        let tx = PostgresReadModelTransaction(connection: connection, scope: scope, deferring: true)
        tx.recording = ([], false)
        tx.cache = known
        do { try body(tx) } catch {}
        tx.close()
        return tx.recording?.reads ?? []
    }

    /// Reads ahead for `parts` (the independent parts of an append's hook) in rounds: each round
    /// runs every part that is not done without sending anything — answered from what the rounds
    /// before read — up to its first read they did not, and reads what all of them stopped at in
    /// one round trip. Three inline projections, each reading its copy's generations and then its
    /// documents: two round trips rather than six. At most `rounds` round trips; what a part
    /// reads after them goes to the server as it comes.
    func prefetch(for parts: [(any ReadModelTransaction) throws -> Void], rounds: Int) throws {
        var pending = Array(parts.indices)
        for _ in 0..<rounds {
            var reads: [FirstRead] = []
            var next: [Int] = []
            for i in pending {
                let r = Self.firstReads(of: parts[i], connection: connection, scope: scope, knowing: cache)
                if !r.isEmpty {
                    reads += r
                    next.append(i)
                }
            }
            if reads.isEmpty { return }
            try prefetch(reads)
            pending = next
        }
    }

    /// Recording: notes a read the body goes on after (a check's).
    private func record(_ read: FirstRead) throws {
        guard isOpen else { throw MinkError(.internalError, "read-model transaction used after it ended") }
        guard let r = recording, !r.stopped else { throw RecordingStopped() }
        recording?.reads.append(read)
    }

    /// Recording: notes the read the body stops at (none: a write), and stops.
    private func stopRecording(_ read: FirstRead?) throws -> Never {
        if let read, let r = recording, !r.stopped { recording?.reads.append(read) }
        recording?.stopped = true
        throw RecordingStopped()
    }

    /// Runs a check whose value was read ahead; a failure sticks (see `failedCheck`).
    private func checkNow(_ check: () throws -> Void) throws {
        _ = try conn()
        do {
            try check()
        } catch {
            failedCheck = error
            throw error
        }
    }

    /// Sends `BEGIN`, what is deferred and `reads` in one round trip, and keeps what they read:
    /// the bodies run next answer their reads and checks from it, without a round trip.
    func prefetch(_ reads: [FirstRead]) throws {
        // A key libpq cannot send (a NUL character) is not read ahead: the body's own read of it
        // fails as it would have, and the body may catch that.
        let reads = reads.filter { read in
            switch read {
            case .leaseEpoch(let row): !row.utf8.contains(0)
            case .checkpoints(let keys): !keys.contains { $0.utf8.contains(0) }
            case .documents(let model, let ids): !model.utf8.contains(0) && !ids.contains { $0.utf8.contains(0) }
            }
        }
        guard defers, !reads.isEmpty else { return }
        var statements: [PostgresConnection.PipelineStatement] = []
        statements.reserveCapacity(reads.count)
        for read in reads {
            let (sql, params) = switch read {
            case .leaseEpoch(let row): leaseEpochQuery(row)
            case .checkpoints(let keys): try checkpointsQuery(keys)
            case .documents(let model, let ids): try documentsQuery(model, ids)
            }
            statements.append(.init(sql, params, prepare: true))
        }
        let results = try sendDeferred(then: statements).suffix(reads.count)
        for (read, r) in zip(reads, results) {
            switch read {
            case .leaseEpoch(let row):
                cache.leaseEpochs[row] = .some(r.rowCount == 0 ? nil : r.int64(0, 0))
            case .checkpoints(let keys):
                for (k, v) in zip(keys, try Self.decodeCheckpoints(r, count: keys.count)) { cache.checkpoints[k] = v }
            case .documents(let model, _):
                for i in 0..<r.rowCount {
                    guard let id = r.string(i, 0) else { continue }
                    cache.documents[model, default: [:]][id] = .some(r.isNull(i, 1) ? nil : r.bytes(i, 1))
                }
            }
        }
    }
}

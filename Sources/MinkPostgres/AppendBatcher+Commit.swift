import Foundation
import Mink

extension AppendBatcher {
    /// How a batch's transaction ended.
    enum BatchOutcome {
        /// The transaction committed (or had nothing to write): each append's own outcome, in
        /// order, and how many appends were written.
        case committed([Result<AppendResult, any Error>], written: Int)
        /// Nothing of the batch was committed (or, after a failed `COMMIT`, it is unknown
        /// whether it was); every append fails with `error`, or is tried again alone when
        /// `retryAlone`.
        case failed(any Error, retryAlone: Bool)
    }

    /// The transaction cannot go on (a hook's failure broke the connection or its savepoint).
    private struct TransactionBroken: Error {
        let error: any Error
    }

    /// The columns of the rows a batch inserts, one array per column.
    private struct Columns {
        var streams: [String] = []
        var categories: [String] = []
        var positions: [Int64] = []
        var versions: [Int64] = []
        var ids: [String] = []
        var types: [String] = []
        var data: [Data] = []
        var metadata: [String] = []
    }

    /// Runs one batch's transaction on `conn` (its worker's queue).
    ///
    /// Two round trips when no hook runs a statement: `BEGIN`, the tenant's advisory lock and
    /// the state of every stream of the batch in one pipeline; then the insert of every row (with
    /// the streams' new versions and the NOTIFY) and `COMMIT` in a second one. Between them, the
    /// appends are decided here one after the other, in queue order, exactly as if each were its
    /// own transaction: each sees the streams as the appends before it in the batch left them.
    func commit(_ batch: [Pending], on conn: PostgresConnection) -> BatchOutcome {
        let sql = scope.sql
        let tenant = PostgresValue.text(scope.tenantID)

        // The streams of the batch (in order of first appearance) and every (stream, event ID)
        // pair whose ID the caller chose, to recognise retries. IDs the store generated for this
        // call cannot be stored yet (``AppendRequest/hasFreshIDs``): they are not looked up.
        var streamIndex: [String: Int] = [:]
        var streams: [String] = []
        var pairStreams: [String] = []
        var pairIDs: [String] = []
        for p in batch {
            let stream = p.request.streamID
            if streamIndex[stream] == nil {
                streamIndex[stream] = streams.count
                streams.append(stream)
            }
            if p.request.hasFreshIDs { continue }
            for r in p.rows {
                pairStreams.append(stream)
                pairIDs.append(r.id)
            }
        }

        var head: Int64
        var versions: [Int64]
        // Per stream: 0 live, 1 soft-deleted, 2 tombstone (see ``Statements/batchVersions``).
        var deleted: [Int64]
        // Per stream: the stored events whose IDs the batch uses again (retries only).
        var stored: [[Event]] = Array(repeating: [], count: streams.count)
        do {
            // The lock is granted before the state statement starts, so that statement's snapshot
            // includes every commit of the tenant before this one (READ COMMITTED takes a
            // snapshot per statement).
            let stateStatement: PostgresConnection.PipelineStatement
            if pairIDs.isEmpty {
                stateStatement = .init(sql.batchVersions, [tenant, .bytes(BinaryArray.text(streams))], prepare: true)
            } else {
                // Not prepared: planned for each batch on the table as it is now. A plan kept for
                // the connection's lifetime, made while the table was empty (every index then
                // costs the same), probed each event ID through the type index, filtering every
                // event of the tenant (measured: 1.6 s per batch after 3,000 events). Planning
                // costs about 1 ms per batch — paid only by batches with IDs chosen by clients.
                stateStatement = .init(sql.batchState, [
                    tenant, .bytes(BinaryArray.text(streams)), .bytes(BinaryArray.text(pairStreams)), .bytes(BinaryArray.text(pairIDs)),
                ])
            }
            let results = try conn.pipeline([
                .init("BEGIN"),
                .init("SELECT pg_advisory_xact_lock($1::int8)", [.int(scope.appendLockKey)], prepare: true),
                stateStatement,
            ])
            let state = results[2]
            guard state.rowCount == streams.count else {
                throw PostgresError(sqlState: "XX000", message: "the batch state has \(state.rowCount) rows for \(streams.count) streams")
            }
            head = state.int64(0, 0) ?? 0
            versions = streams.indices.map { state.int64($0, 1) ?? 0 }
            deleted = streams.indices.map { state.int64($0, pairIDs.isEmpty ? 2 : 3) ?? 0 }
            let retried = pairIDs.isEmpty ? [] : Set(streams.indices.filter { (state.int64($0, 2) ?? 0) > 0 })
            if !retried.isEmpty {
                var s: [String] = []
                var i: [String] = []
                for (k, stream) in pairStreams.enumerated() where retried.contains(streamIndex[stream]!) {
                    s.append(stream)
                    i.append(pairIDs[k])
                }
                let found = try conn.query(sql.storedEvents, [tenant, .bytes(BinaryArray.text(s)), .bytes(BinaryArray.text(i))])
                for e in try EventRow.decodeAll(found) { stored[streamIndex[e.streamID]!].append(e) }
            }
        } catch {
            conn.rollbackIfNeeded()
            return failure(error, committing: false)
        }

        let now = EventRow.microseconds(Date())
        let timestamp = EventRow.date(microseconds: now)
        var added: [[Event]] = Array(repeating: [], count: streams.count)
        var columns = Columns()
        var outcomes: [Result<AppendResult, any Error>] = []
        outcomes.reserveCapacity(batch.count)
        var written = 0
        for p in batch {
            let request = p.request
            let s = streamIndex[request.streamID]!
            let current = versions[s]
            do {
                if !request.hasFreshIDs, !stored[s].isEmpty || !added[s].isEmpty {
                    do {
                        if let replay = try InMemoryStorage.replay(of: request, in: stored[s] + added[s]) {
                            outcomes.append(.success(replay))
                            continue
                        }
                    } catch var e as MinkError where e.code == .duplicateEventID {
                        e.actualVersion = current  // `replay` saw only some of the stream's events
                        throw e
                    }
                }
                if deleted[s] == 2 { throw MinkError.streamDeleted(request.streamID) }
                // A soft-deleted stream counts as not existing for the check; its versions go on.
                try request.expectedVersion.check(streamID: request.streamID, currentVersion: deleted[s] == 1 ? 0 : current)
                if Set(p.rows.map(\.id)).count != p.rows.count {
                    var e = MinkError(.duplicateEventID, "an event ID is used twice in the append to stream \(request.streamID)", streamID: request.streamID)
                    e.actualVersion = current
                    throw e
                }
                var events: [Event] = []
                events.reserveCapacity(p.rows.count)
                for (i, r) in p.rows.enumerated() {
                    let e = request.events[i]
                    events.append(Event(
                        id: r.id, streamID: request.streamID, type: e.type, data: e.data, metadata: e.metadata,
                        version: current + Int64(i) + 1, globalPosition: UInt64(head) + UInt64(i) + 1, timestamp: timestamp
                    ))
                }
                if let hook = p.hook { try runHook(hook, events, on: conn) }

                head += Int64(events.count)
                versions[s] += Int64(events.count)
                deleted[s] = 0
                added[s] += events
                let category = StreamID.category(of: request.streamID)
                for (i, e) in events.enumerated() {
                    columns.streams.append(request.streamID)
                    columns.categories.append(category)
                    columns.positions.append(Int64(e.globalPosition))
                    columns.versions.append(e.version)
                    columns.ids.append(e.id)
                    columns.types.append(e.type)
                    columns.data.append(e.data)
                    columns.metadata.append(p.rows[i].metadata)
                }
                written += 1
                outcomes.append(.success(AppendResult(streamID: request.streamID, events: events)))
            } catch let broken as TransactionBroken {
                conn.rollbackIfNeeded()
                return failure(broken.error, committing: false)
            } catch {
                outcomes.append(.failure(error))
            }
        }

        guard !columns.ids.isEmpty else {
            // Nothing to write (replays and failures, all decided on committed state): end the
            // transaction without a commit.
            conn.rollbackIfNeeded()
            return .committed(outcomes, written: 0)
        }
        let touched = streams.indices.filter { !added[$0].isEmpty }
        do {
            let results = try conn.pipeline([
                .init(sql.insertBatch(channel: channel), [
                    tenant, .int(now),
                    .bytes(BinaryArray.text(columns.streams)), .bytes(BinaryArray.text(columns.categories)),
                    .bytes(BinaryArray.int8(columns.positions)), .bytes(BinaryArray.int8(columns.versions)),
                    .bytes(BinaryArray.text(columns.ids)), .bytes(BinaryArray.text(columns.types)),
                    .bytes(BinaryArray.bytea(columns.data)), .bytes(BinaryArray.text(columns.metadata)),
                    .bytes(BinaryArray.text(touched.map { streams[$0] })), .bytes(BinaryArray.int8(touched.map { versions[$0] })),
                    .text(scope.notifyKey),
                ], prepare: true),
                .init("COMMIT"),
            ])
            // A COMMIT of a transaction that failed unnoticed answers ROLLBACK, not an error.
            guard results[1].commandStatus == "COMMIT" else {
                throw PostgresError(sqlState: "XX000", message: "COMMIT answered \(results[1].commandStatus)")
            }
        } catch let f as PostgresConnection.PipelineFailure where f.index == 0 && !f.error.connectionLost {
            // The insert failed and COMMIT was skipped: nothing was committed.
            conn.rollbackIfNeeded()
            return failure(f.error, committing: false)
        } catch {
            conn.rollbackIfNeeded()
            return failure(error, committing: true)
        }
        return .committed(outcomes, written: written)
    }

    /// The batch-wide failure for `error`.
    /// - Parameter committing: the failure came with or after `COMMIT`: whether the transaction
    ///   committed is unknown (the connection was lost) or it did not — either way every append
    ///   fails with a transient `.unavailable` and never reports a success it may not have had.
    private func failure(_ error: any Error, committing: Bool) -> BatchOutcome {
        let error: any Error = (error as? PostgresConnection.PipelineFailure).map { $0.error as any Error } ?? error
        if committing {
            let message = "the commit of the append failed (\((error as? PostgresError)?.message ?? "\(error)")); "
                + "it may or may not have been committed: retrying with the same event IDs is safe"
            return .failed(MinkError(.unavailable, "PostgreSQL is unavailable: " + message, isTransient: true), retryAlone: false)
        }
        if let e = error as? PostgresError {
            return .failed(e, retryAlone: !e.isTransient && !e.isMissingStorage)
        }
        let transient = (error as? MinkError)?.isTransient ?? false
        return .failed(error, retryAlone: !transient)
    }

    /// Runs an append's hook inside a savepoint (set lazily by its first statement), so that a
    /// failing hook rolls back its own writes and nothing else.
    /// - Throws: the hook's error (the append fails alone), or ``TransactionBroken`` when the
    ///   transaction cannot go on.
    private func runHook(_ hook: AppendTransactionHook, _ events: [Event], on conn: PostgresConnection) throws {
        let savepoint = "mink_append"
        let tx = PostgresReadModelTransaction(connection: conn, scope: scope, savepoint: savepoint)
        do {
            defer { tx.close() }
            try hook(events, tx)
            // Fails when the hook caught a failed statement and went on (its subtransaction is
            // aborted): then the append fails too, below.
            if tx.savepointSet { try conn.execute("RELEASE SAVEPOINT \(savepoint)") }
        } catch {
            guard conn.isOpen else { throw TransactionBroken(error: error) }
            if tx.savepointSet {
                do {
                    try conn.execute("ROLLBACK TO SAVEPOINT \(savepoint); RELEASE SAVEPOINT \(savepoint)")
                } catch let broken {
                    throw TransactionBroken(error: broken)
                }
            } else if conn.inTransactionError {
                throw TransactionBroken(error: error)
            }
            throw error
        }
    }
}

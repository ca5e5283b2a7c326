import Foundation

extension InMemoryStorage {
    /// A stream's version counter and life-cycle state (kept after a deletion).
    struct StreamRecord {
        enum State { case live, soft, hard }
        var version: Int64
        var state: State
        var createdAt: Date
        var updatedAt: Date
    }
}

extension InMemoryStorage: StreamLifecycleAdapter {
    public func listStreams(_ query: StreamListQuery) async throws -> [StreamInfo] {
        withState { state in
            let ids = state.streams.compactMap { id, indexes in !indexes.isEmpty && query.matches(id) ? id : nil }
            return ids.sorted(by: StreamID.bytewiseLess).prefix(max(0, query.limit)).compactMap { id in
                guard let r = state.records[id], r.state == .live else { return nil }
                return StreamInfo(
                    streamID: id, version: r.version, eventCount: Int64(state.streams[id]?.count ?? 0),
                    createdAt: r.createdAt, updatedAt: r.updatedAt
                )
            }
        }
    }

    public func deleteStream(_ streamID: String, expectedVersion: ExpectedVersion, hard: Bool, hook: AppendTransactionHook?) async throws -> StreamDeletion {
        let tenantID = self.tenantID
        return try withState { state in
            guard var record = state.records[streamID] else { throw MinkError.streamNotFound(streamID) }
            switch record.state {
            case .hard: throw MinkError.streamDeleted(streamID)
            case .soft where !hard: throw MinkError.streamNotFound(streamID)
            case .soft, .live: break
            }
            try expectedVersion.check(streamID: streamID, currentVersion: record.state == .soft ? 0 : record.version)
            // Staged on a copy: the record's append may still fail, and then nothing is deleted.
            var staged = state
            let indexes = staged.streams[streamID] ?? []
            for i in indexes { staged.log[i] = nil }
            staged.streams[streamID] = []
            staged.snapshots[streamID] = nil
            record.state = hard ? .hard : .soft
            staged.records[streamID] = record
            let request = StreamDeletedRecord.request(
                streamID: streamID, lastVersion: record.version, deletedEvents: Int64(indexes.count), hard: hard, tenantID: tenantID
            )
            let result = try Self.append(request, hook: hook, state: &staged)
            state = staged
            return StreamDeletion(
                streamID: streamID, deletedEvents: Int64(indexes.count), lastVersion: record.version, hard: hard,
                position: result.toPosition
            )
        }
    }

    public func isTombstoned(_ streamID: String) async throws -> Bool {
        withState { $0.records[streamID]?.state == .hard }
    }

    public func snapshotUnlessTombstoned(streamID: String) async throws -> (snapshot: Snapshot?, tombstoned: Bool) {
        withState { $0.records[streamID]?.state == .hard ? (nil, true) : ($0.snapshots[streamID], false) }
    }

    public func streamRetention(_ streamID: String) async throws -> StreamRetention? {
        withState { $0.retention[streamID] }
    }

    public func streamRetentions(_ streamIDs: [String]) async throws -> [String: StreamRetention] {
        withState { state in
            var rules: [String: StreamRetention] = [:]
            for id in streamIDs { if let r = state.retention[id] { rules[id] = r } }
            return rules
        }
    }

    public func setStreamRetention(_ streamID: String, _ retention: StreamRetention) async throws {
        try withState { state in
            if state.records[streamID]?.state == .hard { throw MinkError.streamDeleted(streamID) }
            state.retention[streamID] = retention.isEmpty ? nil : retention
        }
    }

    public func scavengeBatch(now: Date, limit: Int) async throws -> Int {
        withState { state in
            var removed = 0
            let head = state.log.count - 1  // never removed: the next position counts from it
            for (streamID, retention) in state.retention where removed < limit {
                guard let record = state.records[streamID], var indexes = state.streams[streamID] else { continue }
                indexes.removeAll { i in
                    guard removed < limit, i != head, let e = state.log[i],
                        !retention.keeps(e, streamVersion: record.version, now: now)
                    else { return false }
                    state.log[i] = nil
                    removed += 1
                    return true
                }
                state.streams[streamID] = indexes
            }
            return removed
        }
    }

    public func applyImportedDeletion(streamID: String, lastVersion: Int64, hard: Bool) async throws {
        withState { state in
            Self.applyImportedDeletion(
                ImportedDeletion(streamID: streamID, lastVersion: lastVersion, hard: hard),
                records: &state.records, log: &state.log, streams: &state.streams, at: Date()
            )
        }
    }

    /// The effect of an imported `$StreamDeleted` record on a tenant's stream records (the one
    /// rule, for ``applyImportedDeletion(streamID:lastVersion:hard:)`` and the import): the
    /// stream's events up to `lastVersion` are removed, as the deletion removed them (an export
    /// taken while the stream was deleted holds some of them before the record); its version
    /// counter becomes at least `lastVersion`; a hard deletion leaves a tombstone; a soft one
    /// marks the stream deleted unless it has stored events (written again after the deletion:
    /// it stays live).
    /// - Parameter now: the record's time when the stream has no record yet.
    static func applyImportedDeletion(
        _ deletion: ImportedDeletion, records: inout [String: StreamRecord], log: inout [Event?], streams: inout [String: [Int]],
        at now: Date
    ) {
        if let indexes = streams[deletion.streamID] {
            let (gone, kept) = indexes.reduce(into: ([Int](), [Int]())) { r, i in
                if let e = log[i], e.version <= deletion.lastVersion { r.0.append(i) } else { r.1.append(i) }
            }
            for i in gone { log[i] = nil }
            streams[deletion.streamID] = kept
        }
        var record = records[deletion.streamID] ?? StreamRecord(version: 0, state: .soft, createdAt: now, updatedAt: now)
        record.version = max(record.version, deletion.lastVersion)
        if deletion.hard {
            record.state = .hard
        } else if (streams[deletion.streamID] ?? []).isEmpty {
            record.state = .soft
        }
        records[deletion.streamID] = record
    }
}

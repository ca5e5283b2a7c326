import Foundation

extension InMemoryStorage: EventImporting {
    /// The largest position an import into the memory storage may reach (one slot per position,
    /// gaps included: ~8 bytes each).
    static let maxImportPosition: UInt64 = 10_000_000

    /// Imports into this tenant under the storage's one lock: the whole log is built apart and
    /// swapped in only when every event was accepted (memory storage holds everything anyway).
    public func importEvents(from source: any EventImportSource, hook: AppendTransactionHook?) async throws -> ImportSummary {
        // Read (and validate) before taking the lock: the source may block on its input.
        var incoming: [Event] = []
        while let batch = try source.nextBatch() { incoming.append(contentsOf: batch) }
        return try withState { state in
            if !state.log.isEmpty {
                throw MinkError(.tenantNotEmpty, "tenant \(tenantID) already has events; import only into a tenant without events")
            }
            // The log keeps every position (a deleted or scavenged one as an empty slot, never
            // reused); a stream may start above version 1 (its first events deleted or scavenged)
            // and its versions are consecutive from there; a `$StreamDeleted` record re-creates
            // the deleted stream's version counter and its soft-deleted or tombstoned state.
            var log: [Event?] = []
            var streams: [String: [Int]] = [:]
            var records: [String: StreamRecord] = [:]
            var ids: [String: Set<String>] = [:]
            /// Streams deleted by an earlier line and not written since.
            var deletedSince: Set<String> = []
            for e in incoming {
                guard e.globalPosition > UInt64(log.count) else {
                    throw MinkError(.invalidImport, "position \(e.globalPosition) is not above the previous one (\(log.count))", position: e.globalPosition)
                }
                guard ids[e.streamID, default: []].insert(e.id).inserted else {
                    throw MinkError(.invalidImport, "event ID \(e.id) appears twice in stream \(e.streamID)", streamID: e.streamID, position: e.globalPosition)
                }
                let record = records[e.streamID]
                if record?.state == .hard {
                    throw MinkError(.invalidImport, "stream \(e.streamID) has an event at position \(e.globalPosition) after its hard deletion", streamID: e.streamID, position: e.globalPosition)
                }
                // After a soft deletion, the next event is above its lastVersion, not necessarily
                // the next one (retention may have removed the first events written after it).
                let afterDeletion = deletedSince.remove(e.streamID) != nil
                if let record, afterDeletion ? e.version <= record.version : e.version != record.version + 1 {
                    throw MinkError(.invalidImport, "stream \(e.streamID) has version \(e.version) at position \(e.globalPosition) after version \(record.version)", streamID: e.streamID, position: e.globalPosition)
                }
                // Every position is a slot here, gaps included: a crafted position near 2^53 (or
                // many lines each with a large gap) asked for unbounded memory.
                guard e.globalPosition <= Self.maxImportPosition else {
                    throw MinkError(
                        .invalidImport,
                        "position \(e.globalPosition): the memory storage keeps a slot per position and takes positions up to \(Self.maxImportPosition)",
                        position: e.globalPosition)
                }
                while UInt64(log.count) < e.globalPosition - 1 { log.append(nil) }
                streams[e.streamID, default: []].append(log.count)
                log.append(e)
                let createdAt = record?.state == .live ? record!.createdAt : e.timestamp
                records[e.streamID] = StreamRecord(version: e.version, state: .live, createdAt: createdAt, updatedAt: e.timestamp)
                if let d = try ImportedDeletion.of(e) {
                    deletedSince.insert(d.streamID)
                    Self.applyImportedDeletion(d, records: &records, log: &log, streams: &streams, at: e.timestamp)
                    // The removed events' IDs are free again, as in the source.
                    ids[d.streamID] = nil
                }
            }
            if let hook, !incoming.isEmpty {
                let tx = InMemoryTransaction(state: state)
                try hook(incoming, tx)
                state.documents = tx.state.documents
                state.checkpoints = tx.state.checkpoints
            }
            state.log = log
            state.streams = streams
            state.records = records
            return ImportSummary(events: Int64(incoming.count), streams: Int64(streams.count), head: incoming.last?.globalPosition ?? 0)
        }
    }
}

import Foundation

extension InMemoryStorage: EventImporting {
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
            // Positions may have gaps and streams may start above version 1 (deleted events) in
            // an export: this storage indexes its log by position - 1 and numbers a stream's
            // versions by its event count, so neither can be represented; they are refused
            // rather than renumbered.
            var streams: [String: [Int]] = [:]
            var ids: [String: Set<String>] = [:]
            for (i, e) in incoming.enumerated() {
                guard e.globalPosition == UInt64(i + 1) else {
                    throw MinkError(.invalidImport, "memory storage needs dense positions from 1; position \(e.globalPosition) found where \(i + 1) was expected", position: e.globalPosition)
                }
                guard ids[e.streamID, default: []].insert(e.id).inserted else {
                    throw MinkError(.invalidImport, "event ID \(e.id) appears twice in stream \(e.streamID)", streamID: e.streamID, position: e.globalPosition)
                }
                let count = streams[e.streamID]?.count ?? 0
                guard e.version == Int64(count + 1) else {
                    throw MinkError(.invalidImport, "memory storage needs every stream to start at version 1; stream \(e.streamID) has version \(e.version) at position \(e.globalPosition)", streamID: e.streamID, position: e.globalPosition)
                }
                streams[e.streamID, default: []].append(i)
                _ = try ImportedDeletion.of(e)  // checked; memory storage keeps no separate counters
            }
            if let hook, !incoming.isEmpty {
                let tx = InMemoryTransaction(state: state)
                try hook(incoming, tx)
                state.documents = tx.state.documents
                state.checkpoints = tx.state.checkpoints
            }
            state.log = incoming
            state.streams = streams
            return ImportSummary(events: Int64(incoming.count), streams: Int64(streams.count), head: incoming.last?.globalPosition ?? 0)
        }
    }
}

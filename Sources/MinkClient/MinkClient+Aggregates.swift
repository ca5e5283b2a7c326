import Foundation
import Mink

extension MinkClient {
    /// Rebuilds an aggregate from its remote stream, like ``Mink/EventStore/loadAggregate(_:)``:
    /// the stream is the aggregate's ID; a ``Mink/SnapshottableAggregate`` first restores the
    /// stream's newest snapshot (if any) and reads only the later events; every event is decoded
    /// through the ``registry`` and applied; the aggregate's version becomes the stream's. A
    /// stream that does not exist leaves a new aggregate at version 0.
    /// - Parameter pageSize: events per request.
    /// - Throws: `.eventTypeNotRegistered` for a stored type with no Swift type,
    ///   `.serializationFailed`, transport errors.
    public func loadAggregate(_ aggregate: some Aggregate, pageSize: Int = 1000) async throws {
        let id = aggregate.aggregateID
        // The pages the server gives (1 to 10,000 events): a replay that expected more per page
        // would take a full page of 10,000 for the last one and stop early.
        let pageSize = Swift.min(Swift.max(pageSize, 1), 10_000)
        try await AggregateReplay.load(
            aggregate, registry: registry, serializer: serializer, pageSize: pageSize,
            loadSnapshot: { try await loadSnapshot(id) },
            readPage: { from in
                do {
                    return try await readStream(id, from: from, limit: pageSize)
                } catch let error as MinkError where error.code == .streamNotFound {
                    return []  // a new aggregate (or, with a snapshot, nothing after it)
                }
            }
        )
    }

    /// Appends an aggregate's uncommitted events with its version as the expected version, like
    /// ``Mink/EventStore/saveAggregate(_:metadata:)``, then clears them and moves the version on.
    /// Nothing uncommitted: nothing is sent. Stores a snapshot when ``snapshotPolicy`` says so
    /// (a failed snapshot is ignored: the events are committed).
    /// - Returns: the append's result, or `nil` when there was nothing to save.
    /// - Throws: `.concurrencyConflict` with `streamID`, `expectedVersion` and `actualVersion`
    ///   when another writer saved the aggregate first.
    @discardableResult
    public func saveAggregate(_ aggregate: some Aggregate, metadata: Metadata = Metadata()) async throws -> AppendResult? {
        let id = aggregate.aggregateID
        return try await AggregateReplay.save(
            aggregate, policy: snapshotPolicy,
            append: { events, expected in try await append(id, events, expectedVersion: expected, metadata: metadata) },
            saveSnapshot: { version, state in _ = try await saveSnapshot(id, version: version, state: state) }
        )
    }

    /// Stores a snapshot of an aggregate's current state at its current version.
    /// - Returns: `false` when the server kept a newer snapshot.
    @discardableResult
    public func saveSnapshot(of aggregate: some SnapshottableAggregate) async throws -> Bool {
        try await saveSnapshot(aggregate.aggregateID, version: aggregate.version, state: try aggregate.snapshotState())
    }
}

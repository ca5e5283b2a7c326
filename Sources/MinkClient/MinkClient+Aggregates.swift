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
        var from: Int64 = 1
        if let snapshottable = aggregate as? any SnapshottableAggregate,
            let snapshot = try await loadSnapshot(aggregate.aggregateID)
        {
            try snapshottable.restore(fromSnapshot: snapshot.state)
            aggregate.version = snapshot.version
            from = snapshot.version + 1
        }
        while true {
            let page: [Event]
            do {
                page = try await readStream(aggregate.aggregateID, from: from, limit: pageSize)
            } catch let error as MinkError where error.code == .streamNotFound {
                return  // a new aggregate (or, with a snapshot, nothing after it)
            }
            for event in page {
                try aggregate.applyEvent(try registry.decode(event, using: serializer))
                aggregate.version = event.version
            }
            guard page.count == pageSize, let last = page.last else { return }
            from = last.version + 1
        }
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
        let events = aggregate.uncommittedEvents
        if events.isEmpty { return nil }
        let previous = aggregate.version
        let result = try await append(aggregate.aggregateID, events, expectedVersion: .exact(previous), metadata: metadata)
        aggregate.version = result.toVersion
        aggregate.clearUncommittedEvents()
        if let snapshottable = aggregate as? any SnapshottableAggregate,
            snapshotPolicy.shouldSnapshot(previousVersion: previous, newVersion: result.toVersion)
        {
            _ = try? await saveSnapshot(aggregate.aggregateID, version: result.toVersion, state: try snapshottable.snapshotState())
        }
        return result
    }

    /// Stores a snapshot of an aggregate's current state at its current version.
    /// - Returns: `false` when the server kept a newer snapshot.
    @discardableResult
    public func saveSnapshot(of aggregate: some SnapshottableAggregate) async throws -> Bool {
        try await saveSnapshot(aggregate.aggregateID, version: aggregate.version, state: try aggregate.snapshotState())
    }
}

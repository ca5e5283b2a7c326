import Foundation

/// The seed's aggregate algorithms, written once over any source of events: the local
/// `EventStore` and `MinkClient` (over HTTP) both load and save aggregates through these.
public enum AggregateReplay {
    /// Rebuilds an aggregate: from the newest snapshot when the aggregate supports snapshots and
    /// `loadSnapshot` finds one, then every later event, page by page, decoded through `registry`.
    /// A missing stream (an empty first page) leaves a new aggregate at version 0.
    /// - Parameters:
    ///   - loadSnapshot: the stream's newest snapshot, or `nil` (not called for aggregates that
    ///     are not `SnapshottableAggregate`).
    ///   - readPage: up to `pageSize` events of the stream from a version (inclusive).
    public static func load(
        _ aggregate: some Aggregate, registry: EventRegistry, serializer: any EventSerializer, pageSize: Int,
        loadSnapshot: () async throws -> Snapshot?, readPage: (_ from: Int64) async throws -> [Event]
    ) async throws {
        var from: Int64 = 1
        if let s = aggregate as? any SnapshottableAggregate, let snapshot = try await loadSnapshot() {
            try s.restore(fromSnapshot: snapshot.state)
            aggregate.version = snapshot.version
            // A snapshot at the largest version has nothing after it (and `+ 1` would trap).
            from = snapshot.version < Int64.max ? snapshot.version + 1 : Int64.max
        }
        while true {
            let page = try await readPage(from)
            for event in page {
                try aggregate.applyEvent(try registry.decode(event, using: serializer))
                aggregate.version = event.version
            }
            guard page.count == pageSize, let last = page.last else { return }
            from = last.version + 1
        }
    }

    /// Appends an aggregate's uncommitted events with its version as the expected version, then
    /// clears them and moves the version on; nothing uncommitted: nothing is written. When the
    /// aggregate supports snapshots and `policy` says so, stores one through `saveSnapshot` (a
    /// failure there is passed to `snapshotFailed`: the events are committed, a missing snapshot
    /// only makes the next load longer).
    @discardableResult
    public static func save(
        _ aggregate: some Aggregate, policy: SnapshotPolicy?,
        append: (_ events: [any EventPayload], _ expected: ExpectedVersion) async throws -> AppendResult,
        saveSnapshot: (_ version: Int64, _ state: Data) async throws -> Void,
        snapshotFailed: (any Error) -> Void = { _ in }
    ) async throws -> AppendResult? {
        let events = aggregate.uncommittedEvents
        if events.isEmpty { return nil }
        let previous = aggregate.version
        let result = try await append(events, .exact(previous))
        aggregate.version = result.toVersion
        aggregate.clearUncommittedEvents()
        if let policy, let s = aggregate as? any SnapshottableAggregate,
            policy.shouldSnapshot(previousVersion: previous, newVersion: result.toVersion)
        {
            do { try await saveSnapshot(result.toVersion, try s.snapshotState()) } catch { snapshotFailed(error) }
        }
        return result
    }
}

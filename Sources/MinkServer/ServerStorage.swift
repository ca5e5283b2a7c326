import Mink

/// The storage a server runs on: the three adapter roles (usually one object), scoped to the
/// default tenant, plus how to describe and close it.
public struct ServerStorage: Sendable {
    /// Events.
    public var events: any EventStoreAdapter
    /// Snapshots.
    public var snapshots: any SnapshotAdapter
    /// Read models and checkpoints.
    public var readModels: any ReadModelStore
    /// `sqlite`, `postgres` or `memory` (shown by `/v1/info`).
    public var kind: String
    /// Releases connections and files; called last on shutdown.
    public var close: @Sendable () async -> Void

    /// Bundles storage roles.
    public init(
        events: any EventStoreAdapter, snapshots: any SnapshotAdapter, readModels: any ReadModelStore, kind: String,
        close: @escaping @Sendable () async -> Void = {}
    ) {
        self.events = events
        self.snapshots = snapshots
        self.readModels = readModels
        self.kind = kind
        self.close = close
    }

    /// In-memory storage (`--storage memory`).
    public static func memory() -> ServerStorage {
        let s = InMemoryStorage()
        return ServerStorage(events: s, snapshots: s, readModels: s, kind: "memory")
    }
}

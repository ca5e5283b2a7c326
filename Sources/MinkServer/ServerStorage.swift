import Mink
import Synchronization

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
    /// Checks that the storage accepts writes (readiness, see ``WriteProbe``); `nil`: readiness
    /// checks reads only.
    public var probeWrite: (@Sendable () async throws -> Void)?
    /// The executor a request that is about to use the storage alone (an append, a stream read)
    /// should run on, so that the storage's answer resumes it without a thread switch; `nil`:
    /// the global one (PostgreSQL: a quiet pool's next connection, see
    /// `PostgresStorage.idleExecutor()`).
    public var requestExecutor: (@Sendable () -> (any TaskExecutor)?)?

    /// Whether the snapshot role is the events' own storage, which then knows the streams'
    /// tombstones (a ``StreamLifecycleAdapter``): snapshot requests ask it for the snapshot and
    /// the tombstone in one call, and rely on its writes refusing deleted streams. Otherwise the
    /// event store is asked about the tombstone first.
    var snapshotsKnowTombstones: Bool {
        (snapshots as AnyObject) === (events as AnyObject) && snapshots is any StreamLifecycleAdapter
    }

    /// Bundles storage roles.
    public init(
        events: any EventStoreAdapter, snapshots: any SnapshotAdapter, readModels: any ReadModelStore, kind: String,
        close: @escaping @Sendable () async -> Void = {}, probeWrite: (@Sendable () async throws -> Void)? = nil,
        requestExecutor: (@Sendable () -> (any TaskExecutor)?)? = nil
    ) {
        self.requestExecutor = requestExecutor
        self.events = events
        self.snapshots = snapshots
        self.readModels = readModels
        self.kind = kind
        self.close = close
        self.probeWrite = probeWrite
    }

    /// In-memory storage (`--storage memory`).
    public static func memory() -> ServerStorage {
        let s = InMemoryStorage()
        return ServerStorage(events: s, snapshots: s, readModels: s, kind: "memory")
    }
}

/// Runs a storage's write probe for readiness at most once per ``interval`` and remembers the
/// outcome in between, so that a load balancer polling `/readyz` often does not turn into a
/// stream of writes; a probe already running is not started twice (callers meanwhile get the
/// last outcome).
final class WriteProbe: Sendable {
    private struct State {
        var checkedAt: ContinuousClock.Instant?
        var failure: String?
        var running = false
        /// Counts invalidations: a probe that started before the latest one does not cache its
        /// success (it may have written just before the fault).
        var generation = 0
    }

    private let probe: @Sendable () async throws -> Void
    private let interval: Duration
    private let state = Mutex(State())

    init(interval: Duration = .seconds(2), _ probe: @escaping @Sendable () async throws -> Void) {
        self.interval = interval
        self.probe = probe
    }

    /// Forgets a successful probe, so that the next readiness check writes again instead of
    /// answering from it: called when a request's write failed with `.unavailable` (a full disk
    /// refuses an append before the probe's next turn; its one-row write may even still fit).
    func invalidate() {
        state.withLock { s in
            s.generation += 1
            if s.failure == nil { s.checkedAt = nil }
        }
    }

    /// Why writes fail (the cause, for the readiness body and the log), or `nil` when the last
    /// probe succeeded.
    func failure() async -> String? {
        let now = ContinuousClock.now
        // The cached answer, or none and the generation this probe starts in.
        let (cached, generation): (String??, Int) = state.withLock { s in
            if s.running { return (.some(s.failure), s.generation) }
            if let at = s.checkedAt, at.duration(to: now) < interval { return (.some(s.failure), s.generation) }
            s.running = true
            return (.none, s.generation)
        }
        if let cached { return cached }
        var failure: String?
        do {
            try await probe()
        } catch let e as MinkError {
            failure = e.underlying.map { "\(e.message) (\($0))" } ?? e.message
        } catch {
            failure = "\(error)"
        }
        let result = failure
        state.withLock { s in
            s.running = false
            s.failure = result
            // A success from before an invalidation is not kept: the next check probes again.
            s.checkedAt = result == nil && s.generation != generation ? nil : .now
        }
        return result
    }
}

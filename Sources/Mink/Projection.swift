import Foundation

/// Turns events into read models (seed: `Projection`).
public protocol Projection: Sendable {
    /// A unique name; also the key of the projection's checkpoint.
    var name: String { get }
    /// The event types handled; empty means every type.
    var handledEvents: [String] { get }
}

extension Projection {
    /// Whether the projection handles events of `type`.
    public func handles(_ type: String) -> Bool { handledEvents.isEmpty || handledEvents.contains(type) }
}

/// A projection run inside the append's transaction (seed: `InlineProjection`): its read-model
/// writes commit with the events, and if it throws, the append does not happen.
///
/// `apply` is synchronous because it runs on the storage's own thread while the transaction is
/// open (the Go version's `ctx` becomes the surrounding task).
public protocol InlineProjection: Projection {
    /// Applies one event through the transaction's read-model writes.
    func apply(_ event: Event, in transaction: any ReadModelTransaction) throws
}

/// A projection run in the background from its checkpoint (seed: `AsyncProjection`).
///
/// The engine reads batches after ``checkpoint()``, calls ``apply(_:)`` with the handled events,
/// then ``setCheckpoint(_:)`` past the whole batch (handled or not). If the process stops between
/// the two, the batch is applied again: delivery is at-least-once. For exactly-once effects, make
/// the projection an ``InlineProjection`` and register it with
/// ``ProjectionEngine/registerAsync(_:readModels:options:)``: its writes and checkpoint then
/// commit in one transaction.
public protocol AsyncProjection: Projection {
    /// Applies a batch of handled events, in log order.
    func apply(_ events: [Event]) async throws
    /// The position up to which events were applied.
    func checkpoint() async throws -> UInt64
    /// Stores the position up to which events were applied.
    func setCheckpoint(_ position: UInt64) async throws
    /// Clears the projection's read model before a rebuild (default: nothing).
    func reset() async throws
}

extension AsyncProjection {
    public func reset() async throws {}
}

/// How an async projection is run (seed: `AsyncOptions`).
public struct AsyncOptions: Sendable, Hashable {
    /// The most events read and applied per batch while the projection keeps up with the log
    /// (a batch is what is waiting, up to this).
    public var batchSize: Int
    /// The most events per batch while catching up: batches double from ``batchSize`` while they
    /// come back full, up to this (and ``maxBatchBytes``); the default keeps ``batchSize``.
    public var maxBatchSize: Int
    /// About the most bytes of event data per batch while catching up.
    public var maxBatchBytes: Int
    /// The longest wait for new events before the runner polls storage again (commits normally
    /// wake it at once; this bounds the delay if a wake-up is missed, e.g. storage was down).
    public var batchTimeout: Duration
    /// Parallel workers per batch: events are partitioned by stream so that each stream's events
    /// stay in order. 1 applies the batch as a whole.
    public var workers: Int
    /// Retries of a failing batch before the projection looks for the poison event and faults.
    public var retryPolicy: RetryPolicy
    /// While catching up, read the next page while a batch applies (off by default). It pays
    /// where the read is another process's work (PostgreSQL: the server reads while this process
    /// folds); on SQLite, where both run in this process, it measured slower on a 2-core machine.
    public var readAhead = false

    /// Creates options.
    public init(
        batchSize: Int = 100, batchTimeout: Duration = .seconds(1), workers: Int = 1, retryPolicy: RetryPolicy = RetryPolicy(),
        maxBatchSize: Int? = nil, maxBatchBytes: Int = 16 << 20
    ) {
        self.batchSize = max(1, batchSize)
        self.maxBatchSize = max(self.batchSize, maxBatchSize ?? batchSize)
        self.maxBatchBytes = max(1, maxBatchBytes)
        self.batchTimeout = batchTimeout
        self.workers = max(1, workers)
        self.retryPolicy = retryPolicy
    }
}

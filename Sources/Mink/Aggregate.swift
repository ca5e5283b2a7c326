import Foundation

/// A domain object rebuilt from its stream of events (seed: `Aggregate`).
///
/// The aggregate's ID is its stream ID. ``version`` is the stream version the aggregate was
/// loaded at (or last saved at) — the expected version of the next save.
public protocol Aggregate: AnyObject {
    /// The aggregate's ID, used as its stream ID.
    var aggregateID: String { get }
    /// The aggregate's type name (e.g. `Order`).
    var aggregateType: String { get }
    /// The stream version the aggregate reflects (0 for a new aggregate).
    var version: Int64 { get set }
    /// Applies one event to the state, when loading and when recording new events.
    func applyEvent(_ event: any EventPayload) throws
    /// Events recorded since the last load or save.
    var uncommittedEvents: [any EventPayload] { get }
    /// Forgets the recorded events (after a save).
    func clearUncommittedEvents()
}

/// An aggregate whose state can be stored as a snapshot, so loading needs only later events.
public protocol SnapshottableAggregate: Aggregate {
    /// The state as JSON.
    func snapshotState() throws -> Data
    /// Restores the state from JSON written by ``snapshotState()``.
    func restore(fromSnapshot state: Data) throws
}

/// A convenient base class for aggregates (seed: `AggregateBase`): keeps the ID, the version and
/// the uncommitted events. Subclass it, adopt ``Aggregate``, and implement `aggregateType` and
/// `applyEvent(_:)`:
///
/// ```swift
/// final class Order: AggregateBase, Aggregate {
///     var aggregateType: String { "Order" }
///     private(set) var status = ""
///     func create(customerID: String) throws { try record(OrderCreated(customerID: customerID)) }
///     func applyEvent(_ event: any EventPayload) throws {
///         if event is OrderCreated { status = "created" }
///     }
/// }
/// ```
open class AggregateBase {
    /// The aggregate's ID (its stream ID).
    public private(set) var aggregateID: String
    /// The stream version the aggregate reflects.
    public var version: Int64 = 0
    /// Events recorded since the last load or save.
    public private(set) var uncommittedEvents: [any EventPayload] = []

    /// Creates an aggregate with an ID.
    public init(id: String = "") { aggregateID = id }

    /// Sets the ID (seed: `SetID`).
    public func setID(_ id: String) { aggregateID = id }

    /// Sets the version (seed: `SetVersion`).
    public func setVersion(_ version: Int64) { self.version = version }

    /// Records a new event as uncommitted without applying it (seed: `Apply`).
    public func apply(_ event: any EventPayload) { uncommittedEvents.append(event) }

    /// Forgets the uncommitted events (seed: `ClearUncommittedEvents`).
    public func clearUncommittedEvents() { uncommittedEvents.removeAll() }
}

extension Aggregate where Self: AggregateBase {
    /// Applies a new event to the state and records it as uncommitted — the usual way a command
    /// method changes an aggregate.
    public func record(_ event: any EventPayload) throws {
        try applyEvent(event)
        apply(event)
    }
}

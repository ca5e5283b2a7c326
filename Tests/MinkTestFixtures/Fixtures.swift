import Foundation
import Mink

// The seed's order example, shared by the core's and the client's tests.

public struct OrderCreated: EventPayload, Equatable {
    public var customerID: String
    public init(customerID: String) { self.customerID = customerID }
}
public struct ItemAdded: EventPayload, Equatable {
    public var sku: String
    public var quantity: Int
    public var price: Double
    public init(sku: String, quantity: Int, price: Double) {
        self.sku = sku
        self.quantity = quantity
        self.price = price
    }
}
public struct OrderShipped: EventPayload, Equatable {
    public init() {}
}

/// The seed's order aggregate, in Swift form.
public final class Order: AggregateBase, Aggregate, SnapshottableAggregate {
    public override init(id: String = "") { super.init(id: id) }

    public var aggregateType: String { "Order" }
    public private(set) var customerID = ""
    public private(set) var items: [String: Int] = [:]
    public private(set) var total = 0.0
    public private(set) var shipped = false
    /// How many events were applied while loading or recording (snapshot tests count it).
    public private(set) var appliedCount = 0

    public func create(_ customerID: String) throws { try record(OrderCreated(customerID: customerID)) }
    public func addItem(_ sku: String, _ quantity: Int, _ price: Double) throws { try record(ItemAdded(sku: sku, quantity: quantity, price: price)) }
    public func ship() throws { try record(OrderShipped()) }

    public func applyEvent(_ event: any EventPayload) throws {
        appliedCount += 1
        switch event {
        case let e as OrderCreated: customerID = e.customerID
        case let e as ItemAdded:
            items[e.sku, default: 0] += e.quantity
            total += Double(e.quantity) * e.price
        case is OrderShipped: shipped = true
        default: throw MinkError(.serializationFailed, "unknown event \(type(of: event))")
        }
    }

    struct State: Codable { var customerID: String; var items: [String: Int]; var total: Double; var shipped: Bool }

    public func snapshotState() throws -> Data {
        try JSONEncoder().encode(State(customerID: customerID, items: items, total: total, shipped: shipped))
    }

    public func restore(fromSnapshot state: Data) throws {
        let s = try JSONDecoder().decode(State.self, from: state)
        customerID = s.customerID
        items = s.items
        total = s.total
        shipped = s.shipped
    }
}

public func orderRegistry() -> EventRegistry {
    let r = EventRegistry()
    r.registerAll(OrderCreated.self, ItemAdded.self, OrderShipped.self)
    return r
}

public func raw(_ type: String, _ json: String = "{}", id: String? = nil) -> EventData {
    EventData(id: id, type: type, data: Data(json.utf8))
}

/// A bound on a polling loop in a test: `try deadline.check("what")` throws once the limit
/// has passed (or the test was cancelled, e.g. by its `.timeLimit`), so that a regression is
/// a failure that names what never happened, not a hung run.
public struct Deadline: Sendable {
    /// When the wait ends.
    public let end: ContinuousClock.Instant

    /// A deadline `limit` from now.
    public init(_ limit: Duration) { end = .now + limit }

    /// Throws ``DeadlineExceeded`` once the deadline has passed, `CancellationError` when cancelled.
    public func check(_ what: @autoclosure () -> String) throws {
        try Task.checkCancellation()
        if ContinuousClock.now >= end { throw DeadlineExceeded(description: "gave up waiting: \(what())") }
    }
}

/// A test's wait that did not end in time.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    /// What was waited for.
    public var description: String
}

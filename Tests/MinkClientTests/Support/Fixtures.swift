import Foundation
import Mink

struct OrderCreated: EventPayload, Equatable { var customerID: String }
struct ItemAdded: EventPayload, Equatable { var sku: String; var quantity: Int; var price: Double }
struct OrderShipped: EventPayload, Equatable {}

/// The seed's order aggregate, in Swift form.
final class Order: AggregateBase, Aggregate, SnapshottableAggregate {
    var aggregateType: String { "Order" }
    private(set) var customerID = ""
    private(set) var items: [String: Int] = [:]
    private(set) var total = 0.0
    private(set) var shipped = false
    /// How many events were applied while loading or recording (snapshot tests count it).
    private(set) var appliedCount = 0

    func create(_ customerID: String) throws { try record(OrderCreated(customerID: customerID)) }
    func addItem(_ sku: String, _ quantity: Int, _ price: Double) throws { try record(ItemAdded(sku: sku, quantity: quantity, price: price)) }
    func ship() throws { try record(OrderShipped()) }

    func applyEvent(_ event: any EventPayload) throws {
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

    func snapshotState() throws -> Data {
        try JSONEncoder().encode(State(customerID: customerID, items: items, total: total, shipped: shipped))
    }

    func restore(fromSnapshot state: Data) throws {
        let s = try JSONDecoder().decode(State.self, from: state)
        customerID = s.customerID
        items = s.items
        total = s.total
        shipped = s.shipped
    }
}

func orderRegistry() -> EventRegistry {
    let r = EventRegistry()
    r.registerAll(OrderCreated.self, ItemAdded.self, OrderShipped.self)
    return r
}

func raw(_ type: String, _ json: String = "{}", id: String? = nil) -> EventData {
    EventData(id: id, type: type, data: Data(json.utf8))
}

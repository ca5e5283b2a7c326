import Foundation
import Mink
import MinkClient
import Testing

struct OrderSummary: ReadModel, Equatable {
    var id: String
    var status: String
    var total: Double
    var priority: String?
    var address: Address

    struct Address: Codable, Equatable { var city: String }
}

@Suite("Read models and projections over HTTP", .timeLimit(.minutes(3)))
struct ReadModelTests {
    static let docs = [
        OrderSummary(id: "o1", status: "pending", total: 50, priority: "high", address: .init(city: "Oslo")),
        OrderSummary(id: "o2", status: "pending", total: 150, priority: nil, address: .init(city: "Bergen")),
        OrderSummary(id: "o3", status: "shipped", total: 300, priority: "low", address: .init(city: "Oslo")),
        OrderSummary(id: "o4", status: "pending", total: 120, priority: "low", address: .init(city: "Oslo")),
    ]

    /// Writes the documents straight into the server's read-model storage of `tenant`.
    static func seed(_ server: TestServer, tenant: String? = nil) async throws {
        let store = try tenant.map { try server.storage.readModels.forTenant($0) } ?? server.storage.readModels
        let encoded = try docs.map { ($0.id, try JSONEncoder().encode($0)) }
        try await store.transaction { tx in
            for (id, json) in encoded { try tx.putDocument("orders", id: id, json: json) }
        }
    }

    @Test func getFindCountFindOneGetAll() async throws {
        try await withServer { server in
            try await Self.seed(server)
            let orders = server.client().readModel("orders", as: OrderSummary.self)

            #expect(try await orders.get("o2") == Self.docs[1])
            #expect(try await orders.get("missing") == nil)

            // status = pending AND total > 100, OR priority = high; sorted by total descending.
            let q = Query().where("status", "=", "pending").and("total", ">", 100).or("priority", "=", "high")
                .orderBy("total", descending: true)
            #expect(try await orders.find(q).map(\.id) == ["o2", "o4", "o1"])
            #expect(try await orders.find(q.limit(2).offset(1)).map(\.id) == ["o4", "o1"])
            let page = try await orders.findPage(q.limit(1))
            #expect(page.items.map(\.id) == ["o2"] && page.total == 3)
            #expect(try await orders.count(q) == 3)
            #expect(try await orders.count(q.limit(1)) == 3, "count ignores paging")
            #expect(try await orders.findOne(Query().where("address.city", "=", "Bergen"))?.id == "o2")
            #expect(try await orders.find(Query().where("priority", .isNull)).map(\.id) == ["o2"])
            #expect(try await orders.find(Query().where("total", .between, [100, 200]).orderBy("id")).map(\.id) == ["o2", "o4"])
            #expect(try await orders.find(Query().where("id", .in, ["o1", "o3"]).orderBy("id")).map(\.id) == ["o1", "o3"])
            #expect(try await orders.getAll().count == 4)
            #expect(try await server.client().readModel("empty", as: OrderSummary.self).getAll().isEmpty)
        }
    }

    @Test func invalidQueriesAndWrites() async throws {
        try await withServer { server in
            let orders = server.client().readModel("orders", as: OrderSummary.self)
            do {
                _ = try await orders.find(Query().where("status; DROP TABLE", "=", "x"))
                Issue.record("expected invalidQuery")
            } catch let e as MinkError {
                #expect(e.code == .invalidQuery)
            }
            do {
                try await orders.save(Self.docs[0])
                Issue.record("expected adapterNotSupported")
            } catch let e as MinkError {
                #expect(e.code == .adapterNotSupported)
            }
            await #expect(throws: MinkError.self) { try await orders.delete("o1") }
        }
    }

    @Test func projectionControl() async throws {
        try await withServer { server in
            let client = server.client()
            #expect(try await client.projections().isEmpty)
            for action in [
                { try await client.projection("nope") } as @Sendable () async throws -> Any,
                { try await client.pauseProjection("nope") },
                { try await client.resumeProjection("nope") },
                { try await client.rebuildProjection("nope") },
            ] {
                do {
                    _ = try await action()
                    Issue.record("expected projectionNotFound")
                } catch let e as MinkError {
                    #expect(e.code == .projectionNotFound && e.projectionName == "nope")
                }
            }
        }
    }

    /// The `projections:` YAML of docs/projections.md ("Declaring a projection"), run inline so
    /// its documents exist when the append returns.
    static func documentedProjectionYAML() throws -> String {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/projections.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        guard let start = text.range(of: "```yaml\n"), let end = text.range(of: "```", range: start.upperBound..<text.endIndex) else {
            throw DocsExampleMissing()
        }
        let yaml = String(text[start.upperBound..<end.lowerBound])
        guard yaml.contains("mode: async") else { throw DocsExampleMissing() }
        return yaml.replacingOccurrences(of: "mode: async", with: "mode: inline")
    }

    struct DocsExampleMissing: Error {}

    /// docs/client.md's read-model type decodes what the documented projection really serves.
    @Test func documentedReadModelDecodesServedDocuments() async throws {
        try await withServer(projectionsYAML: try Self.documentedProjectionYAML()) { server in
            let client = server.client()
            func event(_ type: String, _ json: String) -> EventData { EventData(type: type, data: Data(json.utf8)) }
            try await client.append("order-o1", events: [
                event("OrderCreated", #"{"orderId":"o1","total":10}"#),
                event("ItemAdded", #"{"orderId":"o1","sku":"a","price":5}"#),
                event("ItemAdded", #"{"orderId":"o1","sku":"b","price":7.5}"#),
            ], metadata: Metadata(userID: "u-7"))
            try await client.append("order-o2", events: [event("OrderCreated", #"{"orderId":"o2","total":150}"#)])

            let orders = client.readModel("orders", as: DocumentedOrderSummary.self)
            let o1 = try #require(try await orders.get("o1"))
            #expect(o1.id == "o1" && o1.status == "pending" && o1.total == 22.5 && o1.itemCount == 2)
            #expect(o1.createdBy == "u-7" && o1.items?.map(\.sku) == ["a", "b"] && o1.shippedAt == nil)
            #expect(!o1.createdAt.isEmpty)
            let o2 = try #require(try await orders.get("o2"))
            #expect(o2.id == "o2" && o2.items == nil && o2.createdBy == nil)
            let pending = try await orders.find(Query().where("status", "=", "pending").and("total", ">", 100).orderBy("createdAt", descending: true))
            #expect(pending.map(\.id) == ["o2"])
            #expect(try await orders.findOne(Query().where("createdBy", "=", "u-7"))?.id == "o1")
        }
    }
}

/// Exactly the read-model type of docs/client.md ("Read models"): keep the two the same.
struct DocumentedOrderSummary: ReadModel {   // Codable & Sendable & Identifiable<String>
    var id: String                 // the document's orderId (the projection's `id`)
    var status: String
    var total: Double
    var itemCount: Int
    var createdAt: String          // RFC 3339, the event's timestamp
    var createdBy: String?         // null when the event had no userId
    var items: [Item]?             // absent until the first ItemAdded
    var shippedAt: String?

    struct Item: Codable, Sendable { var sku: String; var price: Double }

    enum CodingKeys: String, CodingKey {
        case id = "orderId", status, total, itemCount, createdAt, createdBy, items, shippedAt
    }
}

import Foundation
import Mink
import MinkClient
import MinkTestFixtures
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

    /// minkd answers at most 10,000 documents per query request: `find` without a limit pages
    /// through every match (it returned the first 10,000), with a limit it asks for that page.
    @Test func findWithoutALimitReturnsEveryMatchPastOnePage() async throws {
        try await withServer { server in
            let n = 10_050
            let encoded = try (0..<n).map { i in
                let doc = OrderSummary(id: String(format: "o%05d", i), status: "pending", total: Double(i), priority: nil, address: .init(city: "Oslo"))
                return (doc.id, try JSONEncoder().encode(doc))
            }
            try await server.storage.readModels.transaction { tx in
                for (id, json) in encoded { try tx.putDocument("orders", id: id, json: json) }
            }
            let orders = server.client().readModel("orders", as: OrderSummary.self)
            let all = try await orders.find(Query().orderBy("id"))
            #expect(all.count == n)
            #expect(all.map(\.id) == encoded.map(\.0), "in order, none twice")
            let page = try await orders.findPage(Query().orderBy("id"))
            #expect(page.items.count == 10_000 && page.total == Int64(n), "one request: the largest page")
            #expect(try await orders.find(Query().orderBy("id").offset(10_040)).map(\.id) == encoded.suffix(10).map(\.0))
            #expect(try await orders.find(Query().orderBy("id").limit(3)).count == 3)
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

    /// Pause, resume and rebuild of a real async projection through the client: a paused
    /// projection applies nothing (its lag grows), resumed it catches up, rebuilt it ends with
    /// the same documents.
    @Test func projectionControlOnARealProjection() async throws {
        let yaml = """
            projections:
              - name: seen
                mode: async
                handlers:
                  - event: Seen
                    id: "$.streamId"
                    set: { key: "$.streamId", last: "$.data.n" }
                    increment: { count: 1 }
            """
        try await withServer(projectionsYAML: yaml) { server in
            let client = server.client()
            let seen = client.readModel("seen", as: SeenCount.self)
            func append(_ n: Int) async throws {
                try await client.append("s-\(n % 3)", events: [EventData(type: "Seen", data: Data(#"{"n":\#(n)}"#.utf8))])
            }
            /// Polls the status until `condition` holds (the test's time limit bounds it).
            func status(until condition: (ProjectionStatus) -> Bool) async throws -> ProjectionStatus {
                let deadline = Deadline(.seconds(20))
                while true {
                    let s = try await client.projection("seen")
                    if condition(s) { return s }
                    try deadline.check("projection status: \(s)")
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
            #expect(try await client.projections().map(\.name) == ["seen"])
            for n in 1...6 { try await append(n) }
            let running = try await status { $0.checkpoint == 6 }
            #expect(running.mode == .async && running.state == .running && running.lag == 0 && running.head == 6)
            #expect(running.runningHere == true, "one process: it runs here")
            #expect(try await seen.get("s-0") == SeenCount(id: "s-0", last: 6, count: 2))

            try await client.pauseProjection("seen")
            #expect(try await client.projection("seen").state == .paused)
            for n in 7...9 { try await append(n) }
            try await Task.sleep(for: .milliseconds(300))
            let paused = try await client.projection("seen")
            #expect(paused.state == .paused && paused.checkpoint == 6 && paused.head == 9 && paused.lag == 3)
            #expect(try await seen.get("s-0") == SeenCount(id: "s-0", last: 6, count: 2), "nothing applied while paused")

            try await client.resumeProjection("seen")
            _ = try await status { $0.state == .running && $0.checkpoint == 9 }
            let before = try await seen.getAll()
            #expect(try await seen.get("s-0") == SeenCount(id: "s-0", last: 9, count: 3))

            try await client.rebuildProjection("seen")
            _ = try await status { $0.state == .running && $0.checkpoint == 9 }
            #expect(try await seen.getAll().sorted { $0.last < $1.last } == before.sorted { $0.last < $1.last }, "the rebuilt copy equals the old one")
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

/// The `seen` projection's document.
struct SeenCount: ReadModel, Equatable {
    var id: String
    var last: Int
    var count: Int

    enum CodingKeys: String, CodingKey { case id = "key", last, count }
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

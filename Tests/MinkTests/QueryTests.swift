import Foundation
import Mink
import MinkTesting
import Testing

struct Customer: ReadModel, Equatable {
    var id: String
    var name: String
    var status: String
    var total: Double
    var address: Address?
    struct Address: Codable, Equatable, Sendable { var city: String }
}

@Suite("Read models and queries", .timeLimit(.minutes(3)))
struct QueryTests {
    func seeded() async throws -> InMemoryRepository<Customer> {
        let repo = InMemoryRepository<Customer>()
        try await repo.save(Customer(id: "1", name: "Ada", status: "pending", total: 150, address: .init(city: "Berlin")))
        try await repo.save(Customer(id: "2", name: "Bob", status: "pending", total: 50, address: .init(city: "Paris")))
        try await repo.save(Customer(id: "3", name: "Cy", status: "shipped", total: 300, address: nil))
        try await repo.save(Customer(id: "4", name: "Di", status: "cancelled", total: 100, address: .init(city: "Berlin")))
        return repo
    }

    @Test func repositoryCRUD() async throws {
        let repo = try await seeded()
        #expect(try await repo.get("1")?.name == "Ada")
        #expect(try await repo.get("nope") == nil)
        #expect(try await repo.getAll().count == 4)
        try await repo.save(Customer(id: "1", name: "Ada L.", status: "pending", total: 150))
        #expect(try await repo.get("1")?.name == "Ada L.")
        try await repo.delete("1")
        #expect(try await repo.get("1") == nil)
        #expect(try await repo.count(Query()) == 3)
    }

    @Test func andBindsTighterThanOr() async throws {
        let repo = try await seeded()
        let q = Query().where("status", "=", "pending").and("total", ">", 100).or("status", "=", "cancelled")
        #expect(try await repo.find(q.orderBy("id")).map(\.id) == ["1", "4"])
        #expect(q.groups.count == 2 && q.groups[0].count == 2)
        #expect(try await repo.count(q) == 2)
    }

    @Test func seedUsageOrderLimitOffsetDottedPaths() async throws {
        let repo = try await seeded()
        let orders = try await repo.find(Query().where("status", "=", "pending").and("total", ">", 10).orderBy("total", descending: true).limit(10))
        #expect(orders.map(\.id) == ["1", "2"])
        #expect(try await repo.find(Query().where("address.city", .equal, "Berlin").orderBy("id")).map(\.id) == ["1", "4"])
        #expect(try await repo.find(Query().orderBy("total").offset(1).limit(2)).map(\.id) == ["4", "1"])
        #expect(try await repo.find(Query().orderBy("total").offset(1).limit(Int.max)).map(\.id) == ["4", "1", "3"], "no overflow")
        #expect(try await repo.findOne(Query().where("name", "like", "B%"))?.id == "2")
        #expect(try await repo.findOne(Query().where("name", "=", "Nobody")) == nil)
        #expect(try await repo.find(Query().where("address", "is null")).map(\.id) == ["3"])
        #expect(try await repo.find(Query().where("total", "between", [100, 200]).orderBy("id")).map(\.id) == ["1", "4"])
        #expect(try await repo.find(Query().where("status", "in", ["shipped", "cancelled"]).orderBy("id")).map(\.id) == ["3", "4"])
        #expect(try await repo.find(Query().where("name", "contains", "y")).map(\.id) == ["3"])
    }

    @Test func invalidFieldsAndOperatorsAreErrorsNeverIgnored() async throws {
        let repo = try await seeded()
        for q in [
            Query().where("status", "≈", "x"), Query().where("a'); drop table x;--", "=", 1), Query().where("a..b", "=", 1),
            Query().where("1abc", "=", 1), Query().orderBy("a-b"), Query().where("status", "in", "notAnArray"),
            Query().where("total", "between", [1]), Query().limit(-1), Query().where("x", "like", 3),
        ] {
            await #expect(throws: MinkError.self) { _ = try await repo.find(q) }
            #expect(q.problem?.code == .invalidQuery)
        }
        #expect(try QueryOperator(parsing: "NOT  IN") == .notIn)
        #expect(try FieldPath("address.city").components == ["address", "city"])
    }

    @Test func jsonValueParsesStrictly() throws {
        #expect(try JSONValue(json: Data(#"{"a":[1,true,null,"x\u00e9\ud83d\udca5"]}"#.utf8)) == ["a": [1, true, nil, "xé💥"]])
        for bad in ["{", "[1,]", "{\"a\":1,}", "NaN", "01", "\"\\x\"", "tru", "[1] 2", "\"\u{1}\""] {
            #expect(throws: MinkError.self, "\(bad)") { _ = try JSONValue(json: Data(bad.utf8)) }
        }
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: MinkError.self) { _ = try JSONValue(json: Data(deep.utf8)) }
        #expect(JSONValue.object(["b": 1, "a": "x\n"]).jsonData() == Data(#"{"a":"x\n","b":1}"#.utf8))
    }
}

import Foundation
import Mink
import MinkWire

extension MinkClient {
    /// Typed read access to the read model `name` (section 8 of the HTTP API), as a
    /// ``Mink/Repository``:
    ///
    /// ```swift
    /// let orders = client.readModel("orders", as: OrderSummary.self)
    /// let pending = try await orders.find(Query().where("status", "=", "pending").orderBy("total", descending: true).limit(10))
    /// ```
    public func readModel<Model: ReadModel>(_ name: String, as type: Model.Type = Model.self) -> RemoteRepository<Model> {
        RemoteRepository(client: self, modelName: name)
    }
}

/// A read model on a minkd server, read through its HTTP API.
///
/// Reads map to `GET /v1/readmodels/{model}/{id}`, `POST .../query` and `POST .../count`;
/// documents are decoded with the client's serializer. Read models are written by the server's
/// projections only, so ``save(_:)`` and ``delete(_:)`` throw `.adapterNotSupported`.
public struct RemoteRepository<Model: ReadModel>: Repository {
    /// The client the requests go through.
    public let client: MinkClient
    /// The read model's name.
    public let modelName: String

    /// Creates a repository; see ``MinkClient/readModel(_:as:)``.
    public init(client: MinkClient, modelName: String) {
        self.client = client
        self.modelName = modelName
    }

    private func path(_ last: String) -> String {
        client.target(["v1", "readmodels", PathEncoding.encode(modelName), PathEncoding.encode(last)])
    }

    /// The document with that ID, or `nil`.
    public func get(_ id: String) async throws -> Model? {
        do {
            let response = try await client.send("GET", path(id), idempotent: true)
            return try client.serializer.deserialize(Data(response.body), as: Model.self)
        } catch let error as MinkError where error.code == .notFound {
            return nil
        }
    }

    /// The documents matching a query, sorted and paged as the query says. Without a limit,
    /// every match: minkd answers at most 10,000 documents per request, so they are fetched page
    /// by page (`offset` moving on; with a query that names no order, or while projections write
    /// the model, a document may move between pages — give an `orderBy` on a stable field).
    /// - Throws: `.invalidQuery` for a query built with an invalid field or operator (checked
    ///   before sending) or refused by the server.
    public func find(_ query: Query) async throws -> [Model] {
        guard query.limitCount == nil else { return try await findPage(query).items }
        var all: [Model] = []
        var offset = query.offsetCount
        while true {
            let page = try await findPage(query.offset(offset).limit(Self.largestPage))
            all += page.items
            offset += page.items.count
            if page.items.count < Self.largestPage || Int64(offset) >= page.total { return all }
        }
    }

    /// The most documents minkd answers per query request.
    static var largestPage: Int { 10_000 }

    /// The documents matching a query, and how many match in all (ignoring limit and offset).
    /// - Throws: `.invalidQuery`.
    public func findPage(_ query: Query) async throws -> (items: [Model], total: Int64) {
        let body = try ReadModelQueryBody(query)
        let page = try await client.fetch(ItemsPage.self, "POST", path("query"), body: body.jsonBytes(), idempotent: true).value
        let items = try page.items.map { try client.serializer.deserialize(Data($0.bytes), as: Model.self) }
        return (items, page.total)
    }

    /// The number of documents matching a query's filters.
    /// - Throws: `.invalidQuery`.
    public func count(_ query: Query) async throws -> Int64 {
        let body = try ReadModelQueryBody(query.unpaged)
        return try await client.fetchDecodable(CountBody.self, "POST", path("count"), body: body.jsonBytes(), idempotent: true).count
    }

    /// Not available remotely: read models are written by the server's projections.
    /// - Throws: always `.adapterNotSupported`.
    public func save(_ model: Model) async throws {
        throw MinkError(.adapterNotSupported, "read model \(modelName) is written by minkd's projections; the HTTP API cannot save documents")
    }

    /// Not available remotely: read models are written by the server's projections.
    /// - Throws: always `.adapterNotSupported`.
    public func delete(_ id: String) async throws {
        throw MinkError(.adapterNotSupported, "read model \(modelName) is written by minkd's projections; the HTTP API cannot delete documents")
    }
}

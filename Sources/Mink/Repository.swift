import Foundation

/// A read model: a `Codable` value identified by a string ID.
public typealias ReadModel = Codable & Sendable & Identifiable<String>

/// Typed access to one read model (seed: `Repository[T]`).
public protocol Repository<Model>: Sendable {
    /// The read model's type.
    associatedtype Model: ReadModel

    /// The model with that ID, or `nil`.
    func get(_ id: String) async throws -> Model?
    /// Every model.
    func getAll() async throws -> [Model]
    /// The models matching a query, sorted and paged.
    /// - Throws: `.invalidQuery` for an invalid field or operator.
    func find(_ query: Query) async throws -> [Model]
    /// The first model matching a query, or `nil`.
    func findOne(_ query: Query) async throws -> Model?
    /// Creates or replaces a model (by its `id`).
    func save(_ model: Model) async throws
    /// Removes a model (no error when absent).
    func delete(_ id: String) async throws
    /// The number of models matching a query's filters.
    func count(_ query: Query) async throws -> Int64
}

extension Repository {
    public func findOne(_ query: Query) async throws -> Model? { try await find(query.limit(1)).first }
    public func getAll() async throws -> [Model] { try await find(Query()) }
}

/// A repository over a ``ReadModelStore``: models are stored as JSON documents of one named
/// model, so what projections write through a ``ReadModelTransaction`` is readable here.
public struct DocumentRepository<Model: ReadModel>: Repository {
    /// The storage.
    public let store: any ReadModelStore
    /// The read model's name (its collection).
    public let modelName: String
    let serializer: any EventSerializer

    /// Creates a repository for the read model `modelName` of `store`.
    public init(store: any ReadModelStore, model modelName: String, serializer: any EventSerializer = JSONEventSerializer()) {
        self.store = store
        self.modelName = modelName
        self.serializer = serializer
    }

    public func get(_ id: String) async throws -> Model? {
        guard let json = try await store.document(modelName, id: id) else { return nil }
        return try serializer.deserialize(json, as: Model.self)
    }

    public func find(_ query: Query) async throws -> [Model] {
        try await store.find(modelName, query: try query.validated()).map { try serializer.deserialize($0.json, as: Model.self) }
    }

    public func save(_ model: Model) async throws {
        let json = try serializer.serialize(model)
        try await store.transaction { [modelName] tx in try tx.putDocument(modelName, id: model.id, json: json) }
    }

    public func delete(_ id: String) async throws {
        try await store.transaction { [modelName] tx in try tx.deleteDocument(modelName, id: id) }
    }

    public func count(_ query: Query) async throws -> Int64 {
        try await store.count(modelName, query: try query.validated())
    }
}

/// A repository kept in memory, for tests and small programs.
public struct InMemoryRepository<Model: ReadModel>: Repository {
    private let inner: DocumentRepository<Model>

    /// Creates an empty repository.
    public init() { inner = DocumentRepository(store: InMemoryStorage(), model: String(describing: Model.self)) }

    public func get(_ id: String) async throws -> Model? { try await inner.get(id) }
    public func find(_ query: Query) async throws -> [Model] { try await inner.find(query) }
    public func save(_ model: Model) async throws { try await inner.save(model) }
    public func delete(_ id: String) async throws { try await inner.delete(id) }
    public func count(_ query: Query) async throws -> Int64 { try await inner.count(query) }
}

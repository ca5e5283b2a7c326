import Foundation
import Mink

/// A read-model store that passes every call on to `inner`: a test wrapper subclasses it and
/// overrides only what it watches or changes — usually ``transaction(_:_:)``, which the plain
/// `transaction(_:)` also goes through (durable) — and ``wrapping(_:)`` so that tenant views are
/// wrapped the same way.
///
/// `@unchecked Sendable`: its one stored property is a `let` of a `Sendable` type; subclasses keep
/// their state in `Sendable` values (`Mutex`, `Atomic`).
open class ForwardingReadModelStore: ReadModelStore, @unchecked Sendable {
    public let inner: any ReadModelStore

    public init(_ inner: any ReadModelStore) { self.inner = inner }

    open func transaction<T: Sendable>(_ body: @Sendable (any ReadModelTransaction) throws -> T) async throws -> T {
        try await transaction(.durable, body)
    }
    open func transaction<T: Sendable>(
        _ durability: CommitDurability, _ body: @Sendable (any ReadModelTransaction) throws -> T
    ) async throws -> T {
        try await inner.transaction(durability, body)
    }
    /// Each body alone through ``transaction(_:_:)`` (relaxed), so that a wrapper watching
    /// transactions sees every one; override to pass grouping on to `inner`.
    open func groupedTransaction<T: Sendable>(_ body: @escaping @Sendable (any ReadModelTransaction) throws -> T) async throws -> T {
        try await transaction(.relaxed, body)
    }
    open func document(_ model: String, id: String) async throws -> Data? { try await inner.document(model, id: id) }
    open func find(_ model: String, query: Query) async throws -> [StoredDocument] { try await inner.find(model, query: query) }
    open func findWithTotal(_ model: String, query: Query) async throws -> (documents: [StoredDocument], total: Int64) {
        try await inner.findWithTotal(model, query: query)
    }
    open func count(_ model: String, query: Query) async throws -> Int64 { try await inner.count(model, query: query) }
    open func dropModel(_ model: String) async throws { try await inner.dropModel(model) }
    open func createIndex(_ model: String, field: FieldPath) async throws { try await inner.createIndex(model, field: field) }
    open func modelNames() async throws -> [String] { try await inner.modelNames() }
    public func forTenant(_ tenantID: String) throws -> any ReadModelStore { wrapping(try inner.forTenant(tenantID)) }

    /// The wrapper of a tenant view of `inner` (override to wrap it as `self` is).
    open func wrapping(_ tenantStore: any ReadModelStore) -> any ReadModelStore { ForwardingReadModelStore(tenantStore) }
}

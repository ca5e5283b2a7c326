import Foundation
import Mink
import MinkHTTP
import MinkWire

extension API {
    /// Section 8's projection endpoints, over the tenant's projection engine.
    func projections(_ c: RequestContext) async throws -> HTTPResponse {
        let models = Dictionary(projections.entries.map { ($0.projection.name, $0.projection.readModelName) }, uniquingKeysWith: { a, _ in a })
        guard hasProjectionEngine(c.tenant) else { return try emptyTenantProjections(c, models: models) }
        let engine = try await projections.engine(forTenant: c.tenant)
        func reply(_ name: String, status code: Int = 200) async throws -> HTTPResponse {
            let status = try await engine.status(name)
            return Reply.json(ProjectionStatusReply(status: status, readModel: models[name] ?? ""), status: code)
        }
        switch c.route {
        case .listProjections:
            let all = try await engine.statuses()
            return Reply.json(ProjectionListReply(projections: all.map { ProjectionStatusReply(status: $0, readModel: models[$0.name] ?? "") }))
        case .projection(let name):
            return try await reply(name)
        case .rebuildProjection(let name):
            try await engine.rebuild(name)
            return try await reply(name, status: 202)
        case .pauseProjection(let name):
            try await engine.pause(name)
            return try await reply(name)
        case .resumeProjection(let name):
            try await engine.resume(name)
            return try await reply(name)
        default: throw APIError.noSuchEndpoint("no such endpoint")
        }
    }

    /// Section 8's read-model endpoints over the tenant's read-model store. A model written by
    /// a projection is read from its serving copy (which a finishing rebuild does not drop while
    /// the read runs).
    func readModels(_ c: RequestContext) async throws -> HTTPResponse {
        let store = c.tenant == TenantID.default ? storage.readModels : try storage.readModels.forTenant(c.tenant)
        switch c.route {
        case .readModelDocument(let model, _), .readModelList(let model), .readModelQuery(let model), .readModelCount(let model):
            // Rebuild copies are reached through their model's name only.
            if ReadModelGenerations.isCopyName(model) { throw APIError(.notFound, "no read model \(model)") }
        default: break
        }
        // A tenant that does not exist (a read with `autoCreate`) has no projections to wait
        // for, and starting them would create its storage: its models are read directly
        // (which creates nothing and finds nothing).
        let engine = hasProjectionEngine(c.tenant) ? try await projections.engine(forTenant: c.tenant) : nil
        func withReadModel<T: Sendable>(_ model: String, _ body: @Sendable (String) async throws -> T) async throws -> T {
            guard let engine else { return try await body(model) }
            return try await engine.withReadModel(model, body)
        }
        switch c.route {
        case .readModelDocument(let model, let id):
            let json = try await withReadModel(model) { physical in try await store.document(physical, id: id) }
            guard let json else { throw APIError(.notFound, "no document \(id) in read model \(model)") }
            return Reply.json(bytes: [UInt8](json))
        case .readModelList(let model):
            let limit = Int(try c.query.integer("limit", default: 50, in: 0...Int64(Self.maxPageSize)))
            let offset = Int(try c.query.integer("offset", default: 0, in: 0...Int64(Int32.max)))
            let orderBy = c.query["orderBy"] ?? ""
            let ordering = orderBy.isEmpty ? [] : try QueryOrder.parseList(orderBy)
            let query = try Query(groups: [], ordering: ordering, limit: limit, offset: offset)
            return try await withReadModel(model) { physical in try await Self.items(store, physical, query) }
        case .readModelQuery(let model):
            try requireJSON(c)
            let query = try Self.paged(ReadModelQueryBody.decode(c.request.body).query)
            return try await withReadModel(model) { physical in try await Self.items(store, physical, query) }
        case .readModelCount(let model):
            try requireJSON(c)
            let query = try ReadModelQueryBody.decode(c.request.body).query
            let n = try await withReadModel(model) { physical in try await store.count(physical, query: query) }
            return Reply.json(CountBody(count: n))
        default:
            throw APIError.noSuchEndpoint("no such endpoint")
        }
    }

    /// Whether the tenant's projection engine may run: `default`, or a tenant known to exist.
    private func hasProjectionEngine(_ tenant: String) -> Bool {
        tenant == TenantID.default || tenants.isLive(tenant)
    }

    /// Section 8 for a tenant that does not exist yet (reads with `autoCreate`): every
    /// projection as it would be in an empty tenant (running, nothing to apply); control
    /// requests are `404`, since there is nothing to control and starting the projections
    /// would create the tenant.
    private func emptyTenantProjections(_ c: RequestContext, models: [String: String]) throws -> HTTPResponse {
        func status(_ entry: ProjectionService.Entry) -> ProjectionStatusReply {
            ProjectionStatusReply(
                // Nothing runs for a tenant that does not exist: not here, not anywhere.
                status: ProjectionEngine.Status(
                    name: entry.projection.name, mode: entry.mode, state: .running, checkpoint: 0, head: 0, runningHere: false),
                readModel: models[entry.projection.name] ?? "")
        }
        let entries = projections.entries
        switch c.route {
        case .listProjections:
            return Reply.json(ProjectionListReply(projections: entries.map(status)))
        case .projection(let name):
            guard let entry = entries.first(where: { $0.projection.name == name }) else {
                throw MinkError.projectionNotFound(name)
            }
            return Reply.json(status(entry))
        default:
            throw APIError(.notFound, "unknown tenant: it has no events yet, so no projections to control")
        }
    }

    /// The most documents one page may hold, on both forms (`GET ?limit=`, `POST …/query`).
    static let maxPageSize = 10_000

    /// A `POST …/query` page: `limit` at most ``maxPageSize`` (`400 invalid_query` above), and
    /// ``maxPageSize`` when the body names none — a response is built in memory, so an unbounded
    /// one over a large model could exhaust it; `total` tells a client that there is more.
    static func paged(_ query: Query) throws -> Query {
        guard let limit = query.limitCount else { return query.limit(maxPageSize) }
        guard limit <= maxPageSize else {
            throw APIError(.invalidQuery, "limit: at most \(maxPageSize) documents per request; page on with offset")
        }
        return query
    }

    private static func items(_ store: any ReadModelStore, _ model: String, _ query: Query) async throws -> HTTPResponse {
        // One read for both: a page never holds more documents than its `total` says.
        let (docs, total) = try await store.findWithTotal(model, query: query)
        return Reply.json(ItemsPage(items: docs.map { RawJSON(unchecked: [UInt8]($0.json)) }, total: total))
    }
}

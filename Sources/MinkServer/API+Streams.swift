import Foundation
import Mink
import MinkHTTP
import MinkWire

/// Stream listing, deletion and retention (HTTP-API.md sections 5 and 9).
extension API {
    func streamLifecycle(_ c: RequestContext) async throws -> HTTPResponse {
        switch c.route {
        case .listStreams: return try await listStreams(c)
        case .deleteStream(let id): return try await deleteStream(c, streamID: id)
        case .getStreamMetadata(let id):
            try validateStreamID(id)
            return Reply.json(StreamMetadataBody(try await c.store.retention(of: id)))
        case .putStreamMetadata(let id):
            let body = try streamMetadataInput(c.request, streamID: id)
            try await c.store.setRetention(body.retention, of: id)
            return Reply.json(body)
        case .scavenge:
            // A tenant that does not exist has nothing to remove; its storage is not touched.
            guard let lease = try await tenants.admitExisting(c.tenant) else { return Reply.json(ScavengeBody(deletedEvents: 0)) }
            defer { lease.release() }
            return Reply.json(ScavengeBody(deletedEvents: try await c.store.scavenge()))
        default:
            throw APIError(.internal, "no stream life-cycle handler for \(c.route.template)")
        }
    }

    /// A client may not write to a stream whose ID starts with `$` (`400 invalid_stream_id`).
    /// Everything a stream metadata `PUT` checks before it touches storage (the request alone).
    func streamMetadataInput(_ request: HTTPRequest, streamID: String) throws -> StreamMetadataBody {
        try validateStreamID(streamID)
        try rejectReserved(streamID)
        try requireJSON(request)
        return try StreamMetadataBody.decode(request.body)
    }

    func rejectReserved(_ streamID: String) throws {
        guard !StreamID.isReserved(streamID) else {
            throw APIError(.invalidStreamID, "invalid stream ID: IDs starting with $ are reserved for the server")
        }
    }

    /// `GET /v1/streams?category=&prefix=&after=&limit=`: one page, bytewise by ID; `next` is the
    /// page's last ID when another stream follows (one more is asked of the storage to know),
    /// `null` on the last page.
    private func listStreams(_ c: RequestContext) async throws -> HTTPResponse {
        let limit = Int(try c.query.integer("limit", default: 100, in: 1...1000))
        var query = StreamListQuery(limit: limit + 1)
        if let after = c.query["after"] {
            guard StreamID.problem(after) == nil else {
                throw APIError(.badRequest, "query parameter after must be a stream ID (1 to 256 bytes of UTF-8 without control characters)")
            }
            query.after = after
        }
        if let category = c.query["category"], !category.isEmpty { query.category = category }
        if let prefix = c.query["prefix"], !prefix.isEmpty { query.prefix = prefix }
        let found = try await c.store.listStreams(query)
        let streams = found.prefix(limit)
        let next = found.count > limit ? streams.last?.streamID : nil
        return Reply.json(StreamListBody(streams: streams.map(StreamInfoBody.init), next: next))
    }

    /// `DELETE /v1/streams/{id}?expectedVersion=N&hard=false`.
    private func deleteStream(_ c: RequestContext, streamID: String) async throws -> HTTPResponse {
        try validateStreamID(streamID)
        try rejectReserved(streamID)
        try c.query.allowOnly(["expectedVersion", "hard"])
        let expected: ExpectedVersion
        switch c.query["expectedVersion"] {
        case nil, "any": expected = .any
        case "no_stream": expected = .noStream
        case "stream_exists": expected = .streamExists
        case let raw?:
            guard let v = QueryParameters.strictInteger(raw), v >= 0 else {
                throw APIError(.badRequest, "query parameter expectedVersion must be an integer ≥ 0, any, no_stream or stream_exists")
            }
            expected = .exact(v)
        }
        let hard: Bool
        switch c.query["hard"] {
        case nil, "false", "0": hard = false
        case "true", "1": hard = true
        default: throw APIError(.badRequest, "query parameter hard must be true or false")
        }
        // A tenant that does not exist has no stream: `404 stream_not_found`, as in an empty
        // tenant, without touching storage (whose write would create the tenant).
        guard let lease = try await tenants.admitExisting(c.tenant) else { throw MinkError.streamNotFound(streamID) }
        defer { lease.release() }
        let deletion = try await c.store.deleteStream(streamID, expectedVersion: expected, hard: hard)
        return Reply.json(StreamDeletionBody(deletion))
    }
}

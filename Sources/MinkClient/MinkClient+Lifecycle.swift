import Foundation
import Mink
import MinkWire

/// One page of ``MinkClient/listStreams(_:)``.
public struct StreamListPage: Sendable, Hashable {
    /// The streams, bytewise ascending by ID.
    public var streams: [StreamInfo]
    /// The `after` of the following page; `nil` on the last page.
    public var next: String?
}

/// Every stream matching a query, page after page (``MinkClient/streams(category:prefix:pageSize:)``):
/// one request per page, one page in memory at a time.
public struct StreamListing: AsyncSequence, Sendable {
    public typealias Element = StreamInfo
    let client: MinkClient
    let query: StreamListQuery

    public func makeAsyncIterator() -> Iterator { Iterator(client: client, query: query) }

    /// Fetches the next page when the current one is used up.
    public struct Iterator: AsyncIteratorProtocol {
        let client: MinkClient
        var query: StreamListQuery
        var buffer: [StreamInfo] = []
        var index = 0
        var done = false

        init(client: MinkClient, query: StreamListQuery) {
            self.client = client
            self.query = query
        }

        public mutating func next() async throws -> StreamInfo? {
            while index == buffer.count {
                if done { return nil }
                let page = try await client.listStreams(query)
                buffer = page.streams
                index = 0
                if let next = page.next { query.after = next } else { done = true }
            }
            defer { index += 1 }
            return buffer[index]
        }
    }
}

extension MinkClient {
    // MARK: Listing

    /// One page of the tenant's streams (`GET /v1/streams`): those with a stored event, bytewise
    /// ascending by ID, after `query.after` (exclusive), filtered by category and prefix;
    /// `query.limit` 1 to 1,000.
    public func listStreams(_ query: StreamListQuery) async throws -> StreamListPage {
        var q = [("limit", String(min(max(query.limit, 1), 1000)))]
        if let after = query.after { q.append(("after", after)) }
        if let category = query.category { q.append(("category", category)) }
        if let prefix = query.prefix { q.append(("prefix", prefix)) }
        let body = try await fetch(StreamListBody.self, "GET", target(["v1", "streams"], query: q), idempotent: true).value
        return StreamListPage(
            streams: body.streams.map {
                StreamInfo(streamID: $0.streamId, version: $0.version, eventCount: $0.eventCount, createdAt: $0.createdAt.date, updatedAt: $0.updatedAt.date)
            },
            next: body.next
        )
    }

    /// Every stream of the tenant (optionally of one category or with a prefix), fetched a page
    /// at a time as the sequence is iterated.
    public func streams(category: String? = nil, prefix: String? = nil, pageSize: Int = 1000) -> StreamListing {
        StreamListing(client: self, query: StreamListQuery(category: category, prefix: prefix, limit: pageSize))
    }

    // MARK: Deletion

    /// Deletes a stream (`DELETE /v1/streams/{streamId}`): its events and snapshot are removed and
    /// a `$StreamDeleted` record is appended to `$deletions`; `hard` leaves a tombstone, after
    /// which everything on the stream fails with `.streamDeleted`. Not retried automatically (a
    /// repeat of a deletion that went through answers `.streamNotFound`).
    /// - Throws: `.streamNotFound`, `.streamDeleted`, `.concurrencyConflict`, `.badRequest` (a `$` ID).
    @discardableResult
    public func deleteStream(_ streamID: String, expectedVersion: ExpectedVersion = .any, hard: Bool = false) async throws -> StreamDeletion {
        try StreamID.validate(streamID)
        let query = [("expectedVersion", expectedVersion.description), ("hard", hard ? "true" : "false")]
        let body = try await fetch(
            StreamDeletionBody.self, "DELETE", target(["v1", "streams", PathEncoding.encode(streamID)], query: query),
            idempotent: false, streamID: streamID
        ).value
        return body.deletion
    }

    // MARK: Retention

    /// The stream's retention rules (`GET /v1/streams/{streamId}/metadata`); empty when none.
    /// - Throws: `.streamDeleted` for a hard-deleted stream.
    public func retention(of streamID: String) async throws -> StreamRetention {
        try StreamID.validate(streamID)
        return try await fetch(
            StreamMetadataBody.self, "GET", target(["v1", "streams", PathEncoding.encode(streamID), "metadata"]), idempotent: true,
            streamID: streamID
        ).value.retention
    }

    /// Replaces the stream's retention rules (`PUT /v1/streams/{streamId}/metadata`); they may be
    /// set before the stream's first event. Returns the stored rules.
    /// - Throws: `.validationFailed` (a rule below 1), `.badRequest` (a `$` ID), `.streamDeleted`.
    @discardableResult
    public func setRetention(_ retention: StreamRetention, of streamID: String) async throws -> StreamRetention {
        try StreamID.validate(streamID)
        try retention.validate()
        return try await fetch(
            StreamMetadataBody.self, "PUT", target(["v1", "streams", PathEncoding.encode(streamID), "metadata"]),
            body: StreamMetadataBody(retention).jsonBytes(), idempotent: true, streamID: streamID
        ).value.retention
    }

    /// Runs one scavenger pass for this client's tenant now (`POST /v1/admin/scavenge`, role
    /// `admin`); returns how many events it removed.
    @discardableResult
    public func scavenge() async throws -> Int64 {
        try await fetch(ScavengeBody.self, "POST", target(["v1", "admin", "scavenge"]), body: Array("{}".utf8), idempotent: true).value.deletedEvents
    }
}

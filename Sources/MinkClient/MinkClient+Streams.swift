import Foundation
import Mink
import MinkWire

extension MinkClient {
    // MARK: Appending

    /// Appends typed events (`POST /v1/streams/{streamId}`): each payload is named through the
    /// ``registry`` and serialized with the ``serializer``.
    ///
    /// Every event gets a client-made UUID before the first attempt, so the append is retried
    /// after a transport error or `503` without risk: the server answers a repeat of an append it
    /// already committed with the original result (``Mink/AppendResult/isReplay`` is then `true`).
    /// - Returns: the versions and positions assigned. Its `events` are empty: the server's answer
    ///   carries only the ranges.
    /// - Throws: `.concurrencyConflict` (with `streamID`, `expectedVersion`, `actualVersion`),
    ///   `.streamNotFound` (for `.streamExists`), `.duplicateEventID`, `.validationFailed`,
    ///   `.payloadTooLarge`, `.serializationFailed` (nothing is written then); `.unavailable` when
    ///   the retries ran out — the append may then have been committed or not: its
    ///   ``Mink/MinkError/eventIDs`` are the IDs it carried, and sending the same events again with
    ///   them (`EventData(id:)`) is safe, where new IDs could write them twice.
    @discardableResult
    public func append(
        _ streamID: String, _ events: [any EventPayload], expectedVersion: ExpectedVersion = .any, metadata: Metadata = Metadata()
    ) async throws -> AppendResult {
        let data = try events.map { payload in
            EventData(type: registry.name(for: payload), data: try serializer.serialize(payload))
        }
        return try await append(streamID, events: data, expectedVersion: expectedVersion, metadata: metadata)
    }

    /// Appends already-serialized events; `data` must be JSON and is stored byte for byte
    /// (whitespace aside). An event without an `id` gets a new UUID; a given `id` must be a UUID.
    ///
    /// See ``append(_:_:expectedVersion:metadata:)`` for the retry guarantee and the errors.
    @discardableResult
    public func append(
        _ streamID: String, events: [EventData], expectedVersion: ExpectedVersion = .any, metadata: Metadata = Metadata()
    ) async throws -> AppendResult {
        try StreamID.validate(streamID)
        if events.isEmpty { throw MinkError.validation("an append needs at least one event") }
        let request = try Self.appendBody(events, expectedVersion: expectedVersion, metadata: metadata)
        let status: Int, response: AppendResponse
        do {
            (status, response) = try await fetch(
                AppendResponse.self, "POST", target(["v1", "streams", PathEncoding.encode(streamID)]),
                body: request.jsonBytes(), idempotent: true, streamID: streamID
            )
        } catch var error as MinkError where error.isTransient || error.code == .cancelled {
            // In doubt (lost answers, or cancelled while under way): it may have been committed.
            // The IDs let the caller retry safely.
            error.eventIDs = request.events.compactMap { $0.id?.lowercasedText }
            throw error
        }
        var result = AppendResult(streamID: response.streamId, events: [], isReplay: status == 200)
        result.fromVersion = response.fromVersion
        result.toVersion = response.toVersion
        result.fromPosition = UInt64(clamping: response.fromPosition)
        result.toPosition = UInt64(clamping: response.toPosition)
        return result
    }

    /// The wire body of an append; every event leaves with an ID.
    static func appendBody(_ events: [EventData], expectedVersion: ExpectedVersion, metadata: Metadata) throws -> AppendBody {
        let wireEvents = try events.enumerated().map { index, event in
            let id: UUID
            if let given = event.id, !given.isEmpty {
                guard let parsed = UUID(uuidString: given) else {
                    throw MinkError.validation("event \(index): id \"\(given.prefix(60))\" is not a UUID (minkd event IDs are UUIDs)")
                }
                id = parsed
            } else {
                id = UUID()
            }
            if event.type.isEmpty { throw MinkError.validation("event \(index): type must not be empty") }
            let data: RawJSON
            do { data = try RawJSON(validating: [UInt8](event.data)) } catch {
                throw MinkError(.serializationFailed, "event \(index): data is not valid JSON: \(error)")
            }
            return AppendBody.Event(id: id, type: event.type, data: data, metadata: Self.appendMetadata(event.metadata))
        }
        return AppendBody(expectedVersion: expectedVersion, metadata: Self.appendMetadata(metadata), events: wireEvents)
    }

    // MARK: Reading streams

    /// Every event of a stream from `fromVersion` on (inclusive), following the server's pages.
    /// - Parameters:
    ///   - fromVersion: the first version to return (1 = the whole stream).
    ///   - pageSize: events per request (1 to 10,000).
    /// - Throws: `.streamNotFound` when the stream does not exist.
    public func load(_ streamID: String, fromVersion: Int64 = 1, pageSize: Int = 1000) async throws -> [Event] {
        var all: [Event] = []
        var from = max(fromVersion, 1)
        while true {
            let page = try await readStreamPage(streamID, from: from, limit: pageSize, direction: .forward)
            all.append(contentsOf: page.events)
            guard let next = page.next, !page.events.isEmpty else { return all }
            from = next
        }
    }

    /// One page of a stream (`GET /v1/streams/{streamId}`): `from` is inclusive; backward with
    /// `from = -1` starts at the last event.
    /// - Throws: `.streamNotFound` when the stream does not exist.
    public func readStream(_ streamID: String, from: Int64, limit: Int = 1000, direction: ReadDirection = .forward) async throws -> [Event] {
        try await readStreamPage(streamID, from: from, limit: limit, direction: direction).events
    }

    func readStreamPage(_ streamID: String, from: Int64, limit: Int, direction: ReadDirection) async throws -> StreamPage {
        try StreamID.validate(streamID)
        var query = [("from", String(from)), ("limit", String(min(max(limit, 1), 10_000)))]
        if direction == .backward { query.append(("direction", "backward")) }
        return try await fetch(
            StreamPage.self, "GET", target(["v1", "streams", PathEncoding.encode(streamID)], query: query), idempotent: true, streamID: streamID
        ).value
    }

    /// What the server knows about a stream (`GET /v1/streams/{streamId}/info`), or `nil` when it
    /// does not exist.
    public func streamInfo(_ streamID: String) async throws -> StreamInfo? {
        try StreamID.validate(streamID)
        do {
            let body = try await fetchDecodable(
                StreamInfoBody.self, "GET", target(["v1", "streams", PathEncoding.encode(streamID), "info"]), idempotent: true
            )
            return StreamInfo(
                streamID: body.streamId, version: body.version, eventCount: body.eventCount,
                createdAt: body.createdAt.date, updatedAt: body.updatedAt.date
            )
        } catch let error as MinkError where error.code == .streamNotFound {
            return nil
        }
    }

    // MARK: The global log

    /// Up to `limit` events of the tenant's log after `position` (exclusive) passing `filter`
    /// (`GET /v1/events`). Page on with the last event's `globalPosition`.
    /// - Throws: `.adapterNotSupported` for a filter naming more than one stream (the API filters
    ///   by one).
    public func readAll(after position: UInt64 = 0, filter: EventFilter = .all, limit: Int = 1000) async throws -> [Event] {
        var query = [("after", String(position)), ("limit", String(min(max(limit, 1), 10_000)))]
        if let category = filter.category { query.append(("category", category)) }
        if !filter.eventTypes.isEmpty { query.append(("type", filter.eventTypes.joined(separator: ","))) }
        switch filter.streamIDs.count {
        case 0: break
        case 1: query.append(("stream", filter.streamIDs[0]))
        default: throw MinkError(.adapterNotSupported, "the HTTP API filters the log by one stream, not \(filter.streamIDs.count)")
        }
        let page = try await fetch(EventsPage.self, "GET", target(["v1", "events"], query: query), idempotent: true).value
        return page.events
    }

    /// The position of the tenant's last committed event (0 for an empty log).
    public func headPosition() async throws -> UInt64 {
        let body = try await fetch(PositionBody.self, "GET", target(["v1", "events", "head"]), idempotent: true).value
        return UInt64(clamping: body.position)
    }

    // MARK: Snapshots

    /// The newest snapshot of a stream (`GET /v1/streams/{streamId}/snapshot`), or `nil`.
    /// `createdAt` is the time it was loaded (the API does not return when it was stored).
    public func loadSnapshot(_ streamID: String) async throws -> Snapshot? {
        try StreamID.validate(streamID)
        do {
            let body = try await fetch(
                SnapshotBody.self, "GET", target(["v1", "streams", PathEncoding.encode(streamID), "snapshot"]),
                idempotent: true, streamID: streamID
            ).value
            return Snapshot(streamID: streamID, version: body.version, state: Data(body.state.bytes))
        } catch let error as MinkError where error.code == .notFound {
            return nil
        }
    }

    /// Stores a snapshot of a stream at `version` (`PUT /v1/streams/{streamId}/snapshot`).
    /// - Parameter state: the state as JSON.
    /// - Returns: `false` when the server kept a newer snapshot instead.
    /// - Throws: `.serializationFailed` when `state` is not JSON, `.validationFailed` for a
    ///   version below 1.
    @discardableResult
    public func saveSnapshot(_ streamID: String, version: Int64, state: Data) async throws -> Bool {
        try StreamID.validate(streamID)
        let raw: RawJSON
        do { raw = try RawJSON(validating: [UInt8](state)) } catch {
            throw MinkError(.serializationFailed, "snapshot state of \(streamID) is not valid JSON: \(error)")
        }
        let response = try await fetchDecodable(
            SnapshotStored.self, "PUT", target(["v1", "streams", PathEncoding.encode(streamID), "snapshot"]),
            body: SnapshotBody(version: version, state: raw).jsonBytes(), idempotent: true
        )
        return response.stored ?? (response.version == version)
    }
}

/// The answer to a snapshot `PUT`.
private struct SnapshotStored: Decodable {
    var version: Int64
    var stored: Bool?
}

extension MinkClient {
    /// The metadata an append sends, or `nil` when empty. The tenant is left out: the server
    /// stamps it from the request, never from input.
    static func appendMetadata(_ m: Metadata) -> Metadata? {
        var copy = m
        copy.tenantID = nil
        return copy.isEmpty ? nil : copy
    }
}

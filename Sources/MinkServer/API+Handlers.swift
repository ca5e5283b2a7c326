import Foundation
import Mink
import MinkHTTP
import MinkWire

extension Route {
    /// Whether the route's handler needs no storage and never waits, so that it may run on the
    /// connection's event loop (``API/handleSynchronously(_:)``).
    var isSynchronous: Bool {
        switch self {
        case .healthz, .info, .openAPI, .consoleRoot, .console: true
        default: false
        }
    }
}

extension API {
    /// Dispatches a routed request to its handler.
    func handle(_ c: RequestContext) async throws -> HTTPResponse {
        switch c.route {
        case .healthz, .info, .openAPI, .consoleRoot, .console: return try handleSynchronously(c)
        case .readyz: return try await readyz(c)
        case .metrics: return await metricsResponse()
        case .append(let id): return try await append(c, streamID: id)
        case .load(let id): return try await load(c, streamID: id)
        case .streamInfo(let id): return try await streamInfo(c, streamID: id)
        case .getSnapshot(let id): return try await getSnapshot(c, streamID: id)
        case .putSnapshot(let id): return try await putSnapshot(c, streamID: id)
        case .events: return try await events(c)
        case .head: return Reply.json(PositionBody(position: Int64(try await c.store.headPosition())))
        case .subscribeAll: return try subscribe(c, target: .all)
        case .subscribeCategory(let category): return try subscribe(c, target: .category(category))
        case .subscribeStream(let id):
            try validateStreamID(id)
            try await c.store.checkNotTombstoned(id)
            return try subscribe(c, target: .stream(id))
        case .listProjections, .projection, .rebuildProjection, .pauseProjection, .resumeProjection:
            return try await projections(c)
        case .readModelDocument, .readModelList, .readModelQuery, .readModelCount:
            return try await readModels(c)
        case .listTenants, .createTenant, .deleteTenant:
            return try await tenantAdministration(c)
        case .export: return try export(c)
        case .importEvents: return try await importEvents(c)
        case .listStreams, .deleteStream, .getStreamMetadata, .putStreamMetadata, .scavenge:
            return try await streamLifecycle(c)
        }
    }

    // MARK: Operations

    /// `/healthz`'s document, which never changes (the response around it is built per request).
    private static let healthBody = HealthBody().jsonBytes()

    /// Answers a route whose handler needs no storage and never waits (``Route/isSynchronous``).
    ///
    /// The responder runs these on the connection's event loop, without a task
    /// (``APIHandler/route(_:)``): the same pipeline as every other route (routing, access
    /// control, span, metrics, access log), minus the hop to a task. A route
    /// listed here must stay cheap and synchronous, and use no tenant.
    /// - Throws: `500` for a route that is not synchronous (a bug).
    func handleSynchronously(_ c: RequestContext) throws -> HTTPResponse {
        switch c.route {
        case .healthz: return Reply.json(bytes: Self.healthBody)
        case .info: return info()
        case .openAPI, .consoleRoot, .console: return try builtInDocument(c.route)
        default: throw APIError(.internal, "no synchronous handler for \(c.route.template)")
        }
    }

    private func readyz(_ c: RequestContext) async throws -> HTTPResponse {
        guard isReady else { return notReady("starting or shutting down") }
        do {
            _ = try await store.headPosition()
        } catch {
            // Probes come every few seconds: an outage is logged (once) even with no traffic.
            storageOutage.failed(cause: String(reflecting: error))
            return notReady("storage does not answer")
        }
        // Reads alone would say ready while every write fails (read-only file or file system,
        // full disk): the probe writes, at most every few seconds. A failure is an outage like
        // any other for the log (one error line when it starts, one notice when it ends).
        if let probe = writeProbe, let failure = await probe.failure() {
            // No request's IDs: the probe writes on its own schedule (at most every few seconds),
            // so its failure need not be this request's.
            storageOutage.failed(cause: "storage refuses writes: \(failure)", write: true, trace: nil)
            return notReady("storage refuses writes")
        }
        // Both probes answered: reads, and (with a probe) a write.
        storageOutage.succeeded(write: writeProbe != nil)
        return Reply.json(ReadyBody(status: "ready"))
    }

    private func notReady(_ reason: String) -> HTTPResponse {
        var r = Reply.json(ReadyBody.unavailable(reason), status: 503)
        r.headers.add(name: "Retry-After", value: "1")
        return r
    }

    private func metricsResponse() async -> HTTPResponse {
        let t = transportMetrics
        metrics.openConnections.set(Double(t?.openConnections ?? 0))
        metrics.sseSubscribers.set(Double(t?.activeStreams ?? 0))
        // Projections of the tenants that have started them: checkpoints and lag summed over
        // tenants (labels carry the projection name only, never a tenant ID).
        var checkpoint: [String: Double] = [:], lag: [String: Double] = [:], faulted: [String: Double] = [:]
        for entry in projections.entries { checkpoint[entry.projection.name] = 0; lag[entry.projection.name] = 0; faulted[entry.projection.name] = 0 }
        for engine in await projections.startedEngines() {
            for s in (try? await engine.statuses()) ?? [] {
                checkpoint[s.name, default: 0] += Double(s.checkpoint)
                lag[s.name, default: 0] += Double(s.lag)
                if s.state == .faulted { faulted[s.name, default: 0] += 1 }
            }
        }
        for (name, v) in checkpoint { metrics.projectionGauge("checkpoint", name).set(v) }
        for (name, v) in lag { metrics.projectionGauge("lag", name).set(v) }
        for (name, v) in faulted { metrics.projectionGauge("faulted", name).set(v) }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
        return HTTPResponse(status: 200, headers: headers, bytes: metrics.render() + ProcessMetrics.render(version: MinkServer.version))
    }

    private func info() -> HTTPResponse {
        let l = configuration.limits
        return Reply.json(InfoBody(
            version: MinkServer.version, storage: storage.kind, tenancy: configuration.tenancy.strategy.rawValue,
            uptimeSeconds: uptimeSeconds,
            limits: .init(
                maxBodyBytes: l.maxBodyBytes, maxEventsPerAppend: l.maxEventsPerAppend, maxEventBytes: l.maxEventBytes,
                maxConnections: l.maxConnections, subscriberBuffer: l.subscriberBuffer
            )
        ))
    }

    // MARK: Streams

    func validateStreamID(_ id: String) throws {
        guard StreamID.problem(id) == nil else {
            throw APIError(.invalidStreamID, "invalid stream ID: it must be 1 to 256 bytes of UTF-8 without control characters")
        }
    }

    /// Checks `Content-Type` on requests with a body: absent is taken as JSON, anything else
    /// than `application/json` (or `+json`) is `415`.
    func requireJSON(_ c: RequestContext) throws { try requireJSON(c.request) }

    func requireJSON(_ request: HTTPRequest) throws {
        guard let type = request.headers["Content-Type"] else { return }
        if Self.isJSONMediaType(type) { return }
        let media = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard media == "application/json" || media.hasSuffix("+json") else {
            throw APIError(.unsupportedMediaType, "the body must be JSON (Content-Type: application/json), not \(media.prefix(80))")
        }
    }

    /// Whether an ASCII `Content-Type` value names JSON (`application/json` or `…+json`, any case,
    /// parameters after `;` ignored), by a byte scan. Why not the Foundation path of
    /// ``requireJSON(_:)``: splitting, `trimmingCharacters` (through `NSString`) and lowercasing
    /// were ~5 % of the server's CPU on single-event appends (perf, SQLite, 64 clients). A value
    /// with other bytes, or one that is not JSON, goes that path, which decides (and words the
    /// `415`) as before.
    static func isJSONMediaType(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { bytes -> Bool in
            var end = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
            var start = 0
            func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
            while start < end, isSpace(bytes[start]) { start += 1 }
            while end > start, isSpace(bytes[end - 1]) { end -= 1 }
            func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }
            func endsWith(_ suffix: StaticString) -> Bool {
                let n = suffix.utf8CodeUnitCount
                guard end - start >= n else { return false }
                return (0..<n).allSatisfy { lower(bytes[end - n + $0]) == suffix.utf8Start[$0] }
            }
            for i in start..<end where bytes[i] >= 0x80 { return false }
            return endsWith("+json") || (end - start == 16 && endsWith("application/json"))
        }
    }

    /// The checks a write makes on its request alone, before it touches storage — run before a
    /// write creates its tenant (`autoCreate`), so that bad input (`400`, `413`, `415`, `422`)
    /// leaves no new, empty tenant behind. The handler runs them again (a second decode, only
    /// for the first write of a tenant).
    ///
    /// Run only for a tenant that does not exist, so an append's expected version is checked
    /// here too: every stream of such a tenant is at version 0, and an append that expects more
    /// (`N ≥ 1`, `stream_exists`) fails as it would in an empty tenant (`409`, `404`) without
    /// creating it.
    func checkInput(_ route: Route, _ request: HTTPRequest) throws {
        switch route {
        case .append(let id):
            let body = try appendInput(request, streamID: id)
            try body.expectedVersion.check(streamID: id, currentVersion: 0)
        case .putSnapshot(let id): _ = try snapshotInput(request, streamID: id)
        case .putStreamMetadata(let id): _ = try streamMetadataInput(request, streamID: id)
        case .importEvents: _ = try importInput(request)
        default: break
        }
    }

    /// Everything an append checks before it touches storage (the request alone).
    func appendInput(_ request: HTTPRequest, streamID: String) throws -> AppendBody {
        try validateStreamID(streamID)
        try rejectReserved(streamID)
        try requireJSON(request)
        let l = configuration.limits
        let body = try AppendBody.decode(
            request.body, limits: AppendLimits(maxEvents: l.maxEventsPerAppend, maxEventBytes: l.maxEventBytes)
        )
        if let e = body.events.first(where: { StreamID.isReserved($0.type) }) {
            throw APIError(.validationFailed, "event types starting with $ are reserved for the server: \(e.type)")
        }
        return body
    }

    private func append(_ c: RequestContext, streamID: String) async throws -> HTTPResponse {
        let body = try appendInput(c.request, streamID: streamID)
        // The tenant is stamped by the store from the request, never taken from the body.
        func untrusted(_ m: Metadata?) -> Metadata {
            var m = m ?? Metadata()
            m.tenantID = nil
            return m
        }
        let events = body.events.map { e in
            EventData(id: e.id?.lowercasedText, type: e.type, data: Data(e.data.bytes), metadata: untrusted(e.metadata))
        }
        let result = try await c.store.append(streamID, events: events, expectedVersion: body.expectedVersion, metadata: untrusted(body.metadata))
        return Reply.json(AppendResponse(
            streamId: streamID, fromVersion: result.fromVersion, toVersion: result.toVersion,
            fromPosition: Int64(result.fromPosition), toPosition: Int64(result.toPosition)
        ), status: result.isReplay ? 200 : 201)
    }

    private func load(_ c: RequestContext, streamID: String) async throws -> HTTPResponse {
        try validateStreamID(streamID)
        let direction: ReadDirection
        switch c.query["direction"] ?? "forward" {
        case "forward": direction = .forward
        case "backward": direction = .backward
        default: throw APIError(.badRequest, "query parameter direction must be forward or backward")
        }
        let limit = Int(try c.query.integer("limit", default: 1000, in: 1...10_000))
        let from = try c.query.integer("from", default: direction == .forward ? 1 : -1, in: -1...Int64.max)
        guard let read = try await c.store.readStreamWithInfo(streamID, from: from, limit: limit, direction: direction) else {
            throw MinkError.streamNotFound(streamID)
        }
        let (info, events) = (read.info, read.events)
        var next: Int64?
        if events.count == limit, let last = events.last {
            if direction == .forward, last.version < info.version { next = last.version + 1 }
            // The oldest event kept: retention rules and deletions remove a stream's first
            // events, never one in the middle, so the kept ones are the last `eventCount`
            // versions (a backward page that reached it answered `next` 7 under
            // `truncateBefore: 8`, and 7 was empty).
            let oldest = max(1, max(info.version, last.version) - info.eventCount + 1)
            if direction == .backward, last.version > oldest { next = last.version - 1 }
        }
        var w = JSONWriter(capacity: 256 + events.count * 256)
        w.beginObject()
        w.key("streamId"); w.string(streamID)
        w.key("version"); w.int(max(info.version, events.map(\.version).max() ?? 0))
        w.key("events"); writeEvents(events, to: &w)
        w.key("next"); w.int(next)
        w.endObject()
        return Reply.json(bytes: w.bytes)
    }

    private func streamInfo(_ c: RequestContext, streamID: String) async throws -> HTTPResponse {
        try validateStreamID(streamID)
        guard let info = try await c.store.streamInfo(streamID) else { throw MinkError.streamNotFound(streamID) }
        return Reply.json(StreamInfoBody(
            streamId: streamID, category: info.category, version: info.version, eventCount: info.eventCount,
            createdAt: WireTimestamp(info.createdAt), updatedAt: WireTimestamp(info.updatedAt)
        ))
    }

    /// Snapshot states of this size or more are stored gzip-compressed (JSON never starts with
    /// the gzip magic bytes, so stored states are told apart by their first bytes).
    static let snapshotCompressionThreshold = 4096

    private func getSnapshot(_ c: RequestContext, streamID: String) async throws -> HTTPResponse {
        try validateStreamID(streamID)
        let adapter = try snapshots(c)
        let found: Snapshot?
        if storage.snapshotsKnowTombstones, let lifecycle = adapter as? any StreamLifecycleAdapter {
            // The snapshot and the tombstone in one storage call (one PostgreSQL round trip).
            let read = try await lifecycle.snapshotUnlessTombstoned(streamID: streamID)
            if read.tombstoned { throw MinkError.streamDeleted(streamID) }
            found = read.snapshot
        } else {
            try await c.store.checkNotTombstoned(streamID)
            found = try await adapter.loadSnapshot(streamID: streamID)
        }
        guard let snapshot = found else {
            throw APIError(.notFound, "no snapshot for stream \(streamID)")
        }
        var state = [UInt8](snapshot.state)
        if state.count >= 2, state[0] == 0x1f, state[1] == 0x8b {
            state = try Gzip.decompress(state, limit: 256 << 20)
        }
        return Reply.json(SnapshotBody(version: snapshot.version, state: RawJSON(unchecked: state)))
    }

    /// Everything a snapshot `PUT` checks before it touches storage (the request alone).
    func snapshotInput(_ request: HTTPRequest, streamID: String) throws -> SnapshotBody {
        try validateStreamID(streamID)
        try rejectReserved(streamID)
        try requireJSON(request)
        let body = try SnapshotBody.decode(request.body)
        // As for imported versions: larger ones are not read exactly by every JSON reader, and a
        // loader reading on from `version + 1` would overflow.
        guard body.version >= 1, UInt64(body.version) <= ImportValidator.maxNumber else {
            throw APIError(.validationFailed, "version must be from 1 to \(ImportValidator.maxNumber) (2^53 − 1)")
        }
        return body
    }

    private func putSnapshot(_ c: RequestContext, streamID: String) async throws -> HTTPResponse {
        let body = try snapshotInput(c.request, streamID: streamID)
        let adapter = try snapshots(c)
        // The events' own storage checks the tombstone in the write itself (`410`), atomically with
        // it; with another snapshot adapter the event store is asked first.
        if !storage.snapshotsKnowTombstones { try await c.store.checkNotTombstoned(streamID) }
        var state = body.state.bytes
        if state.count >= Self.snapshotCompressionThreshold { state = try Gzip.compress(state) }
        let stored = try await adapter.storeSnapshot(Snapshot(streamID: streamID, version: body.version, state: Data(state)))
        var w = JSONWriter()
        w.beginObject()
        w.key("streamId"); w.string(streamID)
        w.key("version"); w.int(stored)
        w.key("stored"); w.bool(stored == body.version)
        w.endObject()
        return Reply.json(bytes: w.bytes)
    }

    private func snapshots(_ c: RequestContext) throws -> any SnapshotAdapter {
        c.tenant == TenantID.default ? storage.snapshots : try storage.snapshots.forTenant(c.tenant)
    }

    // MARK: The global log

    private func events(_ c: RequestContext) async throws -> HTTPResponse {
        let after = try c.query.integer("after", default: 0, in: 0...Int64.max)
        let limit = Int(try c.query.integer("limit", default: 1000, in: 1...10_000))
        var filter = EventFilter(category: c.query["category"], eventTypes: c.query.list("type"))
        // An empty filter is no filter, as for `category` and `type`.
        if let stream = c.query["stream"], !stream.isEmpty { filter.streamIDs = [stream] }
        if let category = filter.category, category.isEmpty { filter.category = nil }
        let events = try await c.store.readAll(after: UInt64(after), filter: filter, limit: limit)
        var w = JSONWriter(capacity: 256 + events.count * 256)
        w.beginObject()
        w.key("events"); writeEvents(events, to: &w)
        w.key("next"); w.int(events.last.map { Int64($0.globalPosition) } ?? after)
        w.endObject()
        return Reply.json(bytes: w.bytes)
    }

    // MARK: Encoding

    func writeEvents(_ events: [Event], to w: inout JSONWriter) {
        w.beginArray()
        for e in events { e.write(to: &w) }
        w.endArray()
    }
}

import Foundation
import Mink
import MinkHTTP
import MinkWire

extension MinkClient {
    /// The tenant's events after `position`, in global order, from `GET /v1/admin/export`
    /// (role `admin`): read as the response arrives (gzip-encoded on the wire), one event at a
    /// time, so a whole tenant can be walked without holding it. After an interruption (the
    /// sequence throws), export again with the last event's `globalPosition`.
    ///
    /// ```swift
    /// for try await event in client.export(after: 0) { try await archive(event) }
    /// ```
    public func export(after position: UInt64 = 0) -> AsyncThrowingStream<Event, any Error> {
        // Bounded buffers all the way down: a slow consumer holds the reading, not the memory.
        let (stream, continuation) = AsyncThrowingStream<Event, any Error>.makeStream(bufferingPolicy: .bufferingOldest(256))
        let task = Task {
            do {
                for try await line in exportLines(after: position) {
                    let event: Event
                    do { event = try Event(jsonBytes: line) } catch {
                        throw MinkError(.serializationFailed, "malformed event in the export: \(error)")
                    }
                    guard try await continuation.send(event) else { break }
                }
                continuation.finish()
            } catch let error as MinkError {
                continuation.finish(throwing: error)
            } catch {
                // Only a cancellation is left (the lines' own errors are `MinkError`s).
                continuation.finish(throwing: MinkError(.cancelled, "the export was cancelled"))
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// The raw NDJSON lines of `GET /v1/admin/export` (without their `\n`), exactly as the server
    /// wrote them: what ``importEvents(ndjson:)`` (or `minkd import`) takes back.
    public func exportLines(after position: UInt64 = 0) -> AsyncThrowingStream<[UInt8], any Error> {
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream(bufferingPolicy: .bufferingOldest(1024))
        let request: HTTPClientRequest = {
            var headers = commonHeaders()
            headers.add(name: "Accept", value: NDJSON.contentType)
            headers.add(name: "Accept-Encoding", value: "gzip")
            return HTTPClientRequest(method: "GET", host: host, port: port, target: target(["v1", "admin", "export"], query: [("after", String(position))]), headers: headers)
        }()
        let http = self.http
        let task = Task {
            do {
                let response = try await http.bodyStream(request)
                if !(200..<300).contains(response.status) {
                    var body: [UInt8] = []
                    for try await piece in response.body { body += piece }
                    var decoded = body
                    if response.headers["Content-Encoding"]?.lowercased().contains("gzip") == true,
                       let plain = try? Gzip.decompress(body, limit: 1 << 20) {
                        decoded = plain
                    }
                    throw ErrorMapping.error(status: response.status, body: decoded, streamID: nil)
                }
                let gunzip: GzipDecoder?
                if response.headers["Content-Encoding"]?.lowercased().contains("gzip") == true {
                    gunzip = try GzipDecoder()
                } else {
                    gunzip = nil
                }
                var pending: [UInt8] = []
                func take(_ bytes: [UInt8]) async throws {
                    pending += bytes
                    var start = 0
                    while let nl = pending[start...].firstIndex(of: 0x0A) {
                        try await continuation.send(Array(pending[start..<nl]))
                        start = nl + 1
                    }
                    pending.removeFirst(start)
                }
                for try await piece in response.body {
                    if let gunzip {
                        gunzip.feed(piece)
                        while let out = try gunzip.next() { try await take(out) }
                    } else {
                        try await take(piece)
                    }
                }
                if let gunzip { try gunzip.finish() }
                if !pending.isEmpty { try await continuation.send(pending) }
                continuation.finish()
            } catch let error as MinkError {
                continuation.finish(throwing: error)
            } catch is CancellationError {
                continuation.finish(throwing: MinkError(.cancelled, "the export was cancelled"))
            } catch {
                // Transport failures (and a refused header value) as every other request's.
                continuation.finish(throwing: ErrorMapping.transportError(error, method: "GET", target: request.target))
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Imports an export into the client's tenant, which must have no events
    /// (`POST /v1/admin/import`, role `admin`); all or nothing. The body is sent gzip-encoded.
    /// - Parameters:
    ///   - ndjson: the export's lines, each ending in `\n`.
    ///   - timeout: how long the answer may take (the server answers once the whole import is
    ///     committed: minutes for millions of events); default one hour.
    /// - Returns: what was imported.
    /// - Throws: `MinkError` — `tenant_not_empty`, `bad_request` naming the line,
    ///   `payload_too_large`; `.unavailable` when the answer did not come (the import may still
    ///   commit, all or nothing: the tenant's head tells); `.cancelled`.
    @discardableResult
    public func importEvents(ndjson: [UInt8], timeout: Duration = .seconds(3600)) async throws -> ImportSummary {
        var headers = commonHeaders()
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "Content-Type", value: NDJSON.contentType)
        headers.add(name: "Content-Encoding", value: "gzip")
        let compressed: [UInt8]
        do { compressed = try Gzip.compress(ndjson, level: 1) } catch {
            throw MinkError(.serializationFailed, "cannot gzip the import: \(error)")
        }
        var request = HTTPClientRequest(
            method: "POST", host: host, port: port, target: target(["v1", "admin", "import"]), headers: headers, body: compressed
        )
        request.readTimeout = timeout
        let response: HTTPClientResponse
        do { response = try await http.execute(request) } catch is CancellationError {
            throw MinkError(.cancelled, "the import was cancelled (it may still commit, all or nothing: the tenant's head tells)")
        } catch {
            if Task.isCancelled { throw MinkError(.cancelled, "the import was cancelled (it may still commit, all or nothing: the tenant's head tells)") }
            throw ErrorMapping.transportError(error, method: "POST", target: request.target)
        }
        let body: [UInt8]
        do { body = try response.decodedBody() } catch {
            throw MinkError(.unavailable, "cannot decode the answer to the import: \(error)", isTransient: true)
        }
        guard (200..<300).contains(response.status) else {
            throw ErrorMapping.error(status: response.status, body: body, streamID: nil)
        }
        let result: ImportResultBody
        do { result = try ImportResultBody.decode(body) } catch {
            throw MinkError(.serializationFailed, "unexpected answer to the import: \(error)")
        }
        return ImportSummary(events: result.events, streams: result.streams, head: UInt64(clamping: result.head))
    }

    /// Imports events (as ``export(after:)`` returned them) into the client's tenant; see
    /// ``importEvents(ndjson:)``.
    @discardableResult
    public func importEvents(_ events: [Event], timeout: Duration = .seconds(3600)) async throws -> ImportSummary {
        var writer = JSONWriter(capacity: events.count * 256)
        for e in events { NDJSON.line(e, into: &writer) }
        return try await importEvents(ndjson: writer.bytes, timeout: timeout)
    }
}

import Synchronization

/// Errors of ``HTTPClient``.
public enum HTTPClientError: Error, Sendable, Equatable {
    /// No answer (or no progress) within the configured timeout.
    case timeout
    /// The server closed the connection before a complete response.
    case connectionClosed
    /// An event stream was answered with a status other than 200: the status, the start of the
    /// answer's body (at most 64 KiB: minkd's error body, for the code) and its `Retry-After`.
    case unexpectedStatus(Int, body: [UInt8] = [], retryAfter: String? = nil)
    /// A header field's value holds CR, LF or NUL (or the host is not one): nothing was sent.
    case invalidHeaderValue(String)
    /// The response body is larger than ``HTTPClientConfiguration/maxResponseBytes`` (as sent,
    /// or once decompressed): asking again gets the same answer.
    case responseTooLarge(limit: Int)
}

/// Settings of an ``HTTPClient``.
public struct HTTPClientConfiguration: Sendable {
    /// Time allowed to establish a connection.
    public var connectTimeout: Duration
    /// Time allowed without progress while sending a request or reading a response.
    public var readTimeout: Duration
    /// Idle connections kept per `host:port`.
    public var maxIdleConnectionsPerHost: Int
    /// Idle connections older than this are not reused.
    public var idleTimeout: Duration
    /// Largest response body accepted (bytes).
    public var maxResponseBytes: Int

    /// Creates a configuration.
    public init(connectTimeout: Duration = .seconds(5), readTimeout: Duration = .seconds(30),
                maxIdleConnectionsPerHost: Int = 8, idleTimeout: Duration = .seconds(30),
                maxResponseBytes: Int = 64 * 1024 * 1024) {
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.maxIdleConnectionsPerHost = maxIdleConnectionsPerHost
        self.idleTimeout = idleTimeout
        self.maxResponseBytes = maxResponseBytes
    }
}

/// A request for ``HTTPClient/execute(_:)``.
public struct HTTPClientRequest: Sendable {
    /// The method, e.g. `GET`.
    public var method: String
    /// Server host name or address.
    public var host: String
    /// Server port.
    public var port: Int
    /// The origin-form target, e.g. `/v1/streams/a?from=1`.
    public var target: String
    /// Extra header fields (`Host` and `Content-Length` are added).
    public var headers: HTTPHeaders
    /// The body.
    public var body: [UInt8]
    /// Whether sending it twice has the effect of sending it once. Only such a request is sent
    /// again on a fresh connection when a reused one ends without a byte of answer (the server may
    /// have closed it idle — or may have run the request and died). Default: the method's
    /// (RFC 9110 §9.2.2: not `POST`, `PATCH`).
    public var isIdempotent: Bool
    /// Time allowed without progress for this request, instead of the client's `readTimeout`
    /// (an import the server takes minutes to commit).
    public var readTimeout: Duration?

    /// Creates a request.
    public init(method: String = "GET", host: String, port: Int, target: String,
                headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], isIdempotent: Bool? = nil) {
        self.method = method
        self.host = host
        self.port = port
        self.target = target
        self.headers = headers
        self.body = body
        self.isIdempotent = isIdempotent ?? !["POST", "PATCH", "CONNECT"].contains(method)
    }

    /// Refuses a header field whose value holds CR, LF or NUL: sent as is, it would end the field
    /// early and could start another field or another request.
    func checkFields() throws(HTTPClientError) {
        for field in headers where field.value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) {
            throw .invalidHeaderValue(field.name)
        }
        if host.utf8.contains(where: { $0 <= 32 || $0 == 0x2F || $0 == 0x40 }) { throw .invalidHeaderValue("Host") }
    }

    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + body.count)
        out.append(contentsOf: "\(method) \(target) HTTP/1.1\r\n".utf8)
        if !headers.contains("Host") {
            // An IPv6 literal is bracketed in `Host` (RFC 9110 §7.2, RFC 3986 §3.2.2): `[::1]:6465`.
            let name = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
            out.append(contentsOf: "Host: \(name):\(port)\r\n".utf8)
        }
        for field in headers where !asciiCaseInsensitiveEquals(field.name, "Content-Length") {
            out.append(contentsOf: "\(field.name): \(field.value)\r\n".utf8)
        }
        if !body.isEmpty || method == "POST" || method == "PUT" || method == "PATCH" {
            out.append(contentsOf: "Content-Length: \(body.count)\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
        out.append(contentsOf: body)
        return out
    }
}

/// A complete response received by ``HTTPClient``.
public struct HTTPClientResponse: Sendable {
    /// The status code.
    public var status: Int
    /// The header fields.
    public var headers: HTTPHeaders
    /// The de-chunked body (still gzip-encoded if `Content-Encoding: gzip`; see ``decodedBody()``).
    public var body: [UInt8]

    /// The body, gunzipped when `Content-Encoding: gzip`.
    public func decodedBody(limit: Int = 64 * 1024 * 1024) throws -> [UInt8] {
        if let e = headers["Content-Encoding"], asciiCaseInsensitiveEquals(trimOWS(e), "gzip") {
            return try Gzip.decompress(body, limit: limit)
        }
        return body
    }
}

/// An HTTP/1.1 client with a small keep-alive pool per `host:port`.
///
/// Socket I/O runs on the client's Dispatch event-loop queues; callers only await.
public final class HTTPClient: Sendable {
    /// The configuration in use.
    public let configuration: HTTPClientConfiguration
    private let idle = Mutex<[String: [ClientConnection]]>([:])
    private let openedCount = Atomic<Int>(0)

    /// Creates a client.
    public init(configuration: HTTPClientConfiguration = HTTPClientConfiguration()) {
        self.configuration = configuration
    }

    /// Connections opened so far (to observe keep-alive reuse).
    public var connectionsOpened: Int { openedCount.load(ordering: .relaxed) }

    /// Closes every idle pooled connection.
    public func shutdown() {
        let all = idle.withLock { pool -> [ClientConnection] in
            defer { pool = [:] }
            return pool.values.flatMap { $0 }
        }
        for c in all { c.close() }
    }

    private func checkout(host: String, port: Int) -> ClientConnection? {
        let key = "\(host):\(port)"
        let now = monotonicNanos()
        let maxAge = configuration.idleTimeout.nanoseconds
        var stale: [ClientConnection] = []
        let found = idle.withLock { pool -> ClientConnection? in
            while var list = pool[key], let c = list.popLast() {
                pool[key] = list
                // Young enough, and not closed by the server meanwhile (its idle timeout, a
                // restart): a request that must not be sent twice can then go out on it.
                if now &- c.idleSince < maxAge, c.looksOpen { return c }
                stale.append(c)
            }
            return nil
        }
        for c in stale { c.close() }
        return found
    }

    private func checkin(_ connection: ClientConnection) {
        connection.reused = true
        connection.idleSince = monotonicNanos()
        let max = configuration.maxIdleConnectionsPerHost
        let kept = idle.withLock { pool -> Bool in
            var list = pool[connection.key, default: []]
            guard list.count < max else { return false }
            list.append(connection)
            pool[connection.key] = list
            return true
        }
        if !kept { connection.close() }
    }

    private func connect(host: String, port: Int) async throws -> ClientConnection {
        let c = try await ClientConnection.connect(host: host, port: port, timeout: configuration.connectTimeout)
        openedCount.add(1, ordering: .relaxed)
        return c
    }

    /// Sends a request and reads the complete response, reusing a pooled connection
    /// when one is idle. A reused connection that turns out to be closed by the
    /// server is retried once on a new one.
    /// - Throws: ``HTTPClientError``, ``SocketError`` or ``HTTPResponseParseError``.
    public func execute(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        try request.checkFields()
        if let pooled = checkout(host: request.host, port: request.port) {
            do {
                return try await exchange(request, on: pooled)
            } catch let error as StaleConnection {
                // The server closed the idle connection, most likely before reading the request:
                // sent again on a fresh one — if sending twice is harmless (it may have run it).
                _ = error
                guard request.isIdempotent else { throw HTTPClientError.connectionClosed }
            }
        }
        let fresh = try await connect(host: request.host, port: request.port)
        do {
            return try await exchange(request, on: fresh)
        } catch is StaleConnection {
            throw HTTPClientError.connectionClosed
        }
    }

    private struct StaleConnection: Error {}

    private func exchange(_ request: HTTPClientRequest, on connection: ClientConnection) async throws -> HTTPClientResponse {
        let timeout = request.readTimeout ?? configuration.readTimeout
        var receivedAny = false
        do {
            try await connection.write(request.encoded(), timeout: timeout)
            connection.parser.requestSent(isHead: request.method == "HEAD")
            var head: HTTPResponseHead?
            var body: [UInt8] = []
            while true {
                while let event = try connection.parser.next() {
                    switch event {
                    case .head(let h): head = h
                    case .body(let b):
                        body.append(contentsOf: b)
                        if body.count > configuration.maxResponseBytes { throw HTTPClientError.responseTooLarge(limit: configuration.maxResponseBytes) }
                    case .end:
                        let h = head!
                        // Bytes after the response (a second answer to one request, as a request
                        // smuggled through a header would get): never handed to the next request.
                        if h.isKeepAlive, !connection.parser.hasUnreadBytes { checkin(connection) } else { connection.close() }
                        return HTTPClientResponse(status: h.status, headers: h.headers, body: body)
                    }
                }
                let bytes = try await connection.read(timeout: timeout)
                if bytes.isEmpty {
                    if case .end? = try connection.parser.finish(), let h = head {
                        connection.close()
                        return HTTPClientResponse(status: h.status, headers: h.headers, body: body)
                    }
                    connection.close()
                    if connection.reused && !receivedAny { throw StaleConnection() }
                    throw HTTPClientError.connectionClosed
                }
                receivedAny = true
                connection.parser.feed(bytes)
            }
        } catch let error as SocketError where connection.reused && !receivedAny {
            _ = error
            connection.close()
            throw StaleConnection()
        } catch {
            connection.close()
            throw error
        }
    }

    /// Opens a `text/event-stream` and returns its events as they arrive.
    ///
    /// The stream ends when the server ends the response; it throws
    /// ``HTTPClientError/unexpectedStatus(_:)`` for a non-200 answer. Cancelling
    /// the consuming task (or dropping the iterator) closes the connection.
    /// - Parameters:
    ///   - lastEventID: sent as `Last-Event-ID` to resume after that event.
    ///   - readTimeout: time allowed without any byte (keep-alive comments count);
    ///     `nil` waits for ever.
    public func events(host: String, port: Int, target: String, headers: HTTPHeaders = HTTPHeaders(),
                       lastEventID: String? = nil, readTimeout: Duration? = nil) -> SSEEventStream {
        var request = HTTPClientRequest(method: "GET", host: host, port: port, target: target, headers: headers)
        request.headers.replace(name: "Accept", value: "text/event-stream")
        if let lastEventID { request.headers.replace(name: "Last-Event-ID", value: lastEventID) }
        let connectTimeout = configuration.connectTimeout
        let timeout = readTimeout ?? .seconds(365 * 24 * 3600)
        let encoded = request.encoded()
        var fieldProblem: HTTPClientError?
        do throws(HTTPClientError) { try request.checkFields() } catch { fieldProblem = error }
        // Bounded: at most 1,024 events ahead of the consumer; a slower consumer makes the reading
        // task stop reading, so the server (not this process's memory) holds the rest — and its
        // subscriber limit ends the stream with `fell-behind` if the consumer never catches up.
        let (stream, continuation) = AsyncThrowingStream<SSEEvent, any Error>.makeStream(bufferingPolicy: .bufferingOldest(1024))
        do {
            let task = Task {
                var connection: ClientConnection?
                do {
                    if let fieldProblem { throw fieldProblem }
                    let c = try await ClientConnection.connect(host: host, port: port, timeout: connectTimeout)
                    connection = c
                    self.openedCount.add(1, ordering: .relaxed)
                    try await c.write(encoded, timeout: timeout)
                    var sse = SSEParser(lastEventID: lastEventID ?? "")
                    var parser = HTTPResponseParser()
                    // A refusal (status other than 200): its body is read (up to 64 KiB), so that
                    // the caller sees the server's error code, not only the status.
                    var refusal: (status: Int, retryAfter: String?, body: [UInt8])?
                    var refusalDeadline = ContinuousClock.now
                    reading: while true {
                        while let event = try parser.next() {
                            switch event {
                            case .head(let h):
                                if h.status != 200 {
                                    refusal = (h.status, h.headers["Retry-After"], [])
                                    refusalDeadline = ContinuousClock.now + .seconds(5)
                                }
                            case .body(let b):
                                if refusal != nil {
                                    refusal!.body += b.prefix(max(0, 65536 - refusal!.body.count))
                                    if refusal!.body.count >= 65536 { break reading }
                                } else {
                                    for e in sse.feed(b) { guard try await continuation.send(e) else { break reading } }
                                }
                            case .end:
                                break reading
                            }
                        }
                        let bytes: [UInt8]
                        do {
                            // A refusal's body comes at once (5 s for all of it); a stream's next
                            // byte may take long.
                            let left = ContinuousClock.now.duration(to: refusalDeadline)
                            if refusal != nil, left <= .zero { break reading }
                            bytes = try await c.read(timeout: refusal == nil ? timeout : min(timeout, left))
                        } catch where refusal != nil {
                            break reading  // the status alone, then
                        }
                        if bytes.isEmpty {
                            if refusal == nil { _ = try parser.finish() }
                            break
                        }
                        parser.feed(bytes)
                    }
                    c.close()
                    if let refusal {
                        throw HTTPClientError.unexpectedStatus(refusal.status, body: refusal.body, retryAfter: refusal.retryAfter)
                    }
                    continuation.finish()
                } catch {
                    connection?.close()
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
            return SSEEventStream(stream: stream, canceller: SSEEventStream.Canceller(task: task))
        }
    }
}

/// The events of one server-sent-event response (see ``HTTPClient/events(host:port:target:headers:lastEventID:readTimeout:)``).
///
/// Iterate it once. Leaving the loop early (or dropping the stream) closes the connection.
public struct SSEEventStream: AsyncSequence, Sendable {
    /// Cancels the reading task when the last reference goes away.
    final class Canceller: Sendable {
        let task: Task<Void, Never>
        init(task: Task<Void, Never>) { self.task = task }
        deinit { task.cancel() }
    }

    let stream: AsyncThrowingStream<SSEEvent, any Error>
    let canceller: Canceller

    /// Iterates the events.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<SSEEvent, any Error>.AsyncIterator
        let canceller: Canceller

        /// The next event, `nil` when the server ended the stream.
        public mutating func next() async throws -> SSEEvent? {
            try await base.next()
        }
    }

    /// Makes the iterator.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), canceller: canceller)
    }
}

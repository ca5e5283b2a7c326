/// A response whose body is read piece by piece (see ``HTTPClient/bodyStream(_:readTimeout:)``).
public struct HTTPStreamedResponse: Sendable {
    /// The status code.
    public var status: Int
    /// The header fields.
    public var headers: HTTPHeaders
    /// The body's pieces as they arrive (still gzip-encoded if `Content-Encoding: gzip`); the
    /// sequence throws when the connection ends before the body is complete.
    public var body: AsyncThrowingStream<[UInt8], any Error>
}

extension HTTPClient {
    /// Sends a request on a connection of its own and returns the response head once it has
    /// arrived, with the body as a stream of pieces — for bodies too large to hold (an export).
    ///
    /// The reading task reads as the network delivers, up to 16 pieces ahead of the consumer; a
    /// consumer that falls further behind makes it wait (and TCP holds the server), so memory
    /// stays bounded however slow the consumer. Dropping the stream closes the connection.
    /// - Throws: transport errors before the head arrived.
    public func bodyStream(_ request: HTTPClientRequest, readTimeout: Duration? = nil) async throws -> HTTPStreamedResponse {
        try request.checkFields()
        let timeout = readTimeout ?? configuration.readTimeout
        let connection = try await ClientConnection.connect(host: request.host, port: request.port, timeout: configuration.connectTimeout)
        var parser = HTTPResponseParser()
        var head: HTTPResponseHead?
        var early: [[UInt8]] = []
        var ended = false
        do {
            try await connection.write(request.encoded(), timeout: timeout)
            parser.requestSent(isHead: request.method == "HEAD")
            reading: while head == nil {
                while let event = try parser.next() {
                    switch event {
                    case .head(let h): head = h
                    case .body(let b): early.append(b)
                    case .end:
                        ended = true
                        break reading
                    }
                }
                if head != nil { break }
                let bytes = try await connection.read(timeout: timeout)
                if bytes.isEmpty {
                    _ = try parser.finish()
                    throw HTTPClientError.connectionClosed
                }
                parser.feed(bytes)
            }
        } catch {
            connection.close()
            throw error
        }
        guard let head else {
            connection.close()
            throw HTTPClientError.connectionClosed
        }
        // Bounded: a consumer that falls behind makes the reading task stop reading (16 pieces
        // of at most one read each), rather than the whole body piling up in memory.
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream(bufferingPolicy: .bufferingOldest(16))
        let pieces = early
        let alreadyEnded = ended
        let task = Task { [parser] in
            var parser = parser
            do {
                for p in pieces { try await continuation.send(p) }
            } catch {
                connection.close()
                continuation.finish(throwing: error)
                return
            }
            if alreadyEnded {
                connection.close()
                continuation.finish()
                return
            }
            do {
                reading: while true {
                    while let event = try parser.next() {
                        switch event {
                        case .head: break
                        case .body(let b): guard try await continuation.send(b) else { break reading }
                        case .end: break reading
                        }
                    }
                    let bytes = try await connection.read(timeout: timeout)
                    if bytes.isEmpty {
                        if case .end? = try parser.finish() { break reading }
                        throw HTTPClientError.connectionClosed
                    }
                    parser.feed(bytes)
                }
                connection.close()
                continuation.finish()
            } catch {
                connection.close()
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return HTTPStreamedResponse(status: head.status, headers: head.headers, body: stream)
    }
}

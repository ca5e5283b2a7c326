/// A request that cannot be read, with the status to answer it with.
///
/// Every framing error closes the connection afterwards: once the framing of one
/// request is in doubt, the position of the next one is too (request smuggling).
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status to answer with: 400, 408, 413, 414, 431, 501 or 505.
    public var status: Int
    /// A short reason, safe to show to the client.
    public var reason: String
    /// Whether the connection must be closed after the error response.
    public var closeConnection: Bool

    /// Creates an error.
    public init(status: Int, reason: String, closeConnection: Bool = true) {
        self.status = status
        self.reason = reason
        self.closeConnection = closeConnection
    }

    /// A human-readable summary.
    public var description: String { "\(status) \(reason)" }

    static func bad(_ reason: String) -> HTTPParseError { HTTPParseError(status: 400, reason: reason) }
}

/// Size limits enforced by ``HTTPRequestParser`` while it reads.
public struct HTTPParserLimits: Sendable, Equatable {
    /// Maximum bytes in the request line, CRLF excluded (`414` beyond).
    public var maxRequestLineBytes: Int
    /// Maximum bytes of all header lines together, CRLFs included (`431` beyond).
    /// Trailer fields of a chunked body count against the same limit.
    public var maxHeaderBytes: Int
    /// Maximum number of header fields (`431` beyond).
    public var maxHeaderCount: Int
    /// Maximum body bytes after de-chunking (`413` beyond). The server applies the
    /// same limit to the decompressed size of a gzip-encoded body.
    public var maxBodyBytes: Int
    /// Maximum bytes in one chunk-size line including extensions (`400` beyond).
    public var maxChunkLineBytes: Int
    /// Routes whose bodies are spooled to a temporary file instead of memory, each with its own
    /// size limit instead of ``maxBodyBytes`` (see ``SpooledBodyRoute``).
    public var spooledBodyRoutes: [SpooledBodyRoute] = []

    /// Creates limits; the defaults are those of the minkd HTTP contract.
    public init(
        maxRequestLineBytes: Int = 8 * 1024,
        maxHeaderBytes: Int = 16 * 1024,
        maxHeaderCount: Int = 100,
        maxBodyBytes: Int = 4 * 1024 * 1024,
        maxChunkLineBytes: Int = 4 * 1024
    ) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.maxChunkLineBytes = maxChunkLineBytes
    }
}

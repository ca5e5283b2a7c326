#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Settings of an ``HTTPServer``. Defaults follow the minkd HTTP contract.
public struct HTTPServerConfiguration: Sendable {
    /// Address to bind (`127.0.0.1`, `0.0.0.0`, `::`, `localhost`).
    public var host: String
    /// Port to bind; `0` picks a free one (see ``HTTPServer/start()``).
    public var port: Int
    /// Request parser limits (request line 8 KiB, headers 16 KiB, body 4 MiB).
    public var limits: HTTPParserLimits
    /// Time for a request head to arrive completely (`408` and close after).
    public var headerTimeout: Duration
    /// Time an idle keep-alive connection stays open.
    public var idleTimeout: Duration
    /// Time a request body may stall (no byte received) before `408` and close.
    public var bodyIdleTimeout: Duration
    /// Time from the end of a request head until its body must be complete (`408` and close
    /// after), so a peer trickling a byte now and then cannot hold the connection.
    public var bodyTimeout: Duration
    /// Time queued output may make no progress (peer not reading) before the
    /// connection is dropped.
    public var writeTimeout: Duration
    /// Connections beyond this are answered `503` and closed.
    public var maxConnections: Int
    /// Response bodies of at least this many bytes are gzip-encoded when accepted.
    public var gzipMinBytes: Int
    /// Default time ``HTTPServer/shutdown(gracePeriod:)`` waits for in-flight work.
    public var shutdownGracePeriod: Duration
    /// Number of event loops (each owns many connections and one poller thread); default
    /// one per core.
    public var eventLoopCount: Int
    /// `listen(2)` backlog.
    public var backlog: Int32
    /// Output bytes queued per connection before a streaming body's `write` suspends.
    public var maxQueuedWriteBytes: Int
    /// How often each event loop checks timeouts (the timeout resolution).
    public var tickInterval: Duration
    /// After sending a final response on a connection being closed, how long unread
    /// input is drained so the peer receives the response before the close
    /// (closing with unread input would send a reset).
    public var lingerTimeout: Duration

    /// Creates a configuration.
    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        limits: HTTPParserLimits = HTTPParserLimits(),
        headerTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(75),
        bodyIdleTimeout: Duration = .seconds(10),
        bodyTimeout: Duration = .seconds(60),
        writeTimeout: Duration = .seconds(60),
        maxConnections: Int = 10_000,
        gzipMinBytes: Int = 1024,
        shutdownGracePeriod: Duration = .seconds(10),
        eventLoopCount: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))),
        backlog: Int32 = 1024,
        maxQueuedWriteBytes: Int = 256 * 1024,
        tickInterval: Duration = .milliseconds(250),
        lingerTimeout: Duration = .seconds(2)
    ) {
        self.host = host
        self.port = port
        self.limits = limits
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.bodyIdleTimeout = bodyIdleTimeout
        self.bodyTimeout = bodyTimeout
        self.writeTimeout = writeTimeout
        self.maxConnections = maxConnections
        self.gzipMinBytes = gzipMinBytes
        self.shutdownGracePeriod = shutdownGracePeriod
        self.eventLoopCount = eventLoopCount
        self.backlog = backlog
        self.maxQueuedWriteBytes = maxQueuedWriteBytes
        self.tickInterval = tickInterval
        self.lingerTimeout = lingerTimeout
    }

    var connectionConfiguration: HTTPConnectionStateMachine.Configuration {
        HTTPConnectionStateMachine.Configuration(
            limits: limits,
            headerTimeoutNanos: headerTimeout.nanoseconds,
            idleTimeoutNanos: idleTimeout.nanoseconds,
            bodyIdleTimeoutNanos: bodyIdleTimeout.nanoseconds,
            bodyTimeoutNanos: bodyTimeout.nanoseconds)
    }
}

extension Duration {
    /// The duration in whole nanoseconds (negative durations give 0).
    var nanoseconds: UInt64 {
        let (s, atto) = components
        if s < 0 { return 0 }
        // Saturated at Int64.max (292 years): callers convert to `Int`, and a wrapped product of
        // a huge timeout (`minkd healthcheck --timeout 9223372037`) crashed that conversion.
        if s >= Int64.max / 1_000_000_000 { return UInt64(Int64.max) }
        return UInt64(s) * 1_000_000_000 + UInt64(atto / 1_000_000_000)
    }
}

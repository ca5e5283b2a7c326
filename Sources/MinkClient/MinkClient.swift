import Foundation
import Mink
import MinkHTTP

/// The Swift client of minkd: appends and loads events, reads the global log, subscribes over
/// server-sent events, loads and saves aggregates remotely, queries read models and controls
/// projections — with the same shapes and the same ``Mink/MinkError`` codes as the embedded
/// ``Mink/EventStore``.
///
/// ```swift
/// let registry = EventRegistry()
/// registry.registerAll(OrderCreated.self, ItemAdded.self)
/// let client = MinkClient(host: "127.0.0.1", port: 6465, token: "s3cret", tenant: "acme", registry: registry)
/// try await client.append("order-1", [OrderCreated(customerID: "c-1")], expectedVersion: .noStream)
/// let events = try await client.load("order-1")
/// ```
///
/// One client value talks to one server as one tenant; it keeps a small pool of keep-alive
/// connections and is safe to share between tasks. Call ``shutdown()`` to close idle connections.
public final class MinkClient: Sendable {
    /// Timeouts of the client's requests.
    public struct Timeouts: Sendable, Hashable {
        /// Time allowed to establish a TCP connection.
        public var connect: Duration
        /// Time allowed without progress while sending a request or reading its response.
        public var request: Duration
        /// Time a subscription waits without a byte (the server sends `: keepalive` every 15 s)
        /// before it takes the connection for dead and reconnects; `nil` waits for ever.
        public var subscriptionIdle: Duration?

        /// Creates timeouts; the defaults suit a server on the same network.
        public init(connect: Duration = .seconds(5), request: Duration = .seconds(30), subscriptionIdle: Duration? = .seconds(45)) {
            self.connect = connect
            self.request = request
            self.subscriptionIdle = subscriptionIdle
        }
    }

    /// Server host name or address.
    public let host: String
    /// Server port.
    public let port: Int
    /// A path prefix every request target starts with (empty, or e.g. `/mink` behind a proxy).
    public let basePath: String
    /// The bearer token sent as `Authorization: Bearer <token>`, if any.
    public let token: String?
    /// The tenant sent as `Mink-Tenant`, if any (otherwise the token's tenant or `default`).
    public let tenant: String?
    /// Names payload types on append and decodes events into Swift types for aggregates.
    public let registry: EventRegistry
    /// Encodes and decodes payloads, snapshot states and read-model documents.
    public let serializer: any EventSerializer
    /// The client's timeouts.
    public let timeouts: Timeouts
    /// How idempotent requests are retried after a transport error, `503` or `429`.
    public let retryPolicy: RetryPolicy
    /// How a subscription waits between reconnects; `maxAttempts` counts consecutive failed
    /// connection attempts before the subscription throws.
    public let reconnectPolicy: RetryPolicy
    /// When ``saveAggregate(_:metadata:)`` also stores a snapshot of a ``Mink/SnapshottableAggregate``.
    public let snapshotPolicy: SnapshotPolicy
    /// The longest `Retry-After` the client waits for; a longer one ends the retries.
    public let maxRetryAfter: Duration

    let http: HTTPClient

    /// Creates a client for `host:port`.
    /// - Parameters:
    ///   - host: the server's host name or address.
    ///   - port: the server's port (minkd's default is 6465).
    ///   - basePath: a path prefix for every request (for a server behind a reverse proxy).
    ///   - token: a bearer token, or `nil` when the server has authentication off.
    ///   - tenant: the tenant to work in (`Mink-Tenant`), or `nil` for the token's tenant or `default`.
    ///   - registry: names payload types and decodes stored events.
    ///   - serializer: encodes payloads and decodes events, snapshots and documents.
    ///   - timeouts: connect, request and subscription-idle timeouts.
    ///   - retryPolicy: retries of idempotent requests (GETs, appends, queries) on transport
    ///     errors, `503` and `429`.
    ///   - reconnectPolicy: the waits between a subscription's reconnects.
    ///   - snapshotPolicy: when `saveAggregate` stores a snapshot (default: never).
    ///   - maxRetryAfter: the longest `Retry-After` honoured.
    public init(
        host: String = "127.0.0.1",
        port: Int = 6465,
        basePath: String = "",
        token: String? = nil,
        tenant: String? = nil,
        registry: EventRegistry = EventRegistry(),
        serializer: any EventSerializer = JSONEventSerializer(),
        timeouts: Timeouts = Timeouts(),
        retryPolicy: RetryPolicy = RetryPolicy(maxAttempts: 4, initialBackoff: .milliseconds(100), maxBackoff: .seconds(2)),
        reconnectPolicy: RetryPolicy = RetryPolicy(maxAttempts: .max, initialBackoff: .milliseconds(100), maxBackoff: .seconds(5)),
        snapshotPolicy: SnapshotPolicy = .never,
        maxRetryAfter: Duration = .seconds(30)
    ) {
        self.host = host
        self.port = port
        var base = basePath
        while base.hasSuffix("/") { base.removeLast() }
        if !base.isEmpty, !base.hasPrefix("/") { base = "/" + base }
        self.basePath = base
        // A token read from a file often ends with a newline: not part of it.
        self.token = token?.trimmingCharacters(in: .whitespacesAndNewlines)
        self.tenant = tenant
        self.registry = registry
        self.serializer = serializer
        self.timeouts = timeouts
        self.retryPolicy = retryPolicy
        self.reconnectPolicy = reconnectPolicy
        self.snapshotPolicy = snapshotPolicy
        self.maxRetryAfter = maxRetryAfter
        self.http = HTTPClient(configuration: HTTPClientConfiguration(connectTimeout: timeouts.connect, readTimeout: timeouts.request))
    }

    /// Creates a client from a base URL such as `http://127.0.0.1:6465` or `http://proxy/mink`.
    ///
    /// The other parameters are those of ``init(host:port:basePath:token:tenant:registry:serializer:timeouts:retryPolicy:reconnectPolicy:snapshotPolicy:maxRetryAfter:)``.
    /// - Throws: `.validationFailed` for a URL without a host, or with a scheme other than
    ///   `http` (the client speaks plain HTTP/1.1; put a TLS-terminating proxy in front when needed).
    public convenience init(
        baseURL: URL,
        token: String? = nil,
        tenant: String? = nil,
        registry: EventRegistry = EventRegistry(),
        serializer: any EventSerializer = JSONEventSerializer(),
        timeouts: Timeouts = Timeouts(),
        retryPolicy: RetryPolicy = RetryPolicy(maxAttempts: 4, initialBackoff: .milliseconds(100), maxBackoff: .seconds(2)),
        reconnectPolicy: RetryPolicy = RetryPolicy(maxAttempts: .max, initialBackoff: .milliseconds(100), maxBackoff: .seconds(5)),
        snapshotPolicy: SnapshotPolicy = .never,
        maxRetryAfter: Duration = .seconds(30)
    ) throws {
        guard let components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false) else {
            throw MinkError.validation("invalid base URL \(baseURL)")
        }
        guard components.scheme?.lowercased() == "http" else {
            throw MinkError.validation("only http:// base URLs are supported, not \(components.scheme ?? "none")")
        }
        guard var host = components.host, !host.isEmpty else { throw MinkError.validation("the base URL \(baseURL) has no host") }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.init(
            host: host, port: components.port ?? 80, basePath: components.percentEncodedPath, token: token, tenant: tenant,
            registry: registry, serializer: serializer, timeouts: timeouts, retryPolicy: retryPolicy,
            reconnectPolicy: reconnectPolicy, snapshotPolicy: snapshotPolicy, maxRetryAfter: maxRetryAfter
        )
    }

    /// Closes the pooled idle connections (open subscriptions keep their own connections until
    /// their consuming tasks end).
    public func shutdown() {
        http.shutdown()
    }

    /// Connections opened so far (to observe keep-alive reuse in tests and diagnostics).
    public var connectionsOpened: Int { http.connectionsOpened }
}

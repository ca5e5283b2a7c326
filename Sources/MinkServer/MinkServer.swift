import Foundation
import Logging
import Metrics
import Mink
import MinkConfig
import MinkHTTP
import Prometheus
import Synchronization

/// minkd's API server: the HTTP listener, the router and handlers over an `EventStore`.
///
/// Lifecycle: ``start()`` binds and serves; ``shutdown()`` stops accepting, ends event streams,
/// finishes in-flight requests within the grace period, then closes storage.
public final class MinkServer: Sendable {
    /// The effective configuration.
    public let configuration: MinkdConfiguration
    /// The root store (tenant `default`); tenants come from `store.forTenant`.
    public let store: EventStore
    let storage: ServerStorage
    let logger: Logger
    let metrics: ServerMetrics
    let startedAt = ContinuousClock.now
    let keepaliveInterval: Duration
    /// Bearer tokens (HTTP-API.md section 2); the list is replaced by ``reloadTokens(from:)``.
    let authenticator: Authenticator
    /// Tenant resolution, existence and the tenants' stores.
    let tenants: TenantRouter
    /// Cross-origin access for browsers (`http.cors.allowedOrigins`).
    let cors: CORS
    /// The projections (declared in the config, plus Swift ones registered before ``start()``).
    public let projections: ProjectionService
    /// A config error found while compiling the declared projections; ``start()`` throws it.
    private let projectionError: (any Error)?
    private let http: HTTPServer
    private let state = Mutex(State())

    struct State {
        var ready = false
        var shuttingDown = false
    }

    /// The version reported by `/v1/info` and `minkd version`.
    public static let version = "0.1.0"

    /// Creates a server; nothing listens until ``start()``.
    /// - Parameters:
    ///   - keepaliveInterval: how long an idle event stream waits before `: keepalive` (tests
    ///     shorten it; the contract's value is 15 s).
    public init(
        configuration: MinkdConfiguration, storage: ServerStorage, logger: Logger = Logger(label: "minkd"),
        keepaliveInterval: Duration? = nil
    ) {
        self.configuration = configuration
        self.storage = storage
        self.logger = logger
        self.keepaliveInterval = keepaliveInterval ?? .seconds(configuration.http.sseKeepaliveSeconds)
        let metrics = ServerMetrics()
        self.metrics = metrics
        var opts = EventStore.Options(
            snapshots: (storage.snapshots, .never), logger: logger, subscriberBuffer: configuration.limits.subscriberBuffer
        )
        opts.middleware = [.metrics(DescribedMetricsFactory(base: metrics.factory))]
        self.store = EventStore(adapter: storage.events, options: opts)
        self.authenticator = Authenticator(configuration.auth)
        self.cors = CORS(allowedOrigins: configuration.http.corsAllowedOrigins)
        let tenants = TenantRouter(
            root: store, catalog: storage.events as? any TenantCatalog ?? ImplicitTenantCatalog(),
            autoCreate: configuration.tenancy.autoCreate
        )
        self.tenants = tenants
        var declared: [DeclaredProjection] = []
        var compileError: (any Error)?
        do { declared = try DeclaredProjection.compile(configuration.projections) } catch { compileError = error }
        self.projectionError = compileError
        self.projections = ProjectionService(store: store, storage: storage, declared: declared, logger: logger)

        var http = HTTPServerConfiguration(host: configuration.listen.host, port: configuration.listen.port)
        http.limits.maxRequestLineBytes = configuration.limits.maxRequestLineBytes
        http.limits.maxHeaderBytes = configuration.limits.maxHeaderBytes
        http.limits.maxBodyBytes = configuration.limits.maxBodyBytes
        http.headerTimeout = .seconds(configuration.http.headerTimeoutSeconds)
        http.idleTimeout = .seconds(configuration.http.idleTimeoutSeconds)
        http.maxConnections = configuration.limits.maxConnections
        http.gzipMinBytes = configuration.http.gzipMinBytes
        http.shutdownGracePeriod = .seconds(configuration.shutdown.graceSeconds)
        let handler = APIHandler()
        self.http = HTTPServer(configuration: http, responder: handler)
        handler.server.withLock { $0 = self }
    }

    /// Binds the listener and starts serving. Returns the bound port.
    @discardableResult
    public func start() async throws -> Int {
        if let projectionError { throw projectionError }
        let port = try http.start()
        // Storage must answer before the server calls itself ready.
        _ = try await store.headPosition()
        try await projections.start()
        // Every known tenant's projections catch up from the start, not only once a request
        // names the tenant.
        if !projections.entries.isEmpty {
            do {
                for tenant in try await tenants.catalog.tenants() where tenant != TenantID.default {
                    projections.tenantUsed(tenant)
                }
            } catch {
                logger.warning("cannot list tenants to start their projections", metadata: ["error": "\(error)"])
            }
        }
        state.withLock { $0.ready = true }
        return port
    }

    /// The bound port, once started.
    public var port: Int? { http.port }

    /// Whether the server is ready (storage answered, projections started).
    var isReady: Bool { state.withLock { $0.ready && !$0.shuttingDown } }

    /// Stops accepting, ends event streams, finishes in-flight requests (up to the grace period),
    /// then closes storage.
    public func shutdown() async {
        let first = state.withLock { s -> Bool in
            defer { s.shuttingDown = true }
            return !s.shuttingDown
        }
        guard first else { return }
        await http.shutdown(gracePeriod: .seconds(configuration.shutdown.graceSeconds))
        await projections.stop()
        await store.hub.shutdown()
        for tenant in tenants.stores { await tenant.hub.shutdown() }
        await storage.close()
    }

    /// Open connections and other transport counters.
    var transportMetrics: HTTPServerMetrics { http.metrics }

    /// Uptime in whole seconds.
    var uptimeSeconds: Int64 { (ContinuousClock.now - startedAt).components.seconds }

    /// The store of the tenant a request runs in.
    func store(forTenant tenant: String) throws -> EventStore {
        let tenantStore = try tenants.store(for: tenant)
        // Only for a tenant that exists: a read of an unknown (or just deleted) tenant with
        // `autoCreate` answers as empty, and must not start projections, which would create
        // the tenant's storage.
        if tenant != TenantID.default, tenants.isLive(tenant) { projections.tenantUsed(tenant) }
        return tenantStore
    }
}

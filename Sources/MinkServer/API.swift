import Foundation
import Logging
import Mink
import MinkConfig
import MinkHTTP
import Synchronization

/// The API itself: what the handlers serve requests from — the configuration, the root store,
/// the tenants, the projections, access control and metrics.
///
/// It knows nothing of the HTTP listener that feeds it, so the ``APIHandler`` can hold it
/// directly (no back reference to the ``MinkServer`` that owns both, no lock per request to
/// find it). The one thing it reads from the transport, the connection counters for
/// `/metrics`, comes through ``TransportCounters``, attached once the listener exists.
final class API: Sendable {
    /// The effective configuration.
    let configuration: MinkdConfiguration
    /// The root store (tenant `default`); tenants come from `store.forTenant`.
    let store: EventStore
    let storage: ServerStorage
    let logger: Logger
    let metrics: ServerMetrics
    let startedAt = ContinuousClock.now
    let keepaliveInterval: Duration
    /// Bearer tokens (HTTP-API.md section 2); the list is replaced on SIGHUP.
    let authenticator: Authenticator
    /// Tenant resolution, existence and the tenants' stores.
    let tenants: TenantRouter
    /// Cross-origin access for browsers (`http.cors.allowedOrigins`).
    let cors: CORS
    /// The projections (declared in the config, plus Swift ones registered before the start).
    let projections: ProjectionService
    /// The listener's counters, for `/metrics`.
    let transport = TransportCounters()
    /// The storage's write probe for `/readyz` (at most one write every 2 s), if it has one.
    let writeProbe: WriteProbe?
    /// One `error` line when storage starts failing, one `notice` when it is back.
    let storageOutage: StorageOutageLog
    /// W3C trace context for every request; spans written to the log at `debug`.
    let tracer: LogTracer
    /// Ready once storage answered and projections started; not ready again once shutdown began.
    private let readiness = Atomic<Int>(Readiness.starting.rawValue)

    enum Readiness: Int {
        case starting, ready, stopping
    }

    init(
        configuration: MinkdConfiguration, storage: ServerStorage, logger: Logger, keepaliveInterval: Duration,
        declared: [DeclaredProjection]
    ) {
        self.configuration = configuration
        self.storage = storage
        self.logger = logger
        self.storageOutage = StorageOutageLog(logger: logger)
        self.keepaliveInterval = keepaliveInterval
        let metrics = ServerMetrics()
        self.metrics = metrics
        var opts = EventStore.Options(
            snapshots: (storage.snapshots, .never), logger: logger, subscriberBuffer: configuration.limits.subscriberBuffer
        )
        let tracer = LogTracer(logger: logger)
        self.tracer = tracer
        let described = DescribedMetricsFactory(base: metrics.factory)
        opts.middleware = [.metrics(described)]
        if tracer.isRecording {
            // Spans request → store operation → storage call, only while they are written: at
            // `info` these two steps would make spans nobody sees (see `LogTracer`).
            opts.middleware.insert(Middleware(SpanMiddleware(tracer: tracer, prefix: "mink")), at: 0)
            opts.middleware.append(Middleware(SpanMiddleware(tracer: tracer, prefix: "storage")))
        }
        let store = EventStore(adapter: storage.events, options: opts)
        self.store = store
        self.authenticator = Authenticator(configuration.auth)
        self.cors = CORS(allowedOrigins: configuration.http.corsAllowedOrigins)
        self.tenants = TenantRouter(
            root: store, catalog: storage.events as? any TenantCatalog ?? ImplicitTenantCatalog(),
            autoCreate: configuration.tenancy.autoCreate
        )
        self.projections = ProjectionService(store: store, storage: storage, declared: declared, logger: logger, metrics: described)
        self.writeProbe = storage.probeWrite.map { WriteProbe($0) }
    }

    /// Moves the readiness on (``Readiness`` only goes forward).
    func setReadiness(_ r: Readiness) {
        var current = readiness.load(ordering: .relaxed)
        while current < r.rawValue {
            let (exchanged, original) = readiness.compareExchange(expected: current, desired: r.rawValue, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// Whether the server is ready (storage answered, projections started, no shutdown yet).
    var isReady: Bool { readiness.load(ordering: .relaxed) == Readiness.ready.rawValue }

    /// Open connections and other transport counters (`nil` before the listener is attached).
    var transportMetrics: HTTPServerMetrics? { transport.read() }

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

/// The HTTP listener's counters as the API sees them: read through a weak reference, so the
/// listener (which holds the API through its responder) is not kept alive by the API in turn.
/// Read once per `/metrics` scrape, never on the request path.
final class TransportCounters: Sendable {
    private let source = Mutex<(@Sendable () -> HTTPServerMetrics?)?>(nil)

    /// Attaches the listener (once, when the server is made).
    func attach(_ server: HTTPServer) {
        source.withLock { $0 = { [weak server] in server?.metrics } }
    }

    /// The current counters; `nil` before a listener is attached or after it is gone.
    func read() -> HTTPServerMetrics? { source.withLock { $0 }?() }
}

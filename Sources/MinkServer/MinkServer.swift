import Foundation
import Logging
import Mink
import MinkConfig
import MinkHTTP
import ServiceLifecycle
import Synchronization

/// minkd's API server: the HTTP listener, the router and handlers over an `EventStore`.
///
/// Two ways to run it:
/// - as services (``services(onReady:)``), under a swift-service-lifecycle `ServiceGroup`
///   that handles signals and stops the parts in reverse order, storage last (what `minkd`
///   does);
/// - by hand: ``start()`` binds and serves; ``shutdown()`` stops the same parts in the same
///   order (tests, programs that embed the server).
///
/// The storage is built by the caller (`minkd`, or `MinkStorageWiring` for tests): the server
/// knows only the core's storage protocols.
public final class MinkServer: Sendable {
    /// What the handlers serve from (the listener's responder holds it, not this server).
    let api: API
    /// A config error found while compiling the declared projections; ``start()`` throws it.
    private let projectionError: (any Error)?
    private let http: HTTPServer
    /// How many lone requests a poller thread answered itself (tests; docs/http-transport.md).
    var lentPollerRuns: Int { http.lentPollerRuns }
    /// The parts in start order; stopped in reverse.
    private let parts: [ServerPart]
    /// Forgets the tenants other processes delete (``TenantCatalog/externalDeletions()``), from
    /// ``start()`` until the tenants part stops.
    private let deletionWatch = WatchTask()

    /// The effective configuration.
    public var configuration: MinkdConfiguration { api.configuration }
    /// The root store (tenant `default`); tenants come from `store.forTenant`.
    public var store: EventStore { api.store }
    /// The projections (declared in the config, plus Swift ones registered before ``start()``).
    public var projections: ProjectionService { api.projections }
    var logger: Logger { api.logger }
    var authenticator: Authenticator { api.authenticator }

    /// The version reported by `/v1/info` and `minkd version`.
    public static let version = "0.1.0"

    /// Creates a server; nothing listens until ``start()`` (or its HTTP service runs).
    /// - Parameters:
    ///   - storage: the storage to serve; the server closes it last when it stops.
    ///   - keepaliveInterval: how long an idle event stream waits before `: keepalive` (tests
    ///     shorten it; the contract's value is 15 s).
    public init(
        configuration: MinkdConfiguration, storage: ServerStorage, logger: Logger = Logger(label: "minkd"),
        keepaliveInterval: Duration? = nil
    ) {
        var declared: [DeclaredProjection] = []
        var compileError: (any Error)?
        do { declared = try DeclaredProjection.compile(configuration.projections) } catch { compileError = error }
        self.projectionError = compileError
        let api = API(
            configuration: configuration, storage: storage, logger: logger,
            keepaliveInterval: keepaliveInterval ?? .seconds(configuration.http.sseKeepaliveSeconds), declared: declared
        )
        self.api = api

        var http = HTTPServerConfiguration(host: configuration.listen.host, port: configuration.listen.port)
        http.limits.maxRequestLineBytes = configuration.limits.maxRequestLineBytes
        http.limits.maxHeaderBytes = configuration.limits.maxHeaderBytes
        http.limits.maxBodyBytes = configuration.limits.maxBodyBytes
        // An import may be far larger than any other body: spooled to a temporary file as it
        // arrives, limited by maxImportBytes (checked again on the decompressed size).
        http.limits.spooledBodyRoutes = [SpooledBodyRoute(method: "POST", path: API.importPath, maxBytes: configuration.limits.maxImportBytes)]
        http.headerTimeout = .seconds(configuration.http.headerTimeoutSeconds)
        http.bodyIdleTimeout = .seconds(configuration.http.bodyIdleTimeoutSeconds)
        http.bodyTimeout = .seconds(configuration.http.bodyTimeoutSeconds)
        http.idleTimeout = .seconds(configuration.http.idleTimeoutSeconds)
        http.maxConnections = configuration.limits.maxConnections
        http.gzipMinBytes = configuration.http.gzipMinBytes
        http.shutdownGracePeriod = .seconds(configuration.shutdown.graceSeconds)
        // Transport problems (a failed accept, epoll_ctl or epoll_wait, an illegal connection
        // transition) reach the server's log instead of standard error.
        let transportLogger = logger
        let listener = HTTPServer(configuration: http, responder: APIHandler(api: api)) { message in
            transportLogger.error("transport: \(message)")
        }
        self.http = listener
        api.transport.attach(listener)

        // Start order; a shutdown stops them from the last to the first: the listener first (no
        // new requests, event streams end, in-flight requests drain within the grace period),
        // then the projections (after their current batch), then the tenants' subscription hubs,
        // storage last, once nothing uses it any more.
        let grace = Duration.seconds(configuration.shutdown.graceSeconds)
        self.parts = [
            ServerPart("storage") { await storage.close() },
            ServerPart("tenants") { [deletionWatch] in
                deletionWatch.cancel()
                await api.store.hub.shutdown()
                for tenant in api.tenants.stores { await tenant.hub.shutdown() }
            },
            ServerPart("projections") { await api.projections.stop() },
            ServerPart("http") {
                api.setReadiness(.stopping)
                await listener.shutdown(gracePeriod: grace)
            },
        ]
    }

    /// Binds the listener and starts serving: storage must answer and the projections start
    /// before the server calls itself ready. Returns the bound port.
    @discardableResult
    public func start() async throws -> Int {
        if let projectionError { throw projectionError }
        let port: Int
        do {
            port = try http.start()
        } catch let error as SocketError {
            throw ListenError(address: configuration.listen.description, underlying: error)
        }
        // Storage must answer before the server calls itself ready.
        _ = try await api.store.headPosition()
        watchExternalDeletions()
        try await api.projections.start()
        // Every known tenant's projections catch up from the start, not only once a request
        // names the tenant.
        if !api.projections.entries.isEmpty {
            do {
                for tenant in try await api.tenants.catalog.tenants() where tenant != TenantID.default {
                    api.projections.tenantUsed(tenant)
                }
            } catch {
                logger.warning("cannot list tenants to start their projections", metadata: ["error": "\(error)"])
            }
        }
        api.setReadiness(.ready)
        return port
    }

    /// The bound port, once started.
    public var port: Int? { http.port }

    /// A tenant deleted through another process on the same storage is forgotten here as after a
    /// deletion through this one: its projections stop, its event streams end, its store goes.
    private func watchExternalDeletions() {
        guard let deletions = api.tenants.catalog.externalDeletions() else { return }
        let api = self.api, logger = self.logger
        let task = Task {
            for await tenant in deletions {
                guard tenant != TenantID.default, (try? TenantID.validate(tenant)) != nil else { continue }
                // As a deletion here: the projections stop before and again after the tenant is
                // forgotten (a request meanwhile may have started them: they would create its
                // schema or database again).
                await api.projections.tenantRemoved(tenant)
                await api.tenants.forgetDeletedElsewhere(tenant)
                await api.projections.tenantRemoved(tenant)
                await api.tenants.catalog.releaseDeletedTenant(tenant)
                logger.notice("tenant deleted through another process: forgotten here", metadata: ["tenant": "\(tenant)"])
            }
        }
        deletionWatch.replace(with: task)
    }

    /// Stops accepting, ends event streams, finishes in-flight requests (up to the grace period),
    /// stops the projections and the tenants' hubs, then closes storage: the parts of
    /// ``services(onReady:)`` stopped in the same order a `ServiceGroup` stops them. Each part
    /// stops once, however often this is called.
    public func shutdown() async {
        for part in parts.reversed() { await part.stop() }
    }

    /// The server's parts as services for a `ServiceGroup`, in start order — storage, tenants,
    /// projections, HTTP — so that the group stops them in reverse: the listener first, storage
    /// last. The HTTP service starts the server (``start()``) when it runs and calls `onReady`
    /// with the bound port; a failure to start throws from it and shuts the group down.
    /// - Parameter onReady: called once the server is ready (e.g. to log it).
    public func services(onReady: @escaping @Sendable (Int) -> Void = { _ in }) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        for part in parts {
            // The listener is the last part: its service is the one that starts the server.
            let service: PartService
            if part === parts.last {
                service = PartService(part: part) { [self] in onReady(try await self.start()) }
            } else {
                service = PartService(part: part) {}
            }
            services.append(ServiceGroupConfiguration.ServiceConfiguration(
                service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: service.description
            ))
        }
        return services
    }
}

/// A background task a part of the server owns: replaced by a new one, cancelled when the part stops.
final class WatchTask: Sendable {
    private let task = Mutex<Task<Void, Never>?>(nil)

    func replace(with new: Task<Void, Never>) {
        task.withLock { old in
            old?.cancel()
            old = new
        }
    }

    func cancel() {
        task.withLock { t in
            t?.cancel()
            t = nil
        }
    }
}

/// One part of the server with a stop that runs at most once (``MinkServer/shutdown()`` and a
/// `ServiceGroup` may both ask).
final class ServerPart: Sendable {
    let name: String
    private let body: @Sendable () async -> Void
    private let stopped = Atomic<Bool>(false)

    init(_ name: String, stop: @escaping @Sendable () async -> Void) {
        self.name = name
        self.body = stop
    }

    /// Stops the part; later calls return at once.
    func stop() async {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await body()
    }
}

/// A ``ServerPart`` as a swift-service-lifecycle service: it starts, then holds its part until
/// the group's graceful shutdown reaches it (the group goes through its services in reverse
/// order, each after the one behind it has returned), then stops it.
struct PartService: Service, CustomStringConvertible {
    let part: ServerPart
    let start: @Sendable () async throws -> Void

    var description: String { "minkd.\(part.name)" }

    func run() async throws {
        do {
            try await start()
        } catch {
            await part.stop()
            throw error
        }
        do {
            try await gracefulShutdown()
        } catch is CancellationError {
            // The group was cancelled (a second signal, or the shutdown took too long): stop now
            // rather than in turn; what the part holds is released either way.
        }
        await part.stop()
    }
}

/// The listen address could not be bound: names the address and what to do.
public struct ListenError: Error, Sendable, CustomStringConvertible {
    /// `HOST:PORT` as configured.
    public var address: String
    /// The failed system call.
    public var underlying: SocketError

    public var description: String {
        let cause = "cannot listen on \(address): \(underlying)"
        if underlying.isAddressLookup {
            return cause + "; fix: the host does not resolve on this machine: listen on an IP address (127.0.0.1, 0.0.0.0, [::]) or a name it resolves"
        }
        switch underlying.errno {
        case EADDRINUSE:
            return cause + "; fix: another process (perhaps another minkd) is listening there: stop it, or choose another --listen / MINKD_LISTEN"
        case EADDRNOTAVAIL:
            return cause + "; fix: this machine has no such address: listen on one of its addresses, or 0.0.0.0 / [::] for all"
        case EACCES:
            return cause + "; fix: ports below 1024 need privileges (CAP_NET_BIND_SERVICE): use a port ≥ 1024 such as 6465"
        default:
            return cause
        }
    }
}

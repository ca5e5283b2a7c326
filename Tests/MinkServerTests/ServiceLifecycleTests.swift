import Foundation
import Logging
import MinkConfig
import MinkHTTP
import MinkServer
import ServiceLifecycle
import Synchronization
import Testing

/// The server's parts under a swift-service-lifecycle `ServiceGroup`, as `minkd` runs them.
@Suite("MinkServer services", .timeLimit(.minutes(3)))
struct ServiceLifecycleTests {
    /// Runs the server's services in a group until `body` returns, then shuts the group down
    /// gracefully and returns how long that took.
    static func withGroup(_ server: MinkServer, _ body: @Sendable (Int) async throws -> Void) async throws -> Duration {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let (ready, readyContinuation) = AsyncStream.makeStream(of: Int.self)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: server.services(onReady: { readyContinuation.yield($0) }), logger: logger
        ))
        // Owned by this function: awaited on every path out of it.
        let running = Task { try await group.run() }
        do {
            let port = try await withLimit(.seconds(30), "the server did not become ready") {
                var it = ready.makeAsyncIterator()
                return await it.next()
            }
            try await body(try #require(port))
        } catch {
            await group.triggerGracefulShutdown()
            _ = await running.result
            throw error
        }
        let start = ContinuousClock.now
        await group.triggerGracefulShutdown()
        try await withLimit(.seconds(30), "the group did not stop") { try await running.value }
        return start.duration(to: .now)
    }

    @Test func gracefulShutdownStopsTheListenerFirstAndStorageLast() async throws {
        // When storage closes, the listener must already be closed (new connections refused)
        // and the event stream ended: the group stops the parts in reverse order.
        let observed = Mutex<[String]>([])
        let boundPort = Mutex<Int?>(nil)
        let memory = ServerStorage.memory()
        let storage = ServerStorage(
            events: memory.events, snapshots: memory.snapshots, readModels: memory.readModels, kind: "memory",
            close: {
                let port = boundPort.withLock { $0 } ?? 0
                let refused: Bool
                do {
                    _ = try await RawConnection.open(port: port)
                    refused = false
                } catch {
                    refused = true
                }
                observed.withLock { $0.append(refused ? "storage closed, listener gone" : "storage closed, still listening") }
            }
        )
        var config = MinkdConfiguration()
        config.listen.port = 0
        // Long, so that a shutdown that waited for it would show: the event stream ends at
        // once instead, and the connection with it.
        config.shutdown.graceSeconds = 30
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let server = MinkServer(configuration: config, storage: storage, logger: logger, keepaliveInterval: .seconds(15))
        let subscription = Mutex<RawConnection?>(nil)
        let took = try await Self.withGroup(server) { port in
            boundPort.withLock { $0 = port }
            let c = try await RawConnection.open(port: port)
            try await c.send("GET /v1/subscriptions/all HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try await c.read(until: { $0.contains("caught-up") }, timeout: .seconds(5))
            subscription.withLock { $0 = c }
        }
        #expect(took < .seconds(15), "graceful shutdown took \(took): it waited for the grace period")
        #expect(observed.withLock { $0 } == ["storage closed, listener gone"])
        let c = try #require(subscription.withLock { $0 })
        #expect(try await c.readUntilClosed(timeout: .seconds(2)), "the event stream ended")
        // A shutdown by hand afterwards finds every part stopped: storage is not closed twice.
        await server.shutdown()
        #expect(observed.withLock { $0.count } == 1)
    }

    @Test func aServerThatCannotStartEndsTheGroupAndClosesStorage() async throws {
        let closed = Mutex(0)
        let memory = ServerStorage.memory()
        let storage = ServerStorage(
            events: memory.events, snapshots: memory.snapshots, readModels: memory.readModels, kind: "memory",
            close: { closed.withLock { $0 += 1 } }
        )
        // The port is taken: the HTTP service's start throws.
        try await withServer { taken in
            var config = MinkdConfiguration()
            config.listen.port = taken.port
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let server = MinkServer(configuration: config, storage: storage, logger: logger)
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: server.services(), logger: logger))
            // The bind failure, naming the address (issue 11: "address in use" names it).
            let error = await #expect(throws: ListenError.self) {
                try await withLimit(.seconds(30), "the group did not end") { try await group.run() }
            }
            #expect(error?.underlying.errno == EADDRINUSE)
            #expect(error?.description.contains("127.0.0.1:\(taken.port)") == true, "\(String(describing: error))")
            #expect(closed.withLock { $0 } == 1)
        }
    }

    /// A host that does not resolve: getaddrinfo's own reason (it was printed as an errno,
    /// "Unknown error -2") and a fix, as for the other listen failures (a black-box audit).
    @Test func aListenHostThatDoesNotResolveNamesTheCauseAndAFix() async throws {
        let storage = ServerStorage.memory()
        var config = MinkdConfiguration()
        config.listen.host = "nonexistent.invalid"
        config.listen.port = 1234
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let server = MinkServer(configuration: config, storage: storage, logger: logger)
        let error = await #expect(throws: ListenError.self) { _ = try await server.start() }
        let text = error.map(String.init(describing:)) ?? ""
        #expect(text.hasPrefix("cannot listen on nonexistent.invalid:1234: getaddrinfo(nonexistent.invalid): "), "\(text)")
        #expect(!text.contains("Unknown error") && text.contains("; fix: "), "\(text)")
        await server.shutdown()
    }
}

/// Runs `body`, failing with `message` when it takes longer than `limit`.
func withLimit<T: Sendable>(_ limit: Duration, _ message: String, _ body: @Sendable @escaping () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw LimitExceeded(message: message)
        }
        return value
    }
}

struct LimitExceeded: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

import Foundation
import Logging
import Mink
import MinkTestFixtures
import MinkClient
import MinkConfig
import MinkHTTP
import MinkServer
import Synchronization
import Testing

/// A real `MinkServer` on 127.0.0.1 with memory storage, for one test.
struct TestServer {
    let server: MinkServer
    let storage: ServerStorage
    let port: Int

    /// - Parameter projectionsYAML: a config file's `projections:` part, when the server runs projections.
    static func start(storage: ServerStorage = .memory(), port: Int = 0, projectionsYAML: String? = nil) async throws -> TestServer {
        var config = MinkdConfiguration()
        if let projectionsYAML { config.projections = try MinkdConfiguration.parse(yaml: projectionsYAML).projections }
        config.listen = ListenAddress(host: "127.0.0.1", port: port)
        config.shutdown.graceSeconds = 1
        config.storage.kind = .memory
        var logger = Logger(label: "minkd-test")
        logger.logLevel = .critical
        let server = MinkServer(configuration: config, storage: storage, logger: logger, keepaliveInterval: .seconds(1))
        let bound = try await server.start()
        return TestServer(server: server, storage: storage, port: bound)
    }

    func client(
        port: Int? = nil, token: String? = nil, tenant: String? = nil, registry: EventRegistry = orderRegistry(),
        retryPolicy: RetryPolicy = RetryPolicy(maxAttempts: 4, initialBackoff: .milliseconds(20), maxBackoff: .milliseconds(200)),
        snapshotPolicy: SnapshotPolicy = .never
    ) -> MinkClient {
        MinkClient(
            host: "127.0.0.1", port: port ?? self.port, token: token, tenant: tenant, registry: registry,
            timeouts: .init(connect: .milliseconds(500), request: .seconds(10), subscriptionIdle: .seconds(5)),
            retryPolicy: retryPolicy,
            reconnectPolicy: RetryPolicy(maxAttempts: 200, initialBackoff: .milliseconds(20), maxBackoff: .milliseconds(100)),
            snapshotPolicy: snapshotPolicy
        )
    }

    func shutdown() async { await server.shutdown() }
}

/// Runs `body` against a fresh server and shuts it down afterwards, failing if it takes longer
/// than `timeout`.
func withServer(
    timeout: Duration = .seconds(30), projectionsYAML: String? = nil, _ body: @Sendable @escaping (TestServer) async throws -> Void
) async throws {
    let server = try await TestServer.start(projectionsYAML: projectionsYAML)
    do {
        try await withTimeout(timeout) { try await body(server) }
    } catch {
        await server.shutdown()
        throw error
    }
    await server.shutdown()
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String { "the test timed out" }
}

/// Runs `body`, throwing `TimedOut` (and cancelling it) after `timeout`.
func withTimeout<T: Sendable>(_ timeout: Duration, _ body: @Sendable @escaping () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimedOut() }
        return value
    }
}

/// An HTTP server in front of a `TestServer` that records requests and can misbehave:
/// answer `503` before forwarding, lose the answer after forwarding, or cut event streams.
final class Proxy: Sendable {
    struct Recorded: Sendable {
        var method: String
        var target: String
        var headers: HTTPHeaders
    }

    enum Fault: Sendable {
        /// Answer `503` with `Retry-After: retryAfter` without forwarding.
        case unavailable(retryAfter: Int?)
        /// Forward, then answer `503` as if the real answer was lost.
        case loseAnswer
    }

    let backendPort: Int
    let recorded = Mutex<[Recorded]>([])
    /// Faults applied to the next requests, first one first.
    let faults = Mutex<[Fault]>([])
    /// Event streams end after relaying this many events (`nil`: never).
    let cutStreamsAfter = Mutex<Int?>(nil)
    /// Per-stream limits taken one per new event stream, first one first, before `cutStreamsAfter`.
    let streamCuts = Mutex<[Int]>([])
    /// Forward event streams without `Last-Event-ID`, as a proxy that drops the header would:
    /// the server then replays from the query's `after`.
    let dropLastEventID = Mutex(false)
    /// Event messages (with an `id:`) relayed, over every connection.
    let relayedIDs = Mutex<[String]>([])
    private let backend = HTTPClient()
    private let http = Mutex<HTTPServer?>(nil)

    init(backendPort: Int) { self.backendPort = backendPort }

    func start() throws -> Int {
        let server = HTTPServer(
            configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0),
            responder: HTTPClosureResponder { [self] request in await self.respond(request) }
        )
        http.withLock { $0 = server }
        return try server.start()
    }

    func shutdown() async {
        if let server = http.withLock({ $0 }) { await server.shutdown(gracePeriod: .milliseconds(200)) }
        backend.shutdown()
    }

    var requests: [Recorded] { recorded.withLock { $0 } }

    private func respond(_ request: HTTPRequest) async -> HTTPResponse {
        recorded.withLock { $0.append(Recorded(method: request.method, target: request.target, headers: request.headers)) }
        let fault = faults.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        if case .unavailable(let retryAfter) = fault { return Self.unavailable(retryAfter: retryAfter) }
        if request.target.contains("/subscriptions/") { return relayStream(request) }
        var headers = request.headers
        headers.remove(name: "Host")
        do {
            let response = try await backend.execute(HTTPClientRequest(
                method: request.method, host: "127.0.0.1", port: backendPort, target: request.target, headers: headers, body: request.body
            ))
            if case .loseAnswer = fault { return Self.unavailable(retryAfter: nil) }
            var out = HTTPHeaders()
            for (name, value) in response.headers
            where !["content-length", "transfer-encoding", "connection", "date"].contains(name.lowercased()) {
                out.add(name: name, value: value)
            }
            return HTTPResponse(status: response.status, headers: out, bytes: response.body)
        } catch {
            return HTTPResponse(status: 502, bytes: Array("proxy: \(error)".utf8))
        }
    }

    private static func unavailable(retryAfter: Int?) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        if let retryAfter { headers.add(name: "Retry-After", value: String(retryAfter)) }
        return HTTPResponse(
            status: 503, headers: headers,
            bytes: Array(#"{"error":{"code":"unavailable","message":"proxy says: try again"}}"#.utf8)
        )
    }

    private func relayStream(_ request: HTTPRequest) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream")
        let limit = streamCuts.withLock { $0.isEmpty ? nil : $0.removeFirst() } ?? cutStreamsAfter.withLock { $0 }
        let lastEventID = dropLastEventID.withLock { $0 } ? nil : request.headers["Last-Event-ID"]
        var forward = HTTPHeaders()
        for (name, value) in request.headers where ["mink-tenant", "authorization"].contains(name.lowercased()) {
            forward.add(name: name, value: value)
        }
        let stream = backend.events(
            host: "127.0.0.1", port: backendPort, target: request.target, headers: forward, lastEventID: lastEventID
        )
        return HTTPResponse(status: 200, headers: headers, body: .stream { [self] writer in
            var relayed = 0
            for try await e in stream {
                let id = e.hasID ? e.lastEventID : nil
                try await writer.write(SSEEncoder.message(id: id, event: e.event == "message" ? nil : e.event, data: e.data))
                if let id {
                    relayedIDs.withLock { $0.append(id) }
                    relayed += 1
                    if let limit, relayed >= limit { return }  // cut the connection
                }
            }
        })
    }
}

extension Task where Failure == any Error {
    /// The task's value; cancelling the awaiting task cancels this one too (so a timed-out test
    /// does not wait for ever on an unstructured consumer task).
    var valueCancellingWithCaller: Success {
        get async throws {
            try await withTaskCancellationHandler { try await value } onCancel: { cancel() }
        }
    }
}

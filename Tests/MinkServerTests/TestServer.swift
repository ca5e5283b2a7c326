import Foundation
import Logging
import Mink
import MinkConfig
import MinkHTTP
import MinkPostgres
import MinkSQLite
import MinkServer
import MinkWire
import Testing

/// A live server on 127.0.0.1 with an ephemeral port, and a client to talk to it.
struct TestServer: Sendable {
    let server: MinkServer
    let port: Int
    let client = HTTPClient()

    static func start(
        storage: ServerStorage = .memory(), keepalive: Duration = .seconds(15),
        configure: (inout MinkdConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        var config = MinkdConfiguration()
        config.listen.port = 0
        config.shutdown.graceSeconds = 2
        configure(&config)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let server = MinkServer(configuration: config, storage: storage, logger: logger, keepaliveInterval: keepalive)
        let port = try await server.start()
        return TestServer(server: server, port: port)
    }

    func stop() async {
        client.shutdown()
        await server.shutdown()
    }

    @discardableResult
    func request(
        _ method: String, _ target: String, json: String? = nil, headers: [(String, String)] = []
    ) async throws -> Reply {
        var h = HTTPHeaders()
        if json != nil { h.add(name: "Content-Type", value: "application/json") }
        for (n, v) in headers { h.replace(name: n, value: v) }
        let r = try await client.execute(HTTPClientRequest(
            method: method, host: "127.0.0.1", port: port, target: target, headers: h, body: Array((json ?? "").utf8)
        ))
        return Reply(status: r.status, headers: r.headers, body: r.body)
    }

    struct Reply: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: JSONValue { (try? JSONValue(jsonBytes: body)) ?? .null }
        var errorCode: String? { json.objectValue?["error"]?.objectValue?["code"]?.stringValue }
        subscript(_ key: String) -> JSONValue? { json.objectValue?[key] }
    }
}

/// Runs `body` with a fresh server, stopping it afterwards.
func withServer(
    storage: ServerStorage = .memory(), keepalive: Duration = .seconds(15), configure: (inout MinkdConfiguration) -> Void = { _ in },
    _ body: (TestServer) async throws -> Void
) async throws {
    let s = try await TestServer.start(storage: storage, keepalive: keepalive, configure: configure)
    do {
        try await body(s)
    } catch {
        await s.stop()
        throw error
    }
    await s.stop()
}

func appendBody(_ types: [String], expected: String? = nil) -> String {
    let events = types.map { #"{"type":"\#($0)","data":{"n":1}}"# }.joined(separator: ",")
    return #"{"# + (expected.map { #""expectedVersion":\#($0),"# } ?? "") + #""events":[\#(events)]}"#
}

/// The storages end-to-end tests run on: each test gets fresh, empty storage.
enum StorageKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory, sqlite, postgres

    var testDescription: String { rawValue }

    func make() async throws -> ServerStorage {
        switch self {
        case .memory:
            return .memory()
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-test-\(UUID().uuidString)").path
            let s = try await SQLiteStorage.open(directory: dir)
            // Wired as minkd wires it (StorageFactory): a lone request runs on the writer's queue,
            // on a thread the HTTP loop lends it.
            return ServerStorage(events: s, snapshots: s, readModels: s, kind: "sqlite", close: {
                await s.close()
                try? FileManager.default.removeItem(atPath: dir)
            }, requestExecutor: { s.idleExecutor() })
        case .postgres:
            guard let url = ProcessInfo.processInfo.environment["MINK_TEST_POSTGRES_URL"] else {
                throw PostgresMissing()
            }
            // A schema of its own per test: tests run in parallel on one cluster.
            let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
            let s = try await PostgresStorage(configuration: PostgresConfiguration(connectionString: url, poolSize: 3, schema: String(schema)))
            // Wired as minkd wires it (StorageFactory): a lone request runs on the connection it
            // borrows, so the end-to-end tests exercise that path too.
            return ServerStorage(
                events: s, snapshots: s, readModels: s, kind: "postgres", close: { await s.shutdown() },
                requestExecutor: { s.idleExecutor() }
            )
        }
    }
}

struct PostgresMissing: Error, CustomStringConvertible {
    var description: String { "MINK_TEST_POSTGRES_URL is not set: run the tests through scripts/test (it starts PostgreSQL)" }
}

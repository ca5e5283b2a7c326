import Foundation
import Mink
import MinkHTTP
@testable import MinkPostgres
@testable import MinkServer
import Testing

/// On PostgreSQL a lone request is answered by the HTTP loop's poller thread itself, the
/// connection's work inline on it (docs/http-transport.md, *Lone requests*), while a standby
/// thread polls: a lone append held by PostgreSQL does not hold up the loop's other connections.
@Suite("lent poller threads (PostgreSQL, SQLite)", .timeLimit(.minutes(2)))
struct PostgresLentPollerTests {
    static func storage() async throws -> (PostgresStorage, ServerStorage) {
        guard let url = ProcessInfo.processInfo.environment["MINK_TEST_POSTGRES_URL"] else { throw PostgresMissing() }
        let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        let s = try await PostgresStorage(configuration: PostgresConfiguration(connectionString: url, poolSize: 3, schema: String(schema)))
        return (s, ServerStorage(
            events: s, snapshots: s, readModels: s, kind: "postgres", close: { await s.shutdown() },
            requestExecutor: { s.idleExecutor() }
        ))
    }

    /// Appends 20 events one request at a time, reads them back, and checks that lone requests
    /// were lent a poller thread.
    static func appendAlone(_ server: TestServer) async throws {
        for i in 1...20 {
            let r = try await server.request("POST", "/v1/streams/lent-1", json: appendBody(["Added"], expected: String(i - 1)))
            #expect(r.status == 201, "\(r.text)")
        }
        let read = try await server.request("GET", "/v1/streams/lent-1")
        #expect(read["events"]?.arrayValue?.count == 20)
        // Lone requests find a standby waiting unless the last lent thread is still on its way
        // back (then the request takes the storage's queue as before).
        #expect(server.server.lentPollerRuns > 0, "lent \(server.server.lentPollerRuns) of 21")
    }

    /// Lone appends one after the other: answered by lent poller threads, every one stored.
    @Test func loneAppendsAreAnsweredByTheLoopsOwnThread() async throws {
        let (s, storage) = try await Self.storage()
        try await withServer(storage: storage) { server in
            try await Self.appendAlone(server)
            // …and their connection work ran inline on the lent thread.
            #expect(s.scope.backend.pool.inlineBorrows > 0)
        }
    }

    /// The same on SQLite (minkd's default): the writer's queue runs the group commit inline.
    @Test func loneSQLiteAppendsAreAnsweredByTheLoopsOwnThread() async throws {
        try await withServer(storage: try await StorageKind.sqlite.make()) { server in
            try await Self.appendAlone(server)
        }
    }

    /// A lone append waiting for PostgreSQL (a table lock held by the test) blocks the thread it
    /// was lent; the loop goes on polling: requests on other connections are answered meanwhile,
    /// and the append completes once the lock goes.
    @Test func otherConnectionsAreServedWhileALentAppendWaits() async throws {
        let (s, storage) = try await Self.storage()
        try await withServer(storage: storage) { server in
            let warm = try await server.request("POST", "/v1/streams/held-1", json: appendBody(["Added"]))
            #expect(warm.status == 201)
            let locker = try PostgresConnection(parameters: [("dbname", try #require(ProcessInfo.processInfo.environment["MINK_TEST_POSTGRES_URL"])), ("connect_timeout", "2")])
            defer { locker.close() }
            try locker.execute("BEGIN; LOCK TABLE \(s.scope.sql.events) IN EXCLUSIVE MODE")
            // A quiet pool (the storage's own background work may hold a connection a moment):
            // only then is the lone append lent a thread.
            for _ in 0..<1000 where s.idleExecutor() == nil { try await Task.sleep(for: .milliseconds(10)) }
            let before = server.server.lentPollerRuns
            let held = Task { try await server.request("POST", "/v1/streams/held-1", json: appendBody(["Added"], expected: "1")) }
            // Until the append has been lent a thread (and waits on the lock).
            let deadline = ContinuousClock.now + .seconds(10)
            while server.server.lentPollerRuns == before, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(server.server.lentPollerRuns > before, "the append was lent a poller thread")
            // Connections spread over every loop (round robin, one loop per core), the append's
            // among them.
            let loops = HTTPServerConfiguration(host: "127.0.0.1", port: 0).eventLoopCount
            let clients = (0..<(2 * loops)).map { _ in HTTPClient() }
            defer { for c in clients { c.shutdown() } }
            for c in clients {
                let r = try await c.execute(HTTPClientRequest(method: "GET", host: "127.0.0.1", port: server.port, target: "/healthz", headers: HTTPHeaders(), body: []))
                #expect(r.status == 200)
            }
            try locker.execute("COMMIT")
            let appended = try await held.value
            #expect(appended.status == 201, "\(appended.text)")
            #expect(appended["toVersion"]?.int64Value == 2, "\(appended.text)")
        }
    }
}

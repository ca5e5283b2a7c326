import Foundation
import MinkHTTP
@testable import MinkServer
import Testing

/// minkd names the PostgreSQL connection a lone request will borrow (or SQLite's writer queue) as
/// its task's executor for short stream routes only (docs/storage-postgres.md, "Connections,
/// pool and threads"); requests answered that way give the usual answers.
@Suite("Lone requests on the connection's queue", .timeLimit(.minutes(2)))
struct LoneRequestExecutorTests {
    @Test func shortStreamRoutesOnAQuietPoolAreNamedAnExecutor() async throws {
        try await withServer(storage: try await StorageKind.postgres.make()) { s in
            let handler = APIHandler(api: s.server.api)
            // Every pooled connection idle: the executor for the next borrow. (Polled: the
            // server's own background work may hold a connection for a moment.)
            func named(_ route: Route) async throws -> Bool {
                let deadline = ContinuousClock.now + .seconds(10)
                while ContinuousClock.now < deadline {
                    if handler.executor(for: route) != nil { return true }
                    try await Task.sleep(for: .milliseconds(5))
                }
                return false
            }
            #expect(try await named(.append("a-1")))
            #expect(try await named(.load("a-1")))
            #expect(try await named(.streamInfo("a-1")))
            #expect(try await named(.getStreamMetadata("a-1")))
            #expect(try await named(.getSnapshot("a-1")))
            #expect(try await named(.putSnapshot("a-1")))
            #expect(try await named(.head))
            #expect(try await named(.readModelDocument("orders", "o-1")))
            // Never for streams of events (a subscription must not hold a connection's queue) nor
            // for other routes.
            #expect(handler.executor(for: .subscribeAll) == nil)
            #expect(handler.executor(for: .subscribeStream("a-1")) == nil)
            #expect(handler.executor(for: .export) == nil)
            #expect(handler.executor(for: .events) == nil)
            #expect(handler.executor(for: .listStreams) == nil)
            #expect(handler.executor(for: .readModelQuery("orders")) == nil)

            // Lone appends and reads through it answer as usual.
            for i in 1...5 {
                let r = try await s.request("POST", "/v1/streams/a-1", json: appendBody(["E"], expected: "\(i - 1)"))
                #expect(r.status == 201, "\(r.text)")
            }
            let stale = try await s.request("POST", "/v1/streams/a-1", json: appendBody(["E"], expected: "2"))
            #expect(stale.status == 409)
            let load = try await s.request("GET", "/v1/streams/a-1")
            #expect(load.status == 200)
            #expect(load.json.objectValue?["events"]?.arrayValue?.count == 5)
            let info = try await s.request("GET", "/v1/streams/a-1/info")
            #expect(info.json.objectValue?["version"]?.int64Value == 5, "\(info.text)")
            let head = try await s.request("GET", "/v1/events/head")
            #expect(head.json.objectValue?["position"]?.int64Value == 5, "\(head.text)")
            let put = try await s.request("PUT", "/v1/streams/a-1/snapshot", json: #"{"version":5,"state":{"n":5}}"#)
            #expect(put.status == 200 || put.status == 204, "\(put.text)")
            let snapshot = try await s.request("GET", "/v1/streams/a-1/snapshot")
            #expect(snapshot.json.objectValue?["version"]?.int64Value == 5, "\(snapshot.text)")
            let metadata = try await s.request("GET", "/v1/streams/a-1/metadata")
            #expect(metadata.status == 200, "\(metadata.text)")
            let missing = try await s.request("GET", "/v1/readmodels/orders/o-404")
            #expect(missing.status == 404, "\(missing.text)")
        }
    }

    /// On SQLite (wired as minkd wires it, a shared file) the writer's queue, when idle; never for
    /// a stream of events.
    @Test func sqliteNamesTheWritersQueue() async throws {
        try await withServer(storage: try await StorageKind.sqlite.make()) { s in
            let handler = APIHandler(api: s.server.api)
            _ = try await s.request("POST", "/v1/streams/a-1", json: appendBody(["E"]))
            let deadline = ContinuousClock.now + .seconds(10)
            var named = false
            while !named, ContinuousClock.now < deadline {
                named = handler.executor(for: .append("a-1")) != nil
                if !named { try await Task.sleep(for: .milliseconds(5)) }
            }
            #expect(named)
            #expect(handler.executor(for: .subscribeAll) == nil)
        }
    }
}

import Foundation
import Mink
@testable import MinkSQLite
import MinkServer
import MinkTestFixtures
import Testing

/// `storage.timeoutSeconds` counts from the moment a request reaches the storage: a SQLite write
/// lock held by someone else, or a writer stuck behind it, never holds a request longer (HTTP-API
/// sections 1, 3 and 10).
@Suite("storage deadlines", .timeLimit(.minutes(3)))
struct StorageDeadlineTests {
    /// Another connection holds the database's write lock (`BEGIN IMMEDIATE`): an append, and
    /// the appends queued behind it, answer `503` at the deadline instead of waiting out the busy
    /// timeout (20 s here); reads go on. Once the lock is gone appends work again, and an
    /// idempotent retry of a timed-out append tells whether it committed — never a duplicate.
    @Test(.timeLimit(.minutes(1))) func sqliteWriteLockHeldElsewhereIs503AtTheDeadline() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-dl-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try await SQLiteStorage.open(
            directory: dir, configuration: SQLiteConfiguration(busyTimeout: .seconds(20), timeout: .seconds(1))
        )
        let storage = ServerStorage(
            events: s, snapshots: s, readModels: s, kind: "sqlite", close: { await s.close() }, probeWrite: { try await s.probeWrite() }
        )
        try await withServer(storage: storage) { server in
            #expect(try await server.request("POST", "/v1/streams/dl-0", json: appendBody(["A"])).status == 201)

            // A real second connection to the same file takes the write lock and keeps it.
            let holder = try SQLiteConnection(path: dir + "/mink.sqlite", create: false, busyTimeoutMilliseconds: 0)
            try holder.run("BEGIN IMMEDIATE")
            var held = true
            defer {
                if held {
                    try? holder.run("ROLLBACK")
                    holder.close()
                }
            }
            let bodies = (1...3).map { i in
                let (a, b) = (UUID().uuidString.lowercased(), UUID().uuidString.lowercased())
                return #"{"events":[{"id":"\#(a)","type":"A","data":{"i":\#(i)}},{"id":"\#(b)","type":"B","data":{"i":\#(i)}}]}"#
            }
            let start = ContinuousClock.now
            // The first append waits for the lock; the other two queue behind it.
            let replies = try await withThrowingTaskGroup(of: (Int, TestServer.Reply, Duration).self) { g in
                for (i, body) in bodies.enumerated() {
                    g.addTask {
                        if i > 0 { try await Task.sleep(for: .milliseconds(200)) }
                        let sent = ContinuousClock.now
                        return (i, try await server.request("POST", "/v1/streams/dl-\(i + 1)", json: body), sent.duration(to: .now))
                    }
                }
                var all: [(Int, TestServer.Reply, Duration)] = []
                for try await r in g { all.append(r) }
                return all
            }
            for (i, reply, elapsed) in replies {
                #expect(reply.status == 503, "append \(i): \(reply.status) \(reply.text)")
                #expect(reply.errorCode == "unavailable", "append \(i)")
                #expect(reply.headers["Retry-After"] != nil, "append \(i)")
                #expect(reply.json.objectValue?["error"]?.objectValue?["details"]?.objectValue != nil, "\(reply.text)")
                // Not a speed target: the 1 s deadline plus generous slack, far below the 20 s
                // busy timeout that bounded the wait before.
                #expect(elapsed < .seconds(6), "append \(i) answered after \(elapsed)")
            }
            // WAL: reads do not wait for the write lock.
            let read = try await server.request("GET", "/v1/streams/dl-0")
            #expect(read.status == 200, "\(read.text)")
            #expect(start.duration(to: .now) < .seconds(15))

            try holder.run("ROLLBACK")
            holder.close()
            held = false

            // Appends work again without a restart.
            let until = ContinuousClock.now + .seconds(20)
            var status = 0
            while ContinuousClock.now < until, status != 201 {
                status = try await server.request("POST", "/v1/streams/dl-after", json: appendBody(["A"])).status
                if status != 201 { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(status == 201)
            // Each timed-out append either committed (its retry answers 200, the original result)
            // or not (201): retried twice, it is then a replay, with its two events once.
            for (i, body) in bodies.enumerated() {
                let first = try await server.request("POST", "/v1/streams/dl-\(i + 1)", json: body)
                #expect(first.status == 201 || first.status == 200, "retry \(i): \(first.status) \(first.text)")
                let again = try await server.request("POST", "/v1/streams/dl-\(i + 1)", json: body)
                #expect(again.status == 200, "second retry \(i): \(again.status) \(again.text)")
                let stream = try await server.request("GET", "/v1/streams/dl-\(i + 1)")
                #expect(stream["version"]?.int64Value == 2, "stream dl-\(i + 1): \(stream.text)")
            }
        }
    }
}

import Foundation
import Mink
import MinkSQLite
import MinkServer
import Testing

/// Storage that refuses writes: `503 unavailable` for writes and for `/readyz` (the write probe),
/// and both recover by themselves once the fault is gone — no restart.
@Suite("storage faults")
struct StorageFaultTests {
    /// Makes a file unwritable for this process, or writable again: `chattr +i` as root (root
    /// ignores file modes), `chmod 0444` otherwise.
    static func setReadOnly(_ path: String, _ readOnly: Bool) throws {
        if getuid() == 0 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
            p.arguments = [readOnly ? "+i" : "-i", path]
            try p.run()
            p.waitUntilExit()
            try #require(p.terminationStatus == 0, "chattr failed: the file system must support the immutable flag")
        } else {
            try FileManager.default.setAttributes([.posixPermissions: readOnly ? 0o444 : 0o644], ofItemAtPath: path)
        }
    }

    @Test(.timeLimit(.minutes(1))) func readOnlySQLiteIs503AndRecoversWithoutRestart() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-ro-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The database exists (a previous run), then minkd starts on a file it cannot write.
        let first = try await SQLiteStorage.open(directory: dir)
        _ = try await first.append(AppendRequest(streamID: "before", events: [EventData(type: "A", data: Data("{}".utf8))], expectedVersion: .any), hook: nil)
        await first.close()
        let file = dir + "/mink.sqlite"
        try Self.setReadOnly(file, true)
        var restored = false
        defer { if !restored { try? Self.setReadOnly(file, false) } }

        let s = try await SQLiteStorage.open(directory: dir)
        let storage = ServerStorage(
            events: s, snapshots: s, readModels: s, kind: "sqlite", close: { await s.close() }, probeWrite: { try await s.probeWrite() }
        )
        try await withServer(storage: storage) { server in
            let refused = try await server.request("POST", "/v1/streams/ro-1", json: appendBody(["A"]))
            #expect(refused.status == 503, "\(refused.text)")
            #expect(refused.errorCode == "unavailable")
            #expect(refused.json.objectValue?["error"]?.objectValue?["details"]?.objectValue != nil, "\(refused.text)")
            #expect(refused.headers["Retry-After"] != nil)
            let notReady = try await server.request("GET", "/readyz")
            #expect(notReady.status == 503, "\(notReady.text)")
            // Reads still work.
            #expect(try await server.request("GET", "/v1/streams/before").status == 200)

            try Self.setReadOnly(file, false)
            restored = true
            // Both recover by themselves (the readiness probe runs at most every 2 s).
            let until = ContinuousClock.now + .seconds(20)
            var ready = 0, appended = 0
            while ContinuousClock.now < until, ready != 200 || appended != 201 {
                if appended != 201 { appended = try await server.request("POST", "/v1/streams/ro-1", json: appendBody(["A"])).status }
                if ready != 200 { ready = try await server.request("GET", "/readyz").status }
                if ready != 200 || appended != 201 { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(appended == 201)
            #expect(ready == 200)
            let stream = try await server.request("GET", "/v1/streams/ro-1")
            #expect(stream["version"]?.int64Value == 1, "\(stream.text)")
        }
    }
}

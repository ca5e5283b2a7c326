import Foundation
import Mink
import MinkPostgres
import MinkSQLite
import MinkServer
import MinkTestFixtures
import Testing

/// Storage that refuses writes: `503 unavailable` for writes and for `/readyz` (the write probe),
/// and both recover by themselves once the fault is gone — no restart.
@Suite("storage faults", .timeLimit(.minutes(3)))
struct StorageFaultTests {
    /// Makes a file unwritable for this process, or writable again: `chattr +i` as root (root
    /// ignores file modes), `chmod 0444` otherwise.
    static func setReadOnly(_ path: String, _ readOnly: Bool) throws {
        if getuid() == 0 {
            let p = try ChildProcess(executable: "/usr/bin/chattr", arguments: [readOnly ? "+i" : "-i", path])
            var status: Int32 = -1
            for _ in 0..<1000 {
                if let exit = p.poll() { status = exit.status; break }
                usleep(10_000)
            }
            let err = String(decoding: p.standardError.readDataToEndOfFile(), as: UTF8.self)
            try #require(status == 0, "chattr failed (\(status)): the file system must support the immutable flag: \(err)")
        } else {
            try FileManager.default.setAttributes([.posixPermissions: readOnly ? 0o444 : 0o644], ofItemAtPath: path)
        }
    }

    /// A full disk: SQLite's one-row probe can still succeed in the room its WAL file already has
    /// while appends that need new pages fail, so the probe also asks the file system. Here the
    /// threshold is set above what the disk has free (a real statvfs of the test's directory).
    @Test(.timeLimit(.minutes(1))) func aDiskBelowTheFreeSpaceThresholdIsNotReady() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-full-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let free = try #require(
            (try FileManager.default.attributesOfFileSystem(forPath: dir)[.systemFreeSize] as? NSNumber)?.int64Value
        )
        for (threshold, ready) in [(free + (1 << 40), false), (Int64(0), true)] {
            let s = try await SQLiteStorage.open(directory: dir, configuration: SQLiteConfiguration(minimumFreeBytes: threshold))
            let storage = ServerStorage(
                events: s, snapshots: s, readModels: s, kind: "sqlite", close: { await s.close() }, probeWrite: { try await s.probeWrite() }
            )
            try await withServer(storage: storage) { server in
                let r = try await server.request("GET", "/readyz")
                if ready {
                    #expect(r.status == 200, "\(r.text)")
                } else {
                    #expect(r.status == 503, "\(r.text)")
                    #expect(r.errorCode == "unavailable", "\(r.text)")
                    #expect(r.headers["Retry-After"] != nil)
                }
            }
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
            // The reason, and section 3's error shape alongside it.
            #expect(notReady.json.objectValue?["reason"]?.stringValue == "storage refuses writes", "\(notReady.text)")
            #expect(notReady.errorCode == "unavailable", "\(notReady.text)")
            #expect(notReady.json.objectValue?["error"]?.objectValue?["details"]?.objectValue != nil, "\(notReady.text)")
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

    /// PostgreSQL frozen with SIGSTOP: appends, reads, the head and `/readyz` all answer `503`
    /// (with `Retry-After` and `details`) within the storage timeout instead of hanging for as
    /// long as the freeze lasts; after SIGCONT everything works again without a restart.
    @Test(.timeLimit(.minutes(2))) func frozenPostgresIs503WithinTheTimeoutAndRecovers() async throws {
        guard let url = ProcessInfo.processInfo.environment["MINK_TEST_POSTGRES_RESTART_URL"] else { throw PostgresMissing() }
        let lock = try await RestartCluster.lock()
        defer { lock.release() }
        let pg = try await PostgresStorage(configuration: PostgresConfiguration(
            connectionString: url, poolSize: 2, schema: PostgresTestDatabase.freshName("fz_"), connectTimeoutSeconds: 2,
            timeout: .seconds(2)
        ))
        let storage = ServerStorage(
            events: pg, snapshots: pg, readModels: pg, kind: "postgres", close: { await pg.shutdown() },
            probeWrite: { try await pg.probeWrite() }
        )
        try await withServer(storage: storage) { server in
            #expect(try await server.request("POST", "/v1/streams/fz-1", json: appendBody(["A"])).status == 201)
            #expect(try await server.request("GET", "/readyz").status == 200)

            try RestartCluster.signal(SIGSTOP)
            var thawed = false
            defer { if !thawed { try? RestartCluster.signal(SIGCONT) } }
            let calls: [(String, String, String?)] = [
                ("POST", "/v1/streams/fz-2", appendBody(["A"])), ("POST", "/v1/streams/fz-3", appendBody(["A"])),
                ("POST", "/v1/streams/fz-4", appendBody(["A"])), ("GET", "/v1/streams/fz-1", nil),
                ("GET", "/v1/events/head", nil), ("GET", "/v1/events?after=0", nil), ("GET", "/readyz", nil),
            ]
            let start = ContinuousClock.now
            let replies = try await withThrowingTaskGroup(of: (String, TestServer.Reply, Duration).self) { g in
                for (method, target, body) in calls {
                    g.addTask { (target, try await server.request(method, target, json: body), start.duration(to: .now)) }
                }
                var all: [(String, TestServer.Reply, Duration)] = []
                for try await r in g { all.append(r) }
                return all
            }
            // Still frozen: every answer came without the server.
            try RestartCluster.signal(SIGCONT)
            thawed = true
            for (target, reply, elapsed) in replies {
                #expect(reply.status == 503, "\(target) after \(elapsed): \(reply.status) \(reply.text)")
                #expect(reply.headers["Retry-After"] != nil, "\(target)")
                #expect(reply.errorCode == "unavailable", "\(target)")
                #expect(reply.json.objectValue?["error"]?.objectValue?["details"]?.objectValue != nil, "\(target)")
                // Not a speed target: a generous multiple of the 2 s timeout, far below a hang.
                #expect(elapsed < .seconds(15), "\(target) answered after \(elapsed)")
            }

            // Recovery without a restart.
            let until = ContinuousClock.now + .seconds(30)
            var ready = 0, appended = 0
            while ContinuousClock.now < until, ready != 200 || appended != 201 {
                if appended != 201 { appended = try await server.request("POST", "/v1/streams/fz-5", json: appendBody(["A"])).status }
                if ready != 200 { ready = try await server.request("GET", "/readyz").status }
                if ready != 200 || appended != 201 { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(appended == 201)
            #expect(ready == 200)
        }
    }

    /// PostgreSQL refusing writes — here `default_transaction_read_only` on the database, as
    /// during maintenance or on a role meant for reads; a hot standby answers the same `25006` —
    /// makes appends `503 unavailable` with `Retry-After` (not `500`) and `/readyz` `503` while
    /// reads go on; once the setting is reset, both recover without a restart (the read-only
    /// sessions, whose default was fixed when they started, are replaced).
    @Test(.timeLimit(.minutes(1))) func readOnlyPostgresIs503AndRecoversWithoutRestart() async throws {
        let url = try await PostgresTestDatabase.freshDatabase()
        let database = String(url[url.index(after: url.lastIndex(of: "/")!)...])
        let pg = try await PostgresStorage(configuration: PostgresConfiguration(
            connectionString: url, poolSize: 2, schema: PostgresTestDatabase.freshName("ro_"), connectTimeoutSeconds: 5
        ))
        let storage = ServerStorage(
            events: pg, snapshots: pg, readModels: pg, kind: "postgres", close: { await pg.shutdown() },
            probeWrite: { try await pg.probeWrite() }
        )
        try await withServer(storage: storage) { server in
            #expect(try await server.request("POST", "/v1/streams/before", json: appendBody(["A"])).status == 201)
            // The database turns read-only; minkd's sessions end (as at a restart or a failover),
            // so the new ones start read-only.
            // (From the cluster's own database: a new session on the read-only one could not reset it.)
            let admin = try PostgresTestDatabase.url()
            try await PostgresTestDatabase.execute(admin, "ALTER DATABASE \(database) SET default_transaction_read_only = on")
            try await PostgresTestDatabase.execute(
                admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)'")
            // Every append meanwhile is refused as unavailable (the first ones may meet a session
            // that was just ended, later ones the read-only database): never a 500, never a 201.
            for _ in 0..<10 {
                let r = try await server.request("POST", "/v1/streams/ro-1", json: appendBody(["A"]))
                #expect(r.status == 503, "\(r.status) \(r.text)")
                #expect(r.errorCode == "unavailable")
                #expect(r.headers["Retry-After"] != nil)
                try await Task.sleep(for: .milliseconds(100))
            }
            var ready = 200
            let probing = ContinuousClock.now + .seconds(10)
            while ready != 503, ContinuousClock.now < probing {
                ready = try await server.request("GET", "/readyz").status
                if ready != 503 { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(ready == 503, "/readyz while the database is read-only")
            #expect(try await server.request("GET", "/v1/streams/before").status == 200, "reads go on")

            try await PostgresTestDatabase.execute(admin, "ALTER DATABASE \(database) RESET default_transaction_read_only")
            let recovery = ContinuousClock.now + .seconds(20)
            var appended = 0
            while ContinuousClock.now < recovery, ready != 200 || appended != 201 {
                if appended != 201 { appended = try await server.request("POST", "/v1/streams/ro-1", json: appendBody(["A"])).status }
                if ready != 200 { ready = try await server.request("GET", "/readyz").status }
                if ready != 200 || appended != 201 { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(appended == 201, "appends after the setting was reset")
            #expect(ready == 200, "/readyz after the setting was reset")
        }
    }
}

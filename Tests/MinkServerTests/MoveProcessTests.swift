import Foundation
import Mink
import MinkHTTP
import MinkTestFixtures
import Testing

/// `minkd export | minkd import`, `minkd backup` and the pg_dump recipe with real processes.
@Suite("Moving data between storages", .timeLimit(.minutes(3)))
struct MoveProcessTests {
    static func temporaryDirectory(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
    }

    static func append(_ client: HTTPClient, port: Int, stream: String, type: String, data: String = #"{"n":1}"#) async throws -> Int {
        var h = HTTPHeaders()
        h.add(name: "Content-Type", value: "application/json")
        let body = #"{"metadata":{"userId":"u-1","custom":{"k":"v"}},"events":[{"type":"\#(type)","data":\#(data)}]}"#
        let r = try await client.execute(HTTPClientRequest(method: "POST", host: "127.0.0.1", port: port, target: "/v1/streams/\(stream)", headers: h, body: Array(body.utf8)))
        return r.status
    }

    static func export(_ client: HTTPClient, port: Int) async throws -> String {
        let r = try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/v1/admin/export?after=0"))
        try #require(r.status == 200)
        return String(decoding: r.body, as: UTF8.self)
    }

    /// Subscribes to the whole log and returns the SSE events up to and including `caught-up`.
    static func subscribeAll(_ client: HTTPClient, port: Int, lastEventID: String?) async throws -> [SSEEvent] {
        var out: [SSEEvent] = []
        for try await e in client.events(host: "127.0.0.1", port: port, target: "/v1/subscriptions/all", lastEventID: lastEventID, readTimeout: .seconds(10)) {
            out.append(e)
            if e.event == "caught-up" { break }
        }
        return out
    }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// A SQLite deployment moved to PostgreSQL by exactly `minkd export --data-dir … | minkd
    /// import --database-url …`: every event the same, appends continuing after the head, and
    /// a subscriber resuming on the new server with the `Last-Event-ID` it had on the old one.
    @Test func sqliteToPostgresThroughAPipe() async throws {
        let dir = Self.temporaryDirectory("minkd-move")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let url = try await PostgresTestDatabase.freshDatabase()
        let client = HTTPClient()
        defer { client.shutdown() }

        let old = try MinkdProcess(["serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-format", "json"])
        let oldPort = try await old.waitUntilReady()
        for i in 0..<30 {
            #expect(try await Self.append(client, port: oldPort, stream: "order-\(i % 4)", type: "T\(i % 3)", data: #"{"i":\#(i),"t":"é\n"}"#) == 201)
        }
        // A subscriber on the old deployment has seen the first 10 events.
        var seen: [SSEEvent] = []
        for try await e in client.events(host: "127.0.0.1", port: oldPort, target: "/v1/subscriptions/all", lastEventID: nil, readTimeout: .seconds(10)) {
            if e.event == "message" { seen.append(e) }
            if seen.count == 10 { break }
        }
        let lastID = try #require(seen.last?.lastEventID)
        #expect(lastID == "10")
        let before = try await Self.export(client, port: oldPort)
        kill(old.process.processIdentifier, SIGTERM)
        #expect(try await old.finish().status == 0)

        let minkd = MinkdProcess.executable.path
        let pipeline = "\(Self.quote(minkd)) export --data-dir \(Self.quote(dir)) | \(Self.quote(minkd)) import --database-url \(Self.quote(url))"
        let env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MINKD_") }
        let shell = try ChildProcess(executable: "/bin/sh", arguments: ["-c", pipeline], environment: env)
        let exit = await ProcessLaunch.exit(of: shell, timeout: .seconds(60))
        let out = String(decoding: shell.standardOutput.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: shell.standardError.readDataToEndOfFile(), as: UTF8.self)
        #expect(exit?.status == 0, "\(err)")
        #expect(out.contains(#"{"events":30,"streams":4,"head":30}"#), "\(out) \(err)")
        // A tenant that is not there (misspelt, or the wrong tenancy strategy) fails the export:
        // an empty export piped into an import "moved" nothing and exited 0.
        let missing = try await MinkdProcess(["export", "--data-dir", dir, "--tenant", "acme"]).finish(timeout: .seconds(30))
        #expect(missing.status != 0 && missing.out.isEmpty, "\(missing)")
        #expect(missing.err.contains("tenant acme does not exist"), "\(missing.err)")
        // `--out -` is standard output (it wrote a file named `-`); the memory storage, which
        // holds nothing outside a serving minkd, is refused (it "exported" 0 events, exit 0).
        let dash = try await MinkdProcess(["export", "--data-dir", dir, "--out", "-"]).finish(timeout: .seconds(30))
        #expect(dash.status == 0 && dash.out.split(separator: "\n").count == 30, "\(dash.err)")
        // A command that never listens ignores the listen rule: a container's
        // MINKD_LISTEN=0.0.0.0:6465 with auth off refused `minkd export`.
        let container = try await MinkdProcess(["export", "--data-dir", dir, "--out", "-"], environment: ["MINKD_LISTEN": "0.0.0.0:6465"])
            .finish(timeout: .seconds(30))
        #expect(container.status == 0 && container.out.split(separator: "\n").count == 30, "\(container.err)")
        let memory = try await MinkdProcess(["export", "--storage", "memory"]).finish(timeout: .seconds(30))
        #expect(memory.status != 0 && memory.err.contains("memory storage"), "\(memory)")

        let new = try MinkdProcess(["serve", "--database-url", url, "--listen", "127.0.0.1:0", "--log-format", "json"])
        let newPort = try await new.waitUntilReady()
        let after = try await Self.export(client, port: newPort)
        #expect(after == before, "every event identical after the move")
        #expect(after.split(separator: "\n").count == 30)

        // The subscriber resumes on the new deployment: exactly the events after the one it saw.
        let resumed = try await Self.subscribeAll(client, port: newPort, lastEventID: lastID)
        let positions = resumed.filter { $0.event == "message" }.compactMap(\.position)
        #expect(positions == Array(11...30))
        #expect(resumed.last?.event == "caught-up")
        // Appends continue after the imported head and versions.
        #expect(try await Self.append(client, port: newPort, stream: "order-1", type: "After") == 201)
        let tail = try await Self.export(client, port: newPort).split(separator: "\n").last.map(String.init) ?? ""
        #expect(tail.contains(#""globalPosition":31"#) && tail.contains(#""version":9"#), "\(tail)")

        // A second import into the now non-empty tenant is refused and changes nothing.
        let again = try MinkdProcess(["import", "--database-url", url], stdin: before)
        let second = try await again.finish(timeout: .seconds(30))
        #expect(second.status != 0)
        #expect(second.err.contains("tenant_not_empty") || second.err.contains("already has events"), "\(second.err)")
        kill(new.process.processIdentifier, SIGTERM)
        #expect(try await new.finish().status == 0)
    }

    /// `minkd import` into a data directory a running minkd owns exits non-zero naming its PID.
    @Test func importIntoADirectoryInUseNamesTheOwner() async throws {
        let dir = Self.temporaryDirectory("minkd-import-busy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try MinkdProcess(["serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-format", "json"])
        _ = try await server.waitUntilReady()
        let importer = try MinkdProcess(["import", "--data-dir", dir], stdin: "")
        let result = try await importer.finish(timeout: .seconds(30))
        #expect(result.status != 0)
        #expect(result.err.contains("\(server.process.processIdentifier)"), "\(result.err)")
        kill(server.process.processIdentifier, SIGTERM)
        #expect(try await server.finish().status == 0)
    }

    /// `minkd backup` while minkd serves appends: a minkd started on the copy has every event up
    /// to the copy's head exactly once, at dense positions, and each stream's versions dense.
    @Test(arguments: ["shared", "database"])
    func backupUnderLoad(_ strategy: String) async throws {
        let dir = Self.temporaryDirectory("minkd-backup-src")
        let copy = Self.temporaryDirectory("minkd-backup-dst")
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: copy)
        }
        let env = ["MINKD_TENANCY_STRATEGY": strategy]
        let server = try MinkdProcess(["serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-format", "json"], environment: env)
        let port = try await server.waitUntilReady()
        let client = HTTPClient()
        defer { client.shutdown() }
        for i in 0..<50 { #expect(try await Self.append(client, port: port, stream: "acc-\(i % 5)", type: "Seed") == 201) }
        // Writers keep appending while the backup runs.
        let writers = Task {
            var n = 0
            while !Task.isCancelled && n < 2000 {
                _ = try await Self.append(client, port: port, stream: "acc-\(n % 5)", type: "Load")
                n += 1
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        let backup = try MinkdProcess(["backup", "--data-dir", dir, "--out", copy])
        let result = try await backup.finish(timeout: .seconds(60))
        writers.cancel()
        _ = try? await writers.value
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains(".sqlite"), "\(result.out)")
        var st = stat()
        #expect(stat(copy, &st) == 0 && st.st_mode & 0o777 == 0o700)
        for name in try FileManager.default.contentsOfDirectory(atPath: copy) where name.hasSuffix(".sqlite") {
            #expect(stat((copy as NSString).appendingPathComponent(name), &st) == 0 && st.st_mode & 0o777 == 0o600, "\(name)")
        }
        kill(server.process.processIdentifier, SIGTERM)
        #expect(try await server.finish().status == 0)

        let restored = try MinkdProcess(["serve", "--data-dir", copy, "--listen", "127.0.0.1:0", "--log-format", "json"], environment: env)
        let restoredPort = try await restored.waitUntilReady()
        let lines = try await Self.export(client, port: restoredPort).split(separator: "\n")
        let events = try lines.map { try JSONValue(jsonString: String($0)) }
        let positions = events.compactMap { $0.objectValue?["globalPosition"]?.int64Value }
        #expect(positions.count >= 50)
        #expect(positions == Array(1...Int64(positions.count)), "dense positions up to the copy's head")
        let ids = events.compactMap { $0.objectValue?["id"]?.stringValue }
        #expect(Set(ids).count == ids.count, "every event once")
        var versions: [String: Int64] = [:]
        for e in events {
            let o = try #require(e.objectValue)
            let stream = try #require(o["streamId"]?.stringValue)
            let version = try #require(o["version"]?.int64Value)
            #expect(version == (versions[stream] ?? 0) + 1, "dense versions in \(stream)")
            versions[stream] = version
        }
        let head = try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: restoredPort, target: "/v1/events/head"))
        #expect(String(decoding: head.body, as: UTF8.self).contains("\(positions.count)"))
        kill(restored.process.processIdentifier, SIGTERM)
        #expect(try await restored.finish().status == 0)
    }
}

/// The PostgreSQL backup recipe of docs/operations.md, run as written: `pg_dump -Fc`, a new
/// database, `pg_restore`, then minkd on the restored database.
@Suite("PostgreSQL backup recipe", .timeLimit(.minutes(3)))
struct PostgresBackupRecipeTests {
    static func tool(_ name: String) throws -> String {
        let pgCtl = try #require(ProcessInfo.processInfo.environment["MINK_TEST_PG_CTL"], "run through scripts/with-postgres")
        return (pgCtl as NSString).deletingLastPathComponent + "/" + name
    }

    static func run(_ executable: String, _ arguments: [String]) async throws -> String {
        let child = try ChildProcess(executable: executable, arguments: arguments)
        let exit = await ProcessLaunch.exit(of: child, timeout: .seconds(60))
        let err = String(decoding: child.standardError.readDataToEndOfFile(), as: UTF8.self)
        #expect(exit?.status == 0, "\(executable) \(arguments): \(err)")
        return String(decoding: child.standardOutput.readDataToEndOfFile(), as: UTF8.self)
    }

    @Test func pgDumpAndRestoreGiveAWorkingMinkd() async throws {
        let url = try await PostgresTestDatabase.freshDatabase()
        let restoredURL = try await PostgresTestDatabase.freshDatabase()
        let dump = MoveProcessTests.temporaryDirectory("minkd-pgdump") + ".dump"
        defer { try? FileManager.default.removeItem(atPath: dump) }
        let client = HTTPClient()
        defer { client.shutdown() }

        let server = try MinkdProcess(["serve", "--database-url", url, "--listen", "127.0.0.1:0", "--log-format", "json"])
        let port = try await server.waitUntilReady()
        for i in 0..<20 { #expect(try await MoveProcessTests.append(client, port: port, stream: "acc-\(i % 3)", type: "T") == 201) }
        // The dump is taken while minkd runs: pg_dump reads one consistent snapshot.
        _ = try await Self.run(try Self.tool("pg_dump"), ["--format=custom", "--no-owner", "--file", dump, url])
        let before = try await MoveProcessTests.export(client, port: port)
        kill(server.process.processIdentifier, SIGTERM)
        #expect(try await server.finish().status == 0)

        _ = try await Self.run(try Self.tool("pg_restore"), ["--no-owner", "--exit-on-error", "--dbname", restoredURL, dump])
        let restored = try MinkdProcess(["serve", "--database-url", restoredURL, "--listen", "127.0.0.1:0", "--log-format", "json"])
        let restoredPort = try await restored.waitUntilReady()
        #expect(try await MoveProcessTests.export(client, port: restoredPort) == before)
        #expect(try await MoveProcessTests.append(client, port: restoredPort, stream: "acc-0", type: "After") == 201)
        let last = try await MoveProcessTests.export(client, port: restoredPort).split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.contains(#""globalPosition":21"#) && last.contains(#""version":8"#), "\(last)")
        kill(restored.process.processIdentifier, SIGTERM)
        #expect(try await restored.finish().status == 0)
    }
}

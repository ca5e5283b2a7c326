import Foundation
import MinkConfig
import MinkHTTP
import MinkTestFixtures
import Testing

/// Issue 11's footguns, checked on the real executable the way an operator meets them: one
/// process per SQLite data directory, owner-only files, `check-config` refusing what `serve`
/// refuses, the storage chosen by a database URL, errors that name the cause and a fix, and
/// log lines an incident can be run on.
@Suite("minkd operator safety", .timeLimit(.minutes(2)))
struct OperatorSafetyTests {
    static func freshDirectory(_ label: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("minkd-\(label)-\(UUID().uuidString)")
    }

    static func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func aSecondProcessOnTheSameDataDirectoryExitsAtOnceNamingTheOwner() async throws {
        let dir = Self.freshDirectory("lock")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try MinkdProcess(["serve", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--log-format", "json"])
        _ = try await first.waitUntilReady()
        let start = ContinuousClock.now
        let second = try await MinkdProcess(["serve", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--log-format", "json"]).finish()
        #expect(second.status != 0)
        #expect(ContinuousClock.now - start < .seconds(8), "exits at once, does not wait for the lock")
        #expect(second.err.contains(dir.path), "\(second.err)")
        #expect(second.err.contains("pid \(first.process.processIdentifier)"), "\(second.err)")
        #expect(!second.err.contains("minkd ready"))
        kill(first.process.processIdentifier, SIGTERM)
        #expect(try await first.finish(timeout: .seconds(15)).status == 0)
        // The owner gone, the directory is free again (a kill -9 frees it too: the kernel drops
        // a dead process's flock).
        let third = try MinkdProcess(["serve", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--log-format", "json"])
        _ = try await third.waitUntilReady()
        kill(third.process.processIdentifier, SIGKILL)
        _ = try await third.finish()
        let fourth = try MinkdProcess(["serve", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--log-format", "json"])
        _ = try await fourth.waitUntilReady()
        kill(fourth.process.processIdentifier, SIGTERM)
        #expect(try await fourth.finish(timeout: .seconds(15)).status == 0)
    }

    @Test(arguments: ["shared", "database"])
    func createdFilesAreOwnerOnly(_ strategy: String) async throws {
        let parent = Self.freshDirectory("modes")
        defer { try? FileManager.default.removeItem(at: parent) }
        let dir = parent.appendingPathComponent("data")
        let minkd = try MinkdProcess(
            ["serve", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--log-format", "json"],
            environment: ["MINKD_TENANCY_STRATEGY": strategy]
        )
        let port = try await minkd.waitUntilReady()
        let c = try await RawConnection.open(port: port)
        let body = #"{"events":[{"type":"Placed","data":{}}]}"#
        try await c.send("POST /v1/streams/order-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let reply = try await c.read(until: { $0.contains("\r\n\r\n") }, timeout: .seconds(10))
        #expect(reply.hasPrefix("HTTP/1.1 201"), "\(reply.prefix(200))")
        #expect(try Self.mode(dir.path) == 0o700)
        #expect(try Self.mode(parent.path) == 0o700, "missing parents too")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(files.contains("minkd.lock") && files.contains { $0.hasSuffix(".sqlite") }, "\(files)")
        for file in files {
            #expect(try Self.mode(dir.appendingPathComponent(file).path) == 0o600, "\(file)")
        }
        kill(minkd.process.processIdentifier, SIGTERM)
        #expect(try await minkd.finish(timeout: .seconds(15)).status == 0)
    }

    @Test func checkConfigRefusesWhatServeRefuses() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-not-a-dir-\(UUID().uuidString)").path
        try #require(FileManager.default.createFile(atPath: file, contents: Data()))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let cases: [([String], [String: String], String)] = [
            // A data directory that is a file (check-config passed it; serve refused it).
            (["--data-dir", file], [:], "config: storage.dataDir: cannot open the SQLite data directory \(file): it is a file, not a directory; fix: "),
            // Below a file: that file named (serve said "Permission denied", check-config passed).
            (["--data-dir", file + "/sub"], [:], "config: storage.dataDir: cannot open the SQLite data directory \(file)/sub: \(file) is a file, not a directory; fix: "),
            (["--listen", "0.0.0.0:6465", "--storage", "memory"], [:], "config: listen: refusing to listen on non-loopback address"),
            (["--storage", "memory"], ["MINKD_AUTH_ENABLED": "true"], "config: auth.tokens: auth is enabled but no token is configured"),
            (["--storage", "memory"], ["MINKD_DATABASE_URL": "postgres://127.0.0.1:1/x"], "config: --storage: storage kind \"memory\" conflicts"),
            // libpq cannot read the URL: refused by both before any connection (check-config
            // accepted it, serve then failed to open the storage).
            (["--database-url", "postgresql://x@127.0.0.1:1/y?nosuchparameter=1"], [:], "config: --database-url: libpq cannot read it: invalid URI query parameter"),
        ]
        // (Every rule is checked in-process by MinkConfigTests' OperatorRuleTests; these runs
        // show the executable's two commands print the same line. Launches are kept few:
        // Foundation's Process.run() was seen to crash, rarely, under many launches.)
        for (flags, environment, message) in cases {
            let check = try await MinkdProcess(["check-config"] + flags, environment: environment).finish()
            let serve = try await MinkdProcess(["serve", "--log-format", "json"] + flags, environment: environment).finish()
            #expect(check.status != 0 && check.err.contains(message), "check-config \(flags) \(environment): \(check.err)")
            #expect(serve.status != 0 && serve.err.contains(message), "serve \(flags) \(environment): \(serve.err)")
            #expect(check.err == serve.err, "the same one line")
        }
        // A bad command line is one line too (it was an error, a usage line and a hint).
        for (arguments, message) in [
            (["--bogus"], "config: Unknown option '--bogus'"), (["serve", "--listen"], "config: Missing value for '--listen"),
            (["frobnicate"], "config: Unexpected argument 'frobnicate'"),
        ] {
            let r = try await MinkdProcess(arguments).finish()
            #expect(r.status != 0 && r.err.hasPrefix(message), "\(arguments): \(r.err)")
            #expect(r.err.split(separator: "\n").count == 1, "one line: \(r.err)")
        }
        let accepted = try await MinkdProcess([
            "check-config", "--listen", "0.0.0.0:6465", "--storage", "memory", "--insecure", "--log-format", "auto",
        ]).finish()
        #expect(accepted.status == 0, "--insecure and --log-format auto are accepted: \(accepted.err)")
    }

    /// A malformed database URL: libpq's message quotes the bad token, the password included;
    /// minkd prints it scrubbed.
    @Test func aMalformedURLsPasswordIsNeverPrinted() async throws {
        for url in ["postgresql://x:SeCr%zzEt@127.0.0.1:1/y", "postgresql://x@127.0.0.1:1/y?password=SeCr%zzEt", "postgresql://x:SeCrEt9@[::1:1/y"] {
            let serve = try await MinkdProcess(["serve", "--database-url", url, "--log-format", "json"]).finish(timeout: .seconds(30))
            #expect(serve.status != 0)
            #expect(!serve.err.contains("SeCr"), "\(url): \(serve.err)")
            let check = try await MinkdProcess(["check-config", "--database-url", url]).finish(timeout: .seconds(30))
            #expect(check.status != 0 && check.err.contains("config: --database-url: libpq cannot read it"), "\(url): \(check.err)")
            #expect(!check.err.contains("SeCr") && !check.out.contains("SeCr"), "\(url): \(check.err)")
        }
    }

    @Test func everyCommandResolvesTheStorageByTheSameRule() async throws {
        // A URL without a kind is PostgreSQL for check-config and serve (which then fails to
        // reach it, naming the server and a fix), as for migrate.
        let url = "postgres://minkd:s3cret@127.0.0.1:1/nowhere?connect_timeout=2"
        let check = try await MinkdProcess(["check-config", "--database-url", url]).finish()
        #expect(check.status == 0 && check.out.contains("kind: postgres"), "\(check.out) \(check.err)")
        #expect(!check.out.contains("s3cret"))
        let serve = try await MinkdProcess(["serve", "--database-url", url, "--log-format", "json"]).finish(timeout: .seconds(30))
        #expect(serve.status != 0)
        #expect(serve.err.contains("cannot open PostgreSQL at postgres://minkd:<redacted>@127.0.0.1:1/nowhere"), "\(serve.err)")
        #expect(serve.err.contains("; fix: "), "\(serve.err)")
        #expect(!serve.err.contains("s3cret"), "\(serve.err)")
        let migrate = try await MinkdProcess(["migrate", "--database-url", url]).finish(timeout: .seconds(30))
        #expect(migrate.status != 0 && migrate.err.contains("cannot open PostgreSQL at"), "\(migrate.err)")
        // migrate on a storage that is not PostgreSQL says so instead of guessing.
        let sqlite = try await MinkdProcess(["migrate"]).finish()
        #expect(sqlite.status != 0 && sqlite.err.contains("the storage is sqlite"), "\(sqlite.err)")
        #expect(sqlite.err.hasPrefix("minkd migrate applies") && !sqlite.err.contains("validation_failed"), "a sentence, no error code: \(sqlite.err)")
    }

    @Test func unknownMINKDVariablesAreWarnedAboutByName() async throws {
        let check = try await MinkdProcess(["check-config", "--storage", "memory"], environment: ["MINKD_DATABSE_URL": "postgres://x"]).finish()
        #expect(check.status == 0)
        #expect(check.err.contains("unknown environment variable MINKD_DATABSE_URL (did you mean MINKD_DATABASE_URL?)"), "\(check.err)")
        // Also when the start fails, often because of the misspelling.
        let failing = try await MinkdProcess(["serve", "--storage", "postgres"], environment: ["MINKD_DATABSE_URL": "postgres://x"]).finish()
        #expect(failing.status != 0 && failing.err.contains("MINKD_DATABSE_URL (did you mean MINKD_DATABASE_URL?)"), "\(failing.err)")
        #expect(failing.err.contains("config: storage.url: required when storage.kind is postgres"), "\(failing.err)")
        let ok = try MinkdProcess(
            ["serve", "--storage", "memory", "--listen", "127.0.0.1:0", "--log-format", "json"], environment: ["MINKD_LOG_LEVLE": "debug"]
        )
        let text = try await ok.readLog(until: "minkd ready")
        #expect(text.contains(#""level":"warning""#) && text.contains("MINKD_LOG_LEVLE (did you mean MINKD_LOG_LEVEL?)"), "\(text)")
        kill(ok.process.processIdentifier, SIGTERM)
        _ = try await ok.finish(timeout: .seconds(15))
    }

    @Test func addressInUseNamesTheAddress() async throws {
        let first = try MinkdProcess(["serve", "--storage", "memory", "--listen", "127.0.0.1:0", "--log-format", "json"])
        let port = try await first.waitUntilReady()
        let second = try await MinkdProcess(["serve", "--storage", "memory", "--listen", "127.0.0.1:\(port)", "--log-format", "json"]).finish()
        #expect(second.status != 0)
        #expect(second.err.contains("127.0.0.1:\(port)") && second.err.contains("already in use"), "\(second.err)")
        kill(first.process.processIdentifier, SIGTERM)
        _ = try await first.finish(timeout: .seconds(15))
    }

    @Test func aDataDirectoryThatIsAFileNamesTheCauseAndAFix() async throws {
        let file = Self.freshDirectory("file")
        try "x".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try await MinkdProcess(["serve", "--data-dir", file.path, "--log-format", "json"]).finish()
        #expect(r.status != 0)
        #expect(r.err.contains("cannot open the SQLite data directory \(file.path): it is a file, not a directory; fix: "), "\(r.err)")
    }

    /// The permission problem that used to print SQLite's bare "unable to open database file":
    /// a database file the service user cannot open. Run as `nobody` (CI runs as root, for
    /// whom permissions do not apply).
    @Test func aDatabaseFileOfAnotherUserNamesTheCauseAndAFix() async throws {
        let dir = Self.freshDirectory("perm")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: dir.path)
        let database = dir.appendingPathComponent("mink.sqlite").path
        #expect(FileManager.default.createFile(atPath: database, contents: Data(), attributes: [.posixPermissions: 0o600]))
        let uid = getuid() == 0 ? 65534 : nil
        if uid == nil { chmod(database, 0o000) }
        let r = try await MinkdProcess(["serve", "--data-dir", dir.path, "--log-format", "json"], asUser: uid).finish()
        #expect(r.status != 0)
        #expect(r.err.contains("cannot open the SQLite data directory \(dir.path): "), "\(r.err)")
        #expect(r.err.contains("SQLite extended code"), "\(r.err)")
        #expect(r.err.contains("fix: the files in \(dir.path) must be readable and writable by the user minkd runs as"), "\(r.err)")
    }

    /// A migrated database file the service user can read but not write (another owner, 0644):
    /// SQLite opens it read-only without an error, and minkd used to start and fail every write.
    /// The start now refuses it, naming the read-only cause and the fix. Run as `nobody`.
    @Test func aDatabaseFileTheUserCannotWriteIsRefusedAtStart() async throws {
        let dir = Self.freshDirectory("readonly")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Created and migrated by a first run (as this user).
        let first = try MinkdProcess(["serve", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--log-format", "json"])
        _ = try await first.waitUntilReady()
        kill(first.process.processIdentifier, SIGTERM)
        #expect(try await first.finish(timeout: .seconds(15)).status == 0)
        chmod(dir.path, 0o777)
        try? FileManager.default.removeItem(at: dir.appendingPathComponent("minkd.lock"))  // the first run's (0600)
        for name in ["mink.sqlite", "mink.sqlite-wal", "mink.sqlite-shm"] {
            chmod(dir.appendingPathComponent(name).path, 0o644)
        }
        let uid = getuid() == 0 ? 65534 : nil
        if uid == nil { chmod(dir.appendingPathComponent("mink.sqlite").path, 0o444) }
        let r = try await MinkdProcess(["serve", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--log-format", "json"], asUser: uid)
            .finish(timeout: .seconds(20))
        #expect(r.status != 0, "minkd started on a database it cannot write: \(r.err)")
        #expect(r.err.contains("cannot open the SQLite data directory \(dir.path): "), "\(r.err)")
        #expect(r.err.contains("fix: make \(dir.path) and its *.sqlite, -wal and -shm files writable"), "\(r.err)")
    }

    @Test func refusedRequestsLogTheClientTheRouteAndTheTokenName() async throws {
        let file = Self.freshDirectory("auth").appendingPathExtension("yaml")
        try """
            auth:
              enabled: true
              tokens:
                - {name: "reader-ci", sha256: "\(hashToken("read-token"))", tenant: "*", roles: [read]}
            """.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let minkd = try MinkdProcess([
            "serve", "--config", file.path, "--storage", "memory", "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "notice",
        ])
        let port = try await minkd.waitUntilReady()
        let client = HTTPClient()
        defer { client.shutdown() }
        func send(_ method: String, _ target: String, token: String?) async throws -> Int {
            var headers = HTTPHeaders()
            if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
            headers.add(name: "Content-Type", value: "application/json")
            let body = method == "POST" ? Array(#"{"events":[{"type":"A","data":{}}]}"#.utf8) : []
            return try await client.execute(HTTPClientRequest(method: method, host: "127.0.0.1", port: port, target: target, headers: headers, body: body)).status
        }
        #expect(try await send("GET", "/v1/streams/order-1", token: "wrong-secret") == 401)
        #expect(try await send("GET", "/v1/events", token: nil) == 401)
        #expect(try await send("POST", "/v1/streams/order-1", token: "read-token") == 403)
        #expect(try await send("DELETE", "/v1/events", token: "read-token") == 405)
        kill(minkd.process.processIdentifier, SIGTERM)
        let r = try await minkd.finish(timeout: .seconds(15))
        let lines = r.err.split(separator: "\n").map(String.init)
        func line(_ status: Int, _ route: String) -> String? {
            lines.first { $0.contains(#""status":"\#(status)""#) && $0.contains(#""route":"\#(route)""#) }
        }
        let unknown = try #require(line(401, "/v1/streams/{streamId}"), "\(r.err)")
        #expect(unknown.contains(#""client":"127.0.0.1:"#) && unknown.contains(#""token":"(unknown)""#), "\(unknown)")
        #expect(!unknown.contains("wrong-secret"))
        #expect(unknown.contains(#""level":"notice""#), "logged above info: \(unknown)")
        let missing = try #require(line(401, "/v1/events"), "\(r.err)")
        #expect(missing.contains(#""token":"(none)""#), "\(missing)")
        let forbidden = try #require(line(403, "/v1/streams/{streamId}"), "\(r.err)")
        #expect(forbidden.contains(#""token":"reader-ci""#) && forbidden.contains(#""client":"127.0.0.1:"#), "\(forbidden)")
        #expect(!r.err.contains("read-token") && !r.err.contains(hashToken("read-token")))
    }

    @Test func methodNotAllowedLinesNameTheRouteTemplateTried() async throws {
        let minkd = try MinkdProcess(["serve", "--storage", "memory", "--listen", "127.0.0.1:0", "--log-format", "json"])
        let port = try await minkd.waitUntilReady()
        let c = try await RawConnection.open(port: port)
        try await c.send("DELETE /v1/streams/order-9/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let reply = try await c.read(until: { $0.contains("\r\n\r\n") }, timeout: .seconds(10))
        #expect(reply.hasPrefix("HTTP/1.1 405"))
        kill(minkd.process.processIdentifier, SIGTERM)
        let r = try await minkd.finish(timeout: .seconds(15))
        let line = try #require(r.err.split(separator: "\n").first { $0.contains(#""status":"405""#) }, "\(r.err)")
        #expect(line.contains(#""route":"/v1/streams/{streamId}/info""#) && line.contains(#""client":"127.0.0.1:"#), "\(line)")
        #expect(!line.contains("order-9"), "the template, never the raw path")
    }
}

extension MinkdProcess {
    /// Reads standard error until a line containing `marker` (or the end), returning all of it.
    func readLog(until marker: String, timeout: Duration = .seconds(30)) async throws -> String {
        await stderr.read(until: { $0.contains(marker) }, timeout: timeout).text
    }
}

/// A PostgreSQL outage under a running minkd, made real: the database stops accepting
/// connections and minkd's sessions are terminated, then connections are allowed again.
@Suite("minkd storage outage log", .timeLimit(.minutes(2)))
struct StorageOutageLogTests {
    @Test func anOutageLogsOneErrorWithLibpqsMessageAndOneNoticeWhenItEnds() async throws {
        let base = try PostgresTestDatabase.url()
        let url = try await PostgresTestDatabase.freshDatabase()
        let name = String(url[url.index(after: try #require(url.lastIndex(of: "/")))...])
        let minkd = try MinkdProcess([
            "serve", "--database-url", url, "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "notice",
        ])
        let port = try await minkd.waitUntilReady()
        let client = HTTPClient(configuration: HTTPClientConfiguration(connectTimeout: .seconds(5), readTimeout: .seconds(30)))
        defer { client.shutdown() }
        func append(_ i: Int) async throws -> Int {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            let body = Array(#"{"events":[{"type":"A","data":{"i":\#(i)}}]}"#.utf8)
            return try await client.execute(HTTPClientRequest(method: "POST", host: "127.0.0.1", port: port, target: "/v1/streams/s-\(i)", headers: headers, body: body)).status
        }
        #expect(try await append(0) == 201)

        try await PostgresTestDatabase.execute(base, "ALTER DATABASE \(name) ALLOW_CONNECTIONS false")
        _ = try await PostgresTestDatabase.value(base, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '\(name)'")
        var failed = 0
        for i in 1...6 where try await append(i) == 503 { failed += 1 }
        #expect(failed >= 4, "appends fail while the database refuses connections")

        try await PostgresTestDatabase.execute(base, "ALTER DATABASE \(name) ALLOW_CONNECTIONS true")
        let deadline = ContinuousClock.now + .seconds(30)
        var recovered = false
        var i = 100
        while ContinuousClock.now < deadline, !recovered {
            recovered = try await append(i) == 201
            i += 1
            if !recovered { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(recovered, "appends succeed again once connections are allowed")

        kill(minkd.process.processIdentifier, SIGTERM)
        let r = try await minkd.finish(timeout: .seconds(30))
        let lines = r.err.split(separator: "\n").map(String.init)
        let errors = lines.filter { $0.contains(#""level":"error""#) && $0.contains("storage unavailable") }
        #expect(errors.count == 1, "one error line for the outage, not one per request: \(errors)")
        let cause = errors.first ?? ""
        // Which of libpq's messages depends on timing: the server's FATAL "terminating
        // connection" arrives before the socket closes, or libpq only sees the close.
        #expect(cause.contains("not currently accepting connections") || cause.contains("terminating connection")
                    || cause.contains("server closed the connection unexpectedly"),
                "libpq's message is in the line: \(cause)")
        let notices = lines.filter { $0.contains(#""level":"notice""#) && $0.contains("storage available again") }
        #expect(notices.count == 1, "\(notices)")
        let unavailable = lines.filter { $0.contains(#""status":"503""#) }
        #expect(unavailable.count >= failed && unavailable.allSatisfy { $0.contains(#""level":"warning""#) && $0.contains(#""cause":"#) },
                "every 503 at warning, with its cause: \(unavailable.prefix(3))")
    }
}

import Foundation
import MinkHTTP
import MinkTestFixtures
import Testing

/// Runs the real `minkd` executable (built next to the test binary).
struct MinkdProcess {
    static var executable: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("minkd")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/minkd")
    }

    let process: ChildProcess
    var stderr: FileHandle { process.standardError }
    var stdout: FileHandle { process.standardOutput }
    /// The copy of the executable made to run as another user, removed by ``finish(timeout:)``.
    let copiedExecutableDirectory: URL?

    /// - Parameters:
    ///   - environment: `MINKD_*` (or other) variables added to the test's environment, whose own
    ///     `MINKD_*` variables are removed.
    ///   - asUser: runs minkd as this uid and gid (through `setpriv`; the tests run as root in CI).
    init(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:], asUser uid: Int? = nil) throws {
        let executable: String
        var argv = arguments
        if let uid {
            // A copy in a fresh world-readable directory: the checkout (and so .build) may lie
            // under a directory the other user cannot enter (/root in CI).
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-as-\(uid)-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            let copy = directory.appendingPathComponent("minkd")
            try Self.copyExecutable(Self.executable.path, to: copy.path)
            copiedExecutableDirectory = directory
            executable = "/usr/bin/setpriv"
            argv = ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "--", copy.path] + arguments
        } else {
            copiedExecutableDirectory = nil
            executable = Self.executable.path
        }
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MINKD_") }
        env.merge(environment) { $1 }
        process = try ChildProcess(executable: executable, arguments: argv, environment: env, standardInput: stdin != nil)
        if let stdin, let input = process.standardInput {
            input.write(Data(stdin.utf8))
            try input.close()
        }
    }

    /// Copies the executable with `cp`, in a process of its own. Why: a descriptor this process
    /// opens for writing the copy is held, between `fork` and `exec`, by every child another test
    /// spawns meanwhile — even with `O_CLOEXEC` — and running the copy then failed with "Text file
    /// busy" (ETXTBSY) in CI runs (first with `FileManager.copyItem`, then with an `O_CLOEXEC`
    /// descriptor when two tests made copies at once). `cp`'s descriptor lives and dies in `cp`.
    static func copyExecutable(_ source: String, to destination: String) throws {
        let cp = Process()
        cp.executableURL = URL(fileURLWithPath: "/bin/cp")
        cp.arguments = [source, destination]
        try cp.run()
        cp.waitUntilExit()
        guard cp.terminationStatus == 0, chmod(destination, 0o755) == 0 else { throw POSIXError(.EIO) }
    }

    /// Waits for exit (up to `timeout`), returning the status and both outputs.
    func finish(timeout: Duration = .seconds(10)) async throws -> (status: Int32, out: String, err: String) {
        var exit = await ProcessLaunch.exit(of: process, timeout: timeout)
        if exit == nil {
            Issue.record("minkd did not exit in time")
            kill(process.processIdentifier, SIGKILL)
            exit = await ProcessLaunch.exit(of: process)
        }
        if let copiedExecutableDirectory { try? FileManager.default.removeItem(at: copiedExecutableDirectory) }
        let out = String(decoding: stdout.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: stderr.readDataToEndOfFile(), as: UTF8.self)
        return (exit?.status ?? -1, out, err)
    }

    /// Reads the JSON log on stderr until the readiness line; returns the bound port.
    /// (Bounded: a minkd that never becomes ready fails the test within 30 s.)
    func waitUntilReady(timeout: Duration = .seconds(30)) async throws -> Int {
        @Sendable func port(_ text: String) -> Int? {
            for line in text.split(separator: "\n") where line.contains("minkd ready") {
                if let r = line.range(of: #""address":"127.0.0.1:"#) { return Int(line[r.upperBound...].prefix { $0.isNumber }) }
            }
            return nil
        }
        let (text, _) = await stderr.read(until: { port($0) != nil }, timeout: timeout)
        return try #require(port(text), "no readiness line within \(timeout); minkd wrote: \(text.suffix(2000))")
    }
}

@Suite("minkd executable", .timeLimit(.minutes(3)))
struct MinkdProcessTests {
    @Test func sigtermWithOpenSubscriptionsExitsZero() async throws {
        let minkd = try MinkdProcess(["serve", "--storage", "memory", "--listen", "127.0.0.1:0", "--log-format", "json"])
        let port = try await minkd.waitUntilReady()
        var connections: [RawConnection] = []
        for _ in 0..<3 {
            let c = try await RawConnection.open(port: port)
            try await c.send("GET /v1/subscriptions/all HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try await c.read(until: { $0.contains("caught-up") }, timeout: .seconds(5))
            connections.append(c)
        }
        kill(minkd.process.processIdentifier, SIGTERM)
        let (status, _, _) = try await minkd.finish()
        #expect(status == 0)
        for c in connections { #expect(try await c.readUntilClosed(timeout: .seconds(2))) }
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func aStopSignalEndsTheServiceGroupCleanlyWithinTheGracePeriod(_ signal: Int32) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-signal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let minkd = try MinkdProcess([
            "serve", "--storage", "sqlite", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--log-format", "json",
        ])
        let port = try await minkd.waitUntilReady()
        let c = try await RawConnection.open(port: port)
        let body = #"{"events":[{"type":"Placed","data":{}}]}"#
        try await c.send("POST /v1/streams/order-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let reply = try await c.read(until: { $0.contains("\r\n\r\n") }, timeout: .seconds(5))
        #expect(reply.hasPrefix("HTTP/1.1 201"), "\(reply.prefix(200))")
        // The process exits 0 well within `shutdown.graceSeconds` (20 s by default), with the
        // keep-alive connection still open.
        let start = ContinuousClock.now
        kill(minkd.process.processIdentifier, signal)
        let (status, _, err) = try await minkd.finish(timeout: .seconds(15))
        #expect(status == 0, "\(err.suffix(2000))")
        #expect(ContinuousClock.now - start < .seconds(15))
        #expect(err.contains("stopped"), "the last line says it stopped")
        #expect(err.contains("stopping: \(signal == SIGTERM ? "SIGTERM" : "SIGINT") received; draining requests"), "the signal is logged when it arrives")
        #expect(try await c.readUntilClosed(timeout: .seconds(2)))
        // Storage was closed cleanly: a new process opens the same files and finds the event.
        let again = try MinkdProcess([
            "serve", "--storage", "sqlite", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--log-format", "json",
        ])
        let port2 = try await again.waitUntilReady()
        let c2 = try await RawConnection.open(port: port2)
        try await c2.send("GET /v1/streams/order-1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let info = try await c2.read(until: { $0.contains("}") }, timeout: .seconds(5))
        #expect(info.hasPrefix("HTTP/1.1 200") && info.contains(#""version":1"#), "\(info.prefix(400))")
        kill(again.process.processIdentifier, SIGTERM)
        #expect(try await again.finish(timeout: .seconds(15)).status == 0)
    }

    /// A stop while the storage is still opening (a PostgreSQL that accepts the connection and
    /// never answers): exit 0 with one line, where the signal used to end the process (143,
    /// nothing logged; systemd counts that as a failure).
    @Test(arguments: [SIGTERM, SIGINT])
    func aStopDuringStartUpExitsZeroWithALine(_ signal: Int32) async throws {
        // A listening socket nobody accepts from: the kernel completes the handshake, libpq waits.
        let silent = try LoopbackSocket(listening: true)
        defer { silent.close() }
        let port = silent.port
        let minkd = try MinkdProcess([
            "serve", "--storage", "postgres", "--database-url", "postgresql://minkd@127.0.0.1:\(port)/mink", "--listen", "127.0.0.1:0",
            "--log-format", "json",
        ])
        // Signalled once minkd is connecting to the database (a connection waits in the
        // listener's queue): past its signal set-up, still opening the storage. (A fixed 1 s wait
        // was not always enough on a loaded machine: the signal came before the set-up.)
        let connecting = ContinuousClock.now + .seconds(20)
        var pending = pollfd(fd: silent.fd, events: Int16(POLLIN), revents: 0)
        while poll(&pending, 1, 0) == 0, ContinuousClock.now < connecting { try await Task.sleep(for: .milliseconds(20)) }
        #expect(pending.revents & Int16(POLLIN) != 0, "minkd never connected to the database")
        kill(minkd.process.processIdentifier, signal)
        let (status, _, err) = try await minkd.finish(timeout: .seconds(10))
        let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
        #expect(status == 0, "\(status): \(err.suffix(1000))")
        #expect(err.contains("stop requested during start-up (\(name)): exiting before serving"), "\(err.suffix(1000))")
    }

    /// The ready line (with the port bound for `:0`) is written at any log level: `warning` and
    /// `error` hid it, and with it the only way to learn the port.
    @Test func theReadyLineIsWrittenAtAnyLogLevel() async throws {
        for level in ["warning", "error"] {
            let minkd = try MinkdProcess(["serve", "--storage", "memory", "--listen", "127.0.0.1:0", "--log-level", level, "--log-format", "json"])
            let port = try await minkd.waitUntilReady(timeout: .seconds(20))
            #expect(port > 0, "\(level)")
            kill(minkd.process.processIdentifier, SIGTERM)
            #expect(try await minkd.finish(timeout: .seconds(15)).status == 0, "\(level)")
        }
    }

    /// A port in use: the one documented line, "minkd: cannot listen on HOST:PORT: … fix: …".
    @Test func aPortInUseIsOneLineNamingTheAddress() async throws {
        let first = try MinkdProcess(["serve", "--storage", "memory", "--listen", "127.0.0.1:0", "--log-format", "json"])
        let port = try await first.waitUntilReady()
        let second = try await MinkdProcess(["serve", "--storage", "memory", "--listen", "127.0.0.1:\(port)"]).finish()
        #expect(second.status != 0)
        let line = second.err.split(separator: "\n").last.map(String.init) ?? ""
        #expect(line.hasPrefix("minkd: cannot listen on 127.0.0.1:\(port): ") && line.contains("fix:"), "\(second.err)")
        kill(first.process.processIdentifier, SIGTERM)
        #expect(try await first.finish(timeout: .seconds(15)).status == 0)
    }

    @Test func refusesNonLoopbackWithoutAuth() async throws {
        let minkd = try MinkdProcess(["serve", "--storage", "memory", "--listen", "0.0.0.0:0"])
        let (status, _, err) = try await minkd.finish()
        #expect(status != 0)
        #expect(err.contains("config: listen"), "\(err)")
    }

    @Test func badConfigNamesTheKey() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-\(UUID()).yaml")
        try "limits:\n  maxBodyByte: 5\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let minkd = try MinkdProcess(["check-config", "--config", file.path])
        let (status, _, err) = try await minkd.finish()
        #expect(status != 0)
        #expect(err.contains("config: limits.maxBodyByte"), "\(err)")
        // A projection `serve` would refuse (a read model named like a rebuild copy): check-config
        // refuses it with the same line.
        let projection = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-\(UUID()).yaml")
        try """
            projections:
              - name: p
                readModel: m__g2
                handlers:
                  - {event: E, id: "$.data.id", set: {a: "$.data.a"}}
            """.write(to: projection, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: projection) }
        let check = try await MinkdProcess(["check-config", "--storage", "memory", "--config", projection.path]).finish()
        let serve = try await MinkdProcess(["serve", "--storage", "memory", "--config", projection.path]).finish()
        #expect(check.status != 0 && check.err.contains("config: projections[0].readModel"), "\(check.err)")
        #expect(serve.status != 0 && serve.err == check.err, "\(serve.err)")
        let bad = try MinkdProcess(["--storage", "floppy"])
        let r = try await bad.finish()
        #expect(r.status != 0 && r.err.contains("storage"), "\(r.err)")
    }

    /// `minkd backup` of a data directory that does not exist: one plain line, not Foundation's
    /// error domain and user info.
    @Test func backupOfAMissingDirectorySaysSo() async throws {
        let r = try await MinkdProcess(["backup", "--data-dir", "/nonexistent-minkd-data", "--out", "/tmp/minkd-backup-\(UUID())"]).finish()
        #expect(r.status != 0 && r.err == "minkd backup: /nonexistent-minkd-data: no such data directory\n", "\(r.err)")
    }

    /// The image's `HEALTHCHECK` is `minkd healthcheck` with the container's environment only:
    /// a `serve` started with `--insecure` (all interfaces, no auth) must still be reported
    /// healthy — the health check refused the same configuration without the flag and exited 1.
    @Test func healthcheckNeedsOnlyTheListenAddress() async throws {
        let minkd = try MinkdProcess(["serve", "--listen", "0.0.0.0:0", "--insecure", "--storage", "memory", "--log-format", "json"])
        let (log, _) = await minkd.stderr.read(until: { $0.contains("minkd ready") }, timeout: .seconds(30))
        // --insecure is said loudly at start (it was silent).
        #expect(log.contains(#""level":"warning""#) && log.contains("authentication disabled (--insecure)"), "\(log)")
        let readyLine = log.split(separator: "\n").first { $0.contains("minkd ready") } ?? ""
        let port = try #require(readyLine.range(of: #""address":"0.0.0.0:"#).flatMap { Int(readyLine[$0.upperBound...].prefix { $0.isNumber }) }, "\(log)")
        let r = try await MinkdProcess(["healthcheck", "--listen", "0.0.0.0:\(port)", "--storage", "memory"]).finish()
        #expect(r.status == 0 && r.out.contains("ok"), "\(r.out) \(r.err)")
        kill(minkd.process.processIdentifier, SIGTERM)
        #expect(try await minkd.finish(timeout: .seconds(15)).status == 0)
        let down = try await MinkdProcess(["healthcheck", "--listen", "0.0.0.0:\(port)", "--storage", "memory"]).finish()
        #expect(down.status != 0, "nothing listens any more: \(down.out)")
        // A timeout of 0 would give up before connecting: refused as a usage error.
        let zero = try await MinkdProcess(["healthcheck", "--timeout", "0", "--storage", "memory"]).finish()
        #expect(zero.status == 64 && zero.err.contains("--timeout must be from 1 to 315360000 seconds"), "\(zero.status) \(zero.err)")
        // One beyond what a Duration holds in nanoseconds crashed the client (a black-box audit).
        let huge = try await MinkdProcess(["healthcheck", "--timeout", "9223372037", "--storage", "memory"]).finish()
        #expect(huge.status == 64 && huge.err.contains("--timeout must be from 1 to 315360000 seconds"), "\(huge.status) \(huge.err)")
    }

    @Test func versionHashTokenAndCheckConfig() async throws {
        var r = try await MinkdProcess(["version"]).finish()
        #expect(r.status == 0 && r.out.hasPrefix("minkd "))
        r = try await MinkdProcess(["hash-token"], stdin: "abc\n").finish()
        #expect(r.out.trimmingCharacters(in: .whitespacesAndNewlines) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        r = try await MinkdProcess(["hash-token"], stdin: "abc\n\n").finish()
        #expect(r.status == 0, "a trailing empty line is fine: \(r.err)")
        r = try await MinkdProcess(["hash-token"], stdin: "abc\ndef\n").finish()
        #expect(r.status != 0 && r.err.contains("more than one line") && r.out.isEmpty, "\(r.out) \(r.err)")
        r = try await MinkdProcess(["check-config", "--storage", "memory"]).finish()
        #expect(r.status == 0 && r.out.contains("kind: memory"), "\(r.out)")
    }
}

@Suite("minkd restarts", .timeLimit(.minutes(3)))
struct MinkdRestartTests {
    static func post(_ client: HTTPClient, port: Int, _ target: String, _ body: String) async throws -> (status: Int, text: String) {
        var h = HTTPHeaders()
        h.add(name: "Content-Type", value: "application/json")
        let r = try await client.execute(HTTPClientRequest(method: "POST", host: "127.0.0.1", port: port, target: target, headers: h, body: Array(body.utf8)))
        return (r.status, String(decoding: r.body, as: UTF8.self))
    }

    /// A client that never saw its `201` (minkd killed right after the commit) retries after the
    /// restart with the same event ids: `200` with the original result, nothing written twice.
    @Test func anIdempotentRetryAfterKill9IsAnsweredFromStorage() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-restart-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["serve", "--storage", "sqlite", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-format", "json"]
        let (a, b) = (UUID().uuidString.lowercased(), UUID().uuidString.lowercased())
        let body = #"{"events":[{"id":"\#(a)","type":"Opened","data":{"n":1}},{"id":"\#(b)","type":"Deposited","data":{"n":2}}]}"#
        let client = HTTPClient()
        defer { client.shutdown() }

        let first = try MinkdProcess(args)
        let firstPort = try await first.waitUntilReady()
        _ = try await Self.post(client, port: firstPort, "/v1/streams/acc-1", #"{"events":[{"type":"Before","data":{}}]}"#)
        let original = try await Self.post(client, port: firstPort, "/v1/streams/acc-1", body)
        #expect(original.status == 201, "\(original.text)")
        kill(first.process.processIdentifier, SIGKILL)
        #expect(await ProcessLaunch.exit(of: first.process) == ProcessLaunch.Exit(reason: .uncaughtSignal, status: SIGKILL))

        let second = try MinkdProcess(args)
        let port = try await second.waitUntilReady()
        let retry = try await Self.post(client, port: port, "/v1/streams/acc-1", body)
        #expect(retry.status == 200, "\(retry.text)")
        #expect(retry.text == original.text, "the original result: \(retry.text) vs \(original.text)")
        let stream = try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/v1/streams/acc-1"))
        let text = String(decoding: stream.body, as: UTF8.self)
        #expect(text.components(separatedBy: "\"Deposited\"").count == 2, "written once: \(text)")
        #expect(text.components(separatedBy: "\"type\"").count == 4, "three events: \(text)")
        // The same id for a different event is refused.
        let reuse = try await Self.post(client, port: port, "/v1/streams/acc-1", #"{"events":[{"id":"\#(a)","type":"Other","data":{}}]}"#)
        #expect(reuse.status == 409 && reuse.text.contains("duplicate_event_id"), "\(reuse.text)")
        kill(second.process.processIdentifier, SIGTERM)
        #expect(try await second.finish().status == 0)
    }
}

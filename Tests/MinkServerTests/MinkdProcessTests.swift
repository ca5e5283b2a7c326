import Foundation
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

    let process = Process()
    let stderr = Pipe()
    let stdout = Pipe()
    /// The copy of the executable made to run as another user, removed by ``finish(timeout:)``.
    let copiedExecutableDirectory: URL?

    /// - Parameters:
    ///   - environment: `MINKD_*` (or other) variables added to the test's environment, whose own
    ///     `MINKD_*` variables are removed.
    ///   - asUser: runs minkd as this uid and gid (through `setpriv`; the tests run as root in CI).
    init(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:], asUser uid: Int? = nil) throws {
        if let uid {
            // A copy in a fresh world-readable directory: the checkout (and so .build) may lie
            // under a directory the other user cannot enter (/root in CI).
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-as-\(uid)-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            let copy = directory.appendingPathComponent("minkd")
            try FileManager.default.copyItem(at: Self.executable, to: copy)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: copy.path)
            copiedExecutableDirectory = directory
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "--", copy.path] + arguments
        } else {
            copiedExecutableDirectory = nil
            process.executableURL = Self.executable
            process.arguments = arguments
        }
        process.standardError = stderr
        process.standardOutput = stdout
        var env = ProcessInfo.processInfo.environment
        env = env.filter { !$0.key.hasPrefix("MINKD_") }
        env.merge(environment) { $1 }
        process.environment = env
        if let stdin {
            let input = Pipe()
            process.standardInput = input
            try ProcessLaunch.run(process)
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        } else {
            try ProcessLaunch.run(process)
        }
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
        let out = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (exit?.status ?? -1, out, err)
    }

    /// Reads the JSON log on stderr until the readiness line; returns the bound port.
    func waitUntilReady() async throws -> Int {
        let handle = stderr.fileHandleForReading
        let found = try await onThread { () -> Int? in
            var text = ""
            while true {
                let data = handle.availableData
                if data.isEmpty { return nil }
                text += String(decoding: data, as: UTF8.self)
                for line in text.split(separator: "\n") where line.contains("minkd ready") {
                    if let r = line.range(of: #""address":"127.0.0.1:"#) {
                        return Int(line[r.upperBound...].prefix { $0.isNumber })
                    }
                }
            }
        }
        return try #require(found, "no readiness line")
    }
}

@Suite("minkd executable")
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
        let bad = try MinkdProcess(["--storage", "floppy"])
        let r = try await bad.finish()
        #expect(r.status != 0 && r.err.contains("storage"), "\(r.err)")
    }

    @Test func versionHashTokenAndCheckConfig() async throws {
        var r = try await MinkdProcess(["version"]).finish()
        #expect(r.status == 0 && r.out.hasPrefix("minkd "))
        r = try await MinkdProcess(["hash-token"], stdin: "abc\n").finish()
        #expect(r.out.trimmingCharacters(in: .whitespacesAndNewlines) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        r = try await MinkdProcess(["check-config", "--storage", "memory"]).finish()
        #expect(r.status == 0 && r.out.contains("kind: memory"), "\(r.out)")
    }
}

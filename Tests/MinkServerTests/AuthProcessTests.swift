import Foundation
import MinkConfig
import MinkHTTP
import Testing

/// Access control in the real `minkd` executable: `hash-token`, SIGHUP reloads, start-up refusal.
@Suite("minkd access control", .timeLimit(.minutes(3)))
struct AuthProcessTests {
    static func config(_ tokens: [(name: String, hash: String)]) -> String {
        var yaml = "auth:\n  enabled: true\n  tokens:\n"
        for t in tokens {
            yaml += "    - name: \"\(t.name)\"\n      sha256: \"\(t.hash)\"\n      tenant: \"*\"\n      roles: [read, write]\n"
        }
        return yaml
    }

    static func status(_ client: HTTPClient, port: Int, _ method: String, _ target: String, token: String, body: String = "") async throws -> Int {
        var h = HTTPHeaders()
        h.add(name: "Authorization", value: "Bearer \(token)")
        if !body.isEmpty { h.add(name: "Content-Type", value: "application/json") }
        let r = try await client.execute(HTTPClientRequest(
            method: method, host: "127.0.0.1", port: port, target: target, headers: h, body: Array(body.utf8)
        ))
        return r.status
    }

    @Test func sighupReloadsTokensWithoutDroppingConnections() async throws {
        let tokenA = "first-token-\(UUID().uuidString)", tokenB = "second-token-\(UUID().uuidString)"
        // `minkd hash-token` round trip: its output is what the config holds, and it matches.
        let hashed = try await MinkdProcess(["hash-token"], stdin: tokenB + "\n").finish()
        let hashB = hashed.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(hashed.status == 0 && hashB == hashToken(tokenB) && hashB.count == 64)
        // A token the Authorization header could not carry is refused, not hashed.
        for bad in ["a b", " abc ", "tab\there", "caf\u{E9}"] {
            let refused = try await MinkdProcess(["hash-token"], stdin: bad + "\n").finish()
            #expect(refused.status != 0 && refused.out.isEmpty && refused.err.contains("printable ASCII only"), "\(bad.debugDescription)")
        }

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-auth-\(UUID()).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try Self.config([("a", hashToken(tokenA))]).write(to: file, atomically: true, encoding: .utf8)
        let minkd = try MinkdProcess([
            "serve", "--config", file.path, "--storage", "memory", "--listen", "127.0.0.1:0", "--log-format", "json",
        ])
        let port = try await minkd.waitUntilReady()
        let client = HTTPClient()
        defer { client.shutdown() }

        // An event stream opened with the first token.
        let sse = try await RawConnection.open(port: port)
        try await sse.send("GET /v1/subscriptions/all HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(tokenA)\r\n\r\n")
        _ = try await sse.read(until: { $0.contains("caught-up") }, timeout: .seconds(5))

        #expect(try await Self.status(client, port: port, "GET", "/v1/events", token: tokenB) == 401)
        try Self.config([("a", hashToken(tokenA)), ("b", hashB)]).write(to: file, atomically: true, encoding: .utf8)
        kill(minkd.process.processIdentifier, SIGHUP)
        var status = 0
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            status = try await Self.status(client, port: port, "GET", "/v1/events", token: tokenB)
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(status == 200, "the added token works after SIGHUP")
        #expect(try await Self.status(client, port: port, "GET", "/v1/events", token: tokenA) == 200)

        // The stream opened before the reload is still open and delivers.
        #expect(try await Self.status(client, port: port, "POST", "/v1/streams/s-1", token: tokenB, body: #"{"events":[{"type":"AfterReload","data":{}}]}"#) == 201)
        let text = try await sse.read(until: { $0.contains("AfterReload") }, timeout: .seconds(5))
        #expect(text.contains("AfterReload"))

        // A broken file keeps the current list.
        try "auth:\n  tokens: 5\n".write(to: file, atomically: true, encoding: .utf8)
        kill(minkd.process.processIdentifier, SIGHUP)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await Self.status(client, port: port, "GET", "/v1/events", token: tokenB) == 200)

        kill(minkd.process.processIdentifier, SIGTERM)
        let (exit, _, log) = try await minkd.finish()
        #expect(exit == 0)
        #expect(log.contains("token list reloaded"), "\(log)")
        #expect(log.contains("could not be applied"), "\(log)")
        // No token or hash in any log line.
        for secret in [tokenA, tokenB, hashToken(tokenA), hashB] { #expect(!log.contains(secret)) }
    }

    @Test func nonLoopbackNeedsAuthOrInsecure() async throws {
        let refused = try await MinkdProcess(["serve", "--storage", "memory", "--listen", "0.0.0.0:0"]).finish()
        #expect(refused.status != 0 && refused.err.contains("config: listen"), "\(refused.err)")
        // With auth on it starts (and stops on SIGTERM).
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-auth-\(UUID()).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try Self.config([("a", hashToken("x"))]).write(to: file, atomically: true, encoding: .utf8)
        let minkd = try MinkdProcess(["serve", "--config", file.path, "--storage", "memory", "--listen", "0.0.0.0:0", "--log-format", "json"])
        let started = try await MinkdProcess.waitForLine(minkd, containing: "minkd ready")
        #expect(started)
        kill(minkd.process.processIdentifier, SIGTERM)
        #expect(try await minkd.finish().status == 0)
    }
}

extension MinkdProcess {
    /// Reads stderr until a line contains `text` (false when the stream ends or `timeout` passes).
    static func waitForLine(_ p: MinkdProcess, containing text: String, timeout: Duration = .seconds(30)) async throws -> Bool {
        await p.stderr.read(until: { $0.contains(text) }, timeout: timeout).matched
    }
}

import Foundation
import MinkTestFixtures
import Testing

/// The built executables (`swift build --build-tests` builds every product): beside the test
/// bundle, or in .build/debug.
func executable(_ name: String) -> String {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name)
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside.path }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/\(name)").path
}

/// A real minkd on SQLite in a fresh directory, with a token for everything (`cli-admin-token`)
/// and an `orders` projection.
final class Server: Sendable {
    static let token = "cli-admin-token"
    static let config = """
        auth:
          enabled: true
          tokens:
            - name: "cli"
              sha256: "329cb08751a86786b306fe8cbe792da697aa85451b685310f417f57d7b0a0fee"
              tenant: "*"
              roles: [read, write, admin]
        projections:
          - name: orders
            mode: inline
            handlers:
              - event: OrderCreated
                id: "$.data.orderId"
                set:
                  orderId: "$.data.orderId"
                  status: "$.data.status"
                  total: "$.data.total"

        """

    let directory: URL
    let process: ChildProcess
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }

    /// Starts minkd; `port` 0 picks a free one, another number reuses it (a restart).
    init(directory: URL? = nil, port: Int = 0) async throws {
        let dir = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("mink-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let config = dir.appendingPathComponent("minkd.yaml")
        try Self.config.write(to: config, atomically: true, encoding: .utf8)
        self.directory = dir
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MINKD_") && !$0.key.hasPrefix("MINK_") }
        env["MINKD_LOG_LEVEL"] = "info"
        process = try ChildProcess(executable: executable("minkd"), arguments: [
            "serve", "--config", config.path, "--storage", "sqlite", "--data-dir", dir.appendingPathComponent("data").path,
            "--listen", "127.0.0.1:\(port)", "--log-format", "json",
        ], environment: env)
        @Sendable func boundPort(_ text: String) -> Int? {
            for line in text.split(separator: "\n") where line.contains("minkd ready") {
                if let r = line.range(of: #""address":"127.0.0.1:"#) { return Int(line[r.upperBound...].prefix { $0.isNumber }) }
            }
            return nil
        }
        let (text, _) = await process.standardError.read(until: { boundPort($0) != nil }, timeout: .seconds(30))
        guard let bound = boundPort(text) else {
            kill(process.processIdentifier, SIGKILL)
            throw CLITestError(description: "minkd did not become ready: \(text.suffix(2000))")
        }
        self.port = bound
    }

    /// Stops minkd with SIGTERM and waits for it.
    func stop() async {
        kill(process.processIdentifier, SIGTERM)
        if await ProcessLaunch.exit(of: process, timeout: .seconds(15)) == nil {
            kill(process.processIdentifier, SIGKILL)
            _ = await ProcessLaunch.exit(of: process)
        }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// A process that did not do what a test waited for in time.
struct CLITestError: Error, CustomStringConvertible {
    var description: String
}

/// What a finished `mink` run printed.
struct Run {
    var status: Int32
    var out: String
    var err: String
    var lines: [String] { out.split(separator: "\n").map(String.init) }
}

/// Runs `mink` to its end with `MINK_URL` and `MINK_TOKEN` set; standard output is a pipe, so
/// the output is JSON lines unless a test says otherwise.
func mink(_ arguments: [String], server: Server, token: String? = Server.token, stdin: String? = nil) async throws -> Run {
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MINK_") }
    env["MINK_URL"] = server.url
    if let token { env["MINK_TOKEN"] = token }
    let child = try ChildProcess(executable: executable("mink"), arguments: arguments, environment: env, standardInput: stdin != nil)
    if let stdin, let input = child.standardInput {
        input.write(Data(stdin.utf8))
        try input.close()
    }
    guard let exit = await ProcessLaunch.exit(of: child, timeout: .seconds(20)) else {
        kill(child.processIdentifier, SIGKILL)
        _ = await ProcessLaunch.exit(of: child)
        throw CLITestError(description: "mink \(arguments) did not finish")
    }
    let out = String(decoding: child.standardOutput.readDataToEndOfFile(), as: UTF8.self)
    let err = String(decoding: child.standardError.readDataToEndOfFile(), as: UTF8.self)
    return Run(status: exit.status, out: out, err: err)
}

/// A JSON line as an object.
func object(_ line: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
}

@Suite("mink command line", .timeLimit(.minutes(3)))
struct CLITests {
    @Test func appendReadLogAndQueryPrintJSONLinesWhenPiped() async throws {
        let server = try await Server()
        defer { server.remove() }
        do {
            for (id, status, total) in [("o-1", "pending", 150), ("o-2", "pending", 50), ("o-3", "shipped", 300)] {
                let r = try await mink([
                    "append", "order-\(id)", "--type", "OrderCreated",
                    "--data", #"{"orderId":"\#(id)","status":"\#(status)","total":\#(total)}"#, "--expected", "no_stream",
                ], server: server)
                #expect(r.status == 0, "\(r.err)")
                let result = try object(r.out.trimmingCharacters(in: .whitespacesAndNewlines))
                #expect(result["streamId"] as? String == "order-\(id)" && result["toVersion"] as? Int == 1)
            }
            let read = try await mink(["read", "order-o-1"], server: server)
            #expect(read.status == 0 && read.lines.count == 1, "\(read.out) \(read.err)")
            let event = try object(read.lines[0])
            #expect(event["type"] as? String == "OrderCreated" && event["version"] as? Int == 1)
            #expect((event["data"] as? [String: Any])?["total"] as? Int == 150)

            let info = try await mink(["streams", "info", "order-o-1"], server: server)
            #expect(info.status == 0, "\(info.err)")
            #expect(try object(info.out)["eventCount"] as? Int == 1)

            let log = try await mink(["log", "--after", "1", "--type", "OrderCreated"], server: server)
            #expect(log.status == 0)
            #expect(try log.lines.map { try object($0)["globalPosition"] as? Int } == [2, 3])
            let limited = try await mink(["log", "--limit", "2"], server: server)
            #expect(limited.lines.count == 2)

            // (status = pending AND total > 100) OR status = shipped
            let query = try await mink([
                "query", "orders", "--where", "status = pending", "--where", "total > 100", "--or", "--where", "status = shipped",
                "--order", "-total",
            ], server: server)
            #expect(query.status == 0, "\(query.err)")
            #expect(try query.lines.map { try object($0)["orderId"] as? String } == ["o-3", "o-1"])
            let get = try await mink(["get", "orders", "o-2"], server: server)
            #expect(get.status == 0)
            #expect(try object(get.out)["total"] as? Int == 50)

            // --json piped through a real JSON parser (python's), line by line.
            let pipe = try ChildProcess(executable: "/bin/sh", arguments: [
                "-c", "\"$MINK\" log --json | python3 -c 'import json,sys; print(sum(json.loads(l)[\"globalPosition\"] for l in sys.stdin))'",
            ], environment: ProcessInfo.processInfo.environment.merging(
                ["MINK": executable("mink"), "MINK_URL": server.url, "MINK_TOKEN": Server.token]) { $1 })
            let exit = await ProcessLaunch.exit(of: pipe, timeout: .seconds(20))
            #expect(exit?.status == 0)
            #expect(String(decoding: pipe.standardOutput.readDataToEndOfFile(), as: UTF8.self) == "6\n")

            let projections = try await mink(["projections", "ls"], server: server)
            #expect(try projections.lines.map { try object($0)["name"] as? String } == ["orders"])
            let status = try await mink(["projections", "status", "orders"], server: server)
            #expect(try object(status.out)["status"] as? String == "running")
        }
        await server.stop()
    }

    @Test func errorsPrintTheServersCodeAndExitWithTheirKind() async throws {
        let server = try await Server()
        defer { server.remove() }
        do {
            let first = try await mink(["append", "s-1", "--type", "A", "--data", "{}", "--expected", "no_stream"], server: server)
            #expect(first.status == 0)
            // A conflict: 3, one line naming the code.
            let conflict = try await mink(["append", "s-1", "--type", "A", "--data", "{}", "--expected", "no_stream"], server: server)
            #expect(conflict.status == 3)
            #expect(conflict.err.hasPrefix("error: concurrency_conflict: ") && conflict.err.filter { $0 == "\n" }.count == 1, "\(conflict.err)")
            #expect(conflict.out.isEmpty)
            // Not found: 4.
            let missing = try await mink(["read", "nope-1"], server: server)
            #expect(missing.status == 4 && missing.err.hasPrefix("error: stream_not_found: "), "\(missing.err)")
            let noProjection = try await mink(["projections", "status", "nope"], server: server)
            #expect(noProjection.status == 4 && noProjection.err.hasPrefix("error: projection_not_found: "))
            // Auth: 5, without and with a wrong token.
            let noToken = try await mink(["log"], server: server, token: nil)
            #expect(noToken.status == 5 && noToken.err.hasPrefix("error: unauthorized: "), "\(noToken.err)")
            let wrong = try await mink(["tail", "all"], server: server, token: "wrong")
            #expect(wrong.status == 5, "\(wrong.err)")
            // Other (bad input): 1; nothing written.
            let bad = try await mink(["append", "s-2", "--type", "A", "--data", "{nope"], server: server)
            #expect(bad.status == 1 && bad.err.hasPrefix("error: invalid_json: "))
            let badServer = try await mink(["append", "s-2", "--type", "", "--data", "{}"], server: server)
            #expect(badServer.status == 1 && badServer.err.hasPrefix("error: validation_failed: "), "\(badServer.err)")
            #expect(try await mink(["read", "s-2"], server: server).status == 4)
            // The tenants commands, end to end.
            #expect(try await mink(["tenants", "create", "acme"], server: server).status == 0)
            #expect(try await mink(["tenants", "ls"], server: server).lines.contains(#"{"id":"acme"}"#))
            #expect(try await mink(["tenants", "rm", "acme", "--confirm", "other"], server: server).status == 1)
            #expect(try await mink(["tenants", "rm", "acme", "--confirm", "acme"], server: server).status == 0)
        }
        await server.stop()
        // Unavailable: 6 (nothing listens there any more).
        let gone = try await mink(["log"], server: server)
        #expect(gone.status == 6 && gone.err.hasPrefix("error: unavailable: "), "\(gone.err)")
    }

    /// `mink streams ls|rm` and `mink export | mink import` against the server's stream life
    /// cycle and move endpoints: a hard delete is a tombstone (exit 4 on read, `410` kept across
    /// the move), the export re-imports into another tenant, and a second import is refused (3).
    @Test func streamsExportAndImport() async throws {
        let server = try await Server()
        defer { server.remove() }
        do {
            for i in 1...2 {
                #expect(try await mink(["append", "order-\(i)", "--type", "A", "--data", #"{"n":\#(i)}"#], server: server).status == 0)
            }
            let ls = try await mink(["streams", "ls"], server: server)
            #expect(ls.status == 0, "\(ls.err)")
            #expect(try ls.lines.map { try object($0)["streamId"] as? String } == ["order-1", "order-2"])
            let rm = try await mink(["streams", "rm", "order-1", "--hard"], server: server)
            #expect(rm.status == 0, "\(rm.err)")
            #expect(try object(rm.out)["hard"] as? Bool == true)
            let gone = try await mink(["read", "order-1"], server: server)
            #expect(gone.status == 4 && gone.err.hasPrefix("error: stream_deleted: "), "\(gone.err)")
            let after = try await mink(["streams", "ls"], server: server)
            #expect(try after.lines.map { try object($0)["streamId"] as? String } == ["$deletions", "order-2"])

            let export = try await mink(["export"], server: server)
            #expect(export.status == 0 && export.lines.count == 2, "\(export.out) \(export.err)")
            let imported = try await mink(["import", "--tenant", "moved"], server: server, stdin: export.out)
            #expect(imported.status == 0, "\(imported.err)")
            #expect(try object(imported.out)["events"] as? Int == 2)
            let moved = try await mink(["read", "order-2", "--tenant", "moved"], server: server)
            #expect(moved.status == 0, "\(moved.out) \(moved.err)")
            #expect(try object(moved.out)["globalPosition"] as? Int == 2)
            #expect(try await mink(["read", "order-1", "--tenant", "moved"], server: server).status == 4)
            let again = try await mink(["import", "--tenant", "moved"], server: server, stdin: export.out)
            #expect(again.status == 3 && again.err.hasPrefix("error: tenant_not_empty: "), "\(again.err)")
        }
        await server.stop()
    }

    /// `mink tail` in the background while events are appended, across a restart of minkd on
    /// the same port: it reconnects with Last-Event-ID and prints every event exactly once.
    @Test func tailFollowsLiveAndReconnectsWithoutRepeating() async throws {
        let server = try await Server()
        defer { server.remove() }
        for i in 1...3 {
            #expect(try await mink(["append", "order-\(i)", "--type", "OrderCreated", "--data", #"{"orderId":"o-\#(i)"}"#], server: server).status == 0)
        }
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MINK_") }
        env["MINK_URL"] = server.url
        env["MINK_TOKEN"] = Server.token
        let tail = try ChildProcess(executable: executable("mink"), arguments: ["tail", "all", "--json"], environment: env)
        defer {
            kill(tail.processIdentifier, SIGKILL)
        }
        @Sendable func positions(_ text: String) -> [Int] {
            text.split(separator: "\n").compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["globalPosition"] as? Int
            }
        }
        // Catch-up, then live events while the tail runs.
        var seen = await tail.standardOutput.read(until: { positions($0).count >= 3 }, timeout: .seconds(15))
        #expect(seen.matched, "tail printed: \(seen.text)")
        var printed = seen.text
        // (The server's inline projection needs `orderId` in every OrderCreated.)
        #expect(try await mink(["append", "order-4", "--type", "OrderCreated", "--data", #"{"orderId":"o-4"}"#], server: server).status == 0)
        seen = await tail.standardOutput.read(until: { positions($0).count >= 1 }, timeout: .seconds(10))
        printed += seen.text
        #expect(positions(printed) == [1, 2, 3, 4], "\(printed)")

        // minkd stops (ending the event stream) and starts again on the same port and files.
        await server.stop()
        let again = try await Server(directory: server.directory, port: server.port)
        for i in 5...6 {
            #expect(try await mink(["append", "order-\(i)", "--type", "OrderCreated", "--data", #"{"orderId":"o-\#(i)"}"#], server: again).status == 0)
        }
        seen = await tail.standardOutput.read(until: { positions($0).count >= 2 }, timeout: .seconds(20))
        printed += seen.text
        #expect(positions(printed) == [1, 2, 3, 4, 5, 6], "\(printed)")
        // Nothing more (no repeat of 1–4 after the reconnect).
        seen = await tail.standardOutput.read(until: { positions($0).count >= 1 }, timeout: .seconds(1))
        #expect(positions(seen.text).isEmpty, "printed again: \(seen.text)")
        #expect(tail.isRunning)
        await again.stop()
    }
}

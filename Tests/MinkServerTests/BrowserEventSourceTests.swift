import Foundation
import MinkConfig
import MinkTestFixtures
import Testing

/// The python interpreter that has selenium: `MINK_BROWSER_PYTHON`, which scripts/test sets from
/// scripts/browser-deps when it runs this suite in a step of its own. Without it the test is
/// skipped (visibly): Chromium's start-up takes both cores for seconds, which made other suites'
/// deadlines fail when it ran alongside them (ProjectionCopyTests' 5 s rebuild wait).
/// By hand: `MINK_BROWSER_PYTHON=$(scripts/browser-deps) swift test --skip-build --filter BrowserEventSourceTests`.
private let browserPython: String? = {
    guard let python = ProcessInfo.processInfo.environment["MINK_BROWSER_PYTHON"], !python.isEmpty else { return nil }
    return python
}()

/// A port free at the time of asking (the page server binds it right after).
private func freePort() throws -> Int {
    let socket = try LoopbackSocket()
    defer { socket.close() }
    return socket.port
}

@Suite("Headless Chromium: EventSource with access_token", .timeLimit(.minutes(3)))
struct BrowserEventSourceTests {
    /// A page on another origin opens an `EventSource` with `?access_token=` against a minkd with
    /// auth on and CORS allowing that origin, and receives an event appended after it caught up.
    @Test(.enabled(if: browserPython != nil, "set MINK_BROWSER_PYTHON=$(scripts/browser-deps) to run it (scripts/test does, in a step of its own)"))
    func aBrowserReceivesALiveEvent() async throws {
        let python = try #require(browserPython)
        let reader = "browser-\(UUID().uuidString)", writer = "writer-\(UUID().uuidString)"
        let pagePort = try freePort()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-chromium-\(UUID()).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try """
        auth:
          enabled: true
          tokens:
            - { name: "browser", sha256: "\(hashToken(reader))", tenant: "*", roles: [read], rateLimit: { perSecond: 50, burst: 100 } }
            - { name: "app", sha256: "\(hashToken(writer))", tenant: "*", roles: [read, write] }
        http:
          cors: { allowedOrigins: ["http://127.0.0.1:\(pagePort)"] }
        """.write(to: file, atomically: true, encoding: .utf8)
        let minkd = try MinkdProcess([
            "serve", "--config", file.path, "--storage", "memory", "--listen", "127.0.0.1:0", "--log-format", "json",
        ])
        let port = try await minkd.waitUntilReady()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Browser/eventsource_live.py").path
        // Through env(1), so that a bare interpreter name is looked up on PATH.
        let browser = try ChildProcess(executable: "/usr/bin/env", arguments: [
            python, script, "--api", "http://127.0.0.1:\(port)", "--page-port", "\(pagePort)",
            "--reader", reader, "--writer", writer, "--timeout", "60",
        ])
        var exit = await ProcessLaunch.exit(of: browser, timeout: .seconds(90))
        if exit == nil {
            kill(browser.processIdentifier, SIGKILL)
            exit = await ProcessLaunch.exit(of: browser)
        }
        let out = String(decoding: browser.standardOutput.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: browser.standardError.readDataToEndOfFile(), as: UTF8.self)
        kill(minkd.process.processIdentifier, SIGTERM)
        let (status, _, log) = try await minkd.finish()
        #expect(exit?.status == 0, "browser script: \(out) \(err)")
        #expect(out.contains("ok: live event received"), "\(out) \(err)")
        #expect(status == 0)
        #expect(!log.contains(reader) && !log.contains(writer), "a token reached minkd's log")
    }
}

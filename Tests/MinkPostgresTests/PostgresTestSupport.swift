import Foundation
import Mink
import MinkPostgres
import Testing

/// A setup problem that must fail the test (never skip it).
struct TestSetupError: Error, CustomStringConvertible {
    let description: String
}

/// The test servers started by `scripts/with-postgres`.
enum TestServer {
    static func environment(_ name: String) throws -> String {
        guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else {
            throw TestSetupError(description: """
                \(name) is not set: the PostgreSQL tests need a server. \
                Run them through the script: scripts/with-postgres swift test --filter MinkPostgresTests
                """)
        }
        return v
    }

    /// The main cluster, shared by tests running in parallel.
    static func url() throws -> String { try environment("MINK_TEST_POSTGRES_URL") }

    /// A fresh schema name per test.
    static func freshName(_ prefix: String = "t_") -> String {
        prefix + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
    }

    /// A storage on a fresh schema of the main cluster. Its storage deadline is 30 s (minkd's
    /// default is 10 s): the first wave of a parallel run (a hundred tests creating schemas and
    /// databases at once on 2 cores) must not fail a test that is not about deadlines; the
    /// deadline tests pass their own.
    static func storage(
        schema: String? = nil, tenancy: PostgresConfiguration.Tenancy = .shared, poolSize: Int = 4, url: String? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> PostgresStorage {
        let config = PostgresConfiguration(
            connectionString: try url ?? Self.url(), poolSize: poolSize, schema: schema ?? freshName(), tenancy: tenancy,
            connectTimeoutSeconds: 30, timeout: timeout
        )
        return try await PostgresStorage(configuration: config)
    }

    /// Runs a shell command on a thread of its own (never blocking Swift's cooperative pool),
    /// failing with its output when it fails. Uses `posix_spawn` + `waitpid` rather than
    /// Foundation's `Process`, whose exit detection stalled here when the command starts a
    /// daemon (`pg_ctl start`).
    static func shell(_ command: String) async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("mink-shell-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var pid: pid_t = 0
                let argv = ["/bin/sh", "-c", "(\(command)) </dev/null >'\(log)' 2>&1"]
                var cArgs = argv.map { strdup($0) } + [nil]
                defer { cArgs.forEach { free($0) } }
                guard posix_spawn(&pid, "/bin/sh", nil, nil, &cArgs, environ) == 0 else {
                    continuation.resume(returning: -1)
                    return
                }
                var st: Int32 = 0
                while waitpid(pid, &st, 0) < 0, errno == EINTR {}
                continuation.resume(returning: st)
            }
        }
        guard status == 0 else {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw TestSetupError(description: "\(command) failed (status \(status)): \(output)")
        }
    }
}

/// Events for tests.
func event(_ type: String = "Happened", _ json: String = "{}", id: String? = nil, metadata: Metadata = Metadata()) -> EventData {
    EventData(id: id ?? UUID().uuidString.lowercased(), type: type, data: Data(json.utf8), metadata: metadata)
}

func request(_ stream: String, _ events: [EventData], _ expected: ExpectedVersion = .any) -> AppendRequest {
    AppendRequest(streamID: stream, events: events, expectedVersion: expected)
}

/// Waits for the next element of a stream, or fails after `seconds`.
func next(_ stream: AsyncStream<Void>, within seconds: Double) async -> Bool {
    await withTaskGroup(of: Bool.self) { group in
        group.addTask {
            var it = stream.makeAsyncIterator()
            return await it.next() != nil
        }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return false
        }
        let first = await group.next() ?? false
        group.cancelAll()
        return first
    }
}

/// Expects `body` to throw a `MinkError` with `code`; returns it.
@discardableResult
func expectMinkError<T>(
    _ code: MinkError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T
) async -> MinkError? {
    do {
        _ = try await body()
        Issue.record("expected \(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let e as MinkError {
        #expect(e.code == code, "\(e)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

import Foundation
import InMemoryTracing
import Logging
import Metrics
import MetricsTestKit
import Mink
import MinkTestFixtures
import MinkTesting
import Synchronization
import Testing

/// Collects log messages.
final class LogCapture: Sendable {
    let lines = Mutex<[String]>([])

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let meta = (event.metadata ?? [:]).map { "\($0)=\($1)" }.sorted().joined(separator: " ")
            capture.lines.withLock { $0.append("\(event.level) \(event.message) \(meta)") }
        }
    }

    var logger: Logger { Logger(label: "test") { _ in Handler(capture: self) } }
}

/// Fails the first `failures` appends with a transient error.
final class FlakyAdapter: EventStoreAdapter {
    let inner = InMemoryStorage()
    let failures: Mutex<Int>
    let attempts = Mutex(0)
    let error: MinkError

    init(failures: Int, error: MinkError = .unavailable("storage down")) {
        self.failures = Mutex(failures)
        self.error = error
    }

    func append(_ request: AppendRequest, hook: AppendTransactionHook?) async throws -> AppendResult {
        attempts.withLock { $0 += 1 }
        if failures.withLock({ f in defer { f -= 1 }; return f > 0 }) { throw error }
        return try await inner.append(request, hook: hook)
    }
    func readStream(_ s: String, from v: Int64, limit: Int, direction: ReadDirection) async throws -> [Event] {
        try await inner.readStream(s, from: v, limit: limit, direction: direction)
    }
    func streamInfo(_ s: String) async throws -> StreamInfo? { try await inner.streamInfo(s) }
    func readAll(after p: UInt64, filter: EventFilter, limit: Int) async throws -> [Event] { try await inner.readAll(after: p, filter: filter, limit: limit) }
    func headPosition() async throws -> UInt64 { try await inner.headPosition() }
    func forTenant(_ t: String) throws -> any EventStoreAdapter { try inner.forTenant(t) }
}

@Suite("Middleware")
struct MiddlewareTests {
    @Test func chainRunsOutermostFirstAndMayChangeCommands() async throws {
        let order = Mutex<[String]>([])
        func tag(_ name: String) -> Middleware {
            Middleware { next in
                { command in
                    order.withLock { $0.append("\(name)>") }
                    var c = command
                    if c.operation == .append { c.events = c.events.map { var e = $0; e.metadata.custom[name] = "1"; return e } }
                    let r = try await next(c)
                    order.withLock { $0.append("<\(name)") }
                    return r
                }
            }
        }
        let store = EventStore(adapter: InMemoryStorage(), middleware: [tag("a"), tag("b")])
        try await store.append("s-1", events: [raw("E")])
        #expect(order.withLock { $0 } == ["a>", "b>", "<b", "<a"])
        #expect(try await store.load("s-1").first?.metadata.custom == ["a": "1", "b": "1"])
    }

    @Test func loggingMiddleware() async throws {
        let capture = LogCapture()
        let store = EventStore(adapter: InMemoryStorage(), middleware: [.logging(capture.logger)])
        try await store.append("s-1", events: [raw("E")])
        _ = try? await store.append("s-1", events: [raw("E")], expectedVersion: .noStream)
        let lines = capture.lines.withLock { $0 }
        #expect(lines.contains { $0.hasPrefix("debug store operation") && $0.contains("mink.operation=append") && $0.contains("mink.stream=s-1") })
        #expect(lines.contains { $0.hasPrefix("warning store operation failed") && $0.contains("concurrency_conflict") })
    }

    @Test func metricsMiddleware() async throws {
        let metrics = TestMetrics()
        let store = EventStore(adapter: InMemoryStorage(), middleware: [.metrics(metrics)])
        try await store.append("s-1", events: [raw("E"), raw("F")])
        _ = try await store.load("s-1")
        _ = try? await store.append("s-1", events: [raw("E")], expectedVersion: .noStream)
        #expect(metrics.counterTotal(label: "mink_events_appended_total") == 2)
        #expect(metrics.counterTotal(label: "mink_operations_total", dimensions: [("operation", "append"), ("outcome", "ok")]) == 1)
        #expect(metrics.counterTotal(label: "mink_operations_total", dimensions: [("operation", "append"), ("outcome", "concurrency_conflict")]) == 1)
        #expect(try metrics.expectTimer("mink_operation_duration_seconds", [("operation", "load")]).values.count == 1)
    }

    @Test func tracingMiddleware() async throws {
        let tracer = InMemoryTracer()
        let store = EventStore(adapter: InMemoryStorage(), middleware: [.tracing(tracer)])
        try await store.append("s-1", events: [raw("E")])
        let spans = tracer.finishedSpans
        #expect(spans.map(\.operationName) == ["mink.append"])
        #expect(spans.first?.attributes["mink.stream_id"]?.toSpanAttribute() == .string("s-1"))
    }

    @Test func retryMiddlewareRetriesTransientErrorsOnly() async throws {
        let flaky = FlakyAdapter(failures: 2)
        let store = EventStore(adapter: flaky, middleware: [.retry(RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1)))])
        try await store.append("s-1", events: [raw("E")])
        #expect(flaky.attempts.withLock { $0 } == 3)
        try await assertStreamVersion(store, "s-1", 1)

        let permanent = FlakyAdapter(failures: 5, error: MinkError(.validationFailed, "no"))
        let store2 = EventStore(adapter: permanent, middleware: [.retry(RetryPolicy(maxAttempts: 5, initialBackoff: .milliseconds(1)))])
        await #expect(throws: MinkError(.validationFailed, "no")) { try await store2.append("s-1", events: [raw("E")]) }
        #expect(permanent.attempts.withLock { $0 } == 1)

        let conflict = EventStore(adapter: InMemoryStorage(), middleware: [.retry(RetryPolicy(maxAttempts: 5))])
        try await conflict.append("s-1", events: [raw("E")])
        await #expect(throws: MinkError.self) { try await conflict.append("s-1", events: [raw("E")], expectedVersion: .noStream) }
    }

    @Test func validationMiddleware() async throws {
        let store = EventStore(adapter: InMemoryStorage(), middleware: [.validation(.init(maxEventBytes: 64, maxEventsPerAppend: 3))])
        for events in [
            [raw("")], [raw(String(repeating: "t", count: 257))], [raw("E", "{not json")],
            [raw("E", #"{"x":"\#(String(repeating: "y", count: 100))"}"#)], [raw("E"), raw("E"), raw("E"), raw("E")],
        ] {
            await #expect(throws: MinkError.self) { try await store.append("s-1", events: events) }
        }
        #expect(try await store.headPosition() == 0)
        try await store.append("s-1", events: [raw("E", #"{"ok":true}"#)])
        #expect(try await store.headPosition() == 1)
    }
}

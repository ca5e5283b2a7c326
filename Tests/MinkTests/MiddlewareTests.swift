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
    /// `hasFreshIDs` of every request received, in order.
    let freshIDs = Mutex<[Bool]>([])
    let error: MinkError

    init(failures: Int, error: MinkError = .unavailable("storage down")) {
        self.failures = Mutex(failures)
        self.error = error
    }

    func append(_ request: AppendRequest, hook: AppendTransactionHook?) async throws -> AppendResult {
        attempts.withLock { $0 += 1 }
        freshIDs.withLock { $0.append(request.hasFreshIDs) }
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

/// Lines recorded by middleware under test, shared between the steps and the test.
final class Recorder: Sendable {
    private let lines = Mutex<[String]>([])
    func withLock<T: Sendable>(_ body: (inout [String]) -> T) -> T { lines.withLock { body(&$0) } }
}

@Suite("Middleware", .timeLimit(.minutes(3)))
struct MiddlewareTests {
    /// An append step that records its entry and exit and tags every event's metadata.
    struct Tag: MiddlewareProtocol {
        let name: String
        let order: Recorder

        func handle(_ command: AppendCommand, context: CommandContext, next: CommandHandler<AppendCommand>) async throws -> AppendResult {
            order.withLock { $0.append("\(name)>") }
            var command = command
            for i in command.events.indices { command.events[i].metadata.custom[name] = "1" }
            let result = try await next(command, context)
            order.withLock { $0.append("<\(name)") }
            return result
        }
    }

    /// A step around every operation that records which operations ran, for which tenant.
    struct Record: StoreMiddleware {
        let seen: Recorder

        func handle<C: Command>(_ command: C, context: CommandContext, next: CommandHandler<C>) async throws -> C.Output {
            seen.withLock { $0.append("\(C.operation.rawValue)@\(context.tenantID ?? "-")") }
            return try await next(command, context)
        }
    }

    /// A head-position step that answers without calling the rest of the chain.
    struct FixedHead: MiddlewareProtocol {
        func handle(_ command: HeadPositionCommand, context: CommandContext, next: CommandHandler<HeadPositionCommand>) async throws -> UInt64 {
            42
        }
    }

    @Test func chainRunsOutermostFirstAndMayChangeCommands() async throws {
        let order = Recorder()
        let store = EventStore(
            adapter: InMemoryStorage(), middleware: [Middleware(append: Tag(name: "a", order: order)), Middleware(append: Tag(name: "b", order: order))]
        )
        try await store.append("s-1", events: [raw("E")])
        #expect(order.withLock { $0 } == ["a>", "b>", "<b", "<a"])
        #expect(try await store.load("s-1").first?.metadata.custom == ["a": "1", "b": "1"])
        // Reads pass through append-only middleware.
        #expect(order.withLock { $0 }.count == 4)
    }

    @Test func storeMiddlewareSeesEveryOperationTyped() async throws {
        let seen = Recorder()
        let root = EventStore(adapter: InMemoryStorage(), middleware: [Middleware(Record(seen: seen))])
        let store = try root.forTenant("acme")
        try await store.append("s-1", events: [raw("E")])
        #expect(try await store.readStream("s-1", from: 1, limit: 10).count == 1)
        #expect(try await store.streamInfo("s-1")?.version == 1)
        #expect(try await store.readAll().count == 1)
        #expect(try await store.headPosition() == 1)
        #expect(seen.withLock { $0 } == ["append@acme", "load@acme", "streamInfo@acme", "readAll@acme", "headPosition@acme"])
    }

    @Test func middlewareMayAnswerWithoutTheRestOfTheChain() async throws {
        let store = EventStore(adapter: InMemoryStorage(), middleware: [Middleware(headPosition: FixedHead())])
        #expect(try await store.headPosition() == 42)
        try await store.append("s-1", events: [raw("E")])
        #expect(try await store.readAll().count == 1)
    }

    struct FixedPage: MiddlewareProtocol {
        func handle(_ command: LoadCommand, context: CommandContext, next: CommandHandler<LoadCommand>) async throws -> [Event] { [] }
    }

    @Test func aPageWithItsInfoIsOneLoadAndAnswersWhatTheTwoReadsAnswer() async throws {
        let seen = Recorder()
        let store = EventStore(adapter: InMemoryStorage(), middleware: [Middleware(Record(seen: seen))])
        try await store.append("s-1", events: [raw("E"), raw("E"), raw("E")])
        try await store.append("r-1", events: [raw("E"), raw("E"), raw("E"), raw("E")])
        try await store.setRetention(StreamRetention(maxCount: 2), of: "r-1")
        try await store.append("h-1", events: [raw("E")])
        _ = try await store.deleteStream("h-1", hard: true)
        seen.withLock { $0 = [] }
        for stream in ["s-1", "r-1"] {
            for (from, limit, direction) in [(Int64(2), 10, ReadDirection.forward), (-1, 1, .backward), (1, 0, .forward)] {
                let read = try #require(try await store.readStreamWithInfo(stream, from: from, limit: limit, direction: direction))
                #expect(read.info == (try await store.streamInfo(stream)))
                #expect(read.events == (try await store.readStream(stream, from: from, limit: limit, direction: direction)), "\(stream) \(from) \(limit)")
            }
        }
        #expect(seen.withLock { $0 }.filter { $0 == "load@-" }.count == 12)
        seen.withLock { $0 = [] }
        let page = try #require(try await store.readStreamWithInfo("s-1", from: 2, limit: 10))
        #expect(page.events.map(\.version) == [2, 3] && page.info.version == 3)
        #expect(seen.withLock { $0 } == ["load@-"], "one load, no streamInfo")
        let ruled = try #require(try await store.readStreamWithInfo("r-1", from: 1, limit: 10))
        #expect(ruled.events.map(\.version) == [3, 4] && ruled.info.eventCount == 2)
        #expect(try await store.readStreamWithInfo("missing-1", from: 1, limit: 10) == nil)
        let deleted = await #expect(throws: MinkError.self) { _ = try await store.readStreamWithInfo("h-1", from: 1, limit: 10) }
        #expect(deleted?.code == .streamDeleted)
        // A middleware that answers the load itself: the info comes from streamInfo.
        let answering = EventStore(adapter: InMemoryStorage(), middleware: [Middleware(load: FixedPage())])
        try await answering.append("s-1", events: [raw("E")])
        let answered = try #require(try await answering.readStreamWithInfo("s-1", from: 1, limit: 10))
        #expect(answered.events.isEmpty && answered.info.version == 1)
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

    /// The store's `metrics` option (seed: `WithMetrics`) records what the metrics middleware
    /// does, once, and is the default factory of a projection engine made on the store (before
    /// 2026-12-07 the option was kept and never used).
    @Test func theMetricsOptionMeasuresTheStoresOperations() async throws {
        let metrics = TestMetrics()
        let store = EventStore(adapter: InMemoryStorage(), metrics: metrics)
        try await store.append("s-1", events: [raw("E"), raw("F")])
        _ = try await store.load("s-1")
        #expect(metrics.counterTotal(label: "mink_events_appended_total") == 2)
        #expect(metrics.counterTotal(label: "mink_operations_total", dimensions: [("operation", "append"), ("outcome", "ok")]) == 1)
        #expect(try metrics.expectTimer("mink_operation_duration_seconds", [("operation", "load")]).values.count == 1)
        // With a metrics middleware of its own the option adds none: nothing counted twice.
        let both = TestMetrics()
        let measured = EventStore(adapter: InMemoryStorage(), middleware: [.metrics(both)], metrics: both)
        try await measured.append("s-1", events: [raw("E")])
        #expect(both.counterTotal(label: "mink_events_appended_total") == 1)
        // A projection engine made on the store records its async projections' delay there.
        let engine = ProjectionEngine(store: store)
        await engine.registerAsync(RecordingProjection(), options: AsyncOptions(batchSize: 10, retryPolicy: fastRetry))
        try await engine.start()
        _ = try await engine.waitUntilCaughtUp("recorder", to: 2)
        await engine.stop()
        #expect(try metrics.expectTimer("mink_projection_delay_seconds", [("projection", "recorder")]).values.count == 2)
    }

    /// The store's logger (seed: `WithLogger`) is where the store and a projection engine made on
    /// it log: a projection that faults says so there.
    @Test func theLoggerOptionReceivesTheStoresLogs() async throws {
        let capture = LogCapture()
        let store = EventStore(adapter: InMemoryStorage(), logger: capture.logger)
        try await store.append("s-1", events: [raw("E")])
        let box = RecordingProjection.Box()
        box.failures.withLock { $0[1] = Int.max }
        let engine = ProjectionEngine(store: store)
        await engine.registerAsync(RecordingProjection(box: box), options: AsyncOptions(batchSize: 10, retryPolicy: fastRetry))
        try await engine.start()
        let deadline = ContinuousClock.now + .seconds(20)
        while try await engine.status("recorder").state != .faulted {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(5))
        }
        await engine.stop()
        let lines = capture.lines.withLock { $0 }
        #expect(lines.contains { $0.contains("recorder") }, "\(lines)")
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

    /// Only the first attempt of an append whose IDs the store generated may skip the storage's
    /// lookup of already-stored IDs: a retry may follow an attempt that committed unanswered.
    @Test func freshIDsOnlyOnTheFirstAttemptOfGeneratedIDs() async throws {
        let flaky = FlakyAdapter(failures: 2)
        let store = EventStore(adapter: flaky, middleware: [.retry(RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1)))])
        try await store.append("s-1", events: [raw("E"), raw("F")])
        #expect(flaky.freshIDs.withLock { $0 } == [true, false, false])
        // Generated IDs are lowercase UUID text.
        for e in try await store.load("s-1") { #expect(UUID(uuidString: e.id)?.uuidString.lowercased() == e.id) }
        for _ in 0..<100 {
            let u = UUID()
            #expect(u.lowercasedText == u.uuidString.lowercased())
        }

        let plain = FlakyAdapter(failures: 0)
        let store2 = EventStore(adapter: plain)
        try await store2.append("s-1", events: [EventData(id: "mine", type: "E", data: Data("{}".utf8)), raw("F")])
        try await store2.append("s-1", events: [raw("G")])
        #expect(plain.freshIDs.withLock { $0 } == [false, true])

        /// A step that replaces the event IDs: they are no longer the store's.
        struct Renumber: MiddlewareProtocol {
            func handle(_ command: AppendCommand, context: CommandContext, next: CommandHandler<AppendCommand>) async throws -> AppendResult {
                var command = command
                for i in command.events.indices { command.events[i].id = "renumbered-\(i)" }
                return try await next(command, context)
            }
        }
        let renumbered = FlakyAdapter(failures: 0)
        let store3 = EventStore(adapter: renumbered, middleware: [Middleware(append: Renumber())])
        try await store3.append("s-1", events: [raw("E")])
        #expect(renumbered.freshIDs.withLock { $0 } == [false])
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

import Foundation
import Logging
import Mink
import MinkConfig
import MinkHTTP
@testable import MinkServer
import Synchronization
import Testing

/// The storage outage's two log lines (`StorageOutageLog`) name the request that started the
/// outage and the one that ended it: its `trace_id` and `span_id`, the values of its access line
/// and of its response's `traceparent`.
@Suite("Storage outage lines carry the request's trace", .timeLimit(.minutes(3)))
struct StorageOutageTraceTests {
    /// Every line the server logs, with its metadata as text.
    final class Lines: Sendable {
        struct Line: Sendable {
            var level: Logger.Level
            var message: String
            var metadata: [String: String]
        }

        let lines = Mutex<[Line]>([])

        struct Handler: LogHandler {
            let sink: Lines
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .info
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                var all: [String: String] = [:]
                for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { all[k] = "\(v)" }
                sink.lines.withLock { $0.append(Line(level: event.level, message: "\(event.message)", metadata: all)) }
            }
        }

        var logger: Logger { Logger(label: "minkd") { _ in Handler(sink: self) } }

        func matching(_ prefix: String) -> [Line] { lines.withLock { $0.filter { $0.message.hasPrefix(prefix) } } }
    }

    /// The server span of a response: its `traceparent`'s trace and span ID.
    static func span(_ r: TestServer.Reply) throws -> (trace: String, span: String) {
        let parts = try #require(r.headers["traceparent"]).split(separator: "-").map(String.init)
        try #require(parts.count == 4)
        return (parts[1], parts[2])
    }

    @Test func theOutageLinesNameTheFailingAndTheRecoveringRequest() async throws {
        let (storage, spy) = SpyStorage.make()
        let log = Lines()
        var config = MinkdConfiguration()
        config.listen.port = 0
        config.shutdown.graceSeconds = 2
        let server = MinkServer(configuration: config, storage: storage, logger: log.logger)
        let s = TestServer(server: server, port: try await server.start())
        do {
            try await s.request("POST", "/v1/streams/s-1", json: appendBody(["A"]))

            // A request fails: the outage's error line carries its trace (continued from the
            // caller's traceparent) and its server span.
            spy.fault.withLock { $0 = MinkError.unavailable("connection refused") }
            let caller = "4bf92f3577b34da6a3ce929d0e0e4736"
            let failed = try await s.request("GET", "/v1/streams/s-1", headers: [("traceparent", "00-\(caller)-00f067aa0ba902b7-01")])
            #expect(failed.status == 503)
            let failedSpan = try Self.span(failed)
            #expect(failedSpan.trace == caller)
            // More failures in the same outage: no more lines.
            #expect(try await s.request("GET", "/v1/events/head").status == 503)
            let errors = log.matching("storage unavailable")
            #expect(errors.count == 1, "\(errors)")
            #expect(errors.first?.level == .error)
            #expect(errors.first?.metadata["trace_id"] == caller && errors.first?.metadata["span_id"] == failedSpan.span, "\(errors)")
            let access = log.lines.withLock { $0.filter { $0.message == "request" && $0.metadata["status"] == "503" } }
            #expect(access.first?.metadata["span_id"] == failedSpan.span, "the access line names the same span")

            // Storage answers again: the notice names the request that found it back.
            spy.fault.withLock { $0 = nil }
            let back = try await s.request("GET", "/v1/streams/s-1")
            #expect(back.status == 200)
            let backSpan = try Self.span(back)
            let notices = log.matching("storage available again")
            #expect(notices.count == 1 && notices.first?.level == .notice, "\(notices)")
            #expect(notices.first?.metadata["trace_id"] == backSpan.trace && notices.first?.metadata["span_id"] == backSpan.span, "\(notices)")

            // A readiness probe that finds storage down starts an outage too: its line names the
            // probe request.
            spy.fault.withLock { $0 = MinkError.unavailable("connection refused") }
            let probe = try await s.request("GET", "/readyz", headers: [("traceparent", "00-\(caller)-b7ad6b7169203331-01")])
            #expect(probe.status == 503)
            let probeSpan = try Self.span(probe)
            let second = log.matching("storage unavailable")
            #expect(second.count == 2, "\(second)")
            #expect(second.last?.metadata["trace_id"] == caller && second.last?.metadata["span_id"] == probeSpan.span, "\(second)")
            spy.fault.withLock { $0 = nil }
        } catch {
            await s.stop()
            throw error
        }
        await s.stop()
    }
}

/// A tenant's deletion closes its storage under the requests still reading it: their `503`s are
/// the deletion's doing, not a storage outage — no error line (an operator's alert) for them
/// (a black-box audit: SQLite `database` strategy, readers racing `DELETE /v1/admin/tenants`).
@Suite("Storage errors during a tenant's deletion", .timeLimit(.minutes(1)))
struct StorageErrorsDuringDeletionTests {
    @Test func aReadFailingWhileItsTenantIsDeletedIsNoOutage() async throws {
        let (storage, spy) = SpyStorage.make()
        let log = StorageOutageTraceTests.Lines()
        var config = MinkdConfiguration()
        config.listen.port = 0
        config.shutdown.graceSeconds = 2
        config.auth.enabled = true
        config.auth.tokens = TestToken.standard
        let server = MinkServer(configuration: config, storage: storage, logger: log.logger)
        let s = TestServer(server: server, port: try await server.start())
        let a = TestToken.headers("acme-rw")
        do {
            #expect(try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A1"]), headers: a).status == 201)
            // An append held in storage keeps the deletion waiting (its tenant `deleting`).
            spy.holdAppends.withLock { $0 = true }
            async let inFlight = s.request("POST", "/v1/streams/order-1", json: appendBody(["A2"]), headers: a)
            let deadline = ContinuousClock.now + .seconds(10)
            while spy.held.withLock({ $0 }) == 0 {
                guard ContinuousClock.now < deadline else { throw CancellationError() }
                try await Task.sleep(for: .milliseconds(5))
            }
            async let deletion = s.request("DELETE", "/v1/admin/tenants/acme?confirm=acme", headers: TestToken.headers("ops"))
            while !server.api.tenants.wasDeleting("acme", since: server.api.tenants.deletionMark) {
                guard ContinuousClock.now < deadline else { throw CancellationError() }
                try await Task.sleep(for: .milliseconds(5))
            }
            // A read of the tenant meets its closing storage.
            spy.fault.withLock { $0 = MinkError.unavailable("the storage this request used is shutting down") }
            let read = try await s.request("GET", "/v1/streams/order-1", headers: a)
            #expect(read.status == 503, "\(read.status) \(read.text)")
            #expect(log.matching("storage unavailable").isEmpty, "a deletion was logged as an outage")
            #expect(!server.api.storageOutage.inOutage)
            spy.fault.withLock { $0 = nil }
            spy.holdAppends.withLock { $0 = false }
            _ = try await inFlight
            #expect(try await deletion.status == 200)

            // The same failure with no deletion running is an outage (what the check above would
            // have said without the rule).
            spy.fault.withLock { $0 = MinkError.unavailable("connection refused") }
            let control = try await s.request("GET", "/v1/streams/order-1", headers: TestToken.headers("ops"))
            #expect(control.status == 503, "\(control.status) \(control.text)")
            #expect(log.matching("storage unavailable").count == 1)
            spy.fault.withLock { $0 = nil }
        } catch {
            await s.stop()
            throw error
        }
        await s.stop()
    }
}

/// An outage in which writes failed (a full disk, a read-only file) ends only when a write
/// succeeds: reads go on answering meanwhile, and each one ended the outage ("storage available
/// again") so that the next failed write started a new one — a pair of lines per write.
@Suite("Storage outage of writes", .timeLimit(.minutes(1)))
struct StorageWriteOutageTests {
    @Test func readsDoNotEndAnOutageOfWrites() {
        let lines = StorageOutageTraceTests.Lines()
        let log = StorageOutageLog(logger: lines.logger)
        log.failed(cause: "disk full", write: true, trace: nil)
        for _ in 0..<5 {
            log.succeeded(write: false, trace: nil)  // a read answers
            log.failed(cause: "disk full", write: true, trace: nil)  // the next write fails again
        }
        #expect(lines.matching("storage unavailable").count == 1)
        #expect(lines.matching("storage available again").isEmpty, "reads ended an outage of writes")
        #expect(log.inOutage)
        log.succeeded(write: true, trace: nil)
        let ended = lines.matching("storage available again")
        #expect(ended.count == 1 && ended.first?.metadata["failed_requests"] == "6")
        // An outage of reads ends with any success.
        log.failed(cause: "no connection", write: false, trace: nil)
        log.succeeded(write: false, trace: nil)
        #expect(lines.matching("storage available again").count == 2 && !log.inOutage)
    }
}

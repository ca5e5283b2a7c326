import Glibc
import Synchronization
import Testing
@testable import MinkHTTP

/// A responder answering `/fast/N` synchronously and `/slow/N` in a task after a delay.
struct MixedResponder: HTTPResponder {
    func respondImmediately(to request: HTTPRequest) -> HTTPResponse? {
        guard request.path.hasPrefix("/fast/") else { return nil }
        return HTTPResponse(status: 200, bytes: Array("fast \(request.path.dropFirst(6))".utf8))
    }

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        if request.path.hasPrefix("/slow/") { try? await Task.sleep(for: .milliseconds(100)) }
        return HTTPResponse(status: 200, bytes: Array("slow \(request.path.dropFirst(6))".utf8))
    }
}

@Suite(.timeLimit(.minutes(3))) struct ImmediateResponderTests {
    /// Pipelined requests mixing the synchronous fast path and the task path are answered in
    /// order, each with its own body.
    @Test func pipelinedFastAndSlowRequestsAnswerInOrder() async throws {
        try await withTestServer(responder: MixedResponder()) { _, port in
            let c = try await RawClient.connect(port: port)
            let paths = ["/fast/1", "/slow/2", "/fast/3", "/fast/4", "/slow/5", "/fast/6"]
            await c.send(paths.map { "GET \($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
            let responses = await c.readResponses(paths.count, timeout: 5)
            let bodies = responses.map { String(decoding: $0.body, as: UTF8.self) }
            #expect(bodies == ["fast 1", "slow 2", "fast 3", "fast 4", "slow 5", "fast 6"])
            #expect(responses.allSatisfy { $0.head.headers["Content-Length"] != nil && $0.head.headers["Date"] != nil })
        }
    }
}

/// A responder that examines each request once on the loop (`route`): `/fast/N` is answered
/// there, anything else goes to a task with the number `route` parsed. Counts `route` calls.
final class RoutingResponder: HTTPResponder {
    let routeCalls = Mutex(0)

    func route(_ request: HTTPRequest) -> HTTPRouting<Int> {
        routeCalls.withLock { $0 += 1 }
        let n = Int(request.path.split(separator: "/").last ?? "") ?? -1
        if request.path.hasPrefix("/fast/") { return .answered(HTTPResponse(status: 200, bytes: Array("fast \(n)".utf8))) }
        return .inTask(n)
    }

    func respond(to request: HTTPRequest, routed n: Int) async -> HTTPResponse {
        HTTPResponse(status: 200, bytes: Array("task \(n)".utf8))
    }

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        HTTPResponse(status: 500, bytes: Array("the server routes once and never calls this".utf8))
    }
}

@Suite(.timeLimit(.minutes(3))) struct RoutedResponderTests {
    /// Each request is routed once, on the loop; what `route` found reaches the task.
    @Test func eachRequestIsRoutedOnceAndItsRouteReachesTheTask() async throws {
        let responder = RoutingResponder()
        try await withTestServer(responder: responder) { _, port in
            let c = try await RawClient.connect(port: port)
            let paths = ["/fast/1", "/slow/2", "/fast/3", "/slow/4"]
            await c.send(paths.map { "GET \($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
            let responses = await c.readResponses(paths.count, timeout: 5)
            #expect(responses.map { String(decoding: $0.body, as: UTF8.self) } == ["fast 1", "task 2", "fast 3", "task 4"])
        }
        #expect(responder.routeCalls.withLock { $0 } == 4, "one route call per request")
    }
}

/// A responder whose every answer comes from a task, after a short wait, and that counts the
/// requests it was given.
final class CountingSlowResponder: HTTPResponder {
    let started = Mutex(0)

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        started.withLock { $0 += 1 }
        try? await Task.sleep(for: .milliseconds(1))
        return HTTPResponse(status: 200, bytes: Array("slow".utf8))
    }
}

@Suite(.timeLimit(.minutes(3))) struct PipelineAbandonedTests {
    /// A client that pipelines requests and resets the connection: when the first response's
    /// write fails, the requests still queued behind it are not handed to the responder (the
    /// connection is closed; before, the next one was dispatched on the closed connection — an
    /// illegal transition, logged as an error, an assertion in debug builds — and run for
    /// nobody).
    @Test func requestsQueuedBehindAFailedWriteAreNotDispatched() async throws {
        let responder = CountingSlowResponder()
        let reports = Mutex<[String]>([])
        var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.eventLoopCount = 2
        let server = HTTPServer(configuration: configuration, responder: responder, log: { m in reports.withLock { $0.append(m) } })
        let port = try server.start()
        for i in 0..<60 {
            let c = try await RawClient.connect(port: port)
            await c.send(String(repeating: "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", count: 6))
            try await Task.sleep(for: .microseconds(200 * (i % 10)))
            if i % 2 == 0 { c.reset() } else { shutdown(c.fd, Int32(SHUT_RDWR)) }
        }
        try await Task.sleep(for: .milliseconds(500))
        await server.shutdown(gracePeriod: .seconds(1))
        let illegal = reports.withLock { $0 }.filter { $0.contains("illegal") }
        #expect(illegal.isEmpty, "\(illegal)")
        let n = responder.started.withLock { $0 }
        #expect(n < 60 * 6, "every request ran although the connections closed: \(n)")
    }
}

/// Answers every request on the loop with a 64 KiB body, counting them.
final class LargeImmediateResponder: HTTPResponder {
    let answered = Mutex(0)
    static let body = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)

    func respondImmediately(to request: HTTPRequest) -> HTTPResponse? {
        answered.withLock { $0 += 1 }
        return HTTPResponse(status: 200, bytes: Self.body)
    }

    func respond(to request: HTTPRequest) async -> HTTPResponse { HTTPResponse(status: 500, bytes: []) }
}

@Suite(.timeLimit(.minutes(3))) struct UnreadAnswersTests {
    /// A client that pipelines requests answered on the loop and reads nothing: once the write
    /// queue is over its bound, the server stops answering and reading (the requests wait in the
    /// kernel), and goes on when the client reads — every answer in order. Before, it answered
    /// every request at once and queued them all: one connection grew the server by 2.5 GB in a
    /// minute.
    @Test func answersWaitForAClientThatDoesNotRead() async throws {
        let responder = LargeImmediateResponder()
        try await withTestServer(responder: responder) { _, port in
            let c = try await RawClient.connect(port: port)
            let count = 400
            await c.send(String(repeating: "GET /big HTTP/1.1\r\nHost: x\r\n\r\n", count: count))
            try await Task.sleep(for: .seconds(1))
            let early = responder.answered.withLock { $0 }
            // The kernel's socket buffers take some (a few MiB at most on loopback); the rest waits.
            #expect(early < count * 3 / 4, "\(early) of \(count) 64 KiB answers made for a client that reads nothing")
            let bodies = count * LargeImmediateResponder.body.count
            await c.read(timeout: 30) { $0.count >= bodies && RawClient.parseResponses($0).count == count }
            let responses = c.responses()
            #expect(responses.count == count, "\(responses.count) answers once the client read")
            #expect(responses.allSatisfy { $0.head.status == 200 && $0.body.count == LargeImmediateResponder.body.count })
            #expect(responder.answered.withLock { $0 } == count)
        }
    }
}

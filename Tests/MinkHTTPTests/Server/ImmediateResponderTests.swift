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

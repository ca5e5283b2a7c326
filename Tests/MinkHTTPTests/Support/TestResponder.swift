import Foundation
@testable import MinkHTTP

/// The trivial application used by live tests.
struct TestResponder: HTTPResponder {
    func respond(to request: HTTPRequest) async -> HTTPResponse {
        let json: HTTPHeaders = ["Content-Type": "application/json; charset=utf-8"]
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: false)
        switch (request.method, request.path) {
        case ("GET", "/healthz"), ("HEAD", "/healthz"):
            return HTTPResponse(status: 200, headers: json, bytes: Array(#"{"status":"ok"}"#.utf8))
        case (_, "/healthz"):
            return HTTPResponse(status: 405, headers: ["Allow": "GET, HEAD"], bytes: [])
        case (_, "/echo"):
            var h = json
            h.add(name: "X-Method", value: request.method)
            return HTTPResponse(status: 200, headers: h, bytes: request.body)
        case ("GET", "/big"), ("HEAD", "/big"):
            return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], bytes: Array(repeating: UInt8(ascii: "x"), count: 4096))
        case ("GET", "/delay"):
            // Slow first, fast second: pipelined answers must still come in order.
            let ms = Int(request.query?.split(separator: "=").last ?? "0") ?? 0
            try? await Task.sleep(for: .milliseconds(ms))
            return HTTPResponse(status: 200, bytes: Array("delay \(ms)".utf8))
        case ("GET", "/chunked"):
            return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: .stream { w in
                for i in 0..<5 { try await w.write(Array("part\(i);".utf8)) }
            })
        case ("GET", "/sse"):
            let count = Int(request.query?.split(separator: "=").last ?? "3") ?? 3
            return HTTPResponse(status: 200, headers: ["Content-Type": "text/event-stream", "Cache-Control": "no-cache"], body: .stream { w in
                try await w.write(SSEEncoder.retry(2000))
                for i in 1...max(count, 1) {
                    try await w.write(SSEEncoder.message(id: "\(i)", data: "{\"n\":\(i)}\nline2"))
                }
                try await w.write(SSEEncoder.message(event: "caught-up", data: "{}"))
            })
        case ("GET", "/forever"):
            return HTTPResponse(status: 200, headers: ["Content-Type": "text/event-stream"], body: .stream { w in
                while !w.isShuttingDown {
                    try await w.write(SSEEncoder.comment("keepalive"))
                    try await Task.sleep(for: .milliseconds(20))
                }
            })
        default:
            if parts.count == 4, parts[1] == "v1", parts[2] == "streams", !parts[3].isEmpty {
                guard request.method == "POST" else {
                    return HTTPResponse(status: 405, headers: ["Allow": "POST"], bytes: [])
                }
                guard let obj = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any],
                      obj["events"] != nil else {
                    return HTTPResponse(status: 400, headers: json, bytes: Array(#"{"error":{"code":"invalid_json","message":"bad body"}}"#.utf8))
                }
                return HTTPResponse(status: 201, headers: json, bytes: Array(#"{"streamId":"x","fromVersion":1,"toVersion":1}"#.utf8))
            }
            return HTTPResponse(status: 404, headers: json, bytes: Array(#"{"error":{"code":"not_found","message":"no route"}}"#.utf8))
        }
    }
}

/// Starts a server on 127.0.0.1 port 0 with short timeouts, runs `body`, shuts down.
func withTestServer<T>(
    _ configure: (inout HTTPServerConfiguration) -> Void = { _ in },
    responder: any HTTPResponder = TestResponder(),
    _ body: (HTTPServer, Int) async throws -> T
) async throws -> T {
    var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
    configuration.tickInterval = .milliseconds(20)
    // Long enough that a client starved for seconds on a loaded machine still gets its first
    // byte in (a new connection that sends nothing by then is answered 408); tests of the
    // header deadline set their own.
    configuration.headerTimeout = .seconds(10)
    configuration.lingerTimeout = .seconds(1)
    configuration.eventLoopCount = 2
    configure(&configuration)
    let server = HTTPServer(configuration: configuration, responder: responder)
    let port = try server.start()
    do {
        let result = try await body(server, port)
        await server.shutdown(gracePeriod: .seconds(1))
        return result
    } catch {
        await server.shutdown(gracePeriod: .seconds(1))
        throw error
    }
}

import Dispatch
import MinkHTTP

/// GET /healthz → 200 {"status":"ok"}. Answers through the synchronous fast path
/// (``HTTPResponder/respondImmediately(to:)``) unless `async` is given, in which case
/// every request runs `respond(to:)` in a task.
struct Health: HTTPResponder {
    static let body = Array(#"{"status":"ok"}"#.utf8)
    let immediate: Bool

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        answer(request)
    }

    func respondImmediately(to request: HTTPRequest) -> HTTPResponse? {
        immediate ? answer(request) : nil
    }

    private func answer(_ request: HTTPRequest) -> HTTPResponse {
        if request.path == "/healthz" {
            return HTTPResponse(status: 200, headers: ["Content-Type": "application/json; charset=utf-8"], bytes: Health.body)
        }
        return HTTPResponse(status: 404, bytes: [])
    }
}

// Usage: MinkHTTPBench [port] [async|immediate] [event loops]
let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 8081 : 8081
let immediate = !(CommandLine.arguments.count > 2 && CommandLine.arguments[2] == "async")
var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: port)
if CommandLine.arguments.count > 3, let loops = Int(CommandLine.arguments[3]) { configuration.eventLoopCount = loops }
let server = HTTPServer(configuration: configuration, responder: Health(immediate: immediate))
let bound = try server.start()
print("listening on \(bound)")
dispatchMain()

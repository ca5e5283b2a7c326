import Dispatch
import MinkHTTP

struct Health: HTTPResponder {
    static let body = Array(#"{"status":"ok"}"#.utf8)
    func respond(to request: HTTPRequest) async -> HTTPResponse {
        if request.path == "/healthz" {
            return HTTPResponse(status: 200, headers: ["Content-Type": "application/json; charset=utf-8"], bytes: Health.body)
        }
        return HTTPResponse(status: 404, bytes: [])
    }
}

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 8081 : 8081
let server = HTTPServer(configuration: HTTPServerConfiguration(host: "127.0.0.1", port: port), responder: Health())
let bound = try server.start()
print("listening on \(bound)")
dispatchMain()

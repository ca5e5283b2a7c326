import ArgumentParser
import Foundation
import Mink
import MinkClient

/// The options every command takes: where the server is, who asks, in which tenant, and how
/// to print.
struct GlobalOptions: ParsableArguments {
    @Option(help: "minkd's base URL (env MINK_URL; default http://127.0.0.1:6465).")
    var url: String?

    @Option(help: "A bearer token (env MINK_TOKEN).")
    var token: String?

    @Option(help: "The tenant to work in (env MINK_TENANT).")
    var tenant: String?

    @Flag(help: "Print JSON lines (the default when standard output is not a terminal).")
    var json = false

    /// Whether to print JSON: asked for, or standard output is a pipe or a file.
    var printsJSON: Bool { json || isatty(STDOUT_FILENO) == 0 }

    /// A client for the chosen server, token and tenant.
    func client() throws -> MinkClient {
        let env = ProcessInfo.processInfo.environment
        let base = url ?? env["MINK_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:6465"
        guard let parsed = URL(string: base) else { throw CLIError(code: "bad_request", message: "invalid URL \(base)") }
        let token = token ?? env["MINK_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        let tenant = tenant ?? env["MINK_TENANT"].flatMap { $0.isEmpty ? nil : $0 }
        do {
            return try MinkClient(baseURL: parsed, token: token, tenant: tenant)
        } catch let error as MinkError {
            throw CLIError(code: "bad_request", message: error.message)
        }
    }
}

/// An error to report on one line, with the exit code that tells its kind.
struct CLIError: Error {
    var code: String
    var message: String
    var exitCode: Int32 = 1

    /// Exit codes by kind (docs/cli.md): conflict 3, not found 4, auth 5, unavailable 6, other 1.
    static func exitCode(status: Int?, code: String) -> Int32 {
        switch code {
        case "concurrency_conflict", "duplicate_event_id", "tenant_not_empty": return 3
        case "stream_not_found", "not_found", "projection_not_found", "stream_deleted": return 4
        case "unauthorized", "forbidden": return 5
        case "unavailable", "too_many_requests": return 6
        default: break
        }
        switch status {
        case 409: return 3
        case 404, 410: return 4
        case 401, 403: return 5
        case 429, 502, 503, 504: return 6
        default: return 1
        }
    }

    /// The error a non-2xx answer means: the server's code and message when the body has the
    /// contract's error shape, the status otherwise.
    init(response: RawResponse) {
        if case .object(let root)? = try? JSONValue(json: Data(response.body)), case .object(let e)? = root["error"],
            let code = e["code"]?.stringValue
        {
            self.init(code: code, message: e["message"]?.stringValue ?? "", exitCode: Self.exitCode(status: response.status, code: code))
        } else {
            let text = String(decoding: response.body.prefix(200), as: UTF8.self)
            self.init(code: "http_\(response.status)", message: text, exitCode: Self.exitCode(status: response.status, code: ""))
        }
    }

    init(code: String, message: String, exitCode: Int32 = 1) {
        self.code = code
        self.message = message
        self.exitCode = exitCode
    }

    init(_ error: MinkError) {
        let code = error.code == .internalError ? "internal" : error.code.rawValue
        self.init(code: code, message: error.message, exitCode: Self.exitCode(status: nil, code: code))
    }
}

extension ParsableCommand {
    /// Runs a command's body, turning every failure into one line on standard error
    /// (`error: CODE: message`) and the exit code of its kind.
    func reportingErrors(_ body: () async throws -> Void) async throws {
        try await withErrorReporting(body)
    }
}

/// See ``ParsableCommand/reportingErrors(_:)``.
func withErrorReporting(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CLIError {
        Output.error("error: \(error.code): \(error.message)")
        throw ExitCode(error.exitCode)
    } catch let error as MinkError {
        let e = CLIError(error)
        Output.error("error: \(e.code): \(e.message)")
        throw ExitCode(e.exitCode)
    }
}

extension MinkClient {
    /// Sends a request and returns the 2xx body.
    /// - Throws: ``CLIError`` with the server's code for any other status.
    func call(_ method: String, _ path: [String], query: [(String, String)] = [], body: [UInt8]? = nil,
              contentType: String = "application/json") async throws -> [UInt8] {
        let response = try await rawRequest(method, path: path, query: query, body: body, contentType: contentType)
        guard response.isSuccess else { throw CLIError(response: response) }
        return response.body
    }

    /// Sends a request and parses the 2xx JSON body.
    func callJSON(
        _ method: String, _ path: [String], query: [(String, String)] = [], body: [UInt8]? = nil, contentType: String = "application/json"
    ) async throws -> JSONValue {
        let bytes = try await call(method, path, query: query, body: body, contentType: contentType)
        do { return try JSONValue(json: Data(bytes)) } catch {
            throw CLIError(code: "invalid_json", message: "the server's answer is not JSON")
        }
    }
}

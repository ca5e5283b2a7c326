import Foundation
import Mink
import MinkHTTP

/// A response of any status, as ``MinkClient/rawRequest(_:path:query:body:contentType:)`` returns it.
public struct RawResponse: Sendable {
    /// The HTTP status.
    public var status: Int
    /// The body, gunzipped.
    public var body: [UInt8]
    /// The value of a response header, or `nil`.
    public var contentType: String?

    /// Whether the status is 2xx.
    public var isSuccess: Bool { (200..<300).contains(status) }
}

extension MinkClient {
    /// Sends one request to any endpoint and returns the answer whatever its status: for tools
    /// that print the server's JSON as it is (the `mink` command) and for endpoints this client
    /// has no typed method for yet (stream listing and deletion, retention metadata, export and
    /// import; HTTP-API.md sections 5 and 9). Never retried.
    ///
    /// - Parameters:
    ///   - method: the HTTP method.
    ///   - path: the path's segments, not yet percent-encoded (`["v1", "streams", "order/1"]`).
    ///   - query: query parameters, not yet percent-encoded.
    ///   - body: the request body, if any.
    ///   - contentType: the body's media type.
    /// - Throws: `.unavailable` (transient) when the server cannot be reached or the answer is
    ///   not HTTP; `.cancelled` when the task is cancelled.
    public func rawRequest(
        _ method: String, path: [String], query: [(String, String)] = [], body: [UInt8]? = nil,
        contentType: String = "application/json"
    ) async throws -> RawResponse {
        var headers = commonHeaders()
        headers.add(name: "Accept-Encoding", value: "gzip")
        if body != nil { headers.add(name: "Content-Type", value: contentType) }
        let requestTarget = target(path.map(PathEncoding.encode), query: query)
        let request = HTTPClientRequest(method: method, host: host, port: port, target: requestTarget, headers: headers, body: body ?? [])
        do {
            let response = try await http.execute(request)
            return RawResponse(status: response.status, body: try response.decodedBody(), contentType: response.headers["Content-Type"])
        } catch is CancellationError {
            throw MinkError(.cancelled, "\(method) \(requestTarget) was cancelled")
        } catch {
            throw ErrorMapping.transportError(error, method: method, target: requestTarget)
        }
    }
}

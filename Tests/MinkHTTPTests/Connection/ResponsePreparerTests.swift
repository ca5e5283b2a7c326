import Testing
@testable import MinkHTTP

/// `HEAD` answers the head a `GET` of the same resource gets (contract section 1: same
/// headers, no body), streamed responses included.
@Suite(.timeLimit(.minutes(1))) struct ResponsePreparerTests {
    static func headLines(_ prepared: ResponsePreparer.Prepared) -> [String] {
        let bytes: [UInt8]
        switch prepared {
        case .complete(let b, _): bytes = b
        case .stream(let head, _, _, _): bytes = head
        }
        let text = String(decoding: bytes, as: UTF8.self)
        return text.components(separatedBy: "\r\n").filter { !$0.lowercased().hasPrefix("date:") }
    }

    static func closes(_ prepared: ResponsePreparer.Prepared) -> Bool {
        switch prepared {
        case .complete(_, let close), .stream(_, _, let close, _): close
        }
    }

    @Test(arguments: [
        ("text/event-stream", HTTPVersion.http1_1), ("text/event-stream", .http1_0),
        ("application/x-ndjson", .http1_1), ("application/x-ndjson", .http1_0),
    ])
    func headOfAStreamHasTheGetsHead(contentType: String, version: HTTPVersion) throws {
        let response = HTTPResponse(status: 200, headers: ["Content-Type": contentType], body: .stream { _ in })
        func prepare(_ method: String) -> ResponsePreparer.Prepared {
            let request = HTTPRequest(method: method, target: "/s", version: version, headers: ["Host": "x"])
            return ResponsePreparer.prepare(response, for: request, keepAlive: true, gzipMinBytes: 1024)
        }
        let get = prepare("GET"), head = prepare("HEAD")
        #expect(Self.headLines(head) == Self.headLines(get))
        #expect(Self.closes(head) == Self.closes(get))
        guard case .complete(let bytes, _) = head else {
            Issue.record("HEAD must not start the stream")
            return
        }
        #expect(bytes.suffix(4) == Array("\r\n\r\n".utf8), "HEAD has no body")
        let chunked = Self.headLines(head).contains { $0.lowercased() == "transfer-encoding: chunked" }
        #expect(chunked == (contentType != "text/event-stream" && version == .http1_1),
                "chunked only where the GET is chunked (never on HTTP/1.0)")
    }
}

import Foundation
import Testing
@testable import MinkHTTP

/// One record of `Resources/http_requests.json` (see the conformance README).
struct Vector: Decodable, Sendable, CustomTestStringConvertible {
    var name: String
    var raw: String
    var valid: Bool
    var lenient: Bool?
    var requests: Int?
    var expect_close: Bool?
    var head: Bool?
    var also_ok: [Int]?
    var must_close: Bool?
    var max_responses: Int?

    var bytes: [UInt8] { Array(Data(base64Encoded: raw)!) }
    var testDescription: String { name }

    static let all: [Vector] = {
        let url = Bundle.module.url(forResource: "Resources/http_requests", withExtension: "json")!
        return try! JSONDecoder().decode([Vector].self, from: Data(contentsOf: url))
    }()
}

/// What a parser made of an input: the requests it returned and how it stopped.
struct ParseOutcome: Equatable, CustomStringConvertible {
    struct Summary: Equatable {
        var method: String
        var target: String
        var version: HTTPVersion
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    var requests: [Summary] = []
    var error: HTTPParseError?
    var midRequest = false

    var description: String {
        "\(requests.map { "\($0.method) \($0.target) body=\($0.body.count)" }) error=\(String(describing: error)) mid=\(midRequest)"
    }

    /// Feeds `chunks` in order, draining requests after each one.
    static func parse(_ chunks: [ArraySlice<UInt8>], limits: HTTPParserLimits = HTTPParserLimits()) -> ParseOutcome {
        var parser = HTTPRequestParser(limits: limits)
        var outcome = ParseOutcome()
        outer: for chunk in chunks {
            parser.feed(chunk)
            do {
                while let r = try parser.next() {
                    outcome.requests.append(Summary(method: r.method, target: r.target, version: r.version, headers: r.headers, body: r.body))
                }
            } catch {
                outcome.error = error
                break outer
            }
        }
        outcome.midRequest = parser.isMidRequest
        return outcome
    }
}

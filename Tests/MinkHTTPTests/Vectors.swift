import Foundation
import MinkTestFixtures
import Testing
@testable import MinkHTTP

/// The vectors, under the name these tests use.
typealias Vector = RequestVector

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

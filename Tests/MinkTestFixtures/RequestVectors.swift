import Foundation
import Testing

/// One record of `../shared/conformance/http_requests.json` (copied to
/// `Tests/MinkHTTPTests/Resources/`; see the conformance README): a raw request and its verdict.
/// Used by the parser's and the server's tests alike.
public struct RequestVector: Decodable, Sendable, CustomTestStringConvertible {
    public var name: String
    public var raw: String
    public var valid: Bool
    public var lenient: Bool?
    public var requests: Int?
    public var expect_close: Bool?
    public var head: Bool?
    public var also_ok: [Int]?
    public var must_close: Bool?
    public var max_responses: Int?

    /// The request's bytes (`raw` is base64).
    public var bytes: [UInt8] { Array(Data(base64Encoded: raw)!) }
    public var testDescription: String { name }

    /// Every vector of the file.
    public static let all: [RequestVector] = {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("MinkHTTPTests/Resources/http_requests.json")
        return try! JSONDecoder().decode([RequestVector].self, from: Data(contentsOf: file))
    }()
}

import Testing
@testable import MinkHTTP

@Test func vectorsAreBundled() throws {
    let url = try #require(Bundle.module.url(forResource: "Resources/http_requests", withExtension: "json"))
    #expect(try Data(contentsOf: url).count > 1000)
}
import Foundation

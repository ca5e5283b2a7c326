import Foundation
import Testing
@testable import MinkHTTP

/// Inputs found by `Fuzz/run.sh`, fed with the harness's limits at every split.
@Suite(.timeLimit(.minutes(3))) struct HTTPRequestParserFuzzRegressionTests {
    static let limits = HTTPParserLimits(
        maxRequestLineBytes: 512, maxHeaderBytes: 1024, maxHeaderCount: 16, maxBodyBytes: 4096, maxChunkLineBytes: 128)

    static let inputs: [String] = {
        let dir = Bundle.module.url(forResource: "Resources/fuzz", withExtension: nil)!
        return (try? FileManager.default.contentsOfDirectory(atPath: dir.path))?.sorted() ?? []
    }()

    @Test func haveInputs() { #expect(!Self.inputs.isEmpty) }

    @Test(arguments: inputs)
    func sameOutcomeAtEverySplit(_ name: String) throws {
        let url = Bundle.module.url(forResource: "Resources/fuzz/\(name)", withExtension: nil)!
        let bytes = Array(try Data(contentsOf: url))
        let whole = ParseOutcome.parse([bytes[...]], limits: Self.limits)
        for cut in 0...bytes.count {
            let split = ParseOutcome.parse([bytes[..<cut], bytes[cut...]], limits: Self.limits)
            #expect(split == whole, "split at \(cut): \(whole) vs \(split)")
            if split != whole { break }
        }
    }
}

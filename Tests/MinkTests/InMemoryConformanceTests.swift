import Mink
import MinkTesting
import Testing

@Suite("In-memory storage conformance", .timeLimit(.minutes(3)))
struct InMemoryConformanceTests {
    @Test(arguments: AdapterConformance.cases)
    func conformance(_ check: AdapterConformance.Case) async throws {
        try await check.run { ConformanceStorage(InMemoryStorage()) }
    }
}

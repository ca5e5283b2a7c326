import Foundation
import Mink
import MinkServer
import Testing

/// Storage failures as the API answers them (HTTP-API.md section 3): a transient one is
/// `503 unavailable` with `Retry-After`, anything unexpected is `500 internal` whose body
/// carries the request ID and nothing of the cause; both end when the storage recovers.
@Suite("Storage failures over HTTP", .timeLimit(.minutes(3)))
struct StorageFailureTests {
    /// What a driver might put in an error: it must never reach a client.
    struct DriverFailure: Error, CustomStringConvertible {
        var description: String { "SECRET: syntax error at or near \"SELECT password FROM users\"" }
    }

    @Test func transientFailuresAre503AndOthers500WithOnlyTheRequestID() async throws {
        let (storage, spy) = SpyStorage.make()
        try await withServer(storage: storage) { s in
            try await s.request("POST", "/v1/streams/s-1", json: appendBody(["A"]))

            spy.fault.withLock { $0 = MinkError.unavailable("connection refused") }
            let unavailable = try await s.request("GET", "/v1/streams/s-1")
            #expect(unavailable.status == 503 && unavailable.errorCode == "unavailable", "\(unavailable.text)")
            #expect(unavailable.headers["Retry-After"] != nil)
            #expect(unavailable["error"]?.objectValue?["details"]?.objectValue != nil, "details is always present")
            #expect(try await s.request("GET", "/v1/events/head").status == 503)

            spy.fault.withLock { $0 = DriverFailure() }
            let id = "req-\(UUID().uuidString)"
            let failed = try await s.request("GET", "/v1/streams/s-1", headers: [("X-Request-ID", id)])
            #expect(failed.status == 500 && failed.errorCode == "internal", "\(failed.text)")
            let requestID = try #require(failed.headers["X-Request-ID"])
            #expect(requestID == id, "the client's request ID is kept")
            let message = failed["error"]?.objectValue?["message"]?.stringValue ?? ""
            #expect(message.contains(requestID), "\(message)")
            #expect(!failed.text.contains("SECRET") && !failed.text.contains("SELECT"), "\(failed.text)")
            #expect(failed["error"]?.objectValue?["details"]?.objectValue != nil)

            spy.fault.withLock { $0 = nil }
            #expect(try await s.request("GET", "/v1/streams/s-1").status == 200, "answers again once storage does")
        }
    }
}

import Foundation
import Mink
import MinkHTTP
import MinkServer
import MinkWire
import Testing

/// A stream subscription applies the stream's retention rules (HTTP-API.md section 5) to what
/// it reads from storage, as a load does: `maxCount`, `maxAgeSeconds` and `truncateBefore`
/// exclude the same events from its catch-up as from `GET /v1/streams/{id}`; live events are
/// delivered unless a `truncateBefore` above them excludes them.
@Suite("Stream subscriptions apply retention", .timeLimit(.minutes(3)))
struct StreamSubscriptionRetentionTests {
    /// The versions of the messages up to `caught-up`, and its position.
    static func catchUp(_ s: TestServer, _ target: String, headers: [(String, String)] = []) async throws -> (versions: [Int64], caughtUp: Int64?) {
        let messages = try await s.sse(target, headers: headers) { $0.last?.event == "caught-up" }
        let versions = messages.filter { $0.event == "message" }.compactMap { Int64($0.lastEventID) }
        let caughtUp = messages.last.flatMap { (try? JSONValue(jsonString: $0.data))?.objectValue?["position"]?.int64Value }
        return (versions, caughtUp)
    }

    /// The versions `GET /v1/streams/{id}` returns.
    static func load(_ s: TestServer, _ stream: String, headers: [(String, String)] = []) async throws -> [Int64] {
        let r = try await s.request("GET", "/v1/streams/\(stream)", headers: headers)
        return (r["events"]?.arrayValue ?? []).compactMap { $0.objectValue?["version"]?.int64Value }
    }

    @Test(arguments: StorageKind.allCases)
    func catchUpSkipsWhatALoadSkips(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            // maxCount: only the newest two of five.
            #expect(try await s.request("PUT", "/v1/streams/count-1/metadata", json: #"{"maxCount":2}"#).status == 200)
            try await s.request("POST", "/v1/streams/count-1", json: appendBody(["A", "B", "C", "D", "E"]))
            #expect(try await Self.load(s, "count-1") == [4, 5])
            var r = try await Self.catchUp(s, "/v1/subscriptions/streams/count-1")
            #expect(r.versions == [4, 5] && r.caughtUp == 5, "\(r)")
            // A start after the first kept version is kept; a resume by Last-Event-ID too.
            r = try await Self.catchUp(s, "/v1/subscriptions/streams/count-1?after=4")
            #expect(r.versions == [5] && r.caughtUp == 5, "\(r)")
            r = try await Self.catchUp(s, "/v1/subscriptions/streams/count-1", headers: [("Last-Event-ID", "1")])
            #expect(r.versions == [4, 5], "\(r)")

            // truncateBefore, with the type filter on top.
            try await s.request("POST", "/v1/streams/trunc-1", json: appendBody(["A", "B", "A", "B", "A"]))
            #expect(try await s.request("PUT", "/v1/streams/trunc-1/metadata", json: #"{"truncateBefore":3}"#).status == 200)
            r = try await Self.catchUp(s, "/v1/subscriptions/streams/trunc-1?type=A")
            #expect(r.versions == [3, 5] && r.caughtUp == 5, "\(r)")

            // maxAgeSeconds: events older than the rule are skipped, newer ones delivered. The old
            // events are imported with a timestamp of 2020 into a tenant of their own (a commit
            // sets the time itself), so no clock or load can make the test pass or fail by itself.
            let aged = [("Mink-Tenant", "aged")]
            let old = (1...2).map { i in
                #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"age-1","type":"Old","data":{},"version":\#(i),"globalPosition":\#(i),"timestamp":"2020-01-01T00:00:0\#(i).000000Z"}"#
            }.joined(separator: "\n")
            let imported = try await s.request("POST", "/v1/admin/import", json: old, headers: aged + [("Content-Type", "application/x-ndjson")])
            #expect(imported.status == 200, "\(imported.text)")
            try await s.request("POST", "/v1/streams/age-1", json: appendBody(["New"]), headers: aged)
            #expect(try await s.request("PUT", "/v1/streams/age-1/metadata", json: #"{"maxAgeSeconds":86400}"#, headers: aged).status == 200)
            #expect(try await Self.load(s, "age-1", headers: aged) == [3])
            r = try await Self.catchUp(s, "/v1/subscriptions/streams/age-1", headers: aged)
            #expect(r.versions == [3] && r.caughtUp == 3, "\(r)")

            // The global log and the other subscriptions are not retention reads: they see every
            // stored event until the scavenger removes it (HTTP-API.md section 5).
            let all = try await collect(s, "/v1/subscriptions/all") { $0.last?.event == "caught-up" }
            #expect(all.filter { $0.event == "message" }.count == 10)
        }
    }

    @Test(arguments: StorageKind.allCases)
    func liveEventsBelowTruncateBeforeAreNotDelivered(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            // A rule above the stream's version: nothing is kept yet, and `caught-up` names the
            // stream's version, not the rule's.
            #expect(try await s.request("PUT", "/v1/streams/t-1/metadata", json: #"{"truncateBefore":5,"maxCount":100}"#).status == 200)
            try await s.request("POST", "/v1/streams/t-1", json: appendBody(["A", "B"]))
            var live = s.client.events(host: "127.0.0.1", port: s.port, target: "/v1/subscriptions/streams/t-1", readTimeout: .seconds(10))
                .makeAsyncIterator()
            var before: [SSEEvent] = []
            while let e = try await live.next() {
                before.append(e)
                if e.event == "caught-up" { break }
            }
            #expect(before.filter { $0.event == "message" }.isEmpty, "\(before)")
            #expect(before.last?.data == #"{"position":2}"#)
            // Versions 3 and 4 are below the rule, 5 and 6 are kept: only those arrive.
            try await s.request("POST", "/v1/streams/t-1", json: appendBody(["C", "D"]))
            try await s.request("POST", "/v1/streams/t-1", json: appendBody(["E", "F"]))
            var delivered: [String] = []
            while delivered.count < 2, let e = try await live.next() {
                if e.event == "message" { delivered.append(e.lastEventID) }
            }
            #expect(delivered == ["5", "6"])
            #expect(try await Self.load(s, "t-1") == [5, 6])
        }
    }
}

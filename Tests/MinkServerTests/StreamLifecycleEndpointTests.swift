import Foundation
import Mink
import MinkHTTP
import MinkSQLite
import MinkServer
import MinkWire
import Testing

/// Listing, deletion, tombstones, reserved names, retention and the scavenger over HTTP
/// (HTTP-API.md sections 5, 6, 7 and 9).
@Suite("Stream life cycle over HTTP", .timeLimit(.minutes(3)))
struct StreamLifecycleEndpointTests {
    @Test(arguments: StorageKind.allCases)
    func softDeleteKeepsTheVersionAndRecordsTheDeletion(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A", "B", "C"]))
            #expect(try await s.request("PUT", "/v1/streams/order-1/snapshot", json: #"{"version":3,"state":{"n":3}}"#).status == 200)
            var r = try await s.request("DELETE", "/v1/streams/order-1?expectedVersion=2")
            #expect(r.status == 409 && r.errorCode == "concurrency_conflict")
            r = try await s.request("DELETE", "/v1/streams/order-1?expectedVersion=3")
            #expect(r.status == 200)
            #expect(r.text == #"{"streamId":"order-1","deletedEvents":3,"lastVersion":3,"hard":false,"position":4}"#)
            #expect(try await s.request("GET", "/v1/streams/order-1").errorCode == "stream_not_found")
            #expect(try await s.request("GET", "/v1/streams/order-1/info").status == 404)
            #expect(try await s.request("GET", "/v1/streams/order-1/snapshot").status == 404)
            #expect(try await s.request("DELETE", "/v1/streams/order-1").errorCode == "stream_not_found")
            #expect(try await s.request("DELETE", "/v1/streams/never-1").errorCode == "stream_not_found")

            // The record, in the global log (the deleted positions are skipped).
            r = try await s.request("GET", "/v1/events")
            let events = r["events"]?.arrayValue ?? []
            #expect(events.count == 1)
            let record = events.first?.objectValue
            #expect(record?["streamId"] == "$deletions" && record?["type"] == "$StreamDeleted" && record?["globalPosition"] == .int(4))
            #expect(record?["data"] == ["streamId": "order-1", "lastVersion": .int(3), "deletedEvents": .int(3), "hard": false])

            // The next append counts the stream as new and continues after the deleted version.
            r = try await s.request("POST", "/v1/streams/order-1", json: appendBody(["D"], expected: #""stream_exists""#))
            #expect(r.status == 404 && r.errorCode == "stream_not_found")
            r = try await s.request("POST", "/v1/streams/order-1", json: appendBody(["D"], expected: "0"))
            #expect(r.status == 201 && r["fromVersion"] == .int(4) && r["fromPosition"] == .int(5))
            r = try await s.request("GET", "/v1/streams/order-1/info")
            #expect(r["version"] == .int(4) && r["eventCount"] == .int(1))
        }
    }

    @Test(arguments: StorageKind.allCases)
    func hardDeleteAnswers410ToEverything(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            try await s.request("POST", "/v1/streams/gdpr-7", json: appendBody(["A", "B"]))
            var r = try await s.request("DELETE", "/v1/streams/gdpr-7?hard=true&expectedVersion=2")
            #expect(r.text == #"{"streamId":"gdpr-7","deletedEvents":2,"lastVersion":2,"hard":true,"position":3}"#)
            let attempts: [(String, String, String?)] = [
                ("GET", "/v1/streams/gdpr-7", nil), ("GET", "/v1/streams/gdpr-7/info", nil),
                ("POST", "/v1/streams/gdpr-7", appendBody(["C"])), ("POST", "/v1/streams/gdpr-7", appendBody(["C"], expected: "0")),
                ("GET", "/v1/streams/gdpr-7/snapshot", nil), ("PUT", "/v1/streams/gdpr-7/snapshot", #"{"version":1,"state":{}}"#),
                ("GET", "/v1/streams/gdpr-7/metadata", nil), ("PUT", "/v1/streams/gdpr-7/metadata", #"{"maxCount":1}"#),
                ("DELETE", "/v1/streams/gdpr-7", nil), ("DELETE", "/v1/streams/gdpr-7?hard=true", nil),
                ("GET", "/v1/subscriptions/streams/gdpr-7", nil),
            ]
            for (method, path, body) in attempts {
                r = try await s.request(method, path, json: body)
                #expect(r.status == 410 && r.errorCode == "stream_deleted", "\(method) \(path): \(r.status) \(r.text)")
            }
            #expect(try await s.request("GET", "/v1/events/head")["position"] == .int(3), "nothing was written")
            // A soft-deleted stream may still be deleted hard.
            try await s.request("POST", "/v1/streams/gdpr-8", json: appendBody(["A"]))
            #expect(try await s.request("DELETE", "/v1/streams/gdpr-8").status == 200)
            r = try await s.request("DELETE", "/v1/streams/gdpr-8?hard=true")
            #expect(r.status == 200 && r["deletedEvents"] == .int(0) && r["lastVersion"] == .int(1))
        }
    }

    @Test func badDeletionsAndReservedNames() async throws {
        try await withServer { s in
            try await s.request("POST", "/v1/streams/a-1", json: appendBody(["A"]))
            #expect(try await s.request("DELETE", "/v1/streams/a-1?hard=maybe").errorCode == "bad_request")
            #expect(try await s.request("DELETE", "/v1/streams/a-1?expectedVersion=-1").errorCode == "bad_request")
            #expect(try await s.request("DELETE", "/v1/streams/a-1?expectedVersion=x").errorCode == "bad_request")
            // A misspelt parameter is refused, not ignored: the deletion would have run without
            // its check, or soft instead of hard.
            for target in ["/v1/streams/a-1?expectedversion=5", "/v1/streams/a-1?Hard=true", "/v1/streams/a-1?hard=true&force=1"] {
                let r = try await s.request("DELETE", target)
                #expect(r.status == 400 && r.errorCode == "bad_request" && r.text.contains("unknown query parameter"), "\(target): \(r.text)")
            }
            #expect(try await s.request("GET", "/v1/streams/a-1/info")["version"] == .int(1), "the stream is still there")
            #expect(try await s.request("DELETE", "/v1/streams/%24deletions").errorCode == "invalid_stream_id")
            var r = try await s.request("POST", "/v1/streams/%24mine", json: appendBody(["A"]))
            #expect(r.status == 400 && r.errorCode == "invalid_stream_id")
            r = try await s.request("POST", "/v1/streams/a-1", json: appendBody(["$Mine"]))
            #expect(r.status == 422 && r.errorCode == "validation_failed")
            #expect(try await s.request("PUT", "/v1/streams/%24deletions/metadata", json: "{}").errorCode == "invalid_stream_id")
            #expect(try await s.request("PUT", "/v1/streams/%24deletions/snapshot", json: #"{"version":1,"state":1}"#).errorCode == "invalid_stream_id")
            #expect(try await s.request("GET", "/v1/streams/%24deletions/snapshot").status == 404, "no snapshot was stored")
            #expect(try await s.request("GET", "/v1/events/head")["position"] == .int(1), "nothing was written")
            // `$deletions` itself is readable.
            _ = try await s.request("DELETE", "/v1/streams/a-1")
            r = try await s.request("GET", "/v1/streams/%24deletions")
            #expect(r.status == 200 && r["version"] == .int(1))
        }
    }

    @Test(arguments: StorageKind.allCases)
    func listingPagesBytewise(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            for id in ["order-2", "order-10", "user-1", "order", "orders-1", "gone-1"] {
                try await s.request("POST", "/v1/streams/\(id)", json: appendBody(["A"]))
            }
            try await s.request("POST", "/v1/streams/order-2", json: appendBody(["B"]))
            try await s.request("DELETE", "/v1/streams/gone-1")
            var ids: [String] = []
            var after: String?
            for _ in 0..<10 {
                let r = try await s.request("GET", "/v1/streams?limit=2" + (after.map { "&after=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" } ?? ""))
                #expect(r.status == 200)
                ids += (r["streams"]?.arrayValue ?? []).compactMap { $0.objectValue?["streamId"]?.stringValue }
                after = r["next"]?.stringValue
                if after == nil { break }
            }
            #expect(ids == ["$deletions", "order", "order-10", "order-2", "orders-1", "user-1"])
            // A page that ends exactly at the last stream is the last page: `next` is null (no
            // empty page after it); one stream before the end, it is not.
            var page = try await s.request("GET", "/v1/streams?limit=6")
            #expect(page["streams"]?.arrayValue?.count == 6 && page["next"] == .null, "\(page.text)")
            page = try await s.request("GET", "/v1/streams?limit=5")
            #expect(page["streams"]?.arrayValue?.count == 5 && page["next"] == "orders-1", "\(page.text)")
            page = try await s.request("GET", "/v1/streams?limit=1&after=orders-1")
            #expect(page["streams"]?.arrayValue?.count == 1 && page["next"] == .null, "\(page.text)")
            var r = try await s.request("GET", "/v1/streams?category=order")
            #expect((r["streams"]?.arrayValue ?? []).compactMap { $0.objectValue?["streamId"]?.stringValue } == ["order", "order-10", "order-2"])
            #expect(r["next"] == .null)
            let two = r["streams"]?.arrayValue?.last?.objectValue
            #expect(two?["category"] == "order" && two?["version"] == .int(2) && two?["eventCount"] == .int(2))
            #expect(two?["createdAt"]?.stringValue?.hasSuffix("Z") == true && two?["updatedAt"] != nil)
            r = try await s.request("GET", "/v1/streams?prefix=order-1")
            #expect((r["streams"]?.arrayValue ?? []).compactMap { $0.objectValue?["streamId"]?.stringValue } == ["order-10"])
            for bad in ["limit=0", "limit=1001", "limit=x", "after=a%01b"] {
                #expect(try await s.request("GET", "/v1/streams?\(bad)").errorCode == "bad_request", "\(bad)")
            }
            // Another tenant lists nothing of these.
            r = try await s.request("GET", "/v1/streams", headers: [("Mink-Tenant", "acme")])
            #expect(r.status == 200 && r["streams"] == [])
        }
    }

    /// A subscriber catching up from the hub's memory of recent events (a `Last-Event-ID`
    /// reconnect) is never sent a deleted or scavenged event: they are gone from storage, and
    /// from that memory too.
    @Test(arguments: StorageKind.allCases)
    func catchUpFromMemorySkipsDeletedAndScavengedEvents(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            func ids(after: Int) async throws -> [String] {
                try await s.caughtUp("/v1/subscriptions/all?after=\(after)", headers: []).map(\.lastEventID)
            }
            // A first subscriber starts the hub; the appends after it go into its memory.
            #expect(try await ids(after: 0) == [])
            for (stream, data) in [("a-1", #"{"n":1}"#), ("secret-1", #"{"ssn":"123-45-6789"}"#), ("a-2", #"{"n":2}"#)] {
                let r = try await s.request("POST", "/v1/streams/\(stream)", json: #"{"events":[{"type":"T","data":\#(data)}]}"#)
                try #require(r.status == 201, "\(r.text)")
            }
            #expect(try await ids(after: 1) == ["2", "3"])
            let d = try await s.request("DELETE", "/v1/streams/secret-1")
            #expect(d.status == 200 && d["position"] == .int(4), "\(d.text)")
            let afterDelete = try await s.sse("/v1/subscriptions/all?after=1", headers: []) { $0.last?.event == "caught-up" }
            #expect(afterDelete.filter { $0.event == "message" }.map(\.lastEventID) == ["3", "4"])
            #expect(!afterDelete.contains { $0.data.contains("123-45-6789") })
            // Retention then the scavenger: events 5 and 6 go, 7 stays.
            try #require(try await s.request("PUT", "/v1/streams/r-1/metadata", json: #"{"maxCount":1}"#).status == 200)
            for i in 1...3 {
                try #require(try await s.request("POST", "/v1/streams/r-1", json: #"{"events":[{"type":"T","data":{"i":\#(i)}}]}"#).status == 201)
            }
            #expect(try await ids(after: 4) == ["5", "6", "7"], "the log keeps them until the scavenger runs")
            #expect(try await s.request("POST", "/v1/admin/scavenge").text == #"{"deletedEvents":2}"#)
            #expect(try await ids(after: 4) == ["7"])
            #expect(try await ids(after: 0) == ["1", "3", "4", "7"])
        }
    }

    /// `info` counts what `maxAgeSeconds` keeps at once, as a read does: a stream imported with
    /// six events from 2020 and four from now (each count, so the binary search meets both
    /// sides).
    @Test(arguments: StorageKind.allCases)
    func infoCountsWhatMaxAgeKeeps(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            let now = WireTimestamp(Date()).description
            for (old, recent) in [(6, 4), (0, 3), (5, 0), (1, 9)] {
                let stream = "aged-\(old)-\(recent)"
                var lines: [String] = []
                for v in 1...(old + recent) {
                    let time = v <= old ? "2020-01-01T00:00:00.000000Z" : now
                    lines.append(#"{"id":"\#(UUID().uuidString.lowercased())","streamId":"\#(stream)","type":"T","data":{"v":\#(v)},"version":\#(v),"globalPosition":\#(v),"timestamp":"\#(time)"}"#)
                }
                var h = HTTPHeaders()
                h.add(name: "Content-Type", value: "application/x-ndjson")
                h.add(name: "Mink-Tenant", value: stream)
                let imported = try await s.client.execute(HTTPClientRequest(
                    method: "POST", host: "127.0.0.1", port: s.port, target: "/v1/admin/import", headers: h,
                    body: Array((lines.joined(separator: "\n") + "\n").utf8)))
                try #require(imported.status == 200, "\(String(decoding: imported.body, as: UTF8.self))")
                let tenant = [("Mink-Tenant", stream)]
                try #require(try await s.request("PUT", "/v1/streams/\(stream)/metadata", json: #"{"maxAgeSeconds":3600}"#, headers: tenant).status == 200)
                let info = try await s.request("GET", "/v1/streams/\(stream)/info", headers: tenant)
                #expect(info["eventCount"] == .int(Int64(recent)) && info["version"] == .int(Int64(old + recent)), "\(stream): \(info.text)")
                let load = try await s.request("GET", "/v1/streams/\(stream)", headers: tenant)
                #expect(load["events"]?.arrayValue?.count == recent, "\(stream): \(load.text)")
            }
        }
    }

    /// The listing applies retention as reads and `info` do: `eventCount` counts what a read
    /// returns, and a stream none of whose events a read returns is not listed (the next
    /// streams fill the page, and `next` stays right).
    @Test(arguments: StorageKind.allCases)
    func listingAppliesRetention(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            for id in ["ret-1", "ret-2", "ret-3", "ret-4"] {
                let r = try await s.request("POST", "/v1/streams/\(id)", json: appendBody(["A", "B", "C"]))
                try #require(r.status == 201, "\(r.text)")
            }
            try #require(try await s.request("PUT", "/v1/streams/ret-1/metadata", json: #"{"maxCount":2}"#).status == 200)
            try #require(try await s.request("PUT", "/v1/streams/ret-2/metadata", json: #"{"truncateBefore":100}"#).status == 200)
            try #require(try await s.request("PUT", "/v1/streams/ret-3/metadata", json: #"{"truncateBefore":3}"#).status == 200)
            func page(_ query: String) async throws -> (ids: [String], counts: [Int64], next: JSONValue?) {
                let r = try await s.request("GET", "/v1/streams?prefix=ret&\(query)")
                let items = r["streams"]?.arrayValue ?? []
                return (items.compactMap { $0.objectValue?["streamId"]?.stringValue },
                        items.compactMap { $0.objectValue?["eventCount"]?.int64Value }, r["next"])
            }
            var p = try await page("limit=10")
            #expect(p.ids == ["ret-1", "ret-3", "ret-4"] && p.counts == [2, 1, 3] && p.next == .null, "\(p)")
            // A page of two skips ret-2 and still fills; the last page says so.
            p = try await page("limit=2")
            #expect(p.ids == ["ret-1", "ret-3"] && p.next == "ret-3", "\(p)")
            p = try await page("limit=2&after=ret-3")
            #expect(p.ids == ["ret-4"] && p.next == .null, "\(p)")
            // As info and a read say.
            #expect(try await s.request("GET", "/v1/streams/ret-2/info")["eventCount"] == .int(0))
            #expect(try await s.request("GET", "/v1/streams/ret-1/info")["eventCount"] == .int(2))
        }
    }

    /// Extreme rules: a `maxAgeSeconds` past 1,000 years is `422` (one near 2^63 made the
    /// scavenger overflow and crash the process); the largest allowed rules and a scavenger pass
    /// over them keep every event.
    @Test(arguments: StorageKind.allCases)
    func extremeRetentionRules(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            try #require(try await s.request("POST", "/v1/streams/x-1", json: appendBody(["A", "B"])).status == 201)
            try #require(try await s.request("POST", "/v1/streams/x-2", json: appendBody(["A"])).status == 201)
            let max = Int64.max
            let refused = try await s.request("PUT", "/v1/streams/x-1/metadata", json: #"{"maxAgeSeconds":\#(max)}"#)
            #expect(refused.status == 422 && refused.errorCode == "validation_failed" && refused.text.contains("at most"), "\(refused.text)")
            let put = try await s.request("PUT", "/v1/streams/x-1/metadata", json: #"{"maxCount":\#(max),"maxAgeSeconds":31557600000,"truncateBefore":1}"#)
            #expect(put.status == 200, "\(put.text)")
            let scavenged = try await s.request("POST", "/v1/admin/scavenge")
            #expect(scavenged.text == #"{"deletedEvents":0}"#, "\(scavenged.text)")
            #expect(try await s.request("GET", "/v1/streams/x-1/info")["eventCount"] == .int(2))
            #expect(try await s.request("GET", "/healthz").status == 200)
        }
    }

    @Test(arguments: StorageKind.allCases)
    func retentionAtReadTimeThenScavenged(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            var r = try await s.request("GET", "/v1/streams/tele-1/metadata")
            #expect(r.status == 200 && r.text == "{}")
            #expect(try await s.request("PUT", "/v1/streams/tele-1/metadata", json: "{nope").errorCode == "invalid_json")
            #expect(try await s.request("PUT", "/v1/streams/tele-1/metadata", json: #"{"maxCnt":1}"#).errorCode == "bad_request")
            #expect(try await s.request("PUT", "/v1/streams/tele-1/metadata", json: #"{"maxCount":"2"}"#).errorCode == "bad_request")
            #expect(try await s.request("PUT", "/v1/streams/tele-1/metadata", json: #"{"maxCount":0}"#).errorCode == "validation_failed")
            #expect(try await s.request("PUT", "/v1/streams/tele-1/metadata", json: "[]").errorCode == "bad_request")
            r = try await s.request("PUT", "/v1/streams/tele-1/metadata", json: #"{"maxCount":2,"maxAgeSeconds":null}"#)
            #expect(r.status == 200 && r.text == #"{"maxCount":2}"#)
            #expect(try await s.request("GET", "/v1/streams/tele-1/metadata").text == #"{"maxCount":2}"#)

            try await s.request("POST", "/v1/streams/tele-1", json: appendBody(["A", "B", "C", "D", "E"]))
            try await s.request("POST", "/v1/streams/other-1", json: appendBody(["X"]))
            r = try await s.request("GET", "/v1/streams/tele-1?from=1")
            #expect((r["events"]?.arrayValue ?? []).compactMap { $0.objectValue?["version"]?.int64Value } == [4, 5])
            #expect(r["version"] == .int(5))
            r = try await s.request("GET", "/v1/streams/tele-1/info")
            #expect(r["version"] == .int(5) && r["eventCount"] == .int(2))

            r = try await s.request("POST", "/v1/admin/scavenge")
            #expect(r.status == 200 && r.text == #"{"deletedEvents":3}"#)
            // Physically gone: the adapter itself no longer has them, nor the global log.
            let stored = try await s.server.store.adapter.readStream("tele-1", from: 1, limit: 10, direction: .forward)
            #expect(stored.map(\.version) == [4, 5])
            r = try await s.request("GET", "/v1/events")
            #expect((r["events"]?.arrayValue ?? []).compactMap { $0.objectValue?["globalPosition"]?.int64Value } == [4, 5, 6])
            #expect(try await s.request("POST", "/v1/admin/scavenge").text == #"{"deletedEvents":0}"#)
            r = try await s.request("PUT", "/v1/streams/tele-1/metadata", json: "{}")
            #expect(r.status == 200 && r.text == "{}")
        }
    }

    @Test(arguments: StorageKind.allCases)
    func deletionRecordReachesAllSubscribersAndEndsStreamSubscriptions(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            try await s.request("POST", "/v1/streams/acct-1", json: appendBody(["A"]))
            let all = try await RawConnection.open(port: s.port)
            try await all.send("GET /v1/subscriptions/all HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try await all.read(until: { $0.contains("event: caught-up") }, timeout: .seconds(10))
            let one = try await RawConnection.open(port: s.port)
            try await one.send("GET /v1/subscriptions/streams/acct-1 HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try await one.read(until: { $0.contains("event: caught-up") }, timeout: .seconds(10))

            #expect(try await s.request("DELETE", "/v1/streams/acct-1?hard=true").status == 200)
            let text = try await all.read(until: { $0.contains("$StreamDeleted") }, timeout: .seconds(10))
            #expect(text.contains("id: 2\n") && text.contains(#""streamId":"$deletions""#))
            // The stream's own subscription ends: the server closes the event stream (its body
            // is delimited by the close).
            #expect(try await one.readUntilClosed(timeout: .seconds(10)), "the stream subscription ended")
            all.close()
            one.close()
        }
    }

    @Test func tombstoneSurvivesARestart() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-tomb-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func storage() async throws -> ServerStorage {
            let s = try await SQLiteStorage.open(directory: dir, strategy: .database)
            return ServerStorage(events: s, snapshots: s, readModels: s, kind: "sqlite", close: { await s.close() })
        }
        try await withServer(storage: try await storage()) { s in
            try await s.request("POST", "/v1/streams/p-1", json: appendBody(["A"]), headers: [("Mink-Tenant", "acme")])
            #expect(try await s.request("DELETE", "/v1/streams/p-1?hard=true", headers: [("Mink-Tenant", "acme")]).status == 200)
        }
        try await withServer(storage: try await storage()) { s in
            let r = try await s.request("POST", "/v1/streams/p-1", json: appendBody(["A"]), headers: [("Mink-Tenant", "acme")])
            #expect(r.status == 410 && r.errorCode == "stream_deleted")
            #expect(try await s.request("POST", "/v1/streams/p-1", json: appendBody(["A"])).status == 201, "the tombstone is acme's")
        }
    }
}

import Foundation
import Mink
import MinkHTTP
import MinkPostgres
import MinkSQLite
import MinkServer
import MinkTestFixtures
import MinkWire
import Testing

/// `GET /v1/admin/export` and `POST /v1/admin/import` (HTTP-API.md section 9) on every storage.
@Suite("Export and import", .timeLimit(.minutes(3)))
struct ExportImportTests {
    static let ndjson = [("Content-Type", "application/x-ndjson")]

    /// Appends a small, varied log to `tenant`: three streams, metadata, custom metadata.
    static func seed(_ s: TestServer, tenant: String, count: Int = 12) async throws {
        for i in 0..<count {
            let body = #"{"metadata":{"correlationId":"c-\#(i)","custom":{"k":"v\#(i)"}},"events":[{"type":"T\#(i % 3)","data":{"i":\#(i),"s":"x\u00e9"}}]}"#
            let r = try await s.request("POST", "/v1/streams/order-\(i % 3)", json: body, headers: [("Mink-Tenant", tenant)])
            try #require(r.status == 201, "\(r.text)")
        }
    }

    static func export(_ s: TestServer, tenant: String, after: Int = 0, gzip: Bool = false) async throws -> TestServer.Reply {
        var headers = [("Mink-Tenant", tenant)]
        if gzip { headers.append(("Accept-Encoding", "gzip")) }
        return try await s.request("GET", "/v1/admin/export?after=\(after)", headers: headers)
    }

    static func importBody(_ s: TestServer, tenant: String, _ body: [UInt8], gzip: Bool = false) async throws -> TestServer.Reply {
        var h = HTTPHeaders()
        h.add(name: "Content-Type", value: "application/x-ndjson")
        h.add(name: "Mink-Tenant", value: tenant)
        if gzip { h.add(name: "Content-Encoding", value: "gzip") }
        let r = try await s.client.execute(HTTPClientRequest(
            method: "POST", host: "127.0.0.1", port: s.port, target: "/v1/admin/import", headers: h, body: body
        ))
        return TestServer.Reply(status: r.status, headers: r.headers, body: r.body)
    }

    @Test(arguments: StorageKind.allCases)
    func exportThenImportKeepsEveryFieldAndAppendsContinue(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            try await Self.seed(s, tenant: "source")
            let exported = try await Self.export(s, tenant: "source")
            #expect(exported.status == 200)
            #expect(exported.headers["Content-Type"] == "application/x-ndjson")
            let lines = exported.text.split(separator: "\n")
            #expect(lines.count == 12)
            #expect(exported.text.hasSuffix("\n"))
            // Each line is the event exactly as section 4 shows it (the stream read's own JSON).
            let stream = try await s.request("GET", "/v1/streams/order-0", headers: [("Mink-Tenant", "source")])
            let first = try #require(stream["events"]?.arrayValue?.first)
            #expect(try JSONValue(jsonString: String(lines[0])) == first)

            let imported = try await Self.importBody(s, tenant: "target", exported.body)
            #expect(imported.status == 200, "\(imported.text)")
            #expect(imported.json == (try JSONValue(jsonString: #"{"events":12,"streams":3,"head":12}"#)))
            let again = try await Self.export(s, tenant: "target")
            #expect(again.text == exported.text, "every id, version, position, timestamp and metadata kept")

            // New appends continue after the imported head and the imported versions.
            let appended = try await s.request("POST", "/v1/streams/order-1", json: appendBody(["Next"], expected: "4"), headers: [("Mink-Tenant", "target")])
            #expect(appended.status == 201, "\(appended.text)")
            #expect(appended["fromPosition"]?.int64Value == 13, "\(appended.text)")
            let info = try await s.request("GET", "/v1/streams/order-1/info", headers: [("Mink-Tenant", "target")])
            #expect(info["version"]?.int64Value == 5, "\(info.text)")
            #expect(try await s.request("GET", "/v1/events/head", headers: [("Mink-Tenant", "target")])["position"]?.int64Value == 13)

            // `after` resumes.
            let tail = try await Self.export(s, tenant: "source", after: 10)
            let tailLines: [String] = tail.text.split(separator: "\n").map { String($0) }
            let expectedTail: [String] = lines.suffix(2).map { String($0) }
            #expect(tailLines == expectedTail)
        }
    }

    @Test(arguments: StorageKind.allCases)
    func aTenantWithEventsIsRefused(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            try await Self.seed(s, tenant: "source", count: 3)
            let exported = try await Self.export(s, tenant: "source")
            let r = try await Self.importBody(s, tenant: "source", exported.body)
            #expect(r.status == 409)
            #expect(r.errorCode == "tenant_not_empty")
            #expect(try await Self.export(s, tenant: "source").text == exported.text)
        }
    }

    /// Every kind of bad line: `400` naming the line, and nothing imported.
    @Test(arguments: StorageKind.allCases)
    func badLinesImportNothing(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            try await Self.seed(s, tenant: "source", count: 4)
            let lines = try await Self.export(s, tenant: "source").text.split(separator: "\n").map(String.init)
            func replacing(_ index: Int, _ f: (String) -> String) -> [String] {
                var copy = lines
                copy[index] = f(copy[index])
                return copy
            }
            let cases: [(String, [String], Int)] = [
                ("malformed", replacing(2) { _ in "{not json" }, 3),
                ("unknown field", replacing(1) { $0.replacingOccurrences(of: #""type":"#, with: #""extra":1,"type":"#) }, 2),
                ("positions not increasing", [lines[0], lines[2], lines[1], lines[3]], 3),
                ("versions not consecutive", replacing(3) { $0.replacingOccurrences(of: #""version":2"#, with: #""version":3"#) }, 4),
                ("missing id", replacing(0) { $0.replacingOccurrences(of: #""id":"#, with: #""xid":"#) }, 1),
                // Positions and versions past 2^53 − 1 (they made the next append overflow).
                ("position too large", replacing(3) { $0.replacingOccurrences(of: #""globalPosition":4"#, with: #""globalPosition":9223372036854775807"#) }, 4),
                ("version too large", replacing(2) { $0.replacingOccurrences(of: #""version":1"#, with: #""version":9007199254740992"#) }, 3),
                ("control character in a type", replacing(1) { $0.replacingOccurrences(of: #""type":"T1""#, with: #""type":"T\u00001""#) }, 2),
            ]
            for (name, body, line) in cases {
                let r = try await Self.importBody(s, tenant: "target", Array((body.joined(separator: "\n") + "\n").utf8))
                #expect(r.status == 400, "\(name): \(r.text)")
                #expect(r.text.contains("line \(line)"), "\(name): \(r.text)")
                #expect(r.json.objectValue?["error"]?.objectValue?["details"]?.objectValue?["line"]?.int64Value == Int64(line), "\(name)")
                #expect(try await Self.export(s, tenant: "target").body.isEmpty, "\(name): nothing imported")
            }
            // A partial import would have made the tenant non-empty: the whole log still goes in.
            let ok = try await Self.importBody(s, tenant: "target", Array((lines.joined(separator: "\n") + "\n").utf8))
            #expect(ok.status == 200, "\(ok.text)")
        }
    }

    /// A position and a version at the largest an import takes (2^53 − 1): imported, and the
    /// appends after them are numbered on from there (they once overflowed and crashed).
    @Test(arguments: StorageKind.allCases)
    func numbersAtTheLimitImportAndAppendOn(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            let max: Int64 = 9_007_199_254_740_991
            let line = #"{"id":"11111111-1111-4111-8111-111111111111","streamId":"s-1","type":"T","data":{},"version":\#(max),"globalPosition":\#(max - 1),"timestamp":"2026-12-01T00:00:00.000000Z"}"#
            let r = try await Self.importBody(s, tenant: "edge", Array((line + "\n").utf8))
            if kind == .memory {
                // A slot per position: such a gap is refused rather than allocated.
                #expect(r.status == 400 && r.text.contains("takes positions up to 10000000"), "\(r.text)")
                return
            }
            #expect(r.status == 200, "\(r.text)")
            let a = try await s.request("POST", "/v1/streams/s-1", json: appendBody(["U"]), headers: [("Mink-Tenant", "edge")])
            #expect(a.status == 201, "\(a.text)")
            #expect(a["fromVersion"] == .int(max + 1) && a["fromPosition"] == .int(max), "\(a.text)")
            let b = try await s.request("POST", "/v1/streams/s-2", json: appendBody(["U"]), headers: [("Mink-Tenant", "edge")])
            #expect(b.status == 201 && b["fromPosition"] == .int(max + 1), "\(b.text)")
        }
    }

    @Test(arguments: StorageKind.allCases)
    func gzipBothWays(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            try await Self.seed(s, tenant: "source", count: 40)
            let plain = try await Self.export(s, tenant: "source")
            let zipped = try await Self.export(s, tenant: "source", gzip: true)
            #expect(zipped.headers["Content-Encoding"] == "gzip")
            let unzipped = try Gzip.decompress(zipped.body, limit: 1 << 24)
            #expect(unzipped == plain.body)
            let r = try await Self.importBody(s, tenant: "target", zipped.body, gzip: true)
            #expect(r.status == 200, "\(r.text)")
            #expect(try await Self.export(s, tenant: "target").text == plain.text)
        }
    }

    /// A gzip bomb: 64 MiB of zeros in ~64 KiB, against a 1 MiB import limit: `413`, nothing
    /// imported, and the server still answers.
    @Test func aGzipBombStopsAtTheImportLimit() async throws {
        try await withServer(configure: { $0.limits.maxImportBytes = 1 << 20 }) { s in
            let bomb = try Gzip.compress([UInt8](repeating: 0x20, count: 64 << 20), level: 9)
            #expect(bomb.count < 1 << 20)
            let r = try await Self.importBody(s, tenant: "target", bomb, gzip: true)
            #expect(r.status == 413, "\(r.text)")
            #expect(r.errorCode == "payload_too_large")
            #expect(try await s.request("GET", "/v1/events/head", headers: [("Mink-Tenant", "target")])["position"]?.int64Value == 0)
        }
    }

    /// The general 4 MiB body limit does not apply to imports: a 6 MiB import goes through.
    @Test func theBodyLimitDoesNotApplyToImports() async throws {
        try await withServer(configure: { $0.limits.maxBodyBytes = 64 * 1024 }) { s in
            let filler = String(repeating: "x", count: 2000)
            var body = ""
            for i in 1...300 {
                body += #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"s-\#(i % 7)","type":"T","data":{"f":"\#(filler)"},"metadata":{},"version":\#((i - 1) / 7 + 1),"globalPosition":\#(i),"timestamp":"2026-12-05T10:00:00.000001Z"}"# + "\n"
            }
            #expect(body.utf8.count > 64 * 1024)
            let r = try await Self.importBody(s, tenant: "default", Array(body.utf8))
            #expect(r.status == 200, "\(r.text)")
            #expect(r["events"]?.int64Value == 300)
            #expect(r["streams"]?.int64Value == 7)
            #expect(try await s.request("POST", "/v1/streams/x", json: String(repeating: " ", count: 70 * 1024) + "{}").status == 413)
        }
    }

    /// A `$StreamDeleted` record's `lastVersion` is held to the bounds of a version (0…2^53 − 1)
    /// and its `streamId` to a stream ID's rules, with the line: 2^63 − 1 was imported, and the
    /// next append to that stream overflowed and crashed the process (again after a restart).
    @Test(arguments: StorageKind.allCases)
    func deletionRecordsAreCheckedLikeVersions(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            func body(_ data: String) -> [UInt8] {
                let first = #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"s-1","type":"T","data":{},"metadata":{},"version":1,"globalPosition":1,"timestamp":"2026-12-05T10:00:00.000001Z"}"#
                let record = #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"$deletions","type":"$StreamDeleted","data":\#(data),"metadata":{},"version":1,"globalPosition":2,"timestamp":"2026-12-05T10:00:00.000002Z"}"#
                return Array((first + "\n" + record + "\n").utf8)
            }
            for bad in [
                #"{"streamId":"s-9","lastVersion":9223372036854775807,"deletedEvents":1,"hard":false}"#,
                #"{"streamId":"s-9","lastVersion":9007199254740992,"deletedEvents":1,"hard":false}"#,
                #"{"streamId":"s-9","lastVersion":-1,"deletedEvents":1,"hard":false}"#,
                #"{"streamId":"s-9","lastVersion":1.5,"deletedEvents":1,"hard":false}"#,
                #"{"streamId":"","lastVersion":3,"deletedEvents":1,"hard":false}"#,
                // A system stream deleted (a hard one made every later deletion of the tenant
                // `410` on SQLite), `hard` missing or not a boolean, a `lastVersion` below what
                // was imported of the stream (s-1 is at version 1).
                #"{"streamId":"$deletions","lastVersion":3,"deletedEvents":1,"hard":true}"#,
                #"{"streamId":"s-9","lastVersion":3,"deletedEvents":1}"#,
                #"{"streamId":"s-9","lastVersion":3,"deletedEvents":1,"hard":"yes"}"#,
                #"{"streamId":"s-1","lastVersion":0,"deletedEvents":1,"hard":false}"#,
            ] {
                let r = try await Self.importBody(s, tenant: "t-\(kind.rawValue)", body(bad))
                #expect(r.status == 400, "\(bad): \(r.text)")
                #expect(r.json.objectValue?["error"]?.objectValue?["details"]?.objectValue?["line"]?.int64Value == 2, "\(bad): \(r.text)")
                #expect(try await Self.export(s, tenant: "t-\(kind.rawValue)").body.isEmpty, "nothing imported")
            }
            let ok = try await Self.importBody(s, tenant: "t-\(kind.rawValue)", body(#"{"streamId":"s-9","lastVersion":3,"deletedEvents":1,"hard":false}"#))
            #expect(ok.status == 200, "\(ok.text)")
            let next = try await s.request("POST", "/v1/streams/s-9", json: appendBody(["A"]), headers: [("Mink-Tenant", "t-\(kind.rawValue)")])
            #expect(next.status == 201 && next["toVersion"] == .int(4), "the stream goes on after the recorded version: \(next.text)")
        }
    }

    /// What no append could have written is not imported either, naming the line: a `$` stream
    /// other than `$deletions`, another type in `$deletions`, a `$` type elsewhere, a type over
    /// 256 bytes, an event of a stream after its hard deletion (or a second deletion of it), an
    /// event of a deleted stream that does not go on from the deletion's `lastVersion`.
    @Test(arguments: StorageKind.allCases)
    func importHoldsEventsToWhatAppendsCouldWrite(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            func event(_ stream: String, _ type: String, _ version: Int, _ position: Int, data: String = "{}") -> String {
                #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"\#(stream)","type":"\#(type)","data":\#(data),"metadata":{},"version":\#(version),"globalPosition":\#(position),"timestamp":"2026-12-05T10:00:00.000001Z"}"#
            }
            func deletion(_ version: Int, _ position: Int, of stream: String, last: Int, hard: Bool) -> String {
                event("$deletions", "$StreamDeleted", version, position, data: #"{"streamId":"\#(stream)","lastVersion":\#(last),"deletedEvents":1,"hard":\#(hard)}"#)
            }
            let first = event("s-1", "T", 1, 1)
            let cases: [(String, [String])] = [
                ("a $ stream", [first, event("$other", "T", 1, 2)]),
                ("another type in $deletions", [first, event("$deletions", "T", 1, 2)]),
                ("a $ type", [first, event("s-2", "$T", 1, 2)]),
                ("a type over 256 bytes", [first, event("s-2", String(repeating: "t", count: 257), 1, 2)]),
                ("an event after a hard deletion", [first, deletion(1, 2, of: "s-1", last: 1, hard: true), event("s-1", "T", 2, 3)]),
                ("a second deletion after a hard one", [first, deletion(1, 2, of: "s-1", last: 1, hard: true), deletion(2, 3, of: "s-1", last: 1, hard: false)]),
                ("versions not going on after a deletion", [first, deletion(1, 2, of: "s-1", last: 5, hard: false), event("s-1", "T", 5, 3)]),
            ]
            let tenant = "t-\(kind.rawValue)"
            for (name, lines) in cases {
                let r = try await Self.importBody(s, tenant: tenant, Array((lines.joined(separator: "\n") + "\n").utf8))
                #expect(r.status == 400, "\(name): \(r.text)")
                #expect(r.json.objectValue?["error"]?.objectValue?["details"]?.objectValue?["line"]?.int64Value == Int64(lines.count), "\(name): \(r.text)")
                #expect(try await Self.export(s, tenant: tenant).body.isEmpty, "\(name): nothing imported")
            }
            // What they might be confused with goes in: a type of 256 bytes, a soft deletion and
            // the stream going on after its lastVersion — at a later version too (retention
            // removed the first events written after the deletion), a hard deletion of another
            // stream.
            let ok = [
                first, event("s-2", String(repeating: "t", count: 256), 1, 2), deletion(1, 3, of: "s-1", last: 2, hard: false),
                event("s-1", "T", 5, 4), deletion(2, 5, of: "s-2", last: 1, hard: true),
            ]
            let r = try await Self.importBody(s, tenant: tenant, Array((ok.joined(separator: "\n") + "\n").utf8))
            #expect(r.status == 200 && r["events"]?.int64Value == 5, "\(r.text)")
            let next = try await s.request("POST", "/v1/streams/s-1", json: appendBody(["A"]), headers: [("Mink-Tenant", tenant)])
            #expect(next.status == 201 && next["toVersion"] == .int(6), "\(next.text)")
            let gone = try await s.request("POST", "/v1/streams/s-2", json: appendBody(["A"]), headers: [("Mink-Tenant", tenant)])
            #expect(gone.status == 410, "the hard-deleted stream stays deleted: \(gone.text)")
            let deleted = try await s.request("DELETE", "/v1/streams/s-1", headers: [("Mink-Tenant", tenant)])
            #expect(deleted.status == 200, "deletions keep working in the imported tenant: \(deleted.text)")
        }
    }

    /// Imported timestamps come back exactly, to the microsecond, from 1931 to 2071: about a
    /// quarter of those before 1990 or after 2040 lost a microsecond on PostgreSQL (a `Date`
    /// converted through seconds since 1970, then truncated).
    /// A stream soft-deleted and written again answers the same `createdAt` (its first event
    /// after the deletion, as the source's append set it) in the tenant an export was imported
    /// into — with its deletion record and its new events in one import batch of 1,000 events, and
    /// in two. (SQLite kept the deletion record's time, PostgreSQL the import's, before session 23.)
    @Test(arguments: StorageKind.allCases)
    func aStreamDeletedAndWrittenAgainKeepsItsCreationTime(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            let source = [("Mink-Tenant", "source")]
            for (stream, filler) in [("near", 0), ("far", 1_200)] {
                #expect(try await s.request("POST", "/v1/streams/\(stream)", json: appendBody(["A"]), headers: source).status == 201)
                #expect(try await s.request("DELETE", "/v1/streams/\(stream)", headers: source).status == 200)
                // Between the deletion record and the stream's next event: none, or enough for
                // the next event to fall in the import's next batch.
                for _ in 0..<(filler / 400) {
                    let r = try await s.request("POST", "/v1/streams/filler", json: appendBody(Array(repeating: "F", count: 400)), headers: source)
                    try #require(r.status == 201, "\(r.text)")
                }
                try await Task.sleep(for: .milliseconds(5))
                #expect(try await s.request("POST", "/v1/streams/\(stream)", json: appendBody(["B"]), headers: source).status == 201)
            }
            let exported = try await Self.export(s, tenant: "source")
            let imported = try await Self.importBody(s, tenant: "target", exported.body)
            #expect(imported.status == 200, "\(imported.text)")
            for stream in ["near", "far"] {
                let was = try await s.request("GET", "/v1/streams/\(stream)/info", headers: source)
                let now = try await s.request("GET", "/v1/streams/\(stream)/info", headers: [("Mink-Tenant", "target")])
                #expect(was.status == 200 && now.status == 200)
                #expect(was["createdAt"] != nil)
                #expect(now["createdAt"] == was["createdAt"], "\(kind) \(stream): \(now.text) vs \(was.text)")
                #expect(now["updatedAt"] == was["updatedAt"], "\(kind) \(stream): \(now.text) vs \(was.text)")
            }
        }
    }

    @Test(arguments: StorageKind.allCases)
    func importedTimestampsRoundTripToTheMicrosecond(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            var generator = SystemRandomNumberGenerator()
            // -1,230,000,000 s is 1931, 3,200,000,000 s is 2071.
            let micros = (0..<300).map { _ in Int64.random(in: -1_230_000_000_000_000...3_200_000_000_000_000, using: &generator) }
                + [0, 1, -1, 999_999, 631_152_000_123_457, 2_240_524_800_999_999]
            let lines = micros.enumerated().map { i, us in
                let t = WireTimestamp(microsecondsSince1970: us).description
                return #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"s-1","type":"T","data":{},"metadata":{},"version":\#(i + 1),"globalPosition":\#(i + 1),"timestamp":"\#(t)"}"#
            }
            let r = try await Self.importBody(s, tenant: "t", Array((lines.joined(separator: "\n") + "\n").utf8))
            #expect(r.status == 200, "\(r.text)")
            let exported = try await Self.export(s, tenant: "t").text.split(separator: "\n").map(String.init)
            #expect(exported.count == lines.count)
            for (sent, back) in zip(lines, exported) where sent != back {
                Issue.record("\(kind): sent \(sent.suffix(40)), exported \(back.suffix(40))")
                break
            }
        }
    }

    /// An imported event's `data` is held to `limits.maxEventBytes` as an append's is: `413
    /// payload_too_large` naming the line, nothing imported (it was stored, larger than any
    /// append may write).
    @Test func anEventOverTheEventLimitIsRefusedWithItsLine() async throws {
        try await withServer(configure: { $0.limits.maxEventBytes = 1000 }) { s in
            func line(_ i: Int, _ size: Int) -> String {
                #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"s","type":"T","data":{"f":"\#(String(repeating: "x", count: size))"},"metadata":{},"version":\#(i),"globalPosition":\#(i),"timestamp":"2026-12-05T10:00:00.000001Z"}"#
            }
            let tooLarge = [line(1, 10), line(2, 1200), line(3, 10)].joined(separator: "\n") + "\n"
            let r = try await Self.importBody(s, tenant: "default", Array(tooLarge.utf8))
            #expect(r.status == 413 && r.errorCode == "payload_too_large", "\(r.text)")
            #expect(r.json.objectValue?["error"]?.objectValue?["details"]?.objectValue?["line"]?.int64Value == 2, "\(r.text)")
            #expect(try await s.request("GET", "/v1/events/head")["position"] == .int(0), "nothing imported")
            let fits = [line(1, 10), line(2, 900), line(3, 10)].joined(separator: "\n") + "\n"
            let ok = try await Self.importBody(s, tenant: "default", Array(fits.utf8))
            #expect(ok.status == 200 && ok["events"]?.int64Value == 3, "\(ok.text)")
        }
    }

    /// A first exported version above 1 (earlier events deleted or expired) is accepted; the
    /// stream then continues after it. `$deletions` records are copied like any event.
    @Test(arguments: StorageKind.allCases)
    func streamsMayStartAfterVersionOneAndDeletionRecordsAreKept(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            let ts = "2026-12-05T10:00:00.000001Z"
            let del = #"{"streamId":"gone-1","lastVersion":7,"deletedEvents":7,"hard":false}"#
            let hard = #"{"streamId":"dead-1","lastVersion":2,"deletedEvents":2,"hard":true}"#
            let body = [
                #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"order-9","type":"T","data":{},"metadata":{},"version":5,"globalPosition":1,"timestamp":"\#(ts)"}"#,
                #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"$deletions","type":"$StreamDeleted","data":\#(del),"metadata":{},"version":1,"globalPosition":2,"timestamp":"\#(ts)"}"#,
                #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"order-9","type":"T","data":{},"metadata":{},"version":6,"globalPosition":3,"timestamp":"\#(ts)"}"#,
                #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"$deletions","type":"$StreamDeleted","data":\#(hard),"metadata":{},"version":2,"globalPosition":6,"timestamp":"\#(ts)"}"#,
            ].joined(separator: "\n")
            let r = try await Self.importBody(s, tenant: "default", Array(body.utf8))
            #expect(r.status == 200, "\(r.text)")
            #expect(r.json == (try JSONValue(jsonString: #"{"events":4,"streams":2,"head":6}"#)))
            let next = try await s.request("POST", "/v1/streams/order-9", json: appendBody(["U"], expected: "6"))
            #expect(next.status == 201, "\(next.text)")
            // Positions skipped in the export stay skipped: the next append is after the head.
            #expect(next["fromPosition"]?.int64Value == 7, "\(next.text)")
            #expect(try await Self.export(s, tenant: "default").text.contains(#""streamId":"$deletions""#))
            // The deletion records' effects: the soft-deleted stream counts as new and continues
            // after its last version; the hard-deleted one is a tombstone.
            #expect(try await s.request("GET", "/v1/streams/gone-1").status == 404)
            let revived = try await s.request("POST", "/v1/streams/gone-1", json: appendBody(["U"], expected: "0"))
            #expect(revived.status == 201 && revived["fromVersion"]?.int64Value == 8, "\(revived.text)")
            #expect(try await s.request("GET", "/v1/streams/dead-1").status == 410)
            #expect(try await s.request("POST", "/v1/streams/dead-1", json: appendBody(["U"])).status == 410)
        }
    }

    /// An export taken while a stream was deleted holds some of its events and, later, the
    /// record of their deletion: the import removes those events when it reaches the record, as
    /// the deletion removed them in the source (before session 23 they stayed readable — a
    /// restore brought deleted data back).
    @Test(arguments: StorageKind.allCases)
    func aDeletionRecordRemovesTheEventsOfItsStreamImportedBeforeIt(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            let ts = "2026-12-05T10:00:00.000001Z"
            let reused = UUID().uuidString.lowercased()
            func line(_ stream: String, _ version: Int, _ position: Int, id: String = UUID().uuidString.lowercased()) -> String {
                #"{"id":"\#(id)","streamId":"\#(stream)","type":"T","data":{"p":\#(position)},"metadata":{},"version":\#(version),"globalPosition":\#(position),"timestamp":"\#(ts)"}"#
            }
            func deletion(_ version: Int, _ position: Int, of stream: String, last: Int, hard: Bool) -> String {
                let data = #"{"streamId":"\#(stream)","lastVersion":\#(last),"deletedEvents":\#(last),"hard":\#(hard)}"#
                return #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"$deletions","type":"$StreamDeleted","data":\#(data),"metadata":{},"version":\#(version),"globalPosition":\#(position),"timestamp":"\#(ts)"}"#
            }
            let body = [
                line("soft-1", 1, 1, id: reused), line("keep-1", 1, 2), line("soft-1", 2, 3), line("hard-1", 1, 4),
                deletion(1, 5, of: "soft-1", last: 2, hard: false), deletion(2, 6, of: "hard-1", last: 1, hard: true),
                // Written again after its deletion, one event reusing a deleted event's ID (free
                // again in the source: the deletion removed it).
                line("soft-1", 3, 7, id: reused), line("keep-1", 2, 8),
            ].joined(separator: "\n") + "\n"
            let r = try await Self.importBody(s, tenant: "default", Array(body.utf8))
            #expect(r.status == 200, "\(r.text)")
            #expect(r["head"]?.int64Value == 8, "\(r.text)")
            let log = try await s.request("GET", "/v1/events?after=0&limit=100")
            let positions = log["events"]?.arrayValue?.compactMap { $0.objectValue?["globalPosition"]?.int64Value }
            #expect(positions == [2, 5, 6, 7, 8], "\(kind): \(log.text)")
            let soft = try await s.request("GET", "/v1/streams/soft-1")
            #expect(soft.status == 200, "\(soft.text)")
            #expect(soft["events"]?.arrayValue?.compactMap { $0.objectValue?["version"]?.int64Value } == [3], "\(kind): \(soft.text)")
            #expect(soft["version"]?.int64Value == 3, "\(soft.text)")
            #expect(try await s.request("GET", "/v1/streams/hard-1").status == 410)
            let kept = try await s.request("GET", "/v1/streams/keep-1")
            #expect(kept["events"]?.arrayValue?.count == 2, "\(kept.text)")
            // The copy exports what the source would now: no deleted event.
            let again = try await Self.export(s, tenant: "default").text
            #expect(!again.contains(#""globalPosition":1,"#) && !again.contains(#""globalPosition":3,"#) && !again.contains(#""globalPosition":4,"#), "\(again)")
        }
    }

    /// An import racing appends to the same tenant: either the appends came first (`409`, the
    /// import wrote nothing) or the import came first and the appends continue after its head;
    /// never a mix, never a lost acknowledged append.
    @Test(arguments: StorageKind.allCases)
    func anImportRacingAppendsHasOneOfTwoOutcomes(_ kind: StorageKind) async throws {
        try await withServer(storage: try await kind.make()) { s in
            try await Self.seed(s, tenant: "source", count: 200)
            let exported = try await Self.export(s, tenant: "source")
            async let imported = Self.importBody(s, tenant: "target", exported.body)
            var acknowledged = 0
            for _ in 0..<20 {
                let r = try await s.request("POST", "/v1/streams/racer-1", json: appendBody(["R"]), headers: [("Mink-Tenant", "target")])
                if r.status == 201 { acknowledged += 1 }
            }
            let result = try await imported
            let all: [String] = try await Self.export(s, tenant: "target").text.split(separator: "\n").map(String.init)
            let racers = all.filter { $0.contains(#""streamId":"racer-1""#) }.count
            #expect(racers == acknowledged, "every acknowledged append is there")
            let original: [String] = exported.text.split(separator: "\n").map(String.init)
            if result.status == 200 {
                #expect(all.count == 200 + acknowledged)
                let head: [String] = Array(all.prefix(200))
                #expect(head == original)
            } else {
                let code: String? = result.errorCode
                #expect(result.status == 409)
                #expect(code == "tenant_not_empty", "\(result.text)")
                #expect(all.count == acknowledged)
            }
        }
    }

    @Test func importNeedsNDJSONAndTheAdminRole() async throws {
        try await withServer { s in
            let wrongType = try await s.request("POST", "/v1/admin/import", json: "{}")
            #expect(wrongType.status == 415)
            #expect(try await s.request("GET", "/v1/admin/export?after=-1").status == 400)
            #expect(try await s.request("PUT", "/v1/admin/export").status == 405)
            let empty = try await s.request("POST", "/v1/admin/import", headers: Self.ndjson)
            #expect(empty.status == 200, "\(empty.text)")
            #expect(empty.json == (try JSONValue(jsonString: #"{"events":0,"streams":0,"head":0}"#)))
        }
    }
}

/// Export and import under the tenancy strategies with storage of their own per tenant: SQLite
/// `database` (a file per tenant), PostgreSQL `schema` and `database`.
@Suite("Export and import per tenancy strategy", .timeLimit(.minutes(3)))
struct ExportImportTenancyTests {
    enum Layout: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case sqliteDatabase, postgresSchema, postgresDatabase
        var testDescription: String { rawValue }
    }

    static func storage(_ layout: Layout) async throws -> ServerStorage {
        switch layout {
        case .sqliteDatabase:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-tenancy-\(UUID().uuidString)").path
            let s = try await SQLiteStorage.open(directory: dir, strategy: .database)
            return ServerStorage(events: s, snapshots: s, readModels: s, kind: "sqlite", close: {
                await s.close()
                try? FileManager.default.removeItem(atPath: dir)
            })
        case .postgresSchema, .postgresDatabase:
            let url = try await PostgresTestDatabase.freshDatabase()
            let prefix = PostgresTestDatabase.freshName("x")
            let tenancy: PostgresConfiguration.Tenancy = layout == .postgresSchema ? .schema(prefix: prefix) : .database(prefix: prefix)
            let s = try await PostgresStorage(configuration: PostgresConfiguration(connectionString: url, poolSize: 3, tenancy: tenancy))
            return ServerStorage(events: s, snapshots: s, readModels: s, kind: "postgres", close: { await s.shutdown() })
        }
    }

    @Test(arguments: Layout.allCases)
    func moveBetweenTenants(_ layout: Layout) async throws {
        try await withServer(storage: try await Self.storage(layout), configure: { config in
            config.tenancy.strategy = layout == .postgresSchema ? .schema : .database
        }) { s in
            try await ExportImportTests.seed(s, tenant: "source", count: 9)
            let exported = try await ExportImportTests.export(s, tenant: "source")
            let r = try await ExportImportTests.importBody(s, tenant: "target", exported.body)
            #expect(r.status == 200, "\(r.text)")
            #expect(r.json == (try JSONValue(jsonString: #"{"events":9,"streams":3,"head":9}"#)))
            #expect(try await ExportImportTests.export(s, tenant: "target").text == exported.text)
            let again = try await ExportImportTests.importBody(s, tenant: "target", exported.body)
            #expect(again.status == 409)
            #expect(again.errorCode == "tenant_not_empty")
            // Another tenant stays empty: nothing leaks across tenants.
            #expect(try await ExportImportTests.export(s, tenant: "other").body.isEmpty)
            let next = try await s.request("POST", "/v1/streams/order-2", json: appendBody(["N"], expected: "3"), headers: [("Mink-Tenant", "target")])
            #expect(next.status == 201, "\(next.text)")
            #expect(next["fromPosition"]?.int64Value == 10)
        }
    }
}

/// Declared projections after an import: an inline projection's read model gets the imported
/// events in the import's transaction, an async one catches up from them.
@Suite("Projections after an import", .timeLimit(.minutes(3)))
struct ImportProjectionTests {
    @Test(arguments: ProjectionStorage.allCases, ["inline", "async"])
    func readModelsHoldTheImportedEvents(_ kind: ProjectionStorage, _ mode: String) async throws {
        try await withProjectionServer(kind, yaml: ordersYAML(mode: mode)) { s, _ in
            let ts = "2026-12-05T10:00:00.000001Z"
            var lines: [String] = []
            for i in 1...5 {
                lines.append(#"{"id":"\#(UUID().uuidString.lowercased())","streamId":"order-\#(i)","type":"OrderCreated","data":{"orderId":"o-\#(i)","total":\#(i)},"metadata":{},"version":1,"globalPosition":\#(i),"timestamp":"\#(ts)"}"#)
            }
            lines.append(#"{"id":"\#(UUID().uuidString.lowercased())","streamId":"order-1","type":"ItemAdded","data":{"orderId":"o-1","price":10,"sku":"a"},"metadata":{},"version":2,"globalPosition":6,"timestamp":"\#(ts)"}"#)
            let r = try await ExportImportTests.importBody(s, tenant: "default", Array(lines.joined(separator: "\n").utf8))
            #expect(r.status == 200, "\(r.text)")
            let deadline = Deadline(.seconds(20))
            while true {
                let doc = try await s.request("GET", "/v1/readmodels/orders/o-1")
                if doc.status == 200, doc.json.objectValue?["itemCount"]?.int64Value == 1 {
                    #expect(doc.json.objectValue?["total"]?.doubleValue == 11)
                    break
                }
                if mode == "inline" { Issue.record("inline read model not updated by the import: \(doc.text)"); break }
                try deadline.check("the async projection to catch up")
                try await Task.sleep(for: .milliseconds(50))
            }
            let count = try await s.request("POST", "/v1/readmodels/orders/count", json: #"{"where":[]}"#)
            #expect(count["count"]?.int64Value == 5, "\(count.text)")
        }
    }
}

import Foundation
import MinkHTTP
import MinkTestFixtures
import Testing

/// The 79 request vectors of `http_requests.json` (see its README, and `RequestVector`), sent to
/// the real minkd server (router and handlers included), with the README's verdicts.
@Suite("HTTP conformance vectors against minkd", .timeLimit(.minutes(3)))
struct ConformanceVectorTests {
    @Test func allVectorsAreLoaded() {
        #expect(RequestVector.all.count == 79)
    }

    @Test(arguments: RequestVector.all)
    func vector(_ v: RequestVector) async throws {
        try await withServer { s in
            let conn = try await RawConnection.open(port: s.port)
            try await conn.send(v.bytes)
            let expected = v.requests ?? 1
            let heads = Array(repeating: v.head ?? false, count: max(expected, 4))
            let keepsOpen = v.valid && v.expect_close != true
            let (bytes, closed) = try await conn.readResponses(
                until: { keepsOpen && Self.parse($0, heads: heads, eof: false).count >= expected },
                // Both end early (on the expected responses, or when the server closes); the
                // bounds only have to outlast a starved machine (1.5 s did not, in one CI run).
                timeout: keepsOpen ? .seconds(10) : .seconds(5)
            )
            let responses = Self.parse(bytes, heads: heads, eof: closed)
            let statuses = responses.map(\.status)
            let label = "\(v.name): statuses \(statuses) closed=\(closed)"
            let allowed = Set(v.also_ok ?? [])
            if v.valid {
                #expect(statuses.count >= expected, "\(label)")
                for s in statuses.prefix(expected) { #expect(allowed.contains(s) || ((100..<500).contains(s) && s != 400), "\(label)") }
                if v.expect_close == true { #expect(closed, "\(label)") }
                if v.head == true { #expect(responses.first?.body.isEmpty == true, "\(label)") }
            } else if v.lenient == true {
                for s in statuses { #expect((100..<500).contains(s) || s == 501 || s == 505, "\(label)") }
                if let max = v.max_responses { #expect(statuses.count <= max, "\(label)") }
            } else {
                for s in statuses {
                    #expect(!(200..<300).contains(s), "\(label)")
                    #expect((400..<500).contains(s) || s == 501 || s == 505, "\(label)")
                }
                #expect(!statuses.isEmpty || closed, "\(label)")
            }
            if v.must_close == true { #expect(closed, "\(label)") }
            // The server still answers.
            #expect(try await s.request("GET", "/healthz").status == 200, "\(v.name): server no longer answers")
        }
    }

    static func parse(_ bytes: [UInt8], heads: [Bool], eof: Bool) -> [(status: Int, body: [UInt8])] {
        var parser = HTTPResponseParser()
        for h in heads { parser.requestSent(isHead: h) }
        parser.feed(bytes)
        var out: [(Int, [UInt8])] = []
        var status: Int?
        var body: [UInt8] = []
        do {
            while let e = try parser.next() {
                switch e {
                case .head(let h): status = h.status; body = []
                case .body(let b): body += b
                case .end: if let s = status { out.append((s, body)) }; status = nil
                }
            }
            if eof, case .end? = try parser.finish(), let s = status { out.append((s, body)) }
        } catch {
            // The server must never send bytes that are not HTTP/1.1 responses: such a reply
            // is recorded as status 0, which no verdict accepts.
            out.append((0, []))
        }
        return out
    }
}


import Testing
@testable import MinkHTTP

@Suite(.timeLimit(.minutes(3))) struct HTTPRequestParserTests {
    @Test func vectorsAreBundled() {
        #expect(Vector.all.count == 79)
    }

    @Test(arguments: Vector.all)
    func vectorGivesSameOutcomeAtEverySplit(_ vector: Vector) {
        let bytes = vector.bytes
        let whole = ParseOutcome.parse([bytes[...]])
        for cut in 0...bytes.count {
            let split = ParseOutcome.parse([bytes[..<cut], bytes[cut...]])
            #expect(split == whole, "split at \(cut)")
        }
        let byteByByte = ParseOutcome.parse(bytes.indices.map { bytes[$0...$0] })
        #expect(byteByByte == whole)
    }

    @Test(arguments: Vector.all)
    func vectorVerdictHoldsAtParserLevel(_ vector: Vector) {
        let outcome = ParseOutcome.parse([vector.bytes[...]])
        if vector.valid {
            let expected = vector.requests ?? 1
            #expect(outcome.requests.count >= expected || (outcome.requests.count >= 1 && vector.expect_close == true), "\(outcome)")
            if outcome.requests.count < expected { return }
            for r in outcome.requests.prefix(expected) where r.method == "POST" {
                #expect(r.body.count > 0)
            }
            #expect(outcome.error == nil || outcome.requests.count >= expected)
        } else if vector.lenient != true {
            // The only invalid vectors a parser may accept are semantic refusals left to the router.
            #expect(outcome.error != nil, "\(outcome)")
            if let e = outcome.error {
                #expect([400, 413, 414, 431, 501, 505].contains(e.status))
                #expect(e.closeConnection)
            }
        } else if let e = outcome.error {
            #expect([400, 413, 414, 431, 501, 505].contains(e.status))
        }
    }

    @Test func parsesSimpleGet() throws {
        var p = HTTPRequestParser()
        p.feed(Array("GET /a/b%2Fc?x=1&y HTTP/1.1\r\nHost: h\r\nX-A:  v  \r\n\r\n".utf8))
        let r = try #require(try p.next())
        #expect(r.method == "GET")
        #expect(r.path == "/a/b%2Fc")
        #expect(r.query == "x=1&y")
        #expect(r.headers["x-a"] == "v")
        #expect(r.headers["HOST"] == "h")
        #expect(try p.next() == nil)
        #expect(!p.isMidRequest)
    }

    @Test func absoluteFormTarget() throws {
        var p = HTTPRequestParser()
        p.feed(Array("GET http://example.com:80/x?q HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        let r = try #require(try p.next())
        #expect(r.path == "/x")
        #expect(r.query == "q")
    }

    private func error(_ text: String, limits: HTTPParserLimits = HTTPParserLimits()) -> HTTPParseError? {
        ParseOutcome.parse([Array(text.utf8)[...]], limits: limits).error
    }

    @Test func limits() {
        let long = String(repeating: "a", count: 9000)
        #expect(error("GET /\(long) HTTP/1.1\r\nHost: h\r\n\r\n")?.status == 414)
        // Reported before the line ends.
        #expect(error("GET /\(long)")?.status == 414)
        let bigHeader = "X: " + String(repeating: "b", count: 17000)
        #expect(error("GET / HTTP/1.1\r\nHost: h\r\n\(bigHeader)\r\n\r\n")?.status == 431)
        #expect(error("GET / HTTP/1.1\r\nHost: h\r\n\(bigHeader)")?.status == 431)
        let many = (0..<101).map { "H\($0): v\r\n" }.joined()
        #expect(error("GET / HTTP/1.1\r\nHost: h\r\n\(many)\r\n")?.status == 431)
        #expect(error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4194305\r\n\r\n")?.status == 413)
        #expect(error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", limits: HTTPParserLimits(maxBodyBytes: 9))?.status == 413)
        #expect(error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", limits: HTTPParserLimits(maxBodyBytes: 10))?.status == 413)
    }

    @Test func smugglingDefences() {
        let cases = [
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3x\r\n\r\nabc",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: deflate, chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX(: a\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\nHost: h\n\n",
            "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
            "GET /healthz#frag HTTP/1.1\r\nHost: h\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
        ]
        for c in cases {
            let e = error(c)
            #expect(e?.status == 400, "\(c.debugDescription) → \(String(describing: e))")
            #expect(e?.closeConnection == true)
        }
        #expect(error("GET / HTTP/2.0\r\nHost: h\r\n\r\n")?.status == 505)
        #expect(error("GET / HTTP/1.2\r\nHost: h\r\n\r\n")?.status == 505)
        // A version outside RFC 9112's one-digit form is still a version ("any other version: 505");
        // what is not one stays a malformed line.
        for v in ["HTTP/2", "HTTP/3", "HTTP/10.0", "HTTP/1.10"] {
            #expect(error("GET / \(v)\r\nHost: h\r\n\r\n")?.status == 505, "\(v)")
        }
        for v in ["HTTP/", "HTTP/.1", "HTTP/1.", "HTTP/1.1.1", "HTTP/x", "http/1.1", "ICE/1.0", "HTTP/12345678901234"] {
            #expect(error("GET / \(v)\r\nHost: h\r\n\r\n")?.status == 400, "\(v)")
        }
    }

    /// RFC 9112 §3.2: an invalid `Host` value is `400` (and closes), like a missing or repeated one.
    @Test(arguments: [
        ("example.com", true), ("example.com:8080", true), ("127.0.0.1:1", true), ("[::1]:8080", true),
        ("[fe80::1%25eth0]", true), ("", true), ("xn--bcher-kva.example", true), ("a%41b", true), ("h:", true),
        ("a b", false), ("x/y", false), ("user@host", false), ("h:8o", false), ("h:80:81", false), ("h?q", false),
        ("h#f", false), ("[::1", false), ("[]", false), ("[::1]x", false), ("a%4", false), ("bücher.example", false),
        ("[zz]", false), ("[::1]:80", true), ("[::ffff:127.0.0.1]", true), ("[v1.fe]", true),
    ])
    func hostValues(value: String, valid: Bool) {
        let e = error("GET / HTTP/1.1\r\nHost: \(value)\r\n\r\n")
        if valid {
            #expect(e == nil, "\(value.debugDescription) → \(String(describing: e))")
        } else {
            #expect(e?.status == 400 && e?.closeConnection == true, "\(value.debugDescription) → \(String(describing: e))")
        }
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() throws {
        let text = "POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n3;a=\"b;c\"\r\nabc\r\n0002\r\nde\r\n0\r\nT: 1\r\n\r\nGET /n HTTP/1.1\r\nHost: h\r\n\r\n"
        let outcome = ParseOutcome.parse([Array(text.utf8)[...]])
        #expect(outcome.error == nil)
        #expect(outcome.requests.count == 2)
        #expect(outcome.requests.first?.body == Array("abcde".utf8))
        #expect(outcome.requests.first?.headers["T"] == nil)
        #expect(outcome.requests.last?.target == "/n")
    }

    @Test func errorsAreSticky() {
        var p = HTTPRequestParser()
        p.feed(Array("BAD\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.self) { try p.next() }
        p.feed(Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.self) { try p.next() }
    }

    @Test func leadingEmptyLinesAreSkippedAndPendingHeadExposed() throws {
        var p = HTTPRequestParser()
        p.feed(Array("\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nab".utf8))
        #expect(try p.next() == nil)
        #expect(p.pendingHead?.expectsContinue == true)
        p.feed(Array("cd".utf8))
        let r = try #require(try p.next())
        #expect(r.body == Array("abcd".utf8))
        #expect(p.pendingHead == nil)
    }
}

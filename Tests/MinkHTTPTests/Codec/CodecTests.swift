import Testing
@testable import MinkHTTP

@Suite(.timeLimit(.minutes(3))) struct HTTPResponseEncoderTests {
    @Test func encodesHeadAndBodyInOneBuffer() {
        let bytes = HTTPResponseEncoder.encode(status: 201, headers: ["X-A": "1", "Content-Length": "999"], body: Array("hi".utf8))
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 201 Created\r\nX-A: 1\r\nDate: "))
        #expect(text.hasSuffix(" GMT\r\nContent-Length: 2\r\n\r\nhi"))
        #expect(!text.contains("999"))
    }

    @Test func dateFormat() {
        #expect(String(decoding: HTTPDate.format(784111777), as: UTF8.self) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.now().count == 29)
    }

    @Test func chunkedEncoder() {
        #expect(ChunkedEncoder.chunk(Array(repeating: 1, count: 26)).prefix(4) == [0x31, 0x61, 0x0D, 0x0A])
        #expect(ChunkedEncoder.chunk([]).isEmpty)
    }

    @Test func noBodyStatuses() {
        let text = String(decoding: HTTPResponseEncoder.encode(status: 204, headers: [:], body: []), as: UTF8.self)
        #expect(!text.contains("Content-Length"))
    }
}

@Suite(.timeLimit(.minutes(3))) struct GzipTests {
    @Test func roundTrip() throws {
        let data = Array("hello hello hello hello".utf8)
        #expect(try Gzip.decompress(try Gzip.compress(data), limit: 100) == data)
    }

    @Test func bombStopsAtTheLimit() throws {
        let bomb = try Gzip.compress([UInt8](repeating: 0, count: 10 << 20), level: 9)
        #expect(throws: GzipError.tooLarge(limit: 1 << 20)) { try Gzip.decompress(bomb, limit: 1 << 20) }
    }

    @Test func corruptAndTruncated() throws {
        let gz = try Gzip.compress(Array(repeating: 7, count: 5000))
        #expect(throws: GzipError.self) { try Gzip.decompress(Array(gz.prefix(gz.count / 2)), limit: 1 << 20) }
        #expect(throws: GzipError.self) { try Gzip.decompress(Array("not gzip".utf8), limit: 1 << 20) }
    }

    @Test func acceptEncoding() {
        #expect(Gzip.isAccepted(by: "gzip, deflate"))
        #expect(Gzip.isAccepted(by: "br;q=1, GZIP;q=0.1"))
        #expect(!Gzip.isAccepted(by: "gzip;q=0"))
        #expect(Gzip.isAccepted(by: "*"))
        #expect(!Gzip.isAccepted(by: "*, gzip;q=0"))
        #expect(!Gzip.isAccepted(by: "identity"))
        #expect(!Gzip.isAccepted(by: nil))
    }
}

@Suite(.timeLimit(.minutes(3))) struct SSETests {
    @Test func encoderSplitsMultiLineData() {
        let m = String(decoding: SSEEncoder.message(id: "42", event: "caught-up", data: "a\nb\r\nc"), as: UTF8.self)
        #expect(m == "id: 42\nevent: caught-up\ndata: a\ndata: b\ndata: c\n\n")
        #expect(String(decoding: SSEEncoder.comment("keepalive"), as: UTF8.self) == ": keepalive\n\n")
        #expect(String(decoding: SSEEncoder.retry(2000), as: UTF8.self) == "retry: 2000\n\n")
    }

    static let stream: [UInt8] = [0xEF, 0xBB, 0xBF] + Array((
        "retry: 2000\r\n\r\n: comment\n" +
        "id: 1\ndata: {\"n\":1}\ndata: second\n\n" +
        "data:no space\r" + "\r" +
        "id: 7\revent: caught-up\rdata: {}\r\n\r\n" +
        "event: ignored-without-data\n\n" +
        "retry: x1\nid\ndata\n\n" +
        "id: a\u{0}b\ndata: kept\n\n"
    ).utf8)

    static let expected: [SSEEvent] = [
        SSEEvent(event: "message", data: "{\"n\":1}\nsecond", lastEventID: "1", hasID: true),
        SSEEvent(event: "message", data: "no space", lastEventID: "1", hasID: false),
        SSEEvent(event: "caught-up", data: "{}", lastEventID: "7", hasID: true),
        SSEEvent(event: "message", data: "", lastEventID: "", hasID: true),
        SSEEvent(event: "message", data: "kept", lastEventID: "", hasID: false),
    ]

    @Test func parserFollowsWHATWG() {
        var p = SSEParser()
        #expect(p.feed(Self.stream) == Self.expected)
        #expect(p.reconnectionTime == 2000)
    }

    @Test func parserGivesSameEventsAtEverySplit() {
        let bytes = Self.stream
        for cut in 0...bytes.count {
            var p = SSEParser()
            let events = p.feed(bytes[..<cut]) + p.feed(bytes[cut...])
            #expect(events == Self.expected, "split at \(cut)")
        }
        var p = SSEParser()
        #expect(bytes.flatMap { p.feed([$0]) } == Self.expected)
    }

    @Test func encoderOutputRoundTrips() {
        var p = SSEParser()
        let e = p.feed(SSEEncoder.message(id: "9", data: "x\ny"))
        #expect(e == [SSEEvent(event: "message", data: "x\ny", lastEventID: "9", hasID: true)])
    }
}

@Suite(.timeLimit(.minutes(3))) struct HTTPResponseParserUnreadTests {
    /// Bytes after the answer to the one request sent (a second answer, as a request smuggled
    /// through a header value would get) are reported, so the connection is not reused.
    @Test func bytesAfterTheAnswerAreReported() throws {
        var p = HTTPResponseParser()
        p.requestSent(isHead: false)
        p.feed(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n".utf8))
        var ended = false
        while !ended, let e = try p.next() { if case .end = e { ended = true } }
        #expect(ended && p.hasUnreadBytes)
        var q = HTTPResponseParser()
        q.requestSent(isHead: false)
        q.feed(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8))
        ended = false
        while !ended, let e = try q.next() { if case .end = e { ended = true } }
        #expect(ended && !q.hasUnreadBytes)
    }
}

@Suite(.timeLimit(.minutes(3))) struct HTTPResponseParserTests {
    static let text = "HTTP/1.1 100 Continue\r\n\r\n" +
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc" +
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nde\r\n1\r\nf\r\n0\r\nT: v\r\n\r\n" +
        "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n" +
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" +
        "HTTP/1.0 200 OK\r\n\r\nuntil close"

    func parse(_ chunks: [ArraySlice<UInt8>]) throws -> [(Int, String)] {
        var p = HTTPResponseParser()
        for h in [false, false, false, true, false] { p.requestSent(isHead: h) }
        var out: [(Int, String)] = []
        var status = 0
        var body: [UInt8] = []
        func drain() throws {
            while let e = try p.next() {
                switch e {
                case .head(let h): status = h.status; body = []
                case .body(let b): body += b
                case .end: out.append((status, String(decoding: body, as: UTF8.self)))
                }
            }
        }
        for c in chunks {
            p.feed(c)
            try drain()
        }
        if let e = try p.finish(), e == .end { out.append((status, String(decoding: body, as: UTF8.self))) }
        return out
    }

    @Test func framingKindsAtEverySplit() throws {
        let bytes = Array(Self.text.utf8)
        let whole = try parse([bytes[...]])
        #expect(whole.map(\.0) == [200, 200, 204, 200, 200])
        #expect(whole.map(\.1) == ["abc", "def", "", "", "until close"])
        for cut in 0...bytes.count {
            let split = try parse([bytes[..<cut], bytes[cut...]])
            #expect(split.map(\.1) == whole.map(\.1), "split at \(cut)")
        }
    }

    @Test func truncatedResponseThrows() {
        var p = HTTPResponseParser()
        p.feed(Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".utf8))
        _ = try? p.next()
        _ = try? p.next()
        #expect(throws: HTTPResponseParseError.self) { try p.finish() }
    }
}

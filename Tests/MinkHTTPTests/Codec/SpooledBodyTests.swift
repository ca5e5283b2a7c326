import Foundation
import Testing
@testable import MinkHTTP

/// Request bodies of spooled routes (an import) and the incremental gzip codec.
@Suite(.timeLimit(.minutes(3))) struct SpooledBodyTests {
    static let route = SpooledBodyRoute(method: "POST", path: "/import", maxBytes: 0)

    static func parse(_ pieces: [ArraySlice<UInt8>], routes: [SpooledBodyRoute] = [route], maxBodyBytes: Int = 16) throws -> [HTTPRequest] {
        var limits = HTTPParserLimits(maxBodyBytes: maxBodyBytes)
        limits.spooledBodyRoutes = routes
        var parser = HTTPRequestParser(limits: limits)
        var out: [HTTPRequest] = []
        for p in pieces {
            parser.feed(p)
            while let r = try parser.next() { out.append(r) }
        }
        return out
    }

    static func spooled(_ r: HTTPRequest) throws -> [UInt8] {
        guard let spool = r.bodySpool else { return [] }
        var all: [UInt8] = []
        while true {
            let piece = try spool.read(max: 7)
            if piece.isEmpty { return all }
            all += piece
        }
    }

    /// Chunked and fixed bodies over the general limit go to the spool, whole at every split; a
    /// request on another route keeps the general limit.
    @Test func bodiesAreSpooledAtEverySplit() throws {
        let body = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        let fixed = Array("POST /import HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
        let chunked = Array("POST /import HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n1f\r\n".utf8)
            + body.dropFirst(5) + Array("\r\n0\r\n\r\n".utf8)
        let next = Array("GET /after HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        for input in [fixed + next, chunked + next] {
            for cut in 0...input.count {
                let requests = try Self.parse([input[..<cut], input[cut...]])
                try #require(requests.count == 2, "split at \(cut)")
                #expect(requests[0].body.isEmpty)
                #expect(try Self.spooled(requests[0]) == body, "split at \(cut)")
                #expect(requests[0].bodySpool?.count == body.count)
                #expect(requests[1].path == "/after" && requests[1].bodySpool == nil)
            }
        }
        let other = Array("POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
        #expect(throws: HTTPParseError.self) { try Self.parse([other[...]]) }
    }

    @Test func aSpooledRouteHasItsOwnLimit() throws {
        let limited = [SpooledBodyRoute(method: "POST", path: "/import", maxBytes: 10)]
        let over = Array("POST /import HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n".utf8)
        do {
            _ = try Self.parse([over[...]], routes: limited)
            Issue.record("11 bytes over a limit of 10 must fail")
        } catch let e as HTTPParseError {
            #expect(e.status == 413)
        }
        let chunkedOver = Array("POST /import HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n".utf8)
        #expect(throws: HTTPParseError.self) { try Self.parse([chunkedOver[...]], routes: limited) }
        let huge = Array("POST /import HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n".utf8)
        #expect(throws: HTTPParseError.self) { try Self.parse([huge[...]]) }
    }

    /// The incremental decoder gives the same bytes as the one-shot one, whatever the input
    /// pieces, one bounded piece at a time; a truncated or trailing-garbage input is corrupt.
    @Test func gzipDecoderAtEverySplit() throws {
        var plain: [UInt8] = []
        for i in 0..<200_000 { plain.append(UInt8(truncatingIfNeeded: i % 251 == 0 ? i : 65 + i % 7)) }
        let zipped = try Gzip.compress(plain)
        for size in [1, 7, 1000, 65_536, zipped.count] {
            let decoder = try GzipDecoder()
            var out: [UInt8] = []
            var offset = 0
            while offset < zipped.count {
                decoder.feed(Array(zipped[offset..<min(offset + size, zipped.count)]))
                offset += size
                while let piece = try decoder.next() {
                    #expect(piece.count <= 64 * 1024)
                    out += piece
                }
            }
            try decoder.finish()
            #expect(out == plain, "pieces of \(size)")
        }
        let truncated = try GzipDecoder()
        truncated.feed(Array(zipped.prefix(zipped.count / 2)))
        while try truncated.next() != nil {}
        #expect(throws: GzipError.self) { try truncated.finish() }
        let trailing = try GzipDecoder()
        trailing.feed(zipped + [1, 2, 3])
        #expect(throws: GzipError.self) { while try trailing.next() != nil {} }
    }

    /// Gzip members one after the other (`cat a.gz b.gz`: a resumed export joined, say) decode
    /// to their contents one after the other, with both decoders and at every split; a second
    /// member cut short is corrupt. They were refused as "not valid gzip data".
    @Test func concatenatedGzipMembersDecodeInOrder() throws {
        let a = Array(String(repeating: "{\"a\":1}\n", count: 20_000).utf8), b = Array("{\"b\":2}\n".utf8)
        let c = Array(String(repeating: "{\"c\":3}\n", count: 9_000).utf8)
        let joined = try Gzip.compress(a) + Gzip.compress(b) + Gzip.compress(c)
        #expect(try Gzip.decompress(joined, limit: 1 << 24) == a + b + c)
        for size in [1, 13, 4096, joined.count] {
            let decoder = try GzipDecoder()
            var out: [UInt8] = []
            var offset = 0
            while offset < joined.count {
                decoder.feed(Array(joined[offset..<min(offset + size, joined.count)]))
                offset += size
                while let piece = try decoder.next() { out += piece }
            }
            try decoder.finish()
            #expect(out == a + b + c, "pieces of \(size)")
        }
        let cut = try Gzip.compress(a) + Array(try Gzip.compress(c).prefix(20))
        #expect(throws: GzipError.self) { _ = try Gzip.decompress(cut, limit: 1 << 24) }
        let decoder = try GzipDecoder()
        decoder.feed(cut)
        while try decoder.next() != nil {}
        #expect(throws: GzipError.self) { try decoder.finish() }
    }

    @Test func gzipEncoderRoundTrips() throws {
        let plain = Array(String(repeating: "{\"a\":1}\n", count: 50_000).utf8)
        let encoder = try GzipEncoder()
        var zipped: [UInt8] = []
        for start in stride(from: 0, to: plain.count, by: 3000) { zipped += encoder.encode(Array(plain[start..<min(start + 3000, plain.count)])) }
        zipped += encoder.finish()
        #expect(try Gzip.decompress(zipped, limit: 1 << 24) == plain)
    }
}

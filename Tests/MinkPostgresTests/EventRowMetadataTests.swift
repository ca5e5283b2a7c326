import Foundation
import Mink
@testable import MinkPostgres
import Testing

/// The metadata text stored with each event on PostgreSQL: written and read without Foundation's
/// JSON coders, and still reading what they wrote.
@Suite("PostgreSQL event metadata text", .timeLimit(.minutes(1)))
struct EventRowMetadataTests {
    static let samples: [Metadata] = [
        Metadata(),
        Metadata(correlationID: "corr-1"),
        Metadata(correlationID: "", causationID: "", userID: "", tenantID: ""),
        Metadata(correlationID: "a\"b\\c/d", causationID: "line\nbreak\ttab\u{1}", userID: "üser ✓ 𝄞", tenantID: "acme",
                 custom: ["z": "last", "a": "", "é": "accent", "quote\"": "\u{0}nul"]),
        Metadata(custom: ["only": "custom"]),
    ]

    @Test(arguments: samples)
    func roundTrips(_ m: Metadata) throws {
        let text = try EventRow.encodeMetadata(m)
        #expect(try EventRow.decodeMetadata(text) == m, "\(text)")
        // Valid JSON for PostgreSQL's text column: no raw NUL or control bytes.
        #expect(!text.utf8.contains { $0 < 0x20 }, "\(text)")
    }

    /// The text has the keys sorted and absent values left out, as Foundation's `JSONEncoder` with
    /// sorted keys wrote it.
    @Test func theStoredTextKeepsItsShape() throws {
        let m = Metadata(correlationID: "c1", causationID: "k1", userID: "u1", tenantID: "t1", custom: ["b": "2", "a": "1"])
        #expect(try EventRow.encodeMetadata(m) == #"{"c":"c1","k":"k1","t":"t1","u":"u1","x":{"a":"1","b":"2"}}"#)
        #expect(try EventRow.encodeMetadata(Metadata(userID: "u")) == #"{"u":"u"}"#)
        #expect(try EventRow.encodeMetadata(Metadata()) == "{}")
    }

    /// Rows written before (Foundation's encoder, with or without escaped slashes) still read.
    @Test func readsWhatFoundationsEncoderWrote() throws {
        struct Stored: Codable { var c, k, u, t: String?; var x: [String: String]? }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let m = Metadata(correlationID: "a/b", causationID: "é\"\n", userID: "", custom: ["k/1": "v\\"])
        let old = String(decoding: try encoder.encode(Stored(c: m.correlationID, k: m.causationID, u: m.userID, t: nil, x: m.custom)), as: UTF8.self)
        #expect(old.contains(#"\/"#), "the old text escaped slashes: \(old)")
        #expect(try EventRow.decodeMetadata(old) == m)
        #expect(try EventRow.decodeMetadata(#"{"c":null,"x":null,"other":[1,{"n":2}]}"#) == Metadata())
    }

    @Test func malformedTextFailsClearly() {
        for bad in ["", "{", #"{"c":1}"#, #"{"x":{"a":2}}"#, "[]", #"{"c":"a"} x"#] {
            #expect(throws: MinkError.self, "\(bad)") { try EventRow.decodeMetadata(bad) }
        }
    }
}

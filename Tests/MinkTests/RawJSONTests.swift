import Foundation
import Testing
@testable import Mink

@Suite(.timeLimit(.minutes(3))) struct RawJSONTests {
    static let tricky = #"{"big":12345678901234567890,"huge":1e400,"tiny":-0.000000000000000000001,"u":"\u00e9\ud83d\ude00é😀","esc":"\"\\\/\n","order":{"z":1,"a":2}}"#

    @Test func keepsBytesExactly() throws {
        let raw = try RawJSON(validating: Self.tricky)
        #expect(raw.string == Self.tricky)
        #expect(raw.bytes == Array(Self.tricky.utf8))
    }

    @Test func trimsSurroundingWhitespaceOnly() throws {
        let raw = try RawJSON(validating: " \n[1, 2]\t ")
        #expect(raw.string == "[1, 2]")
    }

    @Test func minifiesOutsideStringsOnly() throws {
        let raw = try RawJSON(validating: "{\n  \"a b\": [1, 2],\n  \"c\": \"x \\\" y\"\n}")
        #expect(raw.minified().string == #"{"a b":[1,2],"c":"x \" y"}"#)
        let compact = try RawJSON(validating: Self.tricky)
        #expect(compact.minified() == compact)
    }

    @Test func codableRoundTripIsSemantic() throws {
        let raw = try RawJSON(validating: #"{"a":[1,"x",true,null]}"#)
        let encoded = try JSONEncoder().encode(["v": raw])
        let decoded = try JSONDecoder().decode([String: RawJSON].self, from: encoded)
        #expect(try decoded["v"]!.decoded() == raw.decoded())
    }
}

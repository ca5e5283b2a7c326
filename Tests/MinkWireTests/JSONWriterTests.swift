import Foundation
import Testing
@testable import MinkWire

@Suite struct JSONWriterTests {
    @Test func writesNestedStructureWithCommas() {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("a")
        writer.beginArray()
        writer.int(1)
        writer.int(-2)
        writer.beginObject()
        writer.endObject()
        writer.beginArray()
        writer.endArray()
        writer.endArray()
        writer.key("b")
        writer.bool(true)
        writer.key("c")
        writer.null()
        writer.key("d")
        writer.string("x")
        writer.endObject()
        #expect(writer.string == #"{"a":[1,-2,{},[]],"b":true,"c":null,"d":"x"}"#)
    }

    @Test func escapesStringsPerRFC8259() {
        var writer = JSONWriter()
        writer.string("q\"b\\s/\n\r\t\u{08}\u{0C}\u{01}\u{1F}\u{7F}é€😀\u{2028}\u{2029}")
        #expect(writer.string == #""q\"b\\s/\n\r\t\b\f\u0001\u001f"# + "\u{7F}é€😀" + #"\u2028\u2029""#)
    }

    @Test func escapedStringsReadBackUnchanged() throws {
        let samples = ["", "plain", "\u{00}\u{1F}\"\\", "e\u{0301}", "𝄞 and \u{2028}", String(repeating: "ab\n", count: 100)]
        for sample in samples {
            var writer = JSONWriter()
            writer.string(sample)
            var reader = JSONReader(writer.bytes)
            #expect(try reader.readString() == sample)
        }
    }

    @Test func writesIntegerExtremes() {
        var writer = JSONWriter()
        writer.beginArray()
        writer.int(Int64.min)
        writer.int(Int64.max)
        writer.int(0)
        writer.endArray()
        #expect(writer.string == "[-9223372036854775808,9223372036854775807,0]")
    }

    @Test func writesDoublesAndNonFiniteAsNull() {
        var writer = JSONWriter()
        writer.beginArray()
        writer.double(1.5)
        writer.double(3)
        writer.double(.infinity)
        writer.double(.nan)
        writer.endArray()
        #expect(writer.string == "[1.5,3,null,null]")
    }

    @Test func writesLowercaseUUID() {
        var writer = JSONWriter()
        writer.uuid(UUID(uuidString: "0F8FAD5B-D9CB-469F-A165-70867728950E")!)
        #expect(writer.string == #""0f8fad5b-d9cb-469f-a165-70867728950e""#)
    }

    @Test func embedsRawBytesUnchanged() throws {
        let raw = try RawJSON(validating: #"{"n":12345678901234567890,"e":1e400,"s":"\u00e9"}"#)
        var writer = JSONWriter()
        writer.beginArray()
        writer.raw(raw)
        writer.endArray()
        #expect(writer.string == #"[{"n":12345678901234567890,"e":1e400,"s":"\u00e9"}]"#)
    }
}

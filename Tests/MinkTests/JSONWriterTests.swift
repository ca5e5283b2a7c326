import Foundation
import Testing
@testable import Mink

@Suite(.timeLimit(.minutes(3))) struct JSONWriterTests {
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

    /// One rule for whole doubles (it was 1e15 in one writer and 9e15 in another): digits up to
    /// 2^53, where every integer is a double; the shortest round-trip form above.
    @Test(arguments: [
        (1e15 - 1, "999999999999999"), (1e15, "1000000000000000"), (-1e15, "-1000000000000000"),
        (9e15, "9000000000000000"), (9_007_199_254_740_991, "9007199254740991"), (9_007_199_254_740_992, "9007199254740992"),
        (-9_007_199_254_740_992, "-9007199254740992"), (9_007_199_254_740_994, "9.007199254740994e+15"), (1e16, "1e+16"),
        (1e300, "1e+300"), (0.1, "0.1"), (-0.0, "0"), (123456789012345.5, "123456789012345.5"),
    ] as [(Double, String)])
    func writesWholeDoublesExactlyUpTo2To53(_ value: Double, _ expected: String) throws {
        var writer = JSONWriter()
        writer.double(value)
        #expect(writer.string == expected)
        #expect(JSONValue.double(value).jsonString() == expected)
        // Read back, the same double.
        var reader = JSONReader(writer.bytes)
        #expect(try reader.readValue().doubleValue == value)
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

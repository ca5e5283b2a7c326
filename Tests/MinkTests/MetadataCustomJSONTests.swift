import Foundation
import Mink
import Testing

/// The custom-metadata text storage adapters keep (``Metadata/customJSON(_:)``,
/// ``Metadata/custom(fromJSON:)``): written with JSONWriter, read with JSONReader, and readable
/// from what Foundation's JSONEncoder wrote before.
@Suite(.timeLimit(.minutes(1))) struct MetadataCustomJSONTests {
    @Test func keysAreSortedAndValuesEscaped() {
        let text = String(decoding: Metadata.customJSON(["b": "2", "a": "x/\"y\"\n", "é": "\u{0}"]), as: UTF8.self)
        #expect(text == #"{"a":"x/\"y\"\n","b":"2","é":"\u0000"}"#)
        #expect(String(decoding: Metadata.customJSON([:]), as: UTF8.self) == "{}")
    }

    @Test func oddValuesRoundTrip() throws {
        let odd = ["": "", "nul\u{0}in": "\u{1}\u{1F}\u{7F}", "quote'\"\\": "ü💥", "slash/": "a/b", "tab\t": "line\r\n"]
        #expect(try Metadata.custom(fromJSON: Metadata.customJSON(odd)) == odd)
    }

    /// Rows written before read back: Foundation's encoder escaped slashes and sorted keys.
    @Test func whatJSONEncoderWroteReads() throws {
        let pairs = ["path": "/a/b", "who": "ü", "q": "\"", "nul": "\u{0}"]
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let old = [UInt8](try encoder.encode(pairs))
        #expect(String(decoding: old, as: UTF8.self).contains(#"\/a\/b"#))
        #expect(try Metadata.custom(fromJSON: old) == pairs)
    }

    @Test func textThatIsNotAnObjectOfStringsFails() {
        for bad in [#"[]"#, #"{"a":1}"#, #"{"a":null}"#, #"{"a":"b"} x"#, #"{"a":"#, "", #"{"a":{"b":"c"}}"#] {
            #expect(throws: MinkError.self, "\(bad)") { try Metadata.custom(fromJSON: Array(bad.utf8)) }
            do {
                _ = try Metadata.custom(fromJSON: Array(bad.utf8))
            } catch let e as MinkError {
                #expect(e.code == .serializationFailed, "\(bad)")
            } catch {
                Issue.record("\(bad): \(error)")
            }
        }
    }
}

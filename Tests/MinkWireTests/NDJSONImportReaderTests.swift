import Foundation
import Mink
import MinkWire
import Testing

@Suite(.timeLimit(.minutes(3))) struct NDJSONImportReaderTests {
    static func line(_ stream: String, _ version: Int, _ position: Int) -> String {
        #"{"id":"0f8fad5b-d9cb-469f-a165-70867728950\#(position % 10)","streamId":"\#(stream)","type":"T","data":{"p":\#(position)},"metadata":{"custom":{"k":"v"}},"version":\#(version),"globalPosition":\#(position),"timestamp":"2026-12-05T10:00:00.000001Z"}"#
    }

    /// The same events whatever the split of the input.
    @Test func sameEventsAtEverySplit() throws {
        let text = [Self.line("a", 1, 1), Self.line("b", 3, 2), "", Self.line("a", 2, 5)].joined(separator: "\n")
        let bytes = Array(text.utf8)
        var whole = NDJSONImportReader()
        let expected = try whole.feed(bytes) + whole.finish()
        #expect(expected.map(\.globalPosition) == [1, 2, 5])
        #expect(whole.summary == ImportSummary(events: 3, streams: 2, head: 5))
        for cut in stride(from: 0, through: bytes.count, by: 3) {
            var reader = NDJSONImportReader()
            let events = try reader.feed(bytes[..<cut]) + reader.feed(bytes[cut...]) + reader.finish()
            #expect(events == expected, "split at \(cut)")
        }
    }

    /// An imported event's data is stored minified, as an append stores it: whitespace outside
    /// strings goes, the strings' own spaces stay.
    @Test func importedDataIsMinified() throws {
        let spaced = Self.line("a", 1, 1).replacingOccurrences(of: #""data":{"p":1}"#, with: #""data": { "p" : [ 1, 2 ],"s":"a b" }"#)
        #expect(spaced != Self.line("a", 1, 1))
        var reader = NDJSONImportReader()
        let events = try reader.feed(Array(spaced.utf8)) + reader.finish()
        #expect(events.map { String(decoding: $0.data, as: UTF8.self) } == [#"{"p":[1,2],"s":"a b"}"#])
    }

    @Test func badLinesNameTheirLine() throws {
        func failure(_ lines: [String]) -> ImportLineError? {
            var reader = NDJSONImportReader()
            do {
                _ = try reader.feed(Array(lines.joined(separator: "\n").utf8))
                _ = try reader.finish()
                return nil
            } catch let e as ImportLineError {
                return e
            } catch {
                return nil
            }
        }
        #expect(failure([Self.line("a", 1, 1), "{"])?.line == 2)
        #expect(failure([Self.line("a", 1, 1), "{"])?.code == "invalid_json")
        #expect(failure([Self.line("a", 1, 2), Self.line("b", 1, 2)])?.line == 2)
        #expect(failure([Self.line("a", 1, 1), Self.line("a", 3, 2)])?.line == 2)
        #expect(failure([Self.line("a", 0, 1)])?.line == 1)
        #expect(failure([Self.line("a", 1, 1).replacingOccurrences(of: #""custom""#, with: #""other""#)])?.message.contains("unknown key") == true)
        #expect(failure([Self.line("", 1, 1)])?.line == 1)
        var reader = NDJSONImportReader(maxLineBytes: 100)
        #expect(throws: ImportLineError.self) { try reader.feed(Array(String(repeating: "x", count: 200).utf8)) }
    }

    /// A line over the limit is refused whether it arrives whole in one chunk or in pieces (it
    /// was accepted whole and refused in pieces: the answer depended on the input's cutting).
    @Test func anOverlongLineIsRefusedWhateverTheSplit() throws {
        let long = Self.line("a", 1, 1), limit = long.utf8.count - 1
        let bytes = Array((long + "\n").utf8)
        for cut in [0, 10, bytes.count - 1, bytes.count] {
            var reader = NDJSONImportReader(maxLineBytes: limit)
            #expect(throws: ImportLineError.self, "split at \(cut)") {
                _ = try reader.feed(bytes[..<cut]) + reader.feed(bytes[cut...]) + reader.finish()
            }
            var fits = NDJSONImportReader(maxLineBytes: limit + 1)
            #expect(try fits.feed(bytes[..<cut]) + fits.feed(bytes[cut...]) + fits.finish() == [try Event(importLine: Array(long.utf8))], "split at \(cut)")
        }
    }
}

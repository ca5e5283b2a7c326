import Foundation
import Mink
import Testing
@testable import MinkWire

@Suite(.timeLimit(.minutes(3))) struct WireTimestampTests {
    @Test func formatsWithMicroseconds() {
        #expect(WireTimestamp(microsecondsSince1970: 0).rfc3339 == "1970-01-01T00:00:00.000000Z")
        #expect(WireTimestamp(microsecondsSince1970: 1_795_713_689_123_456).rfc3339 == "2026-11-26T17:21:29.123456Z")
        #expect(WireTimestamp(microsecondsSince1970: -1).rfc3339 == "1969-12-31T23:59:59.999999Z")
        #expect(WireTimestamp(microsecondsSince1970: 951_782_400_000_000).rfc3339 == "2000-02-29T00:00:00.000000Z")
    }

    @Test func parsesWhatItFormats() {
        var micros: Int64 = -62_135_596_800_000_000  // 0001-01-01
        while micros < 253_402_300_799_000_000 {
            let timestamp = WireTimestamp(microsecondsSince1970: micros)
            #expect(WireTimestamp(rfc3339: timestamp.rfc3339) == timestamp)
            micros += 7_777_777_777_777_777
        }
    }

    @Test func agreesWithFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        for seconds in stride(from: -2_000_000_000, through: 4_000_000_000, by: 123_456_789) {
            let date = Date(timeIntervalSince1970: TimeInterval(seconds))
            let ours = WireTimestamp(date).rfc3339
            #expect(ours.replacingOccurrences(of: ".000000", with: "") == formatter.string(from: date))
        }
    }

    @Test func parsesOffsetsAndFractions() {
        #expect(WireTimestamp(rfc3339: "2026-11-26T18:21:29.5+01:00")?.rfc3339 == "2026-11-26T17:21:29.500000Z")
        #expect(WireTimestamp(rfc3339: "2026-11-26t17:21:29.123456789z")?.rfc3339 == "2026-11-26T17:21:29.123456Z")
        #expect(WireTimestamp(rfc3339: "2026-11-26T17:21:29-00:30")?.rfc3339 == "2026-11-26T17:51:29.000000Z")
    }

    @Test(arguments: [
        "", "2026-11-26", "2026-11-26T17:21:29", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
        "2026-11-26T24:00:00Z", "2026-11-26T17:60:00Z", "2026-11-26T17:21:60Z", "2026-11-26T17:21:29.Z",
        "2026-11-26T17:21:29.1234567890Z", "2026-11-26 17:21:29Z", "2026-11-26T17:21:29+0100", "2026-11-26T17:21:29ZZ",
    ])
    func rejectsInvalid(_ text: String) {
        #expect(WireTimestamp(rfc3339: text) == nil)
    }

    @Test func dateRoundTripKeepsMicroseconds() {
        let timestamp = WireTimestamp(microsecondsSince1970: 1_795_713_689_123_457)
        #expect(WireTimestamp(timestamp.date) == timestamp)
    }
}

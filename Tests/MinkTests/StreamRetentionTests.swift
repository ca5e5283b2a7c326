import Foundation
@testable import Mink
import Testing

/// The arithmetic of retention rules at their extremes: nothing traps.
@Suite(.timeLimit(.minutes(1))) struct StreamRetentionTests {
    @Test func ageCutoffSaturatesInsteadOfOverflowing() {
        let now: Int64 = 1_780_000_000_000_000  // 2026, in microseconds
        #expect(StreamRetention().cutoffMicroseconds(nowMicros: now) == nil)
        #expect(StreamRetention(maxAgeSeconds: 60).cutoffMicroseconds(nowMicros: now) == now - 60_000_000)
        // Rules stored before the limit was checked: no cutoff (nothing is that old), no trap.
        #expect(StreamRetention(maxAgeSeconds: Int64.max).cutoffMicroseconds(nowMicros: now) == nil)
        #expect(StreamRetention(maxAgeSeconds: Int64.max / 1_000_000).cutoffMicroseconds(nowMicros: -now) == nil)
        #expect(StreamRetention(maxAgeSeconds: StreamRetention.maxAgeSecondsLimit).cutoffMicroseconds(nowMicros: now)
            == now - StreamRetention.maxAgeSecondsLimit * 1_000_000)
        // Before the year 1 (PostgreSQL cannot even write such a time): no cutoff.
        #expect(StreamRetention(maxAgeSeconds: 100_000 * 31_557_600).cutoffMicroseconds(nowMicros: now) == nil)
        #expect(StreamRetention(maxCount: Int64.max).firstKeptVersion(streamVersion: 0) == 1)
    }

    @Test func validationBoundsEveryRule() throws {
        try StreamRetention(maxCount: Int64.max, maxAgeSeconds: StreamRetention.maxAgeSecondsLimit, truncateBefore: Int64.max).validate()
        for bad in [StreamRetention(maxAgeSeconds: StreamRetention.maxAgeSecondsLimit + 1), StreamRetention(maxAgeSeconds: 0),
                    StreamRetention(maxCount: 0), StreamRetention(truncateBefore: -1)] {
            #expect(throws: MinkError.self, "\(bad)") { try bad.validate() }
        }
    }
}

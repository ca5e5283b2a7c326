@testable import MinkHTTP
import Testing

/// `Duration.nanoseconds` (timeouts handed to the event loops and the client) saturates: a
/// timeout beyond what 64 bits of nanoseconds hold wrapped and crashed its conversion to `Int`
/// (`minkd healthcheck --timeout 9223372037`, a black-box audit).
@Suite(.timeLimit(.minutes(1))) struct DurationNanosecondsTests {
    @Test func hugeDurationsSaturateAndOthersAreExact() {
        #expect(Duration.seconds(3).nanoseconds == 3_000_000_000)
        #expect(Duration.milliseconds(1500).nanoseconds == 1_500_000_000)
        #expect(Duration.seconds(-1).nanoseconds == 0)
        #expect(Duration.seconds(9_223_372_037).nanoseconds == UInt64(Int64.max))
        #expect(Duration.seconds(Int64.max).nanoseconds == UInt64(Int64.max))
        #expect(Int(exactly: Duration.seconds(Int64.max).nanoseconds) != nil)
    }
}

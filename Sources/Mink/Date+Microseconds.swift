import Foundation

extension Date {
    /// Microseconds from 1970-01-01T00:00:00Z to Foundation's reference date, 2001-01-01T00:00:00Z.
    static let referenceDateMicroseconds: Int64 = 978_307_200_000_000

    /// The date `microseconds` after 1970-01-01T00:00:00Z.
    ///
    /// A `Date` is a `Double` of seconds since 2001: converted through seconds since 1970 (as
    /// `Date(timeIntervalSince1970:)` does), a timestamp rounds twice, and about a quarter of
    /// those before 1990 or after 2040 came back a microsecond off (an import into PostgreSQL
    /// changed them). Counted from 2001, every microsecond from 1930 to 2072 round-trips exactly
    /// through ``microsecondsSince1970(_:)``; further out a `Double` cannot hold every microsecond.
    public init(microsecondsSince1970 microseconds: Int64) {
        self.init(timeIntervalSinceReferenceDate: Double(microseconds &- Self.referenceDateMicroseconds) / 1_000_000)
    }

    /// This date in whole microseconds since 1970-01-01T00:00:00Z: the nearest by default,
    /// `.down` to truncate.
    public func microsecondsSince1970(_ rule: FloatingPointRoundingRule = .toNearestOrAwayFromZero) -> Int64 {
        Int64((timeIntervalSinceReferenceDate * 1_000_000).rounded(rule)) &+ Self.referenceDateMicroseconds
    }
}

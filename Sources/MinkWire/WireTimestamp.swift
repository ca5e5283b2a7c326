import Foundation
import Mink

/// A point in time with microsecond precision, written as RFC 3339 UTC with
/// exactly six fractional digits (`2026-11-26T17:21:29.123456Z`).
///
/// Formatting and parsing are hand-written: creating a date formatter costs
/// about 80 µs and this runs once per event on every read.
public struct WireTimestamp: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    /// Microseconds since 1970-01-01T00:00:00Z.
    public var microsecondsSince1970: Int64

    /// Creates a timestamp from microseconds since the Unix epoch.
    public init(microsecondsSince1970: Int64) {
        self.microsecondsSince1970 = microsecondsSince1970
    }

    /// Creates a timestamp from a `Date`, rounded to the nearest microsecond.
    public init(_ date: Date) {
        microsecondsSince1970 = date.microsecondsSince1970()
    }

    /// The current time.
    public static func now() -> WireTimestamp { WireTimestamp(Date()) }

    /// The timestamp as a `Date`.
    public var date: Date { Date(microsecondsSince1970: microsecondsSince1970) }

    /// Orders timestamps by time.
    public static func < (lhs: WireTimestamp, rhs: WireTimestamp) -> Bool {
        lhs.microsecondsSince1970 < rhs.microsecondsSince1970
    }

    /// The RFC 3339 form, e.g. `2026-11-26T17:21:29.123456Z`.
    public var rfc3339: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(27)
        appendRFC3339(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The RFC 3339 form.
    public var description: String { rfc3339 }

    /// Appends the 27 bytes of the RFC 3339 form to `bytes`.
    ///
    /// Years outside 0000–9999 cannot be written in RFC 3339; they are clamped
    /// to the nearest representable instant.
    public func appendRFC3339(to bytes: inout [UInt8]) {
        let micros = min(max(microsecondsSince1970, Self.minimumMicros), Self.maximumMicros)
        let (seconds, fraction) = Self.floorDivide(micros, 1_000_000)
        let (days, secondOfDay) = Self.floorDivide(seconds, 86_400)
        let (year, month, day) = Self.civil(fromDays: days)
        func digits(_ value: Int64, _ count: Int) {
            var divisor: Int64 = 1
            for _ in 1..<count { divisor *= 10 }
            var value = value
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(value / divisor))
                value %= divisor
                divisor /= 10
            }
        }
        digits(year, 4)
        bytes.append(UInt8(ascii: "-"))
        digits(month, 2)
        bytes.append(UInt8(ascii: "-"))
        digits(day, 2)
        bytes.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2)
        bytes.append(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2)
        bytes.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2)
        bytes.append(UInt8(ascii: "."))
        digits(fraction, 6)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// Parses an RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS`, an optional fraction
    /// of 1–9 digits (truncated to microseconds), then `Z` or `±HH:MM`. `t` and
    /// `z` may be lowercase. Leap seconds (`:60`) are rejected.
    /// - Returns: nil when `text` is not a valid timestamp.
    public init?(rfc3339 text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20 else { return nil }
        func number(_ start: Int, _ count: Int) -> Int64? {
            guard start + count <= bytes.count else { return nil }
            var value: Int64 = 0
            for index in start..<(start + count) {
                let byte = bytes[index]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0, 4), bytes[4] == UInt8(ascii: "-"),
              let month = number(5, 2), bytes[7] == UInt8(ascii: "-"),
              let day = number(8, 2), bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
              let hour = number(11, 2), bytes[13] == UInt8(ascii: ":"),
              let minute = number(14, 2), bytes[16] == UInt8(ascii: ":"),
              let second = number(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= Self.daysInMonth(year: year, month: month),
              hour < 24, minute < 60, second < 60
        else { return nil }
        var index = 19
        var micros: Int64 = 0
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            var digitCount = 0
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                if digitCount < 6 { micros = micros * 10 + Int64(bytes[index] - UInt8(ascii: "0")) }
                digitCount += 1
                index += 1
            }
            guard (1...9).contains(digitCount) else { return nil }
            for _ in digitCount..<max(digitCount, 6) { micros *= 10 }
        }
        guard index < bytes.count else { return nil }
        var offsetSeconds: Int64 = 0
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard let offsetHours = number(index + 1, 2), index + 3 < bytes.count, bytes[index + 3] == UInt8(ascii: ":"),
                  let offsetMinutes = number(index + 4, 2), offsetHours < 24, offsetMinutes < 60
            else { return nil }
            offsetSeconds = (offsetHours * 3600 + offsetMinutes * 60) * (bytes[index] == UInt8(ascii: "+") ? 1 : -1)
            index += 6
        default:
            return nil
        }
        guard index == bytes.count else { return nil }
        let days = Self.days(fromCivil: year, month, day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        self.init(microsecondsSince1970: seconds * 1_000_000 + micros)
    }

    /// Decodes an RFC 3339 string.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = WireTimestamp(rfc3339: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 timestamp: \(text)")
        }
        self = value
    }

    /// Encodes the RFC 3339 string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rfc3339)
    }

    // MARK: - Calendar arithmetic (proleptic Gregorian, after H. Hinnant's algorithms)

    /// 0000-01-01T00:00:00.000000Z
    private static let minimumMicros: Int64 = -62_167_219_200_000_000
    /// 9999-12-31T23:59:59.999999Z
    private static let maximumMicros: Int64 = 253_402_300_799_999_999

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        var quotient = value / divisor
        var remainder = value % divisor
        if remainder < 0 {
            quotient -= 1
            remainder += divisor
        }
        return (quotient, remainder)
    }

    private static func isLeap(_ year: Int64) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    private static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension WireTimestamp: JSONWritable, JSONReadable {
    /// Writes the RFC 3339 string.
    public func write(to writer: inout JSONWriter) {
        writer.timestamp(self)
    }

    /// Reads an RFC 3339 string.
    /// - Throws: `bad_request` for a string that is not a timestamp.
    public init(from reader: inout JSONReader) throws {
        let start = reader.offset
        let text = try reader.readString()
        guard let value = WireTimestamp(rfc3339: text) else {
            throw WireError(code: .badRequest, message: "not an RFC 3339 timestamp: \"\(text)\"", offset: start)
        }
        self = value
    }
}

extension JSONWriter {
    /// Writes a timestamp as an RFC 3339 string with microseconds.
    public mutating func timestamp(_ value: WireTimestamp) {
        unescapedString { value.appendRFC3339(to: &$0) }
    }

    /// Writes a date as an RFC 3339 string, rounded to the microsecond.
    public mutating func timestamp(_ value: Date) {
        timestamp(WireTimestamp(value))
    }
}

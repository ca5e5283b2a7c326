#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The IMF-fixdate for the `Date` header, formatted by hand and cached per second.
///
/// Formatting with a date formatter costs ~80 µs; this costs a `time(2)` call (vDSO)
/// and, once a second, a `gmtime_r`.
public enum HTTPDate {
    private static let cache = Mutex<(second: Int, bytes: [UInt8])>((-1, []))

    /// The current date as `Sun, 06 Nov 1994 08:49:37 GMT` bytes.
    public static func now() -> [UInt8] {
        let t = Int(time(nil))
        return cache.withLock { c in
            if c.second != t {
                c = (t, format(t))
            }
            return c.bytes
        }
    }

    /// The current date as a string.
    public static func nowString() -> String { String(decoding: now(), as: UTF8.self) }

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Formats seconds since the epoch as an IMF-fixdate.
    static func format(_ seconds: Int) -> [UInt8] {
        var t = time_t(seconds)
        var tm = tm()
        gmtime_r(&t, &tm)
        var out: [UInt8] = []
        out.reserveCapacity(29)
        out.append(contentsOf: days[Int(tm.tm_wday)].utf8)
        out.append(contentsOf: ", ".utf8)
        two(Int(tm.tm_mday), &out)
        out.append(0x20)
        out.append(contentsOf: months[Int(tm.tm_mon)].utf8)
        out.append(0x20)
        out.append(contentsOf: String(Int(tm.tm_year) + 1900).utf8)
        out.append(0x20)
        two(Int(tm.tm_hour), &out)
        out.append(UInt8(ascii: ":"))
        two(Int(tm.tm_min), &out)
        out.append(UInt8(ascii: ":"))
        two(Int(tm.tm_sec), &out)
        out.append(contentsOf: " GMT".utf8)
        return out
    }

    private static func two(_ v: Int, _ out: inout [UInt8]) {
        out.append(UInt8(0x30 + v / 10))
        out.append(UInt8(0x30 + v % 10))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MinkConfig
import Synchronization

/// One token's request budget (HTTP-API.md section 2): a token bucket of `burst` requests that
/// refills at `perSecond`, kept as the generic cell rate algorithm's one number — the
/// *theoretical arrival time* (TAT), the instant at which the bucket would be full again.
///
/// A request at `now` is allowed when `TAT - now ≤ (burst - 1) × interval` (the bucket holds at
/// least one request); allowing it moves TAT to `max(TAT, now) + interval`. That is exactly a
/// token bucket, but the state is one `Int64`, so it is updated with one compare-and-exchange:
/// no lock on the request path, however many event loops share the token. A limit that is not
/// reached costs a clock read and one uncontended atomic exchange.
final class RateLimiter: Sendable {
    /// The limit as configured.
    let limit: MinkdConfiguration.Token.RateLimit
    /// Nanoseconds between two requests at the sustained rate.
    private let interval: Int64
    /// How far TAT may run ahead of now: the burst, less the request being admitted.
    private let tolerance: Int64
    /// Theoretical arrival time, in nanoseconds of `CLOCK_MONOTONIC`.
    private let tat = Atomic<Int64>(0)

    init(_ limit: MinkdConfiguration.Token.RateLimit) {
        self.limit = limit
        // At least 1 ns, so that a huge `perSecond` still counts requests.
        let interval = max(1, Int64((1_000_000_000 / limit.perSecond).rounded()))
        self.interval = interval
        self.tolerance = interval.multipliedReportingOverflow(by: Int64(limit.burst - 1)).overflow
            ? Int64.max / 2 : interval * Int64(limit.burst - 1)
    }

    /// Takes one request from the bucket.
    /// - Returns: `nil` when the request is allowed; otherwise the whole seconds (≥ 1) after which
    ///   one would be allowed, for `Retry-After`.
    func acquire(now: Int64 = RateLimiter.monotonicNanoseconds()) -> Int? {
        var current = tat.load(ordering: .relaxed)
        while true {
            let base = max(current, now)
            let ahead = base - now
            if ahead > tolerance {
                // Allowed again once TAT - now has fallen to the tolerance; rounded up to whole
                // seconds and at least 1, as `Retry-After` must be.
                let wait = ahead - tolerance
                return max(1, Int((wait + 999_999_999) / 1_000_000_000))
            }
            let (exchanged, original) = tat.compareExchange(
                expected: current, desired: base + interval, ordering: .relaxed
            )
            if exchanged { return nil }
            current = original
        }
    }

    /// `CLOCK_MONOTONIC` in nanoseconds (a vDSO call: no system call).
    static func monotonicNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

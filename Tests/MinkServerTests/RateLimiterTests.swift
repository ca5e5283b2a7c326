import MinkConfig
import Testing

@testable import MinkServer

@Suite("Rate limiter and access_token redaction", .timeLimit(.minutes(3)))
struct RateLimiterTests {
    @Test func aBucketOfBurstRefillsAtTheRate() {
        let limiter = RateLimiter(.init(perSecond: 2, burst: 3))
        let t0: Int64 = 1_000_000_000_000
        // The burst at once, then refused: the next slot is 0.5 s away, which is 1 whole second.
        for _ in 0..<3 { #expect(limiter.acquire(now: t0) == nil) }
        #expect(limiter.acquire(now: t0) == 1)
        // Refused requests take nothing: half a second later exactly one more is allowed.
        #expect(limiter.acquire(now: t0 + 500_000_000) == nil)
        #expect(limiter.acquire(now: t0 + 500_000_000) == 1)
        // After a long pause the bucket is full again, never fuller.
        let later = t0 + 60_000_000_000
        for _ in 0..<3 { #expect(limiter.acquire(now: later) == nil) }
        #expect(limiter.acquire(now: later) != nil)
    }

    @Test func retryAfterIsWholeSecondsAtLeastOne() {
        let slow = RateLimiter(.init(perSecond: 0.2, burst: 1))
        #expect(slow.acquire(now: 0) == nil)
        #expect(slow.acquire(now: 0) == 5)
        #expect(slow.acquire(now: 4_100_000_000) == 1)
        #expect(slow.acquire(now: 5_000_000_000) == nil)
        let fast = RateLimiter(.init(perSecond: 1_000_000, burst: 1))
        #expect(fast.acquire(now: 0) == nil)
        #expect(fast.acquire(now: 0) == 1)
    }

    @Test func concurrentAcquiresNeverExceedTheBurst() async {
        let limiter = RateLimiter(.init(perSecond: 0.001, burst: 100))
        let allowed = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<1000).reduce(0) { n, _ in n + (limiter.acquire() == nil ? 1 : 0) } }
            }
            return await group.reduce(0, +)
        }
        #expect(allowed == 100)
    }

    @Test func accessTokenIsFoundAndRedacted() {
        #expect(AccessToken.token(in: "after=0&access_token=abc%2Bdef&x=1") == "abc+def")
        #expect(AccessToken.token(in: "access_token=a&access_token=b") == "b")
        #expect(AccessToken.token(in: "access_token=") == nil && AccessToken.isPresent(in: "access_token="))
        #expect(AccessToken.token(in: "my_access_token=a") == nil && AccessToken.token(in: "access_tokens=a") == nil)
        #expect(AccessToken.redacting("after=0&access_token=s3cret&type=A") == "after=0&access_token=REDACTED&type=A")
        #expect(AccessToken.redacting("access_token") == "access_token=REDACTED")
        #expect(AccessToken.redacting("after=0") == "after=0")
        #expect(AccessToken.isAllowed(on: "GET") && AccessToken.isAllowed(on: "HEAD") && !AccessToken.isAllowed(on: "POST"))
        // A name is compared decoded, as every parameter's is: `access%5Ftoken` is the token (and
        // so refused on a POST, and redacted).
        #expect(AccessToken.token(in: "access%5Ftoken=s3cret") == "s3cret")
        #expect(AccessToken.token(in: "access%5ftoken=s3cret&access_token=b") == "b")
        #expect(AccessToken.isPresent(in: "x=1&access%5Ftoken=s3cret"))
        #expect(AccessToken.token(in: "access%5Ftokens=a") == nil && AccessToken.token(in: "ACCESS_TOKEN=a") == nil)
        // A log never shows a token in any spelling: another case, encoded, after a `;`.
        #expect(AccessToken.redacting("access%5Ftoken=s3cret") == "access%5Ftoken=REDACTED")
        #expect(AccessToken.redacting("ACCESS_TOKEN=s3cret&a=1") == "ACCESS_TOKEN=REDACTED&a=1")
        #expect(AccessToken.redacting("x=1;access_token=s3cret") == "x=1;access_token=REDACTED")
    }
}

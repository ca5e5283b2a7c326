/// How often and how patiently to retry a failed operation (seed: `RetryPolicy`).
///
/// Used by ``Middleware/retry(_:)`` (transient storage errors only) and by async projections
/// (every error of a batch, before the projection is marked faulted).
public struct RetryPolicy: Sendable, Hashable {
    /// Total attempts including the first one (1 = no retry).
    public var maxAttempts: Int
    /// The wait before the first retry.
    public var initialBackoff: Duration
    /// The longest wait between attempts.
    public var maxBackoff: Duration
    /// The factor the wait grows by after each retry.
    public var multiplier: Double

    /// Creates a policy.
    public init(maxAttempts: Int = 3, initialBackoff: Duration = .milliseconds(50), maxBackoff: Duration = .seconds(5), multiplier: Double = 2) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.multiplier = multiplier
    }

    /// No retries.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// The wait after failed attempt number `attempt` (1-based).
    public func backoff(afterAttempt attempt: Int) -> Duration {
        var d = initialBackoff
        for _ in 1..<max(attempt, 1) { d = d * multiplier }
        return min(d, maxBackoff)
    }

    /// Runs `body`, retrying errors for which `shouldRetry` is true.
    public func run<T: Sendable>(
        shouldRetry: @Sendable (any Error) -> Bool = { _ in true },
        onRetry: @Sendable (any Error, Int) -> Void = { _, _ in },
        _ body: () async throws -> T
    ) async throws -> T {
        var attempt = 1
        while true {
            do { return try await body() } catch {
                guard attempt < maxAttempts, shouldRetry(error), !Task.isCancelled else { throw error }
                onRetry(error, attempt)
                try await Task.sleep(for: backoff(afterAttempt: attempt))
                attempt += 1
            }
        }
    }
}

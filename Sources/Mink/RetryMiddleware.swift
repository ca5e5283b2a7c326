/// Retries store operations that failed with a transient error (`MinkError.isTransient`, e.g.
/// storage unreachable or busy) — never a concurrency conflict or a validation error (seed:
/// `RetryMiddleware`).
///
/// Retried appends are safe: event IDs are set before the chain runs, so a retry of an append
/// that did commit is recognised as a replay.
public struct RetryMiddleware: StoreMiddleware {
    /// How often and how patiently to retry.
    public let policy: RetryPolicy

    /// Creates the middleware.
    public init(_ policy: RetryPolicy) { self.policy = policy }

    public func handle<C: Command>(_ command: C, context: CommandContext, next: CommandHandler<C>) async throws -> C.Output {
        try await policy.run(shouldRetry: { ($0 as? MinkError)?.isTransient ?? false }) { try await next(command, context) }
    }
}

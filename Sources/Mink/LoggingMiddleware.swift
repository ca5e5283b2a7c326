import Logging

/// Logs each store operation at `debug` with its duration, failures at `warning` (seed:
/// `LoggingMiddleware`). Metadata: `mink.operation`, `mink.stream`, `mink.tenant`,
/// `mink.duration_ms`, `mink.error`.
public struct LoggingMiddleware: StoreMiddleware {
    /// Where the lines go.
    public let logger: Logger

    /// Creates the middleware.
    public init(_ logger: Logger) { self.logger = logger }

    public func handle<C: Command>(_ command: C, context: CommandContext, next: CommandHandler<C>) async throws -> C.Output {
        let start = ContinuousClock.now
        var meta: Logger.Metadata = ["mink.operation": "\(C.operation.rawValue)"]
        if let s = command.targetStream { meta["mink.stream"] = "\(s)" }
        if let t = context.tenantID { meta["mink.tenant"] = "\(t)" }
        do {
            let result = try await next(command, context)
            meta["mink.duration_ms"] = "\(Double((ContinuousClock.now - start).wholeNanoseconds) / 1e6)"
            logger.debug("store operation", metadata: meta)
            return result
        } catch {
            meta["mink.error"] = "\(String(reflecting: error))"  // with the underlying cause, if any
            logger.warning("store operation failed", metadata: meta)
            throw error
        }
    }
}

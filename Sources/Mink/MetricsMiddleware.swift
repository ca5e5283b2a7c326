import Metrics

/// Counts store operations by outcome (`mink_operations_total`), times them
/// (`mink_operation_duration_seconds`) and counts appended events (`mink_events_appended_total`)
/// (seed: `MetricsMiddleware`). Dimensions are the operation and outcome only — never stream or
/// tenant IDs, whose number is unbounded.
public struct MetricsMiddleware: StoreMiddleware {
    /// Where the metrics go.
    public let factory: any MetricsFactory

    /// Creates the middleware.
    public init(_ factory: any MetricsFactory = MetricsSystem.factory) { self.factory = factory }

    public func handle<C: Command>(_ command: C, context: CommandContext, next: CommandHandler<C>) async throws -> C.Output {
        let start = ContinuousClock.now
        let op = C.operation.rawValue
        do {
            let result = try await next(command, context)
            Counter(label: "mink_operations_total", dimensions: [("operation", op), ("outcome", "ok")], factory: factory).increment()
            let appended = C.appendedEventCount(result)
            if appended > 0 { Counter(label: "mink_events_appended_total", factory: factory).increment(by: appended) }
            Metrics.Timer(label: "mink_operation_duration_seconds", dimensions: [("operation", op)], factory: factory)
                .recordNanoseconds((ContinuousClock.now - start).wholeNanoseconds)
            return result
        } catch {
            let code = (error as? MinkError)?.code.rawValue ?? "error"
            Counter(label: "mink_operations_total", dimensions: [("operation", op), ("outcome", code)], factory: factory).increment()
            throw error
        }
    }
}

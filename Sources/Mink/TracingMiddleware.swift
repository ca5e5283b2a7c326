import Tracing

/// Runs each store operation in a span named `mink.<operation>`, with the attributes
/// `mink.stream_id` and `mink.event_count` where they apply (seed: `TracingMiddleware`).
public struct TracingMiddleware<T: Tracer>: StoreMiddleware {
    /// Where the spans go.
    public let tracer: T

    /// Creates the middleware.
    public init(_ tracer: T) { self.tracer = tracer }

    public func handle<C: Command>(_ command: C, context: CommandContext, next: CommandHandler<C>) async throws -> C.Output {
        try await tracer.withSpan("mink.\(C.operation.rawValue)", ofKind: .internal) { span in
            if let s = command.targetStream { span.attributes["mink.stream_id"] = s }
            if command.eventCount > 0 { span.attributes["mink.event_count"] = command.eventCount }
            return try await next(command, context)
        }
    }
}

import Foundation
import Logging
import Metrics
import Tracing

/// A store operation as middleware sees it (seed: `Command`).
public struct Command: Sendable {
    /// Which operation.
    public enum Operation: String, Sendable, Hashable {
        case append, load, streamInfo, readAll, headPosition
    }

    /// Which operation.
    public var operation: Operation
    /// The tenant of the store running the operation (`nil` for an unscoped store).
    public var tenantID: String?
    /// The stream, for stream operations.
    public var streamID: String?
    /// The events of an append; middleware may change them (e.g. add metadata) before storage.
    public var events: [EventData]
    /// The condition of an append.
    public var expectedVersion: ExpectedVersion
    /// Reads: the first version (stream) or the exclusive position (log).
    public var from: Int64
    /// Reads: the most events to return.
    public var limit: Int
    /// Stream reads: the direction.
    public var direction: ReadDirection
    /// Log reads: the filter.
    public var filter: EventFilter

    init(_ operation: Operation, tenantID: String?, streamID: String? = nil) {
        self.operation = operation
        self.tenantID = tenantID
        self.streamID = streamID
        self.events = []
        self.expectedVersion = .any
        self.from = 0
        self.limit = 0
        self.direction = .forward
        self.filter = .all
    }
}

/// What an operation produced.
public enum CommandResult: Sendable {
    case appended(AppendResult)
    case events([Event])
    case streamInfo(StreamInfo?)
    case position(UInt64)
}

/// The next step of the chain (seed: `Handler`).
public typealias CommandHandler = @Sendable (Command) async throws -> CommandResult

/// Wraps store operations (seed: `Middleware func(next Handler) Handler`).
///
/// The first middleware given to the store is the outermost. Built-ins: ``logging(_:)``,
/// ``metrics(_:)``, ``tracing(_:)``, ``retry(_:)``, ``validation(_:)``.
public struct Middleware: Sendable {
    /// Builds this step around the next one.
    public let wrap: @Sendable (@escaping CommandHandler) -> CommandHandler

    /// A middleware from a closure.
    public init(_ wrap: @escaping @Sendable (@escaping CommandHandler) -> CommandHandler) { self.wrap = wrap }

    /// Logs each operation at `debug` with its duration, failures at `warning` (seed: `LoggingMiddleware`).
    public static func logging(_ logger: Logger) -> Middleware {
        Middleware { next in
            { command in
                let start = ContinuousClock.now
                var meta: Logger.Metadata = ["mink.operation": "\(command.operation.rawValue)"]
                if let s = command.streamID { meta["mink.stream"] = "\(s)" }
                if let t = command.tenantID { meta["mink.tenant"] = "\(t)" }
                do {
                    let result = try await next(command)
                    meta["mink.duration_ms"] = "\(Self.milliseconds(ContinuousClock.now - start))"
                    logger.debug("store operation", metadata: meta)
                    return result
                } catch {
                    meta["mink.error"] = "\(error)"
                    logger.warning("store operation failed", metadata: meta)
                    throw error
                }
            }
        }
    }

    /// Counts operations by outcome, times them, counts appended events (seed: `MetricsMiddleware`).
    /// Dimensions are the operation and outcome only — never stream or tenant IDs.
    public static func metrics(_ factory: any MetricsFactory = MetricsSystem.factory) -> Middleware {
        Middleware { next in
            { command in
                let start = ContinuousClock.now
                let op = command.operation.rawValue
                do {
                    let result = try await next(command)
                    Counter(label: "mink_operations_total", dimensions: [("operation", op), ("outcome", "ok")], factory: factory).increment()
                    if case .appended(let r) = result, !r.isReplay {
                        Counter(label: "mink_events_appended_total", factory: factory).increment(by: r.events.count)
                    }
                    Metrics.Timer(label: "mink_operation_duration_seconds", dimensions: [("operation", op)], factory: factory)
                        .recordNanoseconds(Self.nanoseconds(ContinuousClock.now - start))
                    return result
                } catch {
                    let code = (error as? MinkError)?.code.rawValue ?? "error"
                    Counter(label: "mink_operations_total", dimensions: [("operation", op), ("outcome", code)], factory: factory).increment()
                    throw error
                }
            }
        }
    }

    /// Runs each operation in a span named `mink.<operation>` (seed: `TracingMiddleware`).
    public static func tracing<T: Tracer>(_ tracer: T) -> Middleware {
        Middleware { next in
            { command in
                try await tracer.withSpan("mink.\(command.operation.rawValue)", ofKind: .internal) { span in
                    if let s = command.streamID { span.attributes["mink.stream_id"] = s }
                    if !command.events.isEmpty { span.attributes["mink.event_count"] = command.events.count }
                    return try await next(command)
                }
            }
        }
    }

    /// Retries operations that failed with a transient error (`MinkError.isTransient`, e.g. storage
    /// unreachable) — never a concurrency conflict or a validation error (seed: `RetryMiddleware`).
    /// Retried appends are safe: event IDs are set before the chain runs, so a retry of an append
    /// that did commit is recognised as a replay.
    public static func retry(_ policy: RetryPolicy) -> Middleware {
        Middleware { next in
            { command in
                try await policy.run(shouldRetry: { ($0 as? MinkError)?.isTransient ?? false }) { try await next(command) }
            }
        }
    }

    /// Limits checked by ``validation(_:)``.
    public struct ValidationLimits: Sendable, Hashable {
        /// The longest event type name, in bytes.
        public var maxTypeBytes: Int
        /// The largest event payload, in bytes.
        public var maxEventBytes: Int
        /// The most events in one append.
        public var maxEventsPerAppend: Int

        /// Creates limits; defaults follow minkd's: 256 bytes, 1 MiB, 1,000 events.
        public init(maxTypeBytes: Int = 256, maxEventBytes: Int = 1 << 20, maxEventsPerAppend: Int = 1000) {
            self.maxTypeBytes = maxTypeBytes
            self.maxEventBytes = maxEventBytes
            self.maxEventsPerAppend = maxEventsPerAppend
        }
    }

    /// Rejects appends whose events have no type, a too-long type, data that is not JSON, or data
    /// over the size limit, and appends with too many events (seed: `ValidationMiddleware`).
    public static func validation(_ limits: ValidationLimits = ValidationLimits()) -> Middleware {
        Middleware { next in
            { command in
                if command.operation == .append {
                    if command.events.count > limits.maxEventsPerAppend {
                        throw MinkError.validation("an append may hold at most \(limits.maxEventsPerAppend) events, got \(command.events.count)")
                    }
                    for (i, e) in command.events.enumerated() {
                        if e.type.isEmpty { throw MinkError.validation("events[\(i)].type must not be empty") }
                        if e.type.utf8.count > limits.maxTypeBytes {
                            throw MinkError.validation("events[\(i)].type is longer than \(limits.maxTypeBytes) bytes")
                        }
                        if e.data.count > limits.maxEventBytes {
                            throw MinkError.validation("events[\(i)].data is larger than \(limits.maxEventBytes) bytes")
                        }
                        do { _ = try JSONValue(json: e.data) } catch {
                            throw MinkError(.serializationFailed, "events[\(i)].data is not serializable JSON: \((error as? MinkError)?.message ?? "\(error)")")
                        }
                    }
                }
                return try await next(command)
            }
        }
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }

    static func milliseconds(_ d: Duration) -> Double { Double(nanoseconds(d)) / 1e6 }
}

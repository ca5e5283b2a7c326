import Foundation
import Logging
import Mink
import Synchronization
import Tracing

/// minkd's tracer: W3C trace context in and out, spans written to the log.
///
/// Every request gets a server span whose IDs are always made (they go into the access log line
/// and the response's `traceparent`, which cost two IDs and no I/O). Spans are *written* —
/// one `debug` line each when it ends (`msg: "span"`, with `trace_id`, `span_id`,
/// `parent_span_id`, `name`, `kind`, `duration_ms`, `status` and the attributes) — only when the
/// logger's level lets `debug` through (``isRecording``); at the default `info` they are not
/// written, and the store's inner spans (``SpanMiddleware``) are not even made. There is no
/// OTLP exporter (docs/architecture.md, *Tracing*, says why); a log pipeline that keeps JSON
/// lines has every span's parentage and timing from these lines.
struct LogTracer: Tracer {
    typealias Span = LogSpan

    let logger: Logger
    /// Whether ended spans are written (the logger lets `debug` through).
    let isRecording: Bool

    init(logger: Logger) {
        self.logger = logger
        self.isRecording = logger.logLevel <= .debug
    }

    func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> LogSpan {
        var spanContext = context()
        let parent = spanContext.traceContext
        let own = parent?.child() ?? TraceContext.newTrace()
        spanContext.traceContext = own
        return LogSpan(
            name: operationName, kind: kind, context: spanContext, trace: own, parentSpanID: parent?.spanID,
            start: instant().nanosecondsSinceEpoch, tracer: isRecording ? self : nil
        )
    }

    func forceFlush() {}

    /// Reads `traceparent` (an invalid one is ignored: a new trace starts, as W3C asks) and, with a
    /// valid one, `tracestate` (kept as the caller sent it; an invalid one is dropped).
    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        if let value = extractor.extract(key: "traceparent", from: carrier),
            let trace = TraceContext(traceparent: value, tracestate: extractor.extract(key: "tracestate", from: carrier))
        {
            context.traceContext = trace
        }
    }

    /// Writes `traceparent` of the context's span, and the trace's `tracestate` if it has one.
    func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let trace = context.traceContext else { return }
        injector.inject(trace.traceparent, forKey: "traceparent", into: &carrier)
        if let state = trace.tracestate { injector.inject(state, forKey: "tracestate", into: &carrier) }
    }

    /// An attribute's value as plain text (`1`, not `int64(1)`).
    private static func text(_ value: SpanAttribute) -> String {
        switch value {
        case .int32(let v): "\(v)"
        case .int64(let v): "\(v)"
        case .double(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .string(let v): v
        case .stringConvertible(let v): v.description
        case .int32Array(let v): v.map { "\($0)" }.joined(separator: ",")
        case .int64Array(let v): v.map { "\($0)" }.joined(separator: ",")
        case .doubleArray(let v): v.map { "\($0)" }.joined(separator: ",")
        case .boolArray(let v): v.map { "\($0)" }.joined(separator: ",")
        case .stringArray(let v): v.joined(separator: ",")
        case .stringConvertibleArray(let v): v.map(\.description).joined(separator: ",")
        default: "\(value)"
        }
    }

    /// Writes an ended span's line.
    fileprivate func write(_ span: LogSpan, state: LogSpan.State, end: UInt64) {
        var metadata: Logger.Metadata = [
            "trace_id": "\(span.trace.traceID)", "span_id": "\(span.trace.spanIDHex)", "name": "\(state.name)",
            "kind": "\(span.kind)",
            "duration_ms": "\(Double(end &- span.start) / 1_000_000)",
        ]
        if let parent = span.parentSpanID {
            metadata["parent_span_id"] = "\(TraceContext(traceIDHigh: 0, traceIDLow: 0, spanID: parent).spanIDHex)"
        }
        if let status = state.status {
            metadata["status"] = "\(status.code)"
            if let message = status.message { metadata["status_message"] = "\(message)" }
        }
        state.attributes.forEach { key, value in metadata["attr.\(key)"] = "\(Self.text(value))" }
        if !state.errors.isEmpty { metadata["errors"] = "\(state.errors.joined(separator: "; "))" }
        logger.debug("span", metadata: metadata)
    }
}

/// A span of ``LogTracer``: a reference (as spans must be), its mutable parts behind a mutex.
final class LogSpan: Span {
    struct State {
        var name: String
        var attributes = SpanAttributes()
        var status: SpanStatus?
        var errors: [String] = []
        var ended = false
    }

    let context: ServiceContext
    /// This span's trace and span ID.
    let trace: TraceContext
    let parentSpanID: UInt64?
    let kind: SpanKind
    /// Start, in nanoseconds since the epoch.
    let start: UInt64
    /// The tracer that writes the span when it ends; `nil` when not recording.
    private let tracer: LogTracer?
    private let state: Mutex<State>

    fileprivate init(
        name: String, kind: SpanKind, context: ServiceContext, trace: TraceContext, parentSpanID: UInt64?, start: UInt64,
        tracer: LogTracer?
    ) {
        self.kind = kind
        self.context = context
        self.trace = trace
        self.parentSpanID = parentSpanID
        self.start = start
        self.tracer = tracer
        self.state = Mutex(State(name: name))
    }

    var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { if isRecording { state.withLock { $0.attributes = newValue } } }
    }

    var isRecording: Bool { tracer != nil }

    func setStatus(_ status: SpanStatus) { state.withLock { $0.status = status } }

    func addEvent(_ event: SpanEvent) {}

    func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        guard isRecording else { return }
        // The error's type only: a message may carry request data.
        state.withLock { $0.errors.append("\(type(of: error))") }
    }

    func addLink(_ link: SpanLink) {}

    func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let ended = state.withLock { s -> State? in
            guard !s.ended else { return nil }
            s.ended = true
            return s
        }
        guard let ended, let tracer else { return }
        tracer.write(self, state: ended, end: instant().nanosecondsSinceEpoch)
    }
}

/// Runs each store operation in a span named `<prefix>.<operation>`: `mink.append` around the
/// whole middleware chain (the store's work) and `storage.append` innermost, around the
/// adapter's call alone (the storage commit). Installed only while spans are written.
struct SpanMiddleware: StoreMiddleware {
    let tracer: LogTracer
    let prefix: String

    func handle<C: Command>(_ command: C, context: CommandContext, next: CommandHandler<C>) async throws -> C.Output {
        try await tracer.withSpan("\(prefix).\(C.operation.rawValue)", ofKind: .internal) { span in
            if let s = command.targetStream { span.attributes["mink.stream_id"] = s }
            if command.eventCount > 0 { span.attributes["mink.event_count"] = command.eventCount }
            return try await next(command, context)
        }
    }
}

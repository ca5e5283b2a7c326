import Logging
import Metrics
import Tracing

/// A step around one kind of operation, with typed input and output (hummingbird's
/// `MiddlewareProtocol<Input, Output, Context>`): it may change the input, call `next` (once,
/// several times, or not at all), and change or replace the output.
///
/// ```swift
/// struct AddSource: MiddlewareProtocol {
///     func handle(
///         _ command: AppendCommand, context: CommandContext, next: CommandHandler<AppendCommand>
///     ) async throws -> AppendResult {
///         var command = command
///         for i in command.events.indices { command.events[i].metadata.custom["source"] = "importer" }
///         return try await next(command, context)
///     }
/// }
/// let store = EventStore(adapter: storage, middleware: [Middleware(append: AddSource())])
/// ```
public protocol MiddlewareProtocol<Input, Output, Context>: Sendable {
    /// What the step receives.
    associatedtype Input
    /// What the step returns.
    associatedtype Output
    /// What the step may read besides the input.
    associatedtype Context

    /// Runs the step; `next` runs the rest of the chain.
    func handle(_ input: Input, context: Context, next: (Input, Context) async throws -> Output) async throws -> Output
}

/// A middleware for one kind of store command.
public typealias CommandMiddleware<C: Command> = any MiddlewareProtocol<C, C.Output, CommandContext>

/// A step around every store operation at once: one generic method, typed by the command, so a
/// step like logging or retrying is written once for all five operations and still returns each
/// operation's own result type. The built-ins ``LoggingMiddleware``, ``MetricsMiddleware``,
/// ``TracingMiddleware`` and ``RetryMiddleware`` are store middleware.
public protocol StoreMiddleware: Sendable {
    /// Runs the step for a command; `next` runs the rest of the chain.
    func handle<C: Command>(_ command: C, context: CommandContext, next: CommandHandler<C>) async throws -> C.Output
}

/// What a store is given to wrap its operations (seed: `Middleware func(next Handler) Handler`):
/// one typed step per operation, any of them absent (that operation passes straight through).
///
/// The first middleware given to the store is the outermost. Built-ins: ``logging(_:)``,
/// ``metrics(_:)``, ``tracing(_:)``, ``retry(_:)``, ``validation(_:)``.
public struct Middleware: Sendable {
    /// The step around appends.
    public var append: CommandMiddleware<AppendCommand>?
    /// The step around stream reads.
    public var load: CommandMiddleware<LoadCommand>?
    /// The step around stream-info reads.
    public var streamInfo: CommandMiddleware<StreamInfoCommand>?
    /// The step around global-log reads.
    public var readAll: CommandMiddleware<ReadAllCommand>?
    /// The step around head-position reads.
    public var headPosition: CommandMiddleware<HeadPositionCommand>?

    /// A middleware with a step for some operations (the others pass through).
    public init(
        append: CommandMiddleware<AppendCommand>? = nil,
        load: CommandMiddleware<LoadCommand>? = nil,
        streamInfo: CommandMiddleware<StreamInfoCommand>? = nil,
        readAll: CommandMiddleware<ReadAllCommand>? = nil,
        headPosition: CommandMiddleware<HeadPositionCommand>? = nil
    ) {
        self.append = append
        self.load = load
        self.streamInfo = streamInfo
        self.readAll = readAll
        self.headPosition = headPosition
    }

    /// Whether this is a ``MetricsMiddleware`` (the store's `metrics` option then adds none).
    var measures = false

    /// A middleware running `middleware` around every operation.
    public init<M: StoreMiddleware>(_ middleware: M) {
        defer { measures = middleware is MetricsMiddleware }
        self.init(
            append: EveryCommand<M, AppendCommand>(middleware),
            load: EveryCommand<M, LoadCommand>(middleware),
            streamInfo: EveryCommand<M, StreamInfoCommand>(middleware),
            readAll: EveryCommand<M, ReadAllCommand>(middleware),
            headPosition: EveryCommand<M, HeadPositionCommand>(middleware)
        )
    }

    /// Logs each operation at `debug` with its duration, failures at `warning` (seed: `LoggingMiddleware`).
    public static func logging(_ logger: Logger) -> Middleware { Middleware(LoggingMiddleware(logger)) }

    /// Counts operations by outcome, times them, counts appended events (seed: `MetricsMiddleware`).
    /// Dimensions are the operation and outcome only — never stream or tenant IDs.
    public static func metrics(_ factory: any MetricsFactory = MetricsSystem.factory) -> Middleware {
        Middleware(MetricsMiddleware(factory))
    }

    /// Runs each operation in a span named `mink.<operation>` (seed: `TracingMiddleware`).
    public static func tracing<T: Tracer>(_ tracer: T) -> Middleware { Middleware(TracingMiddleware(tracer)) }

    /// Retries operations that failed with a transient error (seed: `RetryMiddleware`), see
    /// ``RetryMiddleware``.
    public static func retry(_ policy: RetryPolicy) -> Middleware { Middleware(RetryMiddleware(policy)) }

    /// Limits checked by ``validation(_:)``.
    public typealias ValidationLimits = ValidationMiddleware.Limits

    /// Checks appended events against limits (seed: `ValidationMiddleware`); reads pass through.
    public static func validation(_ limits: ValidationLimits = ValidationLimits()) -> Middleware {
        Middleware(append: ValidationMiddleware(limits))
    }
}

/// A store middleware seen as the middleware of one command type. Generic over both, so the
/// store middleware's `handle` is specialised for the command when the concrete type is known.
struct EveryCommand<M: StoreMiddleware, C: Command>: MiddlewareProtocol {
    let middleware: M

    init(_ middleware: M) { self.middleware = middleware }

    func handle(_ input: C, context: CommandContext, next: CommandHandler<C>) async throws -> C.Output {
        try await middleware.handle(input, context: context, next: next)
    }
}

/// The steps of one operation, outermost first, run around the store's own step.
///
/// `next` closures are non-escaping, so running a chain allocates nothing on the heap; with no
/// steps (the default) the store's step is called directly.
struct MiddlewareChain<C: Command>: Sendable {
    let steps: [CommandMiddleware<C>]

    func run(_ command: C, context: CommandContext, terminal: CommandHandler<C>) async throws -> C.Output {
        if steps.isEmpty { return try await terminal(command, context) }
        return try await run(command, context: context, at: 0, terminal: terminal)
    }

    private func run(_ command: C, context: CommandContext, at index: Int, terminal: CommandHandler<C>) async throws -> C.Output {
        guard index < steps.count else { return try await terminal(command, context) }
        return try await steps[index].handle(command, context: context) { command, context in
            try await run(command, context: context, at: index + 1, terminal: terminal)
        }
    }
}

/// The chains of the five operations, built once per store from its middleware list.
struct MiddlewareChains: Sendable {
    let append: MiddlewareChain<AppendCommand>
    let load: MiddlewareChain<LoadCommand>
    let streamInfo: MiddlewareChain<StreamInfoCommand>
    let readAll: MiddlewareChain<ReadAllCommand>
    let headPosition: MiddlewareChain<HeadPositionCommand>

    init(_ middleware: [Middleware]) {
        append = MiddlewareChain(steps: middleware.compactMap(\.append))
        load = MiddlewareChain(steps: middleware.compactMap(\.load))
        streamInfo = MiddlewareChain(steps: middleware.compactMap(\.streamInfo))
        readAll = MiddlewareChain(steps: middleware.compactMap(\.readAll))
        headPosition = MiddlewareChain(steps: middleware.compactMap(\.headPosition))
    }
}

extension Duration {
    /// The duration in whole nanoseconds (metrics' timers take nanoseconds).
    var wholeNanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}

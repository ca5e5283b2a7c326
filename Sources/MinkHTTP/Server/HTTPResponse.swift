/// A response produced by an ``HTTPResponder``.
///
/// The server adds `Date`, `Content-Length` (or the chunked / event-stream framing)
/// and `Connection`; it gzip-encodes large bodies when the client accepts gzip and
/// strips the body of responses to `HEAD`.
public struct HTTPResponse: Sendable {
    /// The status code.
    public var status: Int
    /// Header fields; framing headers set here are replaced by the server's own.
    public var headers: HTTPHeaders
    /// The body.
    public var body: HTTPResponseBody

    /// Creates a response.
    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: HTTPResponseBody = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Creates a response with a byte body.
    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), bytes: [UInt8]) {
        self.init(status: status, headers: headers, body: .bytes(bytes))
    }
}

/// The body of an ``HTTPResponse``.
public enum HTTPResponseBody: Sendable {
    /// A complete body, sent with `Content-Length`.
    case bytes([UInt8])
    /// A body produced over time by the closure. It is sent with
    /// `Transfer-Encoding: chunked` (each `write` becomes one chunk), except when the
    /// response's `Content-Type` is `text/event-stream` or the client speaks HTTP/1.0:
    /// then the bytes are written as they are and the connection closes when the
    /// closure returns. The closure is not run for `HEAD` requests.
    ///
    /// When the server shuts down, the task running the closure is cancelled and
    /// ``HTTPBodyWriter/isShuttingDown`` becomes true; the closure should return soon.
    case stream(@Sendable (any HTTPBodyWriter) async throws -> Void)
}

/// Writes the body of a streaming response.
public protocol HTTPBodyWriter: Sendable {
    /// Queues bytes for the peer.
    ///
    /// Suspends while the connection's bounded output queue is full (the peer reads
    /// slower than the body is produced), so a slow reader never grows the server's
    /// memory without bound.
    /// - Throws: ``HTTPConnectionClosedError`` when the peer is gone, or
    ///   `CancellationError` when the task is cancelled (server shutdown).
    func write(_ bytes: [UInt8]) async throws
    /// Whether the server is draining; a long-lived stream should end.
    var isShuttingDown: Bool { get }
}

/// Thrown by ``HTTPBodyWriter/write(_:)`` when the connection has closed.
public struct HTTPConnectionClosedError: Error, Sendable, Equatable {
    /// Creates the error.
    public init() {}
}

/// The application: turns requests into responses.
///
/// `respond` runs on Swift's cooperative pool, one task per request; it must not
/// block a thread. It cannot throw: map errors to statuses (the contract's error
/// shape) inside the responder.
///
/// A responder may also answer some requests synchronously through
/// ``respondImmediately(to:)``; the server then writes the response without creating a
/// task or switching threads. A responder that examines every request on that fast path
/// (routing it, say) implements ``route(_:)`` and ``respond(to:routed:)`` instead, so that
/// what the fast path learnt goes to the task with the request and is not worked out twice.
/// A request the transport refused before any responder saw it (a malformed or oversized head,
/// a body too slow or too large, a connection beyond the limit), as its error response said.
public struct HTTPRefusal: Sendable, Equatable {
    /// The response's status (`400`, `408`, `413`, `414`, `415`, `431`, `505`, `503`).
    public var status: Int
    /// The response's message.
    public var message: String
    /// The response's `X-Request-ID`: the client's when its head was read far enough, else new.
    public var requestID: String
    /// The request's method, when its head was read.
    public var method: String?

    public init(status: Int, message: String, requestID: String, method: String? = nil) {
        self.status = status
        self.message = message
        self.requestID = requestID
        self.method = method
    }
}

public protocol HTTPResponder: Sendable {
    /// What ``route(_:)`` hands to ``respond(to:routed:)`` with a request it sends to a task
    /// (its route, say); nothing by default.
    associatedtype Routed: Sendable = Void

    /// Answers one request.
    func respond(to request: HTTPRequest) async -> HTTPResponse

    /// For a request whose head asks `Expect: 100-continue`, called on the connection's event
    /// loop before `100 Continue` is sent (the same rules as ``respondImmediately(to:)``): the
    /// final response when the head alone already decides it (no or a bad token, an unknown
    /// route, a body type the route does not take), sent instead — the body is never read and the
    /// connection closes after it — or `nil` (the default) to let the client send the body.
    func refuseBeforeBody(_ head: HTTPRequest) -> HTTPResponse?

    /// The synchronous fast path: returns the response when it is ready at once, or
    /// `nil` to have ``respond(to:)`` run in a task as usual.
    ///
    /// It is called first for every request, on the connection's event loop, so it
    /// must be cheap and must never block or wait: answer only requests whose response
    /// needs no I/O and little computation (health checks, fixed documents), and return
    /// `nil` quickly for all others. A `.stream` body returned here still runs in a task.
    /// The default implementation returns `nil`.
    func respondImmediately(to request: HTTPRequest) -> HTTPResponse?

    /// What the server calls first for every request, on the connection's event loop (the
    /// same rules as ``respondImmediately(to:)``): the response, when it is ready at once, or
    /// what ``respond(to:routed:)`` needs to answer the request in a task. The default
    /// (for `Routed == Void`) asks ``respondImmediately(to:)``.
    func route(_ request: HTTPRequest) -> HTTPRouting<Routed>

    /// Answers, in a task, a request that ``route(_:)`` did not answer at once. The default
    /// (for `Routed == Void`) calls ``respond(to:)``.
    func respond(to request: HTTPRequest, routed: Routed) async -> HTTPResponse

    /// The executor the task answering a routed request prefers (`nil`, the default: the global
    /// one). Called on the event loop like ``route(_:)``, so it must be as cheap.
    ///
    /// Why: a responder that knows which thread its request's blocking work will run on (a
    /// database connection's) can have the whole task run there, so that the work's answer does
    /// not have to wake another thread to resume the task.
    func executor(for routed: Routed) -> (any TaskExecutor)?

    /// How to run work on the calling thread inside `executor`'s serial context (an executor
    /// ``executor(for:)`` returned): a closure that runs its argument so, or `nil` when
    /// `executor` cannot (the default). Called on the event loop like ``route(_:)``.
    ///
    /// Why: when a lone request's task would run on such an executor, the event loop's poller
    /// thread hands its polling to a standby thread and runs the task's jobs itself, instead of
    /// waking the executor's thread (see docs/http-transport.md, *Lone requests*).
    func inlineRunner(for executor: any TaskExecutor) -> (@Sendable (() -> Void) -> Void)?

    /// The transport refused a request of `client` (`host:port`) with `refusal`'s error
    /// response; called on the event loop (cheap, never blocking), before the response is sent.
    /// Nothing by default.
    func refused(_ refusal: HTTPRefusal, client: String)
}

/// What ``HTTPResponder/route(_:)`` decided about a request.
public enum HTTPRouting<Routed: Sendable>: Sendable {
    /// Answered at once: the server writes the response from the event loop, without a task.
    case answered(HTTPResponse)
    /// To be answered in a task by ``HTTPResponder/respond(to:routed:)``, which receives this.
    case inTask(Routed)
}

extension HTTPResponder {
    /// Always `nil`: every request goes to ``respond(to:)``.
    public func respondImmediately(to request: HTTPRequest) -> HTTPResponse? { nil }

    /// Always `nil`: every body is asked for.
    public func refuseBeforeBody(_ head: HTTPRequest) -> HTTPResponse? { nil }

    /// Always `nil`: tasks run on the global executor.
    public func executor(for routed: Routed) -> (any TaskExecutor)? { nil }

    /// Always `nil`: jobs run on the executor's own threads.
    public func inlineRunner(for executor: any TaskExecutor) -> (@Sendable (() -> Void) -> Void)? { nil }
    public func refused(_ refusal: HTTPRefusal, client: String) {}
}

extension HTTPResponder where Routed == Void {
    /// ``respondImmediately(to:)``'s response, or a task.
    public func route(_ request: HTTPRequest) -> HTTPRouting<Void> {
        if let response = respondImmediately(to: request) { return .answered(response) }
        return .inTask(())
    }

    /// Calls ``respond(to:)``.
    public func respond(to request: HTTPRequest, routed: Void) async -> HTTPResponse {
        await respond(to: request)
    }
}

/// An ``HTTPResponder`` made from a closure.
public struct HTTPClosureResponder: HTTPResponder {
    private let body: @Sendable (HTTPRequest) async -> HTTPResponse

    /// Wraps `body`.
    public init(_ body: @escaping @Sendable (HTTPRequest) async -> HTTPResponse) {
        self.body = body
    }

    /// Calls the closure.
    public func respond(to request: HTTPRequest) async -> HTTPResponse {
        await body(request)
    }
}

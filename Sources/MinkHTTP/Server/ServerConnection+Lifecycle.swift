extension ServerConnection {
    /// Where a server connection is in its life: exactly one state at a time, each carrying
    /// what only it needs, so that no fact is kept twice (swift-nio's
    /// `SocketChannelLifecycleManager` and postgres-nio's `ConnectionStateMachine` are the
    /// models).
    ///
    /// ```
    /// unregistered ─▶ open(·, none) ⇄ open(·, running) ⇄ open(·, streaming)
    ///                      │ the machine says close (never while a response runs)
    ///                      ▼
    ///                 closing ─ output flushed ─▶ lingering ─ EOF or deadline ─▶ closed
    /// ```
    /// Any state may go to `closed` (an error, a write timeout, server shutdown). Whether the
    /// peer has sent EOF is not kept here: the protocol machine knows it
    /// (``HTTPConnectionStateMachine/isPeerInputClosed``).
    ///
    /// The transitions return whether they were legal from the current state; the
    /// connection reports an illegal one (``ServerConnection`` asserts in debug builds and
    /// logs in release).
    enum Lifecycle {
        /// Created; the socket is not in the loop's `epoll` set yet.
        case unregistered
        /// Reading requests and answering them; `response` is the responder at work, if any.
        case open(Registration, response: Response)
        /// The protocol machine said close: queued output is flushed, then the write side
        /// is shut (``lingering``). Input that still arrives is dropped.
        case closing(Registration)
        /// The write side is shut after the last response; input is read and dropped until
        /// the peer's EOF or `deadline` (monotonic nanoseconds), because closing with unread
        /// input would make the kernel send a reset that destroys the response.
        case lingering(Registration, deadline: UInt64)
        /// The socket is closed and out of the loop's set. Hops still in flight (a response
        /// coming back from its task, a stream write) find this state and are dropped.
        case closed
    }

    /// A socket in the loop's `epoll` set: its token and what it is watched for.
    ///
    /// `readable`/`writable` mirror the kernel's registration, so that only a change costs
    /// an `epoll_ctl`. Reading is off while pipelined input waits beyond its bound, after
    /// the peer's EOF, and before a hang-up is acted on; writing is on while output waits
    /// for room in the socket buffer.
    struct Registration: Equatable {
        /// The loop's name for the socket (the `epoll_event`'s data).
        let token: UInt64
        /// Watched for input (`EPOLLIN`).
        var readable: Bool
        /// Watched for room to write (`EPOLLOUT`).
        var writable: Bool
    }

    /// The responder working on the request in flight.
    enum Response {
        /// None: between requests, or the request was answered inline on the loop.
        case none
        /// The responder runs in this task; its response comes back through the loop queue.
        /// `safe`: the request is a `GET` or `HEAD`, whose work is cancelled when the
        /// connection closes before its response (nobody is left to read it; a write goes on,
        /// its outcome stored for a retry to find).
        case running(Task<Void, Never>, safe: Bool)
        /// The task streams the response body. `cancelled`: the task was cancelled (peer
        /// gone, shutdown), so a write registered after the cancellation's hop fails at once.
        case streaming(Task<Void, Never>, cancelled: Bool)
    }
}

extension ServerConnection.Lifecycle {
    /// The socket's registration, in every state in which it is in the loop's set.
    var registration: ServerConnection.Registration? {
        switch self {
        case .open(let r, _), .closing(let r), .lingering(let r, _): r
        case .unregistered, .closed: nil
        }
    }

    /// Whether the socket is closed.
    var isClosed: Bool {
        if case .closed = self { return true }
        return false
    }

    /// Whether everything has been sent and only input is drained before closing
    /// (shutdown need not wait for such a connection).
    var isLingering: Bool {
        if case .lingering = self { return true }
        return false
    }

    /// Whether requests are still read and answered (not closing, lingering or closed).
    var isOpen: Bool {
        if case .open = self { return true }
        return false
    }

    /// The responder at work, in the open state.
    var response: ServerConnection.Response? {
        if case .open(_, let response) = self { return response }
        return nil
    }

    /// The task of a `GET` or `HEAD` whose response is being prepared, if one runs: cancelled
    /// when the connection closes first.
    var safeRequestTask: Task<Void, Never>? {
        if case .open(_, .running(let task, safe: true)) = self { return task }
        return nil
    }

    /// The task of a streaming response, if one runs.
    var streamTask: Task<Void, Never>? {
        if case .open(_, .streaming(let task, _)) = self { return task }
        return nil
    }

    /// Changes what the socket is watched for. Returns the new registration when it changed
    /// (the caller tells the loop), `nil` when nothing changed or nothing is registered.
    mutating func setInterest(readable: Bool? = nil, writable: Bool? = nil) -> ServerConnection.Registration? {
        guard var r = registration else { return nil }
        let old = r
        if let readable { r.readable = readable }
        if let writable { r.writable = writable }
        if r == old { return nil }
        switch self {
        case .open(_, let response): self = .open(r, response: response)
        case .closing: self = .closing(r)
        case .lingering(_, let deadline): self = .lingering(r, deadline: deadline)
        case .unregistered, .closed: return nil
        }
        return r
    }

    /// `unregistered` → `open`, watching for input.
    mutating func registered(token: UInt64) -> Bool {
        guard case .unregistered = self else { return false }
        self = .open(ServerConnection.Registration(token: token, readable: true, writable: false), response: .none)
        return true
    }

    /// A responder task was started for the request in flight: `open(none)` → `open(running)`.
    mutating func responderStarted(_ task: Task<Void, Never>, safe: Bool) -> Bool {
        guard case .open(let r, .none) = self else { return false }
        self = .open(r, response: .running(task, safe: safe))
        return true
    }

    /// The responder's task began streaming a body: `open(running)` → `open(streaming)`.
    mutating func streamStarted(cancelled: Bool) -> Bool {
        guard case .open(let r, .running(let task, _)) = self else { return false }
        self = .open(r, response: .streaming(task, cancelled: cancelled))
        return true
    }

    /// The stream's task was cancelled; returns whether a stream runs (otherwise nothing changes).
    mutating func streamCancelled() -> Bool {
        guard case .open(let r, .streaming(let task, _)) = self else { return false }
        self = .open(r, response: .streaming(task, cancelled: true))
        return true
    }

    /// The response of the request in flight is complete: `open(running|streaming)` → `open(none)`.
    mutating func responseFinished() -> Bool {
        switch self {
        case .open(let r, .running), .open(let r, .streaming):
            self = .open(r, response: .none)
            return true
        default:
            return false
        }
    }

    /// The protocol machine said close: `open(none)` → `closing`. Already closing, lingering
    /// or closed: nothing changes (legal). Illegal while a response runs or before registration.
    mutating func closeRequested() -> Bool {
        switch self {
        case .open(let r, .none):
            self = .closing(r)
            return true
        case .closing, .lingering, .closed:
            return true
        case .open, .unregistered:
            return false
        }
    }

    /// Output flushed after the close: `closing` → `lingering`, watching for input only.
    /// Returns the registration before the change, or `nil` when the state was not `closing`.
    mutating func lingerStarted(deadline: UInt64) -> ServerConnection.Registration? {
        guard case .closing(let r) = self else { return nil }
        self = .lingering(ServerConnection.Registration(token: r.token, readable: true, writable: false), deadline: deadline)
        return r
    }

    /// Any state → `closed`; returns the state left (so the caller releases what it held).
    mutating func close() -> Self {
        let previous = self
        self = .closed
        return previous
    }
}

extension ServerConnection.Lifecycle: CustomStringConvertible {
    /// The state's name and data, for logs of illegal transitions.
    var description: String {
        switch self {
        case .unregistered: "unregistered"
        case .open(let r, let response): "open(\(r), \(response))"
        case .closing(let r): "closing(\(r))"
        case .lingering(let r, let deadline): "lingering(\(r), deadline: \(deadline))"
        case .closed: "closed"
        }
    }
}

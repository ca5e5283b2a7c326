import Synchronization

/// When the caller of a storage operation that outlived its deadline is answered
/// (see ``OperationDeadlines``).
public enum DeadlinePolicy: Sendable {
    /// At the deadline, whatever the operation is doing. Still queued, it is then never run;
    /// under way, it may still take effect afterwards — an outcome in doubt, which an idempotent
    /// retry resolves (an append retried with the same event IDs answers as the first attempt
    /// did if it committed).
    case always
    /// At the deadline, except while the operation's body runs: then as soon as the body has
    /// returned. For bodies the caller lends only for the call's duration (a non-escaping closure
    /// that must not run after the caller returned).
    case outsideBody
    /// Only while the operation waits to start: once started, the caller gets its outcome however
    /// long it takes. For long operations whose effect must never be in doubt (an import).
    case untilStarted
}

/// The answer to one storage operation's caller, given exactly once: the operation's outcome, or
/// `.unavailable` when its deadline passed first (``OperationDeadlines`` expires it then).
///
/// The storage's worker calls ``start()`` before it runs the operation (and skips an operation
/// whose caller was already answered: it never takes effect), ``bodyReturned()`` when the
/// operation's own work is done, and ``resume(with:)`` with the outcome.
public final class DeadlineAnswer<T: Sendable>: Sendable, ExpiringOperation {
    private enum Phase {
        case queued
        case running
        case ran
        case answered
    }

    private struct State {
        var phase = Phase.queued
        var continuation: CheckedContinuation<T, any Error>?
        /// `.outsideBody`: the deadline passed while the body ran; answered when it returns.
        var expiredInBody = false
    }

    /// When the caller is answered at the latest (within the policy's limits).
    public let deadline: ContinuousClock.Instant
    /// What the deadline may interrupt.
    public let policy: DeadlinePolicy
    private let state: Mutex<State>
    private let timeoutError: @Sendable (_ started: Bool) -> MinkError

    init(
        _ continuation: CheckedContinuation<T, any Error>, deadline: ContinuousClock.Instant, policy: DeadlinePolicy,
        timeoutError: @escaping @Sendable (_ started: Bool) -> MinkError
    ) {
        self.deadline = deadline
        self.policy = policy
        self.timeoutError = timeoutError
        state = Mutex(State(continuation: continuation))
    }

    /// Marks the operation as started; `false` when its caller was already answered (the
    /// deadline passed while it was queued): then it must not run.
    public func start() -> Bool {
        state.withLock { s in
            guard s.phase == .queued else { return false }
            s.phase = .running
            return true
        }
    }

    /// Marks the operation's own work as done (what remains is its commit): a deadline that
    /// passed meanwhile under ``DeadlinePolicy/outsideBody`` answers the caller now.
    public func bodyReturned() {
        let late: CheckedContinuation<T, any Error>? = state.withLock { s in
            guard s.phase == .running else { return nil }
            s.phase = .ran
            guard s.expiredInBody else { return nil }
            s.phase = .answered
            defer { s.continuation = nil }
            return s.continuation
        }
        late?.resume(throwing: timeoutError(true))
    }

    /// Answers the caller with the operation's outcome, unless the deadline answered it already.
    /// - Returns: whether this call answered.
    @discardableResult
    public func resume(with result: Result<T, any Error>) -> Bool {
        let continuation: CheckedContinuation<T, any Error>? = state.withLock { s in
            s.phase = .answered
            defer { s.continuation = nil }
            return s.continuation
        }
        continuation?.resume(with: result)
        return continuation != nil
    }

    /// Answers the caller with `error`, unless it was answered already.
    @discardableResult
    public func resume(throwing error: any Error) -> Bool { resume(with: .failure(error)) }

    /// Whether the caller has its answer.
    public var isAnswered: Bool { state.withLock { $0.phase == .answered } }

    func expire() {
        let (continuation, started): (CheckedContinuation<T, any Error>?, Bool) = state.withLock { s in
            let started: Bool
            switch (s.phase, policy) {
            case (.answered, _), (.running, .untilStarted), (.ran, .untilStarted):
                return (nil, false)
            case (.running, .outsideBody):
                s.expiredInBody = true
                return (nil, false)
            case (.queued, _):
                started = false
            case (.running, .always), (.ran, .always), (.ran, .outsideBody):
                started = true
            }
            s.phase = .answered
            defer { s.continuation = nil }
            return (s.continuation, started)
        }
        continuation?.resume(throwing: timeoutError(started))
    }
}

/// What ``OperationDeadlines`` keeps of an operation.
protocol ExpiringOperation: AnyObject, Sendable {
    var deadline: ContinuousClock.Instant { get }
    var isAnswered: Bool { get }
    /// Answers the caller with a timeout, as far as the operation's policy allows.
    func expire()
}

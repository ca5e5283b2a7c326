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

/// Where an operation is (``DeadlineAnswer``'s phase).
private enum Phase {
    static let queued: UInt8 = 0
    static let running: UInt8 = 1
    /// `.outsideBody`: the deadline passed while the body ran; answered when it returns.
    static let runningExpired: UInt8 = 2
    static let ran: UInt8 = 3
    static let answered: UInt8 = 4
}

/// The answer to one storage operation's caller, given exactly once: the operation's outcome, or
/// `.unavailable` when its deadline passed first (``OperationDeadlines`` expires it then).
///
/// The storage's worker calls ``start()`` before it runs the operation (and skips an operation
/// whose caller was already answered: it never takes effect), ``bodyReturned()`` when the
/// operation's own work is done, and ``resume(with:)`` with the outcome.
///
/// Every storage operation makes one, so it is lean: its phase is one atomic byte (whoever moves
/// it to `answered` resumes the continuation — exactly once, which is what lets the continuation be
/// an unchecked one), and its layout does not depend on `T` (an unspecialized caller in another
/// module reads its fields without asking the runtime for the type's metadata; with a `Mutex`
/// around a `CheckedContinuation<T, …>` every access did, about 5 % of a lone read's CPU).
public final class DeadlineAnswer<T: Sendable>: Sendable, ExpiringOperation {
    /// When the caller is answered at the latest (within the policy's limits).
    public let deadline: ContinuousClock.Instant
    /// What the deadline may interrupt.
    public let policy: DeadlinePolicy
    private let messages: DeadlineMessages
    private let phase = Atomic<UInt8>(Phase.queued)
    private let continuation: UnsafeContinuation<T, any Error>

    init(
        _ continuation: UnsafeContinuation<T, any Error>, deadline: ContinuousClock.Instant, policy: DeadlinePolicy,
        messages: DeadlineMessages
    ) {
        self.deadline = deadline
        self.policy = policy
        self.messages = messages
        self.continuation = continuation
    }

    /// Marks the operation as started; `false` when its caller was already answered (the
    /// deadline passed while it was queued): then it must not run.
    public func start() -> Bool {
        phase.compareExchange(expected: Phase.queued, desired: Phase.running, ordering: .acquiringAndReleasing).exchanged
    }

    /// Marks the operation's own work as done (what remains is its commit): a deadline that
    /// passed meanwhile under ``DeadlinePolicy/outsideBody`` answers the caller now.
    public func bodyReturned() {
        var current = phase.load(ordering: .acquiring)
        while true {
            let next: UInt8
            switch current {
            case Phase.running: next = Phase.ran
            case Phase.runningExpired: next = Phase.answered
            default: return
            }
            let (exchanged, original) = phase.compareExchange(expected: current, desired: next, ordering: .acquiringAndReleasing)
            if exchanged {
                if next == Phase.answered { continuation.resume(throwing: messages.error(started: true)) }
                return
            }
            current = original
        }
    }

    /// Answers the caller with the operation's outcome, unless the deadline answered it already.
    /// - Returns: whether this call answered.
    @discardableResult
    public func resume(with result: Result<T, any Error>) -> Bool {
        guard phase.exchange(Phase.answered, ordering: .acquiringAndReleasing) != Phase.answered else { return false }
        continuation.resume(with: result)
        return true
    }

    /// Answers the caller with `error`, unless it was answered already.
    @discardableResult
    public func resume(throwing error: any Error) -> Bool { resume(with: .failure(error)) }

    /// Whether the caller has its answer.
    public var isAnswered: Bool { phase.load(ordering: .acquiring) == Phase.answered }

    func expire() {
        var current = phase.load(ordering: .acquiring)
        while true {
            let next: UInt8
            let started: Bool
            switch (current, policy) {
            case (Phase.answered, _), (Phase.runningExpired, _), (Phase.running, .untilStarted), (Phase.ran, .untilStarted):
                return
            case (Phase.running, .outsideBody):
                (next, started) = (Phase.runningExpired, true)
            case (Phase.queued, _):
                (next, started) = (Phase.answered, false)
            default:
                // Running or ran under `.always`, ran under `.outsideBody`.
                (next, started) = (Phase.answered, true)
            }
            let (exchanged, original) = phase.compareExchange(expected: current, desired: next, ordering: .acquiringAndReleasing)
            if exchanged {
                if next == Phase.answered { continuation.resume(throwing: messages.error(started: started)) }
                return
            }
            current = original
        }
    }
}

/// The two texts of a storage's timeout, made once per storage (they were formatted, and a
/// closure holding them allocated, for every operation).
final class DeadlineMessages: Sendable {
    private let started: String
    private let notStarted: String

    init(storage: String, seconds: String) {
        started = "\(storage) did not answer within \(seconds) s; what was under way may still complete "
            + "(an append retried with the same event IDs tells whether it did)"
        notStarted = "\(storage) did not answer within \(seconds) s; nothing was done"
    }

    /// The caller's answer at the deadline: transient, the operation `started` or not.
    func error(started: Bool) -> MinkError {
        MinkError(.unavailable, started ? self.started : notStarted, isTransient: true)
    }
}

/// What ``OperationDeadlines`` keeps of an operation.
protocol ExpiringOperation: AnyObject, Sendable {
    var deadline: ContinuousClock.Instant { get }
    var isAnswered: Bool { get }
    /// Answers the caller with a timeout, as far as the operation's policy allows.
    func expire()
}

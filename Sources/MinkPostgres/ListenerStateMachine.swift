/// The reconnect logic of the LISTEN connection, free of I/O: the ``CommitListener`` thread feeds
/// it what happened and runs the action it returns.
///
/// ```
/// idle ──start──▶ connecting ──connected──▶ listening ──connectionLost──▶ connecting
///                    │  ▲                                                    (missed)
///          connectFailed  waitElapsed
///                    ▼  │
///                 backingOff (delay doubles from `initialDelay` up to `maxDelay`)
/// any ──stop──▶ stopped
/// ```
///
/// Commits that happen while no LISTEN is active are not delivered later by PostgreSQL, so after
/// any failure the next successful connect returns `.startListening(signalMissed: true)`: the
/// shell then wakes every subscriber once, and they re-read the log.
struct ListenerStateMachine: Sendable {
    enum State: Sendable, Hashable {
        case idle
        /// Trying to connect; `missed` when commits may have been missed.
        case connecting(attempt: Int, missed: Bool)
        case backingOff(attempt: Int, missed: Bool)
        case listening
        case stopped
    }

    enum Action: Sendable, Hashable {
        /// Open a connection and `LISTEN`; report `connected()` or `connectFailed()`.
        case connect
        /// Wait for notifications; if `signalMissed`, wake every subscriber first.
        case startListening(signalMissed: Bool)
        /// Sleep, then report `waitElapsed()`.
        case wait(Duration)
        /// Close the connection and end.
        case close
        /// Nothing to do (an event that does not apply in the current state).
        case none
    }

    private(set) var state: State = .idle
    let initialDelay: Duration
    let maxDelay: Duration

    init(initialDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(5)) {
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
    }

    mutating func start() -> Action {
        guard state == .idle else { return .none }
        state = .connecting(attempt: 1, missed: false)
        return .connect
    }

    mutating func connected() -> Action {
        guard case .connecting(_, let missed) = state else { return .none }
        state = .listening
        return .startListening(signalMissed: missed)
    }

    mutating func connectFailed() -> Action {
        guard case .connecting(let attempt, _) = state else { return .none }
        state = .backingOff(attempt: attempt, missed: true)
        return .wait(delay(afterAttempt: attempt))
    }

    mutating func waitElapsed() -> Action {
        guard case .backingOff(let attempt, let missed) = state else { return .none }
        state = .connecting(attempt: attempt + 1, missed: missed)
        return .connect
    }

    mutating func connectionLost() -> Action {
        guard state == .listening else { return .none }
        state = .connecting(attempt: 1, missed: true)
        return .connect
    }

    mutating func stop() -> Action {
        if state == .stopped { return .none }
        state = .stopped
        return .close
    }

    /// `initialDelay · 2^(attempt-1)`, at most `maxDelay`.
    func delay(afterAttempt attempt: Int) -> Duration {
        var d = initialDelay
        for _ in 1..<max(attempt, 1) {
            d = d * 2
            if d >= maxDelay { return maxDelay }
        }
        return min(d, maxDelay)
    }
}

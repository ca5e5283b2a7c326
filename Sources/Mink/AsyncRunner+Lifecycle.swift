extension AsyncRunner {
    /// A poison event holding the runner until ``AsyncRunner/resume()`` retries it.
    struct Fault: Sendable, Equatable {
        /// The event's position (nil when the failure was not tied to one event).
        var position: UInt64?
        /// The error, as the status shows it.
        var message: String
    }

    /// Where an async runner is in its life: exactly one state at a time, each carrying what
    /// only it needs, so that no fact is kept twice (before, a `state` and a `paused` flag could
    /// disagree). The model is `ServerConnection.Lifecycle` in `MinkHTTP`.
    ///
    /// ```
    ///            start                 pause
    ///  stopped ────────▶ running ──────────────▶ paused
    ///     ▲                │   ▲ ◀── resume ───── │
    ///     │           fault▼   │ resume            │ fault (the pause stays asked)
    ///     │              faulted ◀─────────────────┘
    ///     │  loop ended     │ stop (from running, paused or faulted)
    ///     └───────────── stopping
    /// ```
    ///
    /// A loop task exists exactly in the states that carry one (never two at once: a start
    /// asked while stopping runs once the old loop has ended). A held loop (paused or faulted)
    /// parks on `wake`, which ``AsyncRunner/resume()`` or ``AsyncRunner/stop()`` resumes —
    /// it does not poll. A pause asked while stopped or faulted is kept (`pausePending`) and
    /// holds the loop from its next start.
    enum Lifecycle: Sendable {
        /// No loop runs. `pausePending`: a pause asked and not resumed, applied at the next
        /// start. `rebuilding`: a rebuild reset the projection while it was stopped; its next
        /// start replays the log and shows `rebuilding` until it has caught up.
        case stopped(pausePending: Bool, rebuilding: Bool)
        /// The loop applies events. `rebuilding`: it has not caught up since a rebuild reset it.
        case running(Task<Void, Never>, rebuilding: Bool)
        /// The loop is held after its current batch until resumed; `wake` is its parked
        /// continuation once it has noticed.
        case paused(Task<Void, Never>, rebuilding: Bool, wake: CheckedContinuation<Void, Never>?)
        /// The loop is held at a poison event until resumed, which retries it. `pausePending`:
        /// a pause asked before or meanwhile, kept if the runner is stopped (resume clears it).
        case faulted(Task<Void, Never>, Fault, rebuilding: Bool, pausePending: Bool, wake: CheckedContinuation<Void, Never>?)
        /// ``AsyncRunner/stop()`` cancelled the loop and waits for it to end (after its current
        /// batch). `restart`: a start was asked meanwhile; a new loop starts once this one ended.
        case stopping(Task<Void, Never>, pausePending: Bool, restart: Bool)

        /// Whether the batch applied now shows events as they arrive: not a rebuild's replay of
        /// the log (whatever a pause or a fault made of the state meanwhile), not a runner on its
        /// way out. Its batches record their delay (``ProjectionDelay``).
        var appliesLive: Bool {
            switch self {
            case .running(_, let rebuilding), .paused(_, let rebuilding, _): !rebuilding
            case .faulted(_, _, let rebuilding, _, _): !rebuilding
            case .stopped, .stopping: false
            }
        }

        /// The state as a status shows it.
        var state: ProjectionEngine.State {
            switch self {
            case .stopped(_, let rebuilding): rebuilding ? .rebuilding : .stopped
            case .running(_, let rebuilding): rebuilding ? .rebuilding : .running
            case .paused: .paused
            case .faulted: .faulted
            case .stopping: .stopped
            }
        }

        /// Whether the loop must wait for ``AsyncRunner/resume()`` before its next batch.
        var isHeld: Bool {
            switch self {
            case .paused, .faulted: true
            case .stopped, .running, .stopping: false
            }
        }

        /// The fault holding the runner, if any.
        var fault: Fault? {
            if case .faulted(_, let fault, _, _, _) = self { return fault }
            return nil
        }

        /// Whether the loop is parked on its continuation.
        var isParked: Bool {
            switch self {
            case .paused(_, _, .some), .faulted(_, _, _, _, .some): true
            default: false
            }
        }

        /// The state a new loop starts in.
        static func started(_ task: Task<Void, Never>, pausePending: Bool, rebuilding: Bool) -> Lifecycle {
            pausePending ? .paused(task, rebuilding: rebuilding, wake: nil) : .running(task, rebuilding: rebuilding)
        }

        /// Parks the held loop on `wake`. Returns false, leaving the state as it is, when the
        /// loop is not held (it was resumed or stopped since it looked: it goes on at once), and
        /// nil when the state does not allow it (no loop, or one already parked).
        mutating func park(_ wake: CheckedContinuation<Void, Never>) -> Bool? {
            switch self {
            case .paused(let task, let rebuilding, nil):
                self = .paused(task, rebuilding: rebuilding, wake: wake)
                return true
            case .faulted(let task, let fault, let rebuilding, let pausePending, nil):
                self = .faulted(task, fault, rebuilding: rebuilding, pausePending: pausePending, wake: wake)
                return true
            case .running, .stopping:
                return false
            case .paused, .faulted, .stopped:
                // A second park would strand the first continuation; a stopped runner has no loop.
                return nil
            }
        }

        /// Removes and returns the parked loop's continuation (the loop's task was cancelled).
        mutating func unpark() -> CheckedContinuation<Void, Never>? {
            switch self {
            case .paused(let task, let rebuilding, let wake?):
                self = .paused(task, rebuilding: rebuilding, wake: nil)
                return wake
            case .faulted(let task, let fault, let rebuilding, let pausePending, let wake?):
                self = .faulted(task, fault, rebuilding: rebuilding, pausePending: pausePending, wake: nil)
                return wake
            default:
                return nil
            }
        }

        /// The loop has caught up with the log: a rebuild is over. Returns false when the state
        /// does not allow it (no loop, or a faulted one, which does not read).
        mutating func caughtUp() -> Bool {
            switch self {
            case .running(let task, true): self = .running(task, rebuilding: false)
            case .paused(let task, true, let wake): self = .paused(task, rebuilding: false, wake: wake)
            case .running, .paused, .stopping: break
            case .faulted, .stopped: return false
            }
            return true
        }

        /// The loop met a poison event. Returns false when the state does not allow it.
        mutating func failed(_ fault: Fault) -> Bool {
            switch self {
            case .running(let task, let rebuilding):
                self = .faulted(task, fault, rebuilding: rebuilding, pausePending: false, wake: nil)
            case .paused(let task, let rebuilding, nil):
                // Paused during the failing batch: the pause stays asked.
                self = .faulted(task, fault, rebuilding: rebuilding, pausePending: true, wake: nil)
            case .stopping:
                break  // stopped during the failing batch: the loop is ending anyway
            case .paused, .faulted, .stopped:
                // A parked or faulted loop applies nothing; a stopped runner has no loop.
                return false
            }
            return true
        }

        /// The loop's task returned on its own (its lease was lost, or its owner ended it when
        /// it caught up): nothing runs any more. A loop that ends because it was stopped leaves
        /// `stopping` to ``AsyncRunner/stop()``. Returns false when the state does not allow it.
        mutating func loopEnded() -> Bool {
            switch self {
            case .running:
                self = .stopped(pausePending: false, rebuilding: false)
            case .paused:
                self = .stopped(pausePending: true, rebuilding: false)
            case .faulted(_, _, _, let pausePending, _):
                self = .stopped(pausePending: pausePending, rebuilding: false)
            case .stopping:
                break
            case .stopped:
                return false
            }
            return true
        }
    }
}

extension AsyncRunner.Lifecycle: CustomStringConvertible {
    /// The state's name and data, for logs of illegal transitions.
    var description: String {
        switch self {
        case .stopped(let p, let r): "stopped(pausePending: \(p), rebuilding: \(r))"
        case .running(_, let r): "running(rebuilding: \(r))"
        case .paused(_, let r, let w): "paused(rebuilding: \(r), parked: \(w != nil))"
        case .faulted(_, let f, let r, let p, let w):
            "faulted(position: \(f.position.map(String.init) ?? "-"), rebuilding: \(r), pausePending: \(p), parked: \(w != nil))"
        case .stopping(_, let p, let restart): "stopping(pausePending: \(p), restart: \(restart))"
        }
    }
}

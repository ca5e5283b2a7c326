extension ReadModelProjectionController {
    /// What is known while no runner of this process runs: whether a pause is pending (applied
    /// to the runners when they start) and the serving copy's checkpoint as storage last said
    /// (what the status shows then).
    struct Inactive: Sendable {
        var paused: Bool
        var storedCheckpoint: UInt64
        /// The last lease request found the lease held by another process (no error), and
        /// storage was read after it: the status shows what that process stored.
        var heldElsewhere = false
        /// The checkpoint of the copy being rebuilt, as stored (`nil`: no rebuild under way).
        var storedRebuildCheckpoint: UInt64?
        /// Storage was read at least once (the fields above say what it said).
        var read = false
    }

    /// The copy being rebuilt and the runner filling it.
    struct Builder: Sendable {
        let runner: AsyncRunner
        /// The copy's generation.
        let generation: UInt32
        /// The log's head when the builder started: the new copy serves only once its
        /// checkpoint has reached it (and the serving copy's).
        let floor: UInt64
    }

    /// The runners of a process holding the lease; they write under `lease`.
    struct Active: Sendable {
        let lease: any ProjectionLease
        /// A pause asked and not resumed: the runners are paused, and so is a builder started later.
        var paused: Bool
        /// The serving copy's runner (async mode; inline mode serves through the append hook).
        var serving: AsyncRunner?
        var builder: Builder?

        /// The runners, the builder first (stopped in this order).
        var runners: [AsyncRunner] { [builder?.runner, serving].compactMap { $0 } }
    }

    /// Where the controller is in its life: exactly one state at a time, each carrying what only
    /// it needs (before, loose fields — `active`, `paused`, `lease`, `leaseTask`, the runners,
    /// the catch-up floor — could disagree).
    ///
    /// ```
    ///           start            lease taken          runners started
    ///  stopped ───────▶ standby ─────────────▶ activating ─────────────▶ active
    ///     ▲                 ▲  ◀──────── failed ────────┘                  │
    ///     │                 └───────────── lease lost (runners stopped) ───┘
    ///     │  lease loop ended
    ///     └──────────── stopping ◀── stop (from standby, activating or active)
    /// ```
    ///
    /// The lease loop's task lives in every state but `stopped` (a start asked while stopping
    /// runs once the old loop has ended, never two at once). Illegal transitions are reported
    /// as ``AsyncRunner``'s are: an `assertionFailure` in debug builds, an `error` line in release.
    enum Lifecycle: Sendable {
        /// Not started, or stopped: no lease is asked for, no runner runs.
        case stopped(Inactive)
        /// The lease loop asks for the lease (another process holds it, or storage did not
        /// answer): status and reads follow storage.
        case standby(Task<Void, Never>, Inactive)
        /// The lease is held and the copies are being prepared; the runners start next.
        case activating(Task<Void, Never>, lease: any ProjectionLease, Inactive)
        /// The lease is held and the runners run under it.
        case active(Task<Void, Never>, Active)
        /// ``ReadModelProjectionController/stop()`` stopped the runners and waits for the lease
        /// loop to give the lease up and end. `restart`: a start was asked meanwhile.
        case stopping(Task<Void, Never>, Inactive, restart: Bool)

        /// The pending pause, in every state.
        var paused: Bool {
            switch self {
            case .stopped(let i), .standby(_, let i), .activating(_, _, let i), .stopping(_, let i, _): i.paused
            case .active(_, let a): a.paused
            }
        }

        /// Sets the pending pause; returns the runners to pass it on to (those running now).
        mutating func setPaused(_ paused: Bool) -> [AsyncRunner] {
            switch self {
            case .stopped(var i):
                i.paused = paused
                self = .stopped(i)
            case .standby(let t, var i):
                i.paused = paused
                self = .standby(t, i)
            case .activating(let t, let lease, var i):
                i.paused = paused
                self = .activating(t, lease: lease, i)
            case .stopping(let t, var i, let restart):
                i.paused = paused
                self = .stopping(t, i, restart: restart)
            case .active(let t, var a):
                a.paused = paused
                self = .active(t, a)
                return a.runners
            }
            return []
        }

        /// Records what storage says (shown while inactive): the serving copy's checkpoint, the
        /// copy being rebuilt's (`nil`: none), and whether another process holds the lease.
        mutating func stored(checkpoint: UInt64, rebuildCheckpoint: UInt64?, heldElsewhere: Bool) {
            func update(_ i: inout Inactive) {
                i.read = true
                i.storedCheckpoint = checkpoint
                i.storedRebuildCheckpoint = rebuildCheckpoint
                i.heldElsewhere = heldElsewhere
            }
            switch self {
            case .stopped(var i):
                update(&i)
                self = .stopped(i)
            case .standby(let t, var i):
                update(&i)
                self = .standby(t, i)
            case .activating(let t, let lease, var i):
                update(&i)
                self = .activating(t, lease: lease, i)
            case .stopping(let t, var i, let restart):
                update(&i)
                self = .stopping(t, i, restart: restart)
            case .active:
                break  // the serving runner knows better
            }
        }

        /// Forgets that another process held the lease (a request for it failed: unknown).
        mutating func leaseUnknown() {
            if case .standby(let t, var i) = self {
                i.heldElsewhere = false
                self = .standby(t, i)
            }
        }

        /// The builder of copy `generation` with its lease, while active.
        func builder(of generation: UInt32) -> (Builder, any ProjectionLease)? {
            guard case .active(_, let a) = self, let b = a.builder, b.generation == generation else { return nil }
            return (b, a.lease)
        }
    }
}

extension ReadModelProjectionController.Lifecycle: CustomStringConvertible {
    /// The state's name and data, for logs of illegal transitions.
    var description: String {
        switch self {
        case .stopped(let i): "stopped(paused: \(i.paused))"
        case .standby(_, let i): "standby(paused: \(i.paused))"
        case .activating(_, _, let i): "activating(paused: \(i.paused))"
        case .active(_, let a):
            "active(paused: \(a.paused), serving: \(a.serving != nil), builder: \(a.builder.map { "\($0.generation)" } ?? "-"))"
        case .stopping(_, let i, let restart): "stopping(paused: \(i.paused), restart: \(restart))"
        }
    }
}

import Dispatch
import Synchronization

/// Wakes the tasks waiting for something to change (a projection's checkpoint or state, the
/// subscription hub's head) so that they look again, instead of polling it or keeping a timer
/// task each. A waiter notes ``generation``, reads what it watches,
/// and if that is not what it wants awaits ``wait(after:until:)`` with the generation it noted:
/// a change signalled in between is never missed, because the generation has moved on.
final class ProgressSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        /// What the last signal said (see ``signal(_:)``).
        var last = true
    }

    private let state = Mutex(State())
    /// Timers fire from a queue of their own (never blocked by a busy global pool).
    private static let timers = DispatchQueue(label: "mink.progress-signal.timers")

    /// Counts the signals so far.
    var generation: UInt64 { state.withLock { $0.generation } }


    /// Something changed: every waiter wakes, and ``wait(after:until:)`` returns `value` to them
    /// (`false`: the watched thing ended, e.g. the hub shut down).
    func signal(_ value: Bool = true) {
        let woken = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            s.generation &+= 1
            s.last = value
            guard !s.waiters.isEmpty else { return [] }
            defer { s.waiters.removeAll(keepingCapacity: true) }
            return Array(s.waiters.values)
        }
        for c in woken { c.resume(returning: value) }
    }

    /// Returns when a signal after `generation` has been given (what it said: `true` unless
    /// given as `false`), or `false` at `deadline` (`nil`: none) or when the task is cancelled,
    /// whichever comes first.
    @discardableResult
    func wait(after generation: UInt64, until deadline: ContinuousClock.Instant?) async -> Bool {
        let id = state.withLock { s -> UInt64 in
            s.nextID &+= 1
            return s.nextID
        }
        let giveUp: @Sendable () -> Void = { [self] in state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: false) }
        // A timer of its own, cancelled (and freed) as soon as the wait is over: a subscriber
        // woken by every commit waits again at once, and timers left to run out would pile up
        // (one per wake-up for a whole keepalive interval). It fires 1 ms after the deadline,
        // so a wait that parks after it fired sees the deadline passed.
        let timer = deadline.map { deadline -> any DispatchSourceTimer in
            let timer = DispatchSource.makeTimerSource(queue: Self.timers)
            let left = max(ContinuousClock.now.duration(to: deadline), .zero) + .milliseconds(1)
            let (seconds, attoseconds) = left.components
            let nanoseconds = Int(clamping: seconds) &* 1_000_000_000 &+ Int(attoseconds / 1_000_000_000)
            timer.schedule(deadline: .now() + .nanoseconds(nanoseconds), leeway: .milliseconds(1))
            timer.setEventHandler(handler: giveUp)
            timer.resume()
            return timer
        }
        defer { timer?.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                let parked = state.withLock { s -> Bool? in
                    if s.generation != generation { return s.last }
                    if Task.isCancelled { return false }
                    if let deadline, ContinuousClock.now >= deadline { return false }
                    s.waiters[id] = c
                    return nil
                }
                if let parked { c.resume(returning: parked) }
            }
        } onCancel: {
            giveUp()
        }
    }
}

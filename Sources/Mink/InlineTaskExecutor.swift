import Dispatch
import Foundation
import Synchronization

/// A serial task executor (a storage connection's queue) that can also run work on the calling
/// thread, inside its serial context, so that a server thread with nothing else to do can lend
/// itself to a lone request instead of waking the executor's own thread.
///
/// Why: on a quiet server a lone request's task is started from the HTTP loop's poller thread;
/// queueing it on the connection's queue wakes a second thread (measured on the 2-core VM: a
/// thread hand-off to an idle vCPU costs 50–300 µs). minkd's HTTP loop hands its polling to a
/// standby thread and runs the task's jobs itself through ``runInline(_:)`` (see
/// docs/http-transport.md, *Lone requests*).
public protocol InlineTaskExecutor: TaskExecutor {
    /// Runs `body` on the calling thread, serialised with every other job and work item of this
    /// executor (waiting for the one running, if any). Work the executor would queue for itself
    /// while `body` runs on this thread may run inline too.
    func runInline(_ body: () -> Void)
}

/// What an ``InlineTaskExecutor`` over a serial queue keeps: which thread runs inline on the queue
/// now, so that the first storage call that thread makes there (``take()``) also runs at once on
/// it instead of being queued behind it — one per ``run(on:_:)``, so that work going on after
/// that call (a drain's next batches) is queued for the queue's own thread.
public final class InlineBorrow: Sendable {
    /// The thread inside ``run(on:_:)`` (its `pthread_self`) until it takes its borrow, else 0.
    private let thread = Atomic<UInt>(0)

    public init() {}

    /// Runs `body` on the calling thread while it holds `queue` (`queue.sync`).
    public func run(on queue: DispatchQueue, _ body: () -> Void) {
        queue.sync {
            thread.store(pthread_self(), ordering: .relaxed)
            defer { thread.store(0, ordering: .relaxed) }
            body()
        }
    }

    /// Whether the caller runs inside ``run(on:_:)`` and has not taken its borrow yet: then it
    /// runs its work at once, already on the queue.
    public func take() -> Bool {
        thread.compareExchange(expected: pthread_self(), desired: 0, ordering: .relaxed).exchanged
    }
}

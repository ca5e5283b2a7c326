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

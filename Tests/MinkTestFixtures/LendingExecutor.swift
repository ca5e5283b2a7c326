import Dispatch
import Foundation
import Mink
import Synchronization

/// What MinkHTTP's `Donor` does for a lone request, on a thread of its own: runs the task's first
/// job inside the worker's `runInline`, its later jobs on their own, as they come.
public final class LendingExecutor: TaskExecutor, @unchecked Sendable {
    // Invariant: `jobs` behind its lock; the rest immutable.
    private let worker: any InlineTaskExecutor
    private let jobs = Mutex<[UnownedJob]>([])
    private let ready = DispatchSemaphore(value: 0)
    private let runner = Mutex<pthread_t?>(nil)

    /// The thread running the jobs, once started.
    public var thread: pthread_t? { runner.withLock { $0 } }

    public init(worker: any InlineTaskExecutor) { self.worker = worker }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        ready.signal()
    }

    /// Starts the thread; it ends when no job came for 30 s.
    public func start() {
        let thread = Thread { [self] in
            runner.withLock { $0 = pthread_self() }
            var first = true
            while ready.wait(timeout: .now() + 30) == .success {
                guard let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
                if first {
                    first = false
                    worker.runInline { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
                } else {
                    job.runSynchronously(on: self.asUnownedTaskExecutor())
                }
            }
        }
        thread.start()
    }
}

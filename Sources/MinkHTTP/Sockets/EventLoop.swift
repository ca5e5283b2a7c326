import CEpoll
import Dispatch
import Glibc
import Synchronization

/// A serial queue that owns many connections and watches their sockets; a periodic
/// tick checks their timeouts.
///
/// A server has a few of these (one per core by default), never one per connection.
///
/// The loop keeps its own `epoll` set (Linux) holding its connections' sockets. One
/// thread per loop, the poller, blocks in `epoll_wait`; when sockets are ready it runs
/// their handlers with `queue.sync`, which executes them on the poller thread itself
/// while holding the queue, so they stay serialised with everything else sent to the
/// queue (responses coming back from tasks, stream writes, the tick). A Dispatch
/// source per socket would cost, for every read, a hand-off from Dispatch's manager
/// thread to a worker and a re-arm through the manager again (measured: about a tenth
/// of the server's CPU at 100 k requests/s); here a ready socket costs one `epoll_wait`
/// shared by the whole batch.
final class EventLoop: @unchecked Sendable {
    // Invariant: `registered`, `nextToken`, `tickSource` and `poller` are touched only on
    // `queue`, which serialises all access (checked in debug builds by `assertOnQueue()`).
    // The poller's own state lives in `Poller`.
    let queue: DispatchQueue
    /// One read buffer shared by the loop's connections: reads happen one at a time.
    let readBuffer: UnsafeMutableRawBufferPointer
    private var tickSource: DispatchSourceTimer?
    private let index: Int
    private var poller: Poller?
    private let idleFlag = IdleFlag()
    /// While the poller thread handles ready sockets (on the queue): its ``Donor``, which a
    /// lone request's task may collect its jobs into (``ServerConnection``).
    private(set) var currentDonor: Donor?

    /// How many times a poller thread of this loop lent itself to a lone request (for tests).
    var lentRuns: Int { queue.sync { poller?.lentRuns.load(ordering: .relaxed) ?? 0 } }
    /// Whether a standby poller thread waits to be promoted (for tests).
    var standbyWaits: Bool { queue.sync { poller?.standbyWaits ?? false } }

    /// Whether the poller thread is waiting in `epoll_wait` — no socket of the loop is being
    /// handled — so that work sent to ``queue`` most likely runs at once. A hint: read without
    /// the queue, it may be stale by the time it is used.
    var isIdle: Bool { idleFlag.value.load(ordering: .relaxed) }

    /// Responses sent to ``queue`` with `async` and not yet written (``ServerConnection``): while
    /// any wait, a `sync` from another thread would wait for them.
    let queuedResponses = Atomic<Int>(0)
    /// Registered connections by the token stored in their `epoll_event` (0 is the
    /// poller's wake-up descriptor).
    private var registered: [UInt64: ServerConnection] = [:]
    private var nextToken: UInt64 = 1
    /// Where transport problems go (a failed `epoll_ctl` or `epoll_wait`).
    private let report: @Sendable (String) -> Void

    /// The loop's open connections (a snapshot: callers may close them while iterating).
    var connections: [ServerConnection] { Array(registered.values) }

    /// Creates a loop; nothing runs until ``start(tickInterval:)``.
    /// - Parameters:
    ///   - index: the loop's number, in its queue's and thread's names.
    ///   - report: where problems of the loop's system calls are reported.
    init(index: Int, report: @escaping @Sendable (String) -> Void) {
        self.index = index
        self.report = report
        queue = DispatchQueue(label: "MinkHTTP.loop.\(index)", qos: .userInitiated)
        readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    }

    deinit {
        poller?.stop()
        readBuffer.deallocate()
    }

    /// Creates the loop's `epoll` set, starts its poller thread and the periodic timeout
    /// check. Called once, before any connection is added.
    func start(tickInterval: Duration, wait: @escaping Poller.Wait = epoll_wait) throws(SocketError) {
        let poller = try Poller(wait: wait, idle: idleFlag)
        queue.sync {
            self.poller = poller
            startTickingOnQueue(tickInterval)
        }
        try poller.run(name: "MinkHTTP.loop.\(index)", report: report) { [weak self] events, count, donor in
            guard let self else { return false }
            self.queue.sync {
                self.currentDonor = donor
                self.handle(events, count: count)
                self.currentDonor = nil
            }
            return true
        }
    }

    private func startTickingOnQueue(_ interval: Duration) {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        let nanos = Int(max(interval.nanoseconds, 1_000_000))
        timer.schedule(deadline: .now() + .nanoseconds(nanos), repeating: .nanoseconds(nanos), leeway: .nanoseconds(nanos / 10))
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            let now = monotonicNanos()
            for connection in self.connections {
                connection.tick(now: now)
            }
        }
        timer.resume()
        tickSource = timer
    }

    /// Stops the periodic timeout check and the poller thread (which closes the set).
    /// Called once every connection is closed.
    func stop() {
        queue.async {
            self.tickSource?.cancel()
            self.tickSource = nil
            self.poller?.stop()
            self.poller = nil
        }
    }

    /// The poller thread's kernel ID, nil before ``start(tickInterval:)``, after ``stop()``
    /// or before the thread has run.
    var pollerThreadID: Int32? {
        queue.sync {
            guard let id = poller?.threadID.load(ordering: .acquiring), id != 0 else { return nil }
            return id
        }
    }

    /// Checks, in debug builds, that the caller runs on the loop's queue; release builds pay nothing.
    @inline(__always)
    private func assertOnQueue() {
        #if DEBUG
        dispatchPrecondition(condition: .onQueue(queue))
        #endif
    }

    /// On the queue: runs the handlers of the sockets `epoll_wait` reported.
    private func handle(_ events: UnsafeMutablePointer<epoll_event>, count: Int) {
        assertOnQueue()
        for i in 0..<count {
            let event = events[i]
            // A connection closed earlier in this batch is no longer registered.
            guard let connection = registered[event.data.u64] else { continue }
            connection.handle(events: event.events)
        }
    }

    /// Adds a connection's socket to the set, watching for input.
    /// - Returns: its token, or 0 when the socket could not be added.
    func register(_ connection: ServerConnection) -> UInt64 {
        assertOnQueue()
        guard let poller else { return 0 }
        let token = nextToken
        nextToken &+= 1
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = token
        guard epoll_ctl(poller.epollFD, EPOLL_CTL_ADD, connection.fd, &event) == 0 else {
            report("MinkHTTP: \(SocketError(call: "epoll_ctl(ADD)", errno: errno)); connection dropped")
            return 0
        }
        registered[token] = connection
        return token
    }

    /// Changes what a registered socket is watched for. Errors and hang-ups are
    /// reported whatever the interest.
    /// - Returns: false when the kernel refused (the failure is reported); the socket's
    ///   interest is then unknown and the caller closes it.
    func update(_ fd: Int32, token: UInt64, read: Bool, write: Bool) -> Bool {
        assertOnQueue()
        guard let poller else { return false }
        var event = epoll_event()
        event.events = (read ? EPOLLIN.rawValue : 0) | (write ? EPOLLOUT.rawValue : 0)
        event.data.u64 = token
        guard epoll_ctl(poller.epollFD, EPOLL_CTL_MOD, fd, &event) == 0 else {
            report("MinkHTTP: \(SocketError(call: "epoll_ctl(MOD)", errno: errno)); connection closed")
            return false
        }
        return true
    }

    /// Removes a socket from the set; called before the socket is closed, so that its
    /// number, once reused, is not watched under the old token.
    func unregister(_ fd: Int32, token: UInt64) {
        assertOnQueue()
        registered[token] = nil
        guard let poller else { return }
        var event = epoll_event()
        // A failure is reported only: the socket is closed next, which removes it from the set.
        if epoll_ctl(poller.epollFD, EPOLL_CTL_DEL, fd, &event) != 0 {
            report("MinkHTTP: \(SocketError(call: "epoll_ctl(DEL)", errno: errno))")
        }
    }
}

/// An `epoll` set, an `eventfd` to wake it, and the thread that waits on it.
final class Poller: @unchecked Sendable {
    /// `epoll_wait`'s signature; tests pass one that fails to check the retry.
    typealias Wait = @Sendable (Int32, UnsafeMutablePointer<epoll_event>?, Int32, Int32) -> Int32

    // Invariant: the descriptors are fixed at init; `events` is used only by the poller
    // thread; the descriptors are closed by the poller thread as it exits (or by
    // `deinit` when the thread never started).
    let epollFD: Int32
    private let wakeFD: Int32
    private let stopping = Atomic<Bool>(false)
    private let threadStarted = Atomic<Bool>(false)
    /// The poller thread's kernel ID once it runs (0 before), for tests and diagnostics.
    let threadID = Atomic<Int32>(0)
    private static let capacity: Int32 = 256
    private let wait: Wait

    /// Set while the thread waits in `epoll_wait` (see ``EventLoop/isIdle``).
    private let idle: IdleFlag

    // Lending the poller thread to lone requests (leader/follower): at most two threads per
    // loop take turns polling — the first one, and a standby started the first time the polling
    // thread lends itself. Exactly one of them polls at a time; the other runs lent jobs or
    // waits, on a semaphore of its own, to be promoted: a shared one could be taken by the
    // thread that signalled it, when it waits again before the promoted thread woke.
    private struct Standby {
        var started = false
        /// The waiting standby's semaphore; nil while both threads are busy (or before the
        /// standby is started).
        var waiting: DispatchSemaphore?
    }
    private let standby = Mutex(Standby())
    private let liveThreads = Atomic<Int>(0)
    /// How many times the polling thread lent itself to a lone request's jobs (for tests).
    let lentRuns = Atomic<Int>(0)

    init(wait: @escaping Wait = epoll_wait, idle: IdleFlag = IdleFlag()) throws(SocketError) {
        self.wait = wait
        self.idle = idle
        let e = epoll_create1(Int32(EPOLL_CLOEXEC))
        if e < 0 { throw SocketError(call: "epoll_create1", errno: errno) }
        let w = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if w < 0 {
            let error = SocketError(call: "eventfd", errno: errno)
            Socket.close(e)
            throw error
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = 0
        if epoll_ctl(e, EPOLL_CTL_ADD, w, &event) != 0 {
            let error = SocketError(call: "epoll_ctl", errno: errno)
            Socket.close(w)
            Socket.close(e)
            throw error
        }
        epollFD = e
        wakeFD = w
    }

    deinit {
        if !threadStarted.load(ordering: .acquiring) {
            Socket.close(wakeFD)
            Socket.close(epollFD)
        }
    }

    /// Starts the thread: it waits for ready sockets and passes them to `body`, until
    /// ``stop()`` or until `body` returns false.
    ///
    /// A failing `epoll_wait` (other than `EINTR`) is reported and retried after a pause that
    /// doubles up to a second: ending the thread instead would leave every connection of the
    /// loop unserved with nothing said. Only the first failure of a run and the recovery are
    /// reported, so a lasting failure does not flood the log.
    func run(name: String, report: @escaping @Sendable (String) -> Void,
             _ body: @escaping @Sendable (UnsafeMutablePointer<epoll_event>, Int, Donor) -> Bool) throws(SocketError) {
        threadStarted.store(true, ordering: .releasing)
        liveThreads.store(1, ordering: .relaxed)
        let r = startThread { [self] in
            setThreadName(name)
            threadID.store(cepoll_gettid(), ordering: .releasing)
            pollOnThisThread(name: name, report: report, body)
        }
        if r != 0 {
            liveThreads.store(0, ordering: .relaxed)
            threadStarted.store(false, ordering: .releasing)
            throw SocketError(call: "pthread_create", errno: r)
        }
    }

    /// The poll loop, on the thread that polls (the first one, or the standby once promoted):
    /// waits for ready sockets, passes them to `body`, and when `body` left jobs to run here
    /// (``Donor``), hands the polling to the standby thread, runs them, and waits as the standby.
    private func pollOnThisThread(name: String, report: @escaping @Sendable (String) -> Void,
                                  _ body: @escaping @Sendable (UnsafeMutablePointer<epoll_event>, Int, Donor) -> Bool) {
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Int(Self.capacity))
        let donor = Donor(poller: self)
        defer {
            events.deallocate()
            threadExits()
        }
        var failures = 0
        while !stopping.load(ordering: .acquiring) {
            idle.value.store(true, ordering: .relaxed)
            let n = wait(epollFD, events, Self.capacity, -1)
            idle.value.store(false, ordering: .relaxed)
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                failures += 1
                if failures == 1 { report("MinkHTTP: \(name): \(SocketError(call: "epoll_wait", errno: e)); retrying") }
                let pauseMillis = min(1000, 10 << min(failures - 1, 7))
                usleep(UInt32(pauseMillis * 1000))
                continue
            }
            if failures > 0 {
                report("MinkHTTP: \(name): epoll_wait works again after \(failures) failure(s)")
                failures = 0
            }
            if stopping.load(ordering: .acquiring) { return }
            donor.collecting = true
            let goOn = body(events, Int(n), donor)
            if !donor.jobs.isEmpty { lend(donor, name: name, report: report, body) }
            donor.collecting = false
            if !goOn { return }
        }
    }

    /// Whether a standby thread waits to be promoted (tests).
    var standbyWaits: Bool { standby.withLock { $0.waiting != nil } }

    /// Whether the polling can be handed to a standby thread now (none started yet, or one
    /// waits): what ``Donor/canLend`` answers.
    var standbyAvailable: Bool { standby.withLock { !$0.started || $0.waiting != nil } }

    /// On the polling thread, with jobs `donor` collected: promotes the standby thread (started
    /// the first time) to poll, runs the jobs here — the tasks' storage work with them, inline —
    /// then waits as the standby until promoted again. Without a standby (both threads busy, or
    /// no thread could be started) the jobs go to their executors as usual.
    private func lend(_ donor: Donor, name: String, report: @escaping @Sendable (String) -> Void,
                      _ body: @escaping @Sendable (UnsafeMutablePointer<epoll_event>, Int, Donor) -> Bool) {
        guard promoteStandby(name: name, report: report, body) else {
            donor.forwardAll()
            return
        }
        lentRuns.add(1, ordering: .relaxed)
        donor.runAll()
        // Wait as the standby: the other thread polls; it promotes this one when it lends itself
        // in turn, and wakes it to exit when the loop stops (not when it stopped already).
        let wait = standby.withLock { s -> Bool in
            if stopping.load(ordering: .acquiring) { return false }
            s.waiting = donor.signal
            return true
        }
        if wait { donor.signal.wait() }
    }

    /// Wakes the waiting standby thread, or starts one; `false` when neither can be done.
    private func promoteStandby(name: String, report: @escaping @Sendable (String) -> Void,
                                _ body: @escaping @Sendable (UnsafeMutablePointer<epoll_event>, Int, Donor) -> Bool) -> Bool {
        enum Step { case signal(DispatchSemaphore), start, none }
        let step = standby.withLock { s -> Step in
            if let w = s.waiting {
                s.waiting = nil
                return .signal(w)
            }
            if s.started { return .none }
            s.started = true
            return .start
        }
        switch step {
        case .signal(let w):
            w.signal()
            return true
        case .none:
            return false
        case .start:
            break
        }
        liveThreads.add(1, ordering: .relaxed)
        let r = startThread { [self] in
            setThreadName(name.replacingOccurrences(of: ".loop.", with: ".stby."))
            pollOnThisThread(name: name, report: report, body)
        }
        if r != 0 {
            // `started` stays set: no standby, so no lending and no new attempt (reported once).
            liveThreads.subtract(1, ordering: .relaxed)
            report("MinkHTTP: \(name): \(SocketError(call: "pthread_create", errno: r)) for the standby poller; lone requests are not lent a thread")
            return false
        }
        return true
    }

    /// A poll loop ends (the loop stops): wakes the standby, which sees ``stopping`` and ends
    /// too; the last thread out closes the descriptors.
    private func threadExits() {
        stopping.store(true, ordering: .releasing)
        let waiting = standby.withLock { s in
            defer { s.waiting = nil }
            return s.waiting
        }
        waiting?.signal()
        if liveThreads.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            Socket.close(wakeFD)
            Socket.close(epollFD)
        }
    }

    /// Asks the thread to exit; it closes the descriptors on its way out.
    func stop() {
        if stopping.exchange(true, ordering: .acquiringAndReleasing) { return }
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }
}

/// The closure a started thread runs.
private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a detached thread running `body`; returns `pthread_create`'s result.
///
/// The thread blocks every signal, as Dispatch's own threads do: a signal the process handles
/// through a Dispatch signal source (minkd's `SIGTERM`/`SIGHUP`, Foundation's `SIGCHLD` for
/// child processes) must not be delivered to this thread, where its ignored or default
/// disposition would lose it.
private func startThread(_ body: @escaping @Sendable () -> Void) -> Int32 {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let r = pthread_create(&thread, nil, { arg in
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, nil)
        let body = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
        body.body()
        return nil
    }, box)
    if r != 0 {
        Unmanaged<ThreadBody>.fromOpaque(box).release()
        return r
    }
    pthread_detach(thread)
    return 0
}

/// Names the calling thread (at most 15 bytes are kept), as `top -H` and debuggers show it.
private func setThreadName(_ name: String) {
    _ = cepoll_set_thread_name(String(name.prefix(15)))
}

/// The jobs a polling thread collects for itself while it handles sockets: a lone request's
/// task whose executor can run work inline (``HTTPResponder/inlineRunner(for:)``) queues its jobs
/// here instead of on its executor; after the sockets are handled the thread hands the polling
/// to its standby and runs them (``Poller``). Why: queueing them would wake the executor's
/// thread — on this VM a hand-off to an idle vCPU costs 50–300 µs of a lone request's latency.
final class Donor: @unchecked Sendable {
    // Invariant: `collecting` and `jobs` are touched only by the thread that created the donor
    // (`thread`); other threads see `take` refuse.
    private let thread = pthread_self()
    private let poller: Poller
    /// What promotes this thread from standby to poller (``Poller``).
    let signal = DispatchSemaphore(value: 0)
    var collecting = false
    /// Set while ``runAll()`` runs: jobs collected then are the tasks' later ones.
    private var running = false
    /// Each job, and whether it runs inside its executor's serial context (a task's first job,
    /// collected while the sockets were handled: the one that makes the storage call) or on its
    /// own (a task's later jobs — resumed after its storage call, they need no connection, and
    /// must not wait behind the drain that connection's queue may have taken up meanwhile).
    private(set) var jobs: [(job: UnownedJob, executor: LentThreadExecutor, inline: Bool)] = []

    init(poller: Poller) { self.poller = poller }

    /// Whether a lone request may collect its jobs here now: a standby can take the polling.
    var canLend: Bool { poller.standbyAvailable }

    /// Keeps `job` to run on this thread, when called on it while it collects.
    func take(_ job: UnownedJob, _ executor: LentThreadExecutor) -> Bool {
        // The thread first: other threads call this too, and must not read `collecting`.
        guard pthread_equal(thread, pthread_self()) != 0, collecting else { return false }
        jobs.append((job, executor, !running))
        return true
    }

    /// Runs the collected jobs, and those they queue here meanwhile, in order.
    func runAll() {
        running = true
        defer { running = false }
        var next = 0
        while next < jobs.count {
            let (job, executor, inline) = jobs[next]
            next += 1
            if inline { executor.runLent(job) } else { job.runSynchronously(on: executor.asUnownedTaskExecutor()) }
        }
        jobs.removeAll(keepingCapacity: true)
    }

    /// Sends the collected jobs to their executors (no standby could take the polling).
    func forwardAll() {
        let all = jobs
        jobs.removeAll(keepingCapacity: true)
        for (job, executor, _) in all { executor.forward(job) }
    }
}

/// The executor of a lone request's task whose jobs a polling thread runs itself (``Donor``):
/// jobs queued on that thread while it collects stay there; others go to `base`, the
/// executor the responder named.
final class LentThreadExecutor: TaskExecutor, @unchecked Sendable {
    // Invariant: immutable.
    private let base: any TaskExecutor
    private let donor: Donor
    private let runInline: @Sendable (() -> Void) -> Void

    init(base: any TaskExecutor, donor: Donor, runInline: @escaping @Sendable (() -> Void) -> Void) {
        self.base = base
        self.donor = donor
        self.runInline = runInline
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if donor.take(job, self) { return }
        forward(job)
    }

    /// On the donor's thread: runs `job` there, inside `base`'s serial context.
    func runLent(_ job: UnownedJob) {
        runInline { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    func forward(_ job: UnownedJob) {
        base.enqueue(ExecutorJob(job))
    }
}

/// Whether a poller thread waits in `epoll_wait` (``EventLoop/isIdle``).
final class IdleFlag: Sendable {
    let value = Atomic<Bool>(false)
}

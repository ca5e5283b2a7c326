import Dispatch
import Glibc
import CEpoll

/// The I/O shell of one accepted connection: reads feed the
/// ``HTTPConnectionStateMachine``, whose actions it performs (write, run the
/// responder, close).
final class ServerConnection: @unchecked Sendable {
    // Invariant: every mutable property is touched only on `loop.queue` (checked in debug
    // builds by `assertOnLoop()`). Other threads (request tasks, body writers) reach the
    // connection only through `loop.queue.async`.
    let fd: Int32
    let loop: EventLoop
    let context: ServerContext
    let remoteAddress: String
    /// Whether this connection counts against `maxConnections` (a rejected one does not).
    private let counted: Bool

    private var machine: HTTPConnectionStateMachine
    /// Where the connection is in its life (see ``Lifecycle``): one value, not a flag per fact.
    private(set) var lifecycle: Lifecycle = .unregistered

    private var output: [[UInt8]] = []
    private var outputOffset = 0
    /// Actions held back while the write queue is over its bound: the pipelined requests of a
    /// client that sends without reading. Answered directly on the loop, each request's answer
    /// was queued at once and reading went on — one connection grew the server by 2.5 GB in a
    /// minute. They run again once the queue has drained to half the bound; reading resumes after.
    private var deferred: [HTTPConnectionStateMachine.Action] = []
    private(set) var queuedBytes = 0
    private var lastWriteProgress: UInt64 = 0
    private var waiters: [CheckedContinuation<Void, any Error>] = []

    /// Whether everything has been sent and the connection only drains input before
    /// closing (shutdown need not wait for it).
    var isLingering: Bool { lifecycle.isLingering }

    init(fd: Int32, remoteAddress: String, loop: EventLoop, context: ServerContext, counted: Bool) {
        self.fd = fd
        self.remoteAddress = remoteAddress
        self.loop = loop
        self.context = context
        self.counted = counted
        self.machine = HTTPConnectionStateMachine(configuration: context.connectionConfiguration, now: monotonicNanos())
    }

    /// Checks, in debug builds, that the caller runs on the loop's queue; release builds pay nothing.
    @inline(__always)
    private func assertOnLoop() {
        #if DEBUG
        dispatchPrecondition(condition: .onQueue(loop.queue))
        #endif
    }

    /// An event that the current state does not allow: a bug in this file or in the state
    /// machine. Loud in debug builds; logged (and survived) in release builds.
    private func illegalTransition(_ event: String) {
        let message = "MinkHTTP: illegal connection transition: \(event) in state \(lifecycle)"
        assertionFailure(message)
        context.report(message)
    }

    // MARK: - Lifecycle (on loop.queue)

    /// Registers with the loop and starts reading.
    func start() {
        assertOnLoop()
        let token = loop.register(self)
        if token == 0 {
            finalClose()
            return
        }
        if !lifecycle.registered(token: token) {
            illegalTransition("start")
            return
        }
        if context.shuttingDown.load(ordering: .relaxed) {
            run(machine.beginShutdown())
        }
    }

    /// Answers `503` at once and closes: used beyond `maxConnections`.
    func reject() {
        start()
        run(HTTPConnectionStateMachine.refuse(status: 503, message: "too many connections") + [.close])
    }

    /// Closes at once: cancels sources, fails waiting writers, cancels a stream.
    func finalClose() {
        assertOnLoop()
        let previous = lifecycle.close()
        if case .closed = previous { return }
        // Out of the loop's set before the number can be reused by another socket.
        if let registration = previous.registration { loop.unregister(fd, token: registration.token) }
        Socket.close(fd)
        output = []
        queuedBytes = 0
        failWaiters(HTTPConnectionClosedError())
        // A stream nobody can read ends; so does the work of a read whose answer nobody can read
        // (a client that resets many `GET /v1/events?limit=10000` must not leave the server
        // encoding them). Any other responder finishes and finds the connection closed.
        previous.streamTask?.cancel()
        previous.safeRequestTask?.cancel()
        if counted { context.openConnections.subtract(1, ordering: .relaxed) }
        context.connectionSettled()
    }

    /// Server shutdown: idle connections close, busy ones close after their response;
    /// streaming responses are cancelled.
    func beginShutdown() {
        assertOnLoop()
        if lifecycle.isClosed { return }
        run(machine.beginShutdown())
        lifecycle.streamTask?.cancel()
    }

    /// Periodic check of timeouts.
    func tick(now: UInt64) {
        assertOnLoop()
        switch lifecycle {
        case .unregistered, .closed:
            return
        case .lingering(_, let deadline):
            if now >= deadline { finalClose() }
            return
        case .open, .closing:
            if queuedBytes > 0, now &- lastWriteProgress > context.configuration.writeTimeout.nanoseconds {
                finalClose()
                return
            }
            if let deadline = machine.deadline, now >= deadline {
                run(machine.timerFired(now: now))
            }
        }
    }

    // MARK: - Events

    /// What the loop's `epoll_wait` reported for this socket.
    func handle(events: UInt32) {
        assertOnLoop()
        guard let registration = lifecycle.registration else { return }
        let error = events & EPOLLERR.rawValue != 0
        let hangUp = events & EPOLLHUP.rawValue != 0
        if registration.readable, error || hangUp || events & EPOLLIN.rawValue != 0 {
            onReadable()
        }
        if let registration = lifecycle.registration, registration.writable,
           error || hangUp || events & EPOLLOUT.rawValue != 0 {
            flush()
            runDeferredIfDrained()
        }
        // An error (a reset) ends the connection. A hang-up means both directions are shut
        // (the peer's FIN after our own half-close): while reading, input is drained to its
        // end first (the socket stays readable; closing with unread input would send a
        // reset); with reading paused nothing more can be done. Both are reported whatever
        // the interest, so leaving the socket registered would spin.
        if let registration = lifecycle.registration, error || (hangUp && !registration.readable) { finalClose() }
    }

    // MARK: - Reading

    private func onReadable() {
        let buffer = loop.readBuffer
        for _ in 0..<4 {
            let result: IOResult<Int>
            do {
                result = try Socket.read(fd, into: buffer)
            } catch {
                finalClose()
                return
            }
            switch result {
            case .wouldBlock:
                return
            case .done(0):
                // The peer will send nothing more (the machine keeps that fact).
                let actions = machine.peerClosedInput()
                switch lifecycle {
                case .lingering:
                    finalClose()
                case .open, .closing:
                    setInterest(readable: false)
                    // A running stream has no reader.
                    lifecycle.streamTask?.cancel()
                    run(actions)
                case .unregistered, .closed:
                    break
                }
                return
            case .done(let n):
                // Closing or lingering: the input is drained and dropped.
                guard lifecycle.isOpen else { continue }
                run(machine.bytesReceived(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), now: monotonicNanos()))
                guard lifecycle.isOpen else { return }
                // Answers waiting for the client to read: its next requests wait in the kernel.
                if !deferred.isEmpty { return }
                if machine.isResponding && machine.bufferedByteCount > 64 * 1024 {
                    // Pipelined input beyond a bound waits in the kernel, not in memory.
                    setInterest(readable: false)
                    return
                }
                // A short read drained the socket: skip the recv that would say EAGAIN.
                if n < buffer.count { return }
            }
        }
    }

    /// Reading resumes unless the peer has sent EOF (nothing more can come), or answers wait
    /// for the client to read (``deferred``).
    private func resumeReading() {
        if machine.isPeerInputClosed || !deferred.isEmpty { return }
        setInterest(readable: true)
    }

    /// Runs the held-back actions once the write queue has drained to half its bound, then
    /// resumes reading (unless they were held back again, or a response now runs in a task).
    private func runDeferredIfDrained() {
        guard !deferred.isEmpty, lifecycle.isOpen, queuedBytes <= context.configuration.maxQueuedWriteBytes / 2 else { return }
        let actions = deferred
        deferred = []
        run(actions)
        if lifecycle.isOpen, deferred.isEmpty, !(machine.isResponding && machine.bufferedByteCount > 64 * 1024) { resumeReading() }
    }

    /// Changes what the socket is watched for; only a change reaches the kernel.
    private func setInterest(readable: Bool? = nil, writable: Bool? = nil) {
        if let registration = lifecycle.setInterest(readable: readable, writable: writable) {
            tellLoop(registration)
        }
    }

    /// Passes a changed registration to the kernel. When the kernel refuses (reported by
    /// the loop) the socket's interest is unknown: the connection closes rather than hang
    /// or spin.
    private func tellLoop(_ registration: Registration) {
        if !loop.update(fd, token: registration.token, read: registration.readable, write: registration.writable) {
            finalClose()
        }
    }

    // MARK: - Actions

    private func run(_ actions: [HTTPConnectionStateMachine.Action]) {
        // A request answered inline yields the machine's next actions (the next pipelined
        // request, say); they are appended here rather than run recursively, so a long
        // pipeline does not deepen the stack.
        var pending = actions
        var i = 0
        while i < pending.count {
            // A write that failed closed the connection (the peer went away with requests still
            // pipelined): nothing more to do — above all, no further request is dispatched.
            if lifecycle.isClosed { return }
            switch pending[i] {
            case .write(let bytes):
                enqueue(bytes)
            case .refused(let refusal):
                context.responder.refused(refusal, client: remoteAddress)
            case .dispatch where queuedBytes > context.configuration.maxQueuedWriteBytes:
                // The client is not reading its answers: hold this request and what follows
                // until the queue drains (``runDeferredIfDrained()``), and stop reading.
                deferred = Array(pending[i...]) + deferred
                setInterest(readable: false)
                return
            case .dispatch(let request, let keepAlive):
                if let next = dispatch(request, keepAlive: keepAlive), !next.isEmpty {
                    pending.append(contentsOf: next)
                }
            case .expectContinue(let head):
                pending.append(contentsOf: expectContinue(head, responder: context.responder))
            case .close:
                // The machine never says close while a response runs (it is `responding`
                // then); a close before registration would be a bug too.
                if !lifecycle.closeRequested() {
                    illegalTransition("close")
                } else if queuedBytes == 0 {
                    beginLinger()
                }
            }
            i += 1
        }
    }

    /// A head that asks `Expect: 100-continue`: the responder's refusal (a `401`, say), sent
    /// instead of `100 Continue` and followed by a close — the client never sends a body it
    /// would send for nothing — or `100 Continue`.
    private func expectContinue<Responder: HTTPResponder>(
        _ head: HTTPRequest, responder: Responder
    ) -> [HTTPConnectionStateMachine.Action] {
        guard let refusal = responder.refuseBeforeBody(head) else {
            enqueue(HTTPConnectionStateMachine.continueResponse)
            return []
        }
        let prepared = ResponsePreparer.prepare(refusal, for: head, keepAlive: false, gzipMinBytes: context.configuration.gzipMinBytes)
        guard case .complete(let bytes, _) = prepared else {
            // A streamed refusal is not supported: let the body come and the request run.
            enqueue(HTTPConnectionStateMachine.continueResponse)
            return []
        }
        enqueue(bytes)
        return machine.refusedBeforeBody()
    }

    /// Half-closes, then drains input until EOF or the linger timeout, so the peer
    /// reads the last response before the connection goes.
    private func beginLinger() {
        guard case .closing = lifecycle else { return }
        if machine.isPeerInputClosed {
            finalClose()
            return
        }
        Socket.shutdownWrite(fd)
        let deadline = monotonicNanos() &+ context.configuration.lingerTimeout.nanoseconds
        guard let before = lifecycle.lingerStarted(deadline: deadline) else { return }
        context.connectionSettled()
        if let after = lifecycle.registration, after != before { tellLoop(after) }
    }

    /// Hands a request to the responder. When the responder answers at once
    /// (``HTTPResponder/route(_:)``) with a complete response, the response is queued here,
    /// on the loop, and the machine's next actions are returned for ``run(_:)``; otherwise
    /// the responder runs in a task (with what `route` said) and `nil` is returned.
    private func dispatch(_ request: HTTPRequest, keepAlive: Bool) -> [HTTPConnectionStateMachine.Action]? {
        var request = request
        request.remoteAddress = remoteAddress
        context.totalRequests.add(1, ordering: .relaxed)
        return dispatch(request, keepAlive: keepAlive, to: context.responder)
    }

    /// ``dispatch(_:keepAlive:)`` with the responder's type known, so that `route`'s result
    /// goes to `respond(to:routed:)` as it is.
    private func dispatch<Responder: HTTPResponder>(
        _ request: HTTPRequest, keepAlive: Bool, to responder: Responder
    ) -> [HTTPConnectionStateMachine.Action]? {
        let context = self.context
        let routed: Responder.Routed
        switch responder.route(request) {
        case .answered(let response):
            let prepared = ResponsePreparer.prepare(
                response, for: request, keepAlive: keepAlive, gzipMinBytes: context.configuration.gzipMinBytes)
            switch prepared {
            case .complete(let bytes, let close):
                if !bytes.isEmpty { enqueue(bytes) }
                if lifecycle.isClosed { return nil }
                return machine.responseSent(close: close, now: monotonicNanos())
            case .stream(let head, let framing, let close, let body):
                let task = Task { [self] in
                    await runStream(head: head, framing: framing, close: close, body: body)
                }
                if !lifecycle.responderStarted(task, safe: false) { illegalTransition("dispatch") }
                return nil
            }
        case .inTask(let r):
            routed = r
        }
        let loop = self.loop
        // Alone (no other request in a task): the responder may name the executor its storage
        // work runs on. Not under load: the task would queue behind (and delay) other
        // requests' work on it.
        let alone = context.tasksRunning.add(1, ordering: .relaxed).newValue == 1
        var executor = alone ? responder.executor(for: routed) : nil
        // Alone, on an executor that can run work inline, with a standby thread to take the
        // polling: this thread runs the task itself once the sockets are handled (``Donor``).
        if let base = executor, let donor = loop.currentDonor, donor.canLend, let run = responder.inlineRunner(for: base) {
            executor = LentThreadExecutor(base: base, donor: donor, runInline: run)
        }
        let task = Task(executorPreference: executor) { [self] in
            let response = await responder.respond(to: request, routed: routed)
            // The connection closed meanwhile and cancelled this read: nothing to encode or compress.
            if Task.isCancelled, request.isSafe {
                context.tasksRunning.subtract(1, ordering: .relaxed)
                loop.queue.async { self.responseReady([], close: true) }
                return
            }
            let prepared = ResponsePreparer.prepare(
                response, for: request, keepAlive: keepAlive, gzipMinBytes: context.configuration.gzipMinBytes)
            switch prepared {
            case .complete(let bytes, let close):
                // `sync` when this was the server's only request in a task, the loop's poller
                // waits in `epoll_wait` and no response waits on the loop's queue: Dispatch runs
                // the block on this thread, without waking one for the queue (one thread switch
                // less per request). `async` otherwise: with `sync` for every response the
                // cooperative pool's threads waited for a busy loop at 64 clients
                // (`_dispatch_sync_f_slow`, 7.6 % of the CPU), and the last response of a SQLite
                // group commit's 64 waited for the 63 sent before it (~5 % fewer appends/s) —
                // see docs/http-transport.md.
                let alone = context.tasksRunning.subtract(1, ordering: .relaxed).newValue == 0
                if alone, loop.isIdle, loop.queuedResponses.load(ordering: .relaxed) == 0 {
                    loop.queue.sync { self.responseReady(bytes, close: close) }
                } else {
                    loop.queuedResponses.add(1, ordering: .relaxed)
                    loop.queue.async {
                        loop.queuedResponses.subtract(1, ordering: .relaxed)
                        self.responseReady(bytes, close: close)
                    }
                }
            case .stream(let head, let framing, let close, let body):
                context.tasksRunning.subtract(1, ordering: .relaxed)
                await runStream(head: head, framing: framing, close: close, body: body)
            }
        }
        if !lifecycle.responderStarted(task, safe: request.isSafe) { illegalTransition("dispatch") }
        return nil
    }

    private func runStream(head: [UInt8], framing: HTTPBodyFraming, close: Bool,
                           body: @Sendable (any HTTPBodyWriter) async throws -> Void) async {
        context.activeStreams.add(1, ordering: .relaxed)
        defer { context.activeStreams.subtract(1, ordering: .relaxed) }
        loop.queue.async { self.streamStarted(head: head) }
        let writer = ConnectionBodyWriter(connection: self, chunked: framing == .chunked)
        var clean = true
        do {
            try await body(writer)
        } catch is CancellationError {
            // Shutdown or peer gone: end the body cleanly if the connection is still there.
        } catch {
            clean = false
        }
        let isClean = clean
        loop.queue.async {
            if isClean, framing == .chunked { self.enqueue(ChunkedEncoder.end) }
            self.responseReady([], close: close || !isClean)
        }
    }

    /// On the loop: the responder's task begins a streaming body.
    private func streamStarted(head: [UInt8]) {
        assertOnLoop()
        if lifecycle.isClosed { return }
        // The peer may have closed while the responder was still preparing the stream (so
        // `onReadable` had no stream to cancel): a stream nobody reads ends now rather than
        // at the first failing write.
        let peerGone = machine.isPeerInputClosed
        guard lifecycle.streamStarted(cancelled: peerGone) else {
            illegalTransition("stream started")
            return
        }
        enqueue(head)
        if peerGone { lifecycle.streamTask?.cancel() }
    }

    private func responseReady(_ bytes: [UInt8], close: Bool) {
        assertOnLoop()
        // Closed meanwhile (an error, a write timeout, shutdown): the response has nowhere to go.
        if lifecycle.isClosed { return }
        guard lifecycle.responseFinished() else {
            illegalTransition("response ready")
            return
        }
        if !bytes.isEmpty { enqueue(bytes) }
        run(machine.responseSent(close: close, now: monotonicNanos()))
        if lifecycle.isOpen { resumeReading() }
    }

    // MARK: - Writing

    func enqueue(_ bytes: [UInt8]) {
        if lifecycle.isClosed || bytes.isEmpty { return }
        if output.isEmpty {
            // Nothing queued (the usual case): write straight away, queue only the rest.
            let result: IOResult<Int>
            do {
                result = try bytes.withUnsafeBytes { b throws(SocketError) in try Socket.write(fd, b) }
            } catch {
                finalClose()
                return
            }
            var written = 0
            if case .done(let n) = result { written = n }
            if written == bytes.count {
                beginLinger()
                return
            }
            lastWriteProgress = monotonicNanos()
            output.append(bytes)
            outputOffset = written
            queuedBytes = bytes.count - written
            setInterest(writable: true)
            return
        }
        if queuedBytes == 0 { lastWriteProgress = monotonicNanos() }
        output.append(bytes)
        queuedBytes += bytes.count
        flush()
    }

    private func flush() {
        while !output.isEmpty {
            let result: IOResult<Int>
            do {
                let offset = outputOffset
                result = try output[0].withUnsafeBytes { b throws(SocketError) in
                    try Socket.write(fd, UnsafeRawBufferPointer(rebasing: b[offset...]))
                }
            } catch {
                finalClose()
                return
            }
            switch result {
            case .wouldBlock:
                setInterest(writable: true)
                wakeWaitersIfBelowLowWater()
                return
            case .done(let n):
                lastWriteProgress = monotonicNanos()
                outputOffset += n
                queuedBytes -= n
                if outputOffset == output[0].count {
                    output.removeFirst()
                    outputOffset = 0
                }
            }
        }
        setInterest(writable: false)
        wakeWaitersIfBelowLowWater()
        beginLinger()
    }

    private func wakeWaitersIfBelowLowWater() {
        guard !waiters.isEmpty, queuedBytes <= context.configuration.maxQueuedWriteBytes / 2 else { return }
        let w = waiters
        waiters = []
        for c in w { c.resume() }
    }

    private func failWaiters(_ error: any Error) {
        let w = waiters
        waiters = []
        for c in w { c.resume(throwing: error) }
    }

    /// Called by a body writer (via `loop.queue`): queue bytes, then resume the
    /// writer now or once the queue has drained below half the bound.
    func writeFromStream(_ bytes: [UInt8], continuation: CheckedContinuation<Void, any Error>) {
        assertOnLoop()
        switch lifecycle {
        case .open(_, .streaming(_, cancelled: false)):
            break
        case .open(_, .streaming(_, cancelled: true)):
            continuation.resume(throwing: CancellationError())
            return
        default:
            // Closing or closed, or a writer used after its body returned.
            continuation.resume(throwing: HTTPConnectionClosedError())
            return
        }
        enqueue(bytes)
        if lifecycle.isClosed {
            continuation.resume(throwing: HTTPConnectionClosedError())
        } else if queuedBytes <= context.configuration.maxQueuedWriteBytes {
            continuation.resume()
        } else {
            waiters.append(continuation)
        }
    }

    /// Called (via `loop.queue`) when a body writer's task is cancelled.
    func cancelWaiters() {
        assertOnLoop()
        _ = lifecycle.streamCancelled()
        failWaiters(CancellationError())
    }
}

/// The ``HTTPBodyWriter`` of a streaming response on a server connection.
struct ConnectionBodyWriter: HTTPBodyWriter {
    let connection: ServerConnection
    let chunked: Bool

    func write(_ bytes: [UInt8]) async throws {
        if bytes.isEmpty { return }
        try Task.checkCancellation()
        let framed = chunked ? ChunkedEncoder.chunk(bytes) : bytes
        let connection = self.connection
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                connection.loop.queue.async { connection.writeFromStream(framed, continuation: c) }
            }
        } onCancel: {
            connection.loop.queue.async { connection.cancelWaiters() }
        }
    }

    var isShuttingDown: Bool {
        connection.context.shuttingDown.load(ordering: .relaxed)
    }
}

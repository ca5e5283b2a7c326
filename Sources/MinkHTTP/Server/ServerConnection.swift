import Dispatch
import Glibc
import CEpoll

/// The I/O shell of one accepted connection: reads feed the
/// ``HTTPConnectionStateMachine``, whose actions it performs (write, run the
/// responder, close).
final class ServerConnection: @unchecked Sendable {
    // Invariant: every mutable property is touched only on `loop.queue`. Other
    // threads (request tasks, body writers) reach the connection only through
    // `loop.queue.async`.
    let fd: Int32
    let loop: EventLoop
    let context: ServerContext
    let remoteAddress: String
    /// Whether this connection counts against `maxConnections` (a rejected one does not).
    private let counted: Bool

    private var machine: HTTPConnectionStateMachine
    /// The loop's name for this connection's socket; 0 until registered.
    private var token: UInt64 = 0
    private var readPaused = false
    private var awaitingWritable = false

    private var output: [[UInt8]] = []
    private var outputOffset = 0
    private(set) var queuedBytes = 0
    private var lastWriteProgress: UInt64 = 0
    private var waiters: [CheckedContinuation<Void, any Error>] = []

    private var closeAfterFlush = false
    private var lingerDeadline: UInt64?
    private var peerEOF = false
    private(set) var closed = false

    /// Whether everything has been sent and the connection only drains input before
    /// closing (shutdown need not wait for it).
    var isLingering: Bool { lingerDeadline != nil }

    private var task: Task<Void, Never>?
    private var streaming = false
    /// Set when the stream's task was cancelled; a write registered after the
    /// cancellation hop (both go through `loop.queue`) fails at once.
    private var streamCancelled = false

    init(fd: Int32, remoteAddress: String, loop: EventLoop, context: ServerContext, counted: Bool) {
        self.fd = fd
        self.remoteAddress = remoteAddress
        self.loop = loop
        self.context = context
        self.counted = counted
        self.machine = HTTPConnectionStateMachine(configuration: context.connectionConfiguration, now: monotonicNanos())
    }

    // MARK: - Lifecycle (on loop.queue)

    /// Registers with the loop and starts reading.
    func start() {
        token = loop.register(self)
        if token == 0 {
            finalClose()
            return
        }
        if context.shuttingDown.load(ordering: .relaxed) {
            run(machine.beginShutdown())
        }
    }

    /// Answers `503` at once and closes: used beyond `maxConnections`.
    func reject() {
        start()
        run([.write(HTTPConnectionStateMachine.errorResponse(status: 503, message: "too many connections")), .close])
    }

    /// Closes at once: cancels sources, fails waiting writers, cancels a stream.
    func finalClose() {
        if closed { return }
        closed = true
        // Out of the loop's set before the number can be reused by another socket.
        if token != 0 { loop.unregister(fd, token: token) }
        Socket.close(fd)
        output = []
        queuedBytes = 0
        failWaiters(HTTPConnectionClosedError())
        if streaming { task?.cancel() }
        task = nil
        if counted { context.openConnections.subtract(1, ordering: .relaxed) }
        context.connectionSettled()
    }

    /// Server shutdown: idle connections close, busy ones close after their response;
    /// streaming responses are cancelled.
    func beginShutdown() {
        if closed { return }
        run(machine.beginShutdown())
        if streaming { task?.cancel() }
    }

    /// Periodic check of timeouts.
    func tick(now: UInt64) {
        if closed { return }
        if let lingerDeadline {
            if now >= lingerDeadline { finalClose() }
            return
        }
        if queuedBytes > 0, now &- lastWriteProgress > context.configuration.writeTimeout.nanoseconds {
            finalClose()
            return
        }
        if let deadline = machine.deadline, now >= deadline {
            run(machine.timerFired(now: now))
        }
    }

    // MARK: - Events

    /// What the loop's `epoll_wait` reported for this socket.
    func handle(events: UInt32) {
        if closed { return }
        let error = events & EPOLLERR.rawValue != 0
        let hangUp = events & EPOLLHUP.rawValue != 0
        if !readPaused, error || hangUp || events & EPOLLIN.rawValue != 0 {
            onReadable()
        }
        if !closed, awaitingWritable, error || hangUp || events & EPOLLOUT.rawValue != 0 {
            flush()
        }
        // An error (a reset) ends the connection. A hang-up means both directions are shut
        // (the peer's FIN after our own half-close): while reading, input is drained to its
        // end first (the socket stays readable; closing with unread input would send a
        // reset); with reading paused nothing more can be done. Both are reported whatever
        // the interest, so leaving the socket registered would spin.
        if !closed, error || (hangUp && readPaused) { finalClose() }
    }

    // MARK: - Reading

    private func onReadable() {
        if closed { return }
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
                peerEOF = true
                pauseReading()
                if lingerDeadline != nil {
                    finalClose()
                    return
                }
                // The peer will send nothing more; a running stream has no reader.
                if streaming { task?.cancel() }
                run(machine.peerClosedInput())
                return
            case .done(let n):
                if lingerDeadline != nil { continue }  // draining before close
                run(machine.bytesReceived(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), now: monotonicNanos()))
                if closed || closeAfterFlush { return }
                if machine.isResponding && machine.bufferedByteCount > 64 * 1024 {
                    // Pipelined input beyond a bound waits in the kernel, not in memory.
                    pauseReading()
                    return
                }
                // A short read drained the socket: skip the recv that would say EAGAIN.
                if n < buffer.count { return }
            }
        }
    }

    private func pauseReading() {
        guard !readPaused, !closed else { return }
        readPaused = true
        updateInterest()
    }

    private func resumeReading() {
        guard readPaused, !peerEOF, !closed else { return }
        readPaused = false
        updateInterest()
    }

    private func updateInterest() {
        loop.update(fd, token: token, read: !readPaused, write: awaitingWritable)
    }

    // MARK: - Actions

    private func run(_ actions: [HTTPConnectionStateMachine.Action]) {
        // A request answered inline yields the machine's next actions (the next pipelined
        // request, say); they are appended here rather than run recursively, so a long
        // pipeline does not deepen the stack.
        var pending = actions
        var i = 0
        while i < pending.count {
            switch pending[i] {
            case .write(let bytes):
                enqueue(bytes)
            case .dispatch(let request, let keepAlive):
                if let next = dispatch(request, keepAlive: keepAlive), !next.isEmpty {
                    pending.append(contentsOf: next)
                }
            case .close:
                closeAfterFlush = true
                if queuedBytes == 0 { beginLinger() }
            }
            i += 1
        }
    }

    /// Half-closes, then drains input until EOF or the linger timeout, so the peer
    /// reads the last response before the connection goes.
    private func beginLinger() {
        if closed || lingerDeadline != nil { return }
        if peerEOF {
            finalClose()
            return
        }
        Socket.shutdownWrite(fd)
        lingerDeadline = monotonicNanos() &+ context.configuration.lingerTimeout.nanoseconds
        context.connectionSettled()
        resumeReading()
    }

    /// Hands a request to the responder. When the responder answers at once
    /// (``HTTPResponder/respondImmediately(to:)``) with a complete response, the response
    /// is queued here, on the loop, and the machine's next actions are returned for
    /// ``run(_:)``; otherwise the responder runs in a task and `nil` is returned.
    private func dispatch(_ request: HTTPRequest, keepAlive: Bool) -> [HTTPConnectionStateMachine.Action]? {
        var request = request
        request.remoteAddress = remoteAddress
        context.totalRequests.add(1, ordering: .relaxed)
        let context = self.context
        if let response = context.responder.respondImmediately(to: request) {
            let prepared = ResponsePreparer.prepare(
                response, for: request, keepAlive: keepAlive, gzipMinBytes: context.configuration.gzipMinBytes)
            switch prepared {
            case .complete(let bytes, let close):
                if !bytes.isEmpty { enqueue(bytes) }
                if closed { return nil }
                return machine.responseSent(close: close, now: monotonicNanos())
            case .stream(let head, let framing, let close, let body):
                task = Task { [self] in
                    await runStream(head: head, framing: framing, close: close, body: body)
                }
                return nil
            }
        }
        let loop = self.loop
        task = Task { [self] in
            let response = await context.responder.respond(to: request)
            let prepared = ResponsePreparer.prepare(
                response, for: request, keepAlive: keepAlive, gzipMinBytes: context.configuration.gzipMinBytes)
            switch prepared {
            case .complete(let bytes, let close):
                loop.queue.async { self.responseReady(bytes, close: close) }
            case .stream(let head, let framing, let close, let body):
                await runStream(head: head, framing: framing, close: close, body: body)
            }
        }
        return nil
    }

    private func runStream(head: [UInt8], framing: HTTPBodyFraming, close: Bool,
                           body: @Sendable (any HTTPBodyWriter) async throws -> Void) async {
        context.activeStreams.add(1, ordering: .relaxed)
        defer { context.activeStreams.subtract(1, ordering: .relaxed) }
        loop.queue.async {
            self.streaming = true
            self.streamCancelled = false
            self.enqueue(head)
            // The peer may have closed while the responder was still preparing the stream
            // (before `streaming` was set, so `onReadable` did not cancel it): a stream
            // nobody reads ends now rather than at the first failing write.
            if self.peerEOF {
                self.streamCancelled = true
                self.task?.cancel()
            }
        }
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
            self.streaming = false
            if isClean, framing == .chunked { self.enqueue(ChunkedEncoder.end) }
            self.responseReady([], close: close || !isClean)
        }
    }

    private func responseReady(_ bytes: [UInt8], close: Bool) {
        if closed { return }
        task = nil
        if !bytes.isEmpty { enqueue(bytes) }
        run(machine.responseSent(close: close, now: monotonicNanos()))
        if !closed && !closeAfterFlush { resumeReading() }
    }

    // MARK: - Writing

    func enqueue(_ bytes: [UInt8]) {
        if closed || bytes.isEmpty { return }
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
                if closeAfterFlush { beginLinger() }
                return
            }
            lastWriteProgress = monotonicNanos()
            output.append(bytes)
            outputOffset = written
            queuedBytes = bytes.count - written
            awaitWritable()
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
                awaitWritable()
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
        if awaitingWritable {
            awaitingWritable = false
            updateInterest()
        }
        wakeWaitersIfBelowLowWater()
        if closeAfterFlush { beginLinger() }
    }

    private func awaitWritable() {
        if !awaitingWritable {
            awaitingWritable = true
            updateInterest()
        }
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
        if closed || closeAfterFlush {
            continuation.resume(throwing: HTTPConnectionClosedError())
            return
        }
        if streamCancelled {
            continuation.resume(throwing: CancellationError())
            return
        }
        enqueue(bytes)
        if closed {
            continuation.resume(throwing: HTTPConnectionClosedError())
        } else if queuedBytes <= context.configuration.maxQueuedWriteBytes {
            continuation.resume()
        } else {
            waiters.append(continuation)
        }
    }

    func cancelWaiters() {
        if streaming { streamCancelled = true }
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

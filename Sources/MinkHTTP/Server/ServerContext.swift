import Synchronization

/// What every connection of one server shares: configuration, responder, counters.
final class ServerContext: Sendable {
    let configuration: HTTPServerConfiguration
    let connectionConfiguration: HTTPConnectionStateMachine.Configuration
    let responder: any HTTPResponder
    let log: (@Sendable (String) -> Void)?
    let openConnections = Atomic<Int>(0)
    let totalConnections = Atomic<Int>(0)
    let rejectedConnections = Atomic<Int>(0)
    let totalRequests = Atomic<Int>(0)
    let activeStreams = Atomic<Int>(0)
    /// Requests being answered in tasks (not streams once they stream): a request that finds
    /// none is alone, the case ``HTTPResponder/executor(for:)`` and the response's direct write
    /// are for.
    let tasksRunning = Atomic<Int>(0)
    let shuttingDown = Atomic<Bool>(false)
    /// Set while a shutdown waits for the connections to settle (see ``connectionSettled()``).
    private let settling = Mutex<AsyncStream<Void>.Continuation?>(nil)

    init(configuration: HTTPServerConfiguration, responder: any HTTPResponder, log: (@Sendable (String) -> Void)?) {
        self.configuration = configuration
        self.connectionConfiguration = configuration.connectionConfiguration
        self.responder = responder
        self.log = log
    }

    /// Called on a loop when one of its connections closes or starts lingering (a lingering
    /// connection has sent its last response): during a shutdown this wakes the wait for every
    /// connection to settle, which then checks them all again. Outside a shutdown it costs one
    /// relaxed load.
    func connectionSettled() {
        guard shuttingDown.load(ordering: .relaxed) else { return }
        settling.withLock { $0 }?.yield()
    }

    /// The wake-ups of ``connectionSettled()`` until ``stopWatchingSettling()``. Buffered to the
    /// newest one: a connection that settles between two checks is not missed, and many that
    /// settle at once cost one check.
    func watchSettling() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        settling.withLock { $0 = continuation }
        return stream
    }

    /// Ends the stream of ``watchSettling()``.
    func stopWatchingSettling() {
        settling.withLock { s in
            s?.finish()
            s = nil
        }
    }

    /// Reports a transport-level problem (a failed `accept`, `epoll_ctl` or `epoll_wait`, an
    /// illegal connection transition) to the server's `log`; without one, to standard error,
    /// so that it is never lost silently.
    @Sendable func report(_ message: String) {
        if let log {
            log(message)
        } else {
            writeLineToStandardError(message)
        }
    }
}

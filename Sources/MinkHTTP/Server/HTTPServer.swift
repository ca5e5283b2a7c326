import Dispatch
import Synchronization

/// Counters of a running ``HTTPServer``, read with ``HTTPServer/metrics``.
public struct HTTPServerMetrics: Sendable, Equatable {
    /// Connections currently open (rejected ones excluded).
    public var openConnections: Int
    /// Connections accepted since start, rejected ones included.
    public var totalConnections: Int
    /// Connections refused with `503` because `maxConnections` was reached.
    public var rejectedConnections: Int
    /// Requests handed to the responder since start.
    public var totalRequests: Int
    /// Streaming responses currently running.
    public var activeStreams: Int
}

/// An HTTP/1.1 server on non-blocking POSIX sockets.
///
/// Connections are spread over a few event loops (``HTTPServerConfiguration/eventLoopCount``),
/// each a serial queue with an `epoll` set and one poller thread;
/// each request runs the ``HTTPResponder`` in its own task. Responses on one
/// connection are written in request order.
///
/// ```swift
/// let server = HTTPServer(configuration: .init(port: 0), responder: MyResponder())
/// let port = try server.start()
/// ...
/// await server.shutdown()
/// ```
public final class HTTPServer: Sendable {
    private struct State: Sendable {
        var listener: Int32 = -1
        var port: Int?
        var stopped = false
    }

    // The accept source is confined to `acceptQueue`; it lives in a box that is only
    // touched there.
    private final class AcceptBox: @unchecked Sendable {
        // Invariant: `source` and `nextLoop` are accessed only on `acceptQueue`.
        var source: DispatchSourceRead?
        var nextLoop = 0
        var suspended = false
        /// False from `start` until the listener's descriptor is closed (by the source's
        /// cancel handler, on `acceptQueue`).
        var listenerClosed = true
        /// Shutdowns waiting for the listener to be closed.
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let context: ServerContext
    private let loops: [EventLoop]
    private let acceptQueue = DispatchQueue(label: "MinkHTTP.accept")
    private let acceptBox = AcceptBox()
    private let state = Mutex(State())

    /// Creates a server; nothing is bound until ``start()``.
    /// - Parameters:
    ///   - configuration: address, limits, timeouts.
    ///   - responder: the application.
    ///   - log: sink for transport-level problems (accept failures, `epoll` calls that fail,
    ///     an illegal connection state transition); without one they go to standard error.
    public init(configuration: HTTPServerConfiguration, responder: any HTTPResponder,
                log: (@Sendable (String) -> Void)? = nil) {
        context = ServerContext(configuration: configuration, responder: responder, log: log)
        let context = self.context
        loops = (0..<max(1, configuration.eventLoopCount)).map { EventLoop(index: $0, report: context.report) }
    }

    /// The bound port once started.
    public var port: Int? { state.withLock { $0.port } }

    /// A snapshot of the server's counters.
    public var metrics: HTTPServerMetrics {
        HTTPServerMetrics(
            openConnections: context.openConnections.load(ordering: .relaxed),
            totalConnections: context.totalConnections.load(ordering: .relaxed),
            rejectedConnections: context.rejectedConnections.load(ordering: .relaxed),
            totalRequests: context.totalRequests.load(ordering: .relaxed),
            activeStreams: context.activeStreams.load(ordering: .relaxed))
    }

    /// Whether ``shutdown(gracePeriod:)`` has begun.
    public var isShuttingDown: Bool { context.shuttingDown.load(ordering: .relaxed) }

    /// Binds, listens and starts accepting.
    /// - Returns: the bound port (the chosen one when the configuration says 0).
    /// - Throws: ``SocketError`` when the address cannot be bound.
    @discardableResult
    public func start() throws -> Int {
        _ = ignoreSIGPIPE
        let configuration = context.configuration
        let (fd, port) = try Socket.listen(host: configuration.host, port: configuration.port, backlog: configuration.backlog)
        do {
            for loop in loops { try loop.start(tickInterval: configuration.tickInterval) }
        } catch {
            Socket.close(fd)
            for loop in loops { loop.stop() }
            throw error
        }
        state.withLock {
            $0.listener = fd
            $0.port = port
        }
        acceptQueue.sync {
            let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: acceptQueue)
            source.setEventHandler { [self] in acceptPending(fd) }
            source.setCancelHandler { [acceptBox] in
                Socket.close(fd)
                acceptBox.listenerClosed = true
                let waiters = acceptBox.closeWaiters
                acceptBox.closeWaiters = []
                for w in waiters { w.resume() }
            }
            acceptBox.listenerClosed = false
            acceptBox.source = source
            source.resume()
        }
        return port
    }

    private func acceptPending(_ listener: Int32) {
        // Bounded per wake-up so that other work on this queue is not starved.
        for _ in 0..<256 {
            let accepted: (fd: Int32, address: String)?
            do {
                accepted = try Socket.accept(listener)
            } catch {
                context.report("accept failed: \(error)")
                // e.g. EMFILE: the listener stays readable; back off instead of spinning.
                if let source = acceptBox.source, !acceptBox.suspended {
                    source.suspend()
                    acceptBox.suspended = true
                    acceptQueue.asyncAfter(deadline: .now() + .milliseconds(100)) { [acceptBox] in
                        if acceptBox.suspended, let source = acceptBox.source {
                            acceptBox.suspended = false
                            source.resume()
                        }
                    }
                }
                return
            }
            guard let (fd, address) = accepted else { return }
            context.totalConnections.add(1, ordering: .relaxed)
            let loop = loops[acceptBox.nextLoop % loops.count]
            acceptBox.nextLoop &+= 1
            let context = self.context
            let open = context.openConnections.add(1, ordering: .relaxed).newValue
            if open > context.configuration.maxConnections {
                context.openConnections.subtract(1, ordering: .relaxed)
                context.rejectedConnections.add(1, ordering: .relaxed)
                loop.queue.async {
                    ServerConnection(fd: fd, remoteAddress: address, loop: loop, context: context, counted: false).reject()
                }
                continue
            }
            loop.queue.async {
                ServerConnection(fd: fd, remoteAddress: address, loop: loop, context: context, counted: true).start()
            }
        }
    }

    /// Stops gracefully: stops accepting (the listening socket is closed before anything
    /// else, so new connections are refused), lets in-flight requests finish, ends
    /// streaming responses (their tasks are cancelled and
    /// ``HTTPBodyWriter/isShuttingDown`` turns true), closes idle connections; after
    /// the grace period every remaining connection is closed.
    /// - Parameter gracePeriod: defaults to the configuration's `shutdownGracePeriod`.
    public func shutdown(gracePeriod: Duration? = nil) async {
        let alreadyStopped = state.withLock { s -> Bool in
            defer { s.stopped = true }
            return s.stopped
        }
        if alreadyStopped { return }
        context.shuttingDown.store(true, ordering: .relaxed)
        acceptQueue.sync {
            if acceptBox.suspended {
                acceptBox.suspended = false
                acceptBox.source?.resume()
            }
            acceptBox.source?.cancel()
            acceptBox.source = nil
        }
        // The cancel handler closes the listener asynchronously: wait for it, so that once
        // shutdown has begun a new connection to the port is refused rather than queued in a
        // backlog that is about to be reset.
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            acceptQueue.async { [acceptBox] in
                if acceptBox.listenerClosed { c.resume() } else { acceptBox.closeWaiters.append(c) }
            }
        }
        // Watch before asking the connections to finish, so no settling is missed.
        let settling = context.watchSettling()
        for loop in loops {
            loop.queue.async {
                for connection in loop.connections { connection.beginShutdown() }
            }
        }
        // Until every connection is closed or lingering, or the grace period ends: checked again
        // each time a connection settles, never on a timer.
        let grace = gracePeriod ?? context.configuration.shutdownGracePeriod
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                if await allConnectionsClosed() { return }
                for await _ in settling {
                    if await allConnectionsClosed() { return }
                }
            }
            group.addTask {
                // Cancelled when the connections settle first; either way the wait is over.
                try? await Task.sleep(for: grace)
            }
            await group.next()
            group.cancelAll()
        }
        context.stopWatchingSettling()
        for loop in loops {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                loop.queue.async {
                    for connection in loop.connections { connection.finalClose() }
                    c.resume()
                }
            }
            loop.stop()
        }
    }

    /// The kernel IDs of the event loops' poller threads (tests check that there is one per
    /// loop and that none outlives ``shutdown(gracePeriod:)``).
    var pollerThreadIDs: [Int32] { loops.compactMap(\.pollerThreadID) }

    /// How many times a poller thread lent itself to a lone request's task (tests; see
    /// docs/http-transport.md, *Lone requests*).
    public var lentPollerRuns: Int { loops.reduce(0) { $0 + $1.lentRuns } }
    /// Whether every loop that started a standby poller thread has it waiting (tests).
    var standbyPollersWait: Bool { loops.allSatisfy(\.standbyWaits) }

    private func allConnectionsClosed() async -> Bool {
        for loop in loops {
            let empty = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                loop.queue.async { c.resume(returning: loop.connections.allSatisfy(\.isLingering)) }
            }
            if !empty { return false }
        }
        return true
    }
}

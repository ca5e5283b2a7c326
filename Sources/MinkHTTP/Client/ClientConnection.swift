import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// A client socket with async `read`/`write`, driven by Dispatch sources on a
/// client event-loop queue: no blocking call ever runs on Swift's cooperative pool.
final class ClientConnection: @unchecked Sendable {
    // Invariant: `lifecycle` and `nextWaitID` are touched only on `queue` (checked in debug
    // builds by `assertOnQueue()`); `parser`, `reused` and `idleSince` only by the one task
    // that holds the connection (the pool hands it to one exchange at a time).
    let fd: Int32
    let key: String
    private let queue: DispatchQueue
    private let readSource: DispatchSourceRead
    private let writeSource: DispatchSourceWrite

    /// A task waiting for the socket to become readable or writable; the direction's
    /// source is resumed exactly while its wait exists.
    struct Wait {
        let continuation: CheckedContinuation<Void, any Error>
        /// Names the wait, so that its timer fails this wait and no later one.
        let id: UInt64
    }

    /// Where the connection is in its life: one state at a time, each with its data.
    enum Lifecycle {
        /// Usable; each direction has at most one wait.
        case open(read: Wait?, write: Wait?)
        /// A waiting task was cancelled: its wait failed, and so does every later one — the
        /// cancellation can reach the queue before the wait it cancels (both hop onto it).
        /// Both sources are suspended.
        case cancelled
        /// Closed: both sources are cancelled; the last of their cancel handlers to run
        /// closes the descriptor (closing it earlier could let a reused number be watched).
        case closed(sourcesOpen: Int)
    }

    private var lifecycle: Lifecycle = .open(read: nil, write: nil)

    /// The lifecycle as the connection's queue sees it now (for tests and diagnostics).
    var currentLifecycle: Lifecycle {
        get async {
            await withCheckedContinuation { c in queue.async { c.resume(returning: self.lifecycle) } }
        }
    }
    private var nextWaitID: UInt64 = 0
    /// Bytes received but not yet consumed (kept between responses on a kept-alive connection).
    var parser = HTTPResponseParser()
    /// Whether this connection has completed at least one exchange (pooled before).
    var reused = false
    /// When it was returned to the pool.
    var idleSince: UInt64 = 0

    static let loops: [DispatchQueue] = (0..<2).map { DispatchQueue(label: "MinkHTTP.client.\($0)", qos: .userInitiated) }
    private static let next = Atomic<Int>(0)

    private init(fd: Int32, key: String) {
        self.fd = fd
        self.key = key
        let n = ClientConnection.next.wrappingAdd(1, ordering: .relaxed).oldValue
        let queue = ClientConnection.loops[n % ClientConnection.loops.count]
        self.queue = queue
        readSource = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        writeSource = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: queue)
        queue.sync { setUpSources() }
    }

    /// Checks, in debug builds, that the caller runs on the connection's queue.
    @inline(__always)
    private func assertOnQueue() {
        #if DEBUG
        dispatchPrecondition(condition: .onQueue(queue))
        #endif
    }

    /// An event the current state does not allow: a bug. Loud in debug builds; in release
    /// builds it is reported on standard error (the client has no log) and survived.
    private func illegalTransition(_ event: String) {
        let message = "MinkHTTP: illegal client connection transition: \(event) in state \(lifecycle)"
        assertionFailure(message)
        writeLineToStandardError(message)
    }

    private func setUpSources() {
        readSource.setEventHandler { [unowned self] in self.ready(read: true) }
        readSource.setCancelHandler { [self] in self.sourceCancelled() }
        writeSource.setEventHandler { [unowned self] in self.ready(read: false) }
        writeSource.setCancelHandler { [self] in self.sourceCancelled() }
        // Sources start inactive; activate then suspend so that suspend/resume balance.
        readSource.activate()
        readSource.suspend()
        writeSource.activate()
        writeSource.suspend()
    }

    /// A source fired: its wait (the only reason it is resumed) ends.
    private func ready(read: Bool) {
        assertOnQueue()
        guard let wait = take(read: read) else { return }
        wait.continuation.resume()
    }

    /// Ends a direction's wait: removes it and suspends the direction's source.
    /// - Parameter id: only the wait with this ID (a timer's), or any.
    private func take(read: Bool, id: UInt64? = nil) -> Wait? {
        guard case .open(let r, let w) = lifecycle, let wait = read ? r : w else { return nil }
        if let id, wait.id != id { return nil }
        if read {
            lifecycle = .open(read: nil, write: w)
            readSource.suspend()
        } else {
            lifecycle = .open(read: r, write: nil)
            writeSource.suspend()
        }
        return wait
    }

    private func sourceCancelled() {
        assertOnQueue()
        guard case .closed(let open) = lifecycle, open > 0 else {
            illegalTransition("source cancelled")
            return
        }
        lifecycle = .closed(sourcesOpen: open - 1)
        if open == 1 { Socket.close(fd) }
    }

    /// Connects to `host:port` within `timeout`. A name with several addresses (IPv4 first) is
    /// tried address by address, each with an equal share of what is left of `timeout`, until one
    /// connects; the last failure is thrown.
    static func connect(host: String, port: Int, timeout: Duration) async throws -> ClientConnection {
        _ = ignoreSIGPIPE
        let deadline = ContinuousClock.now + timeout
        let key = "\(host):\(port)"
        // An address literal resolves at once; a name is looked up off Swift's cooperative pool.
        guard !Socket.isNumeric(host) else {
            let (storage, length) = try Socket.resolve(host: host, port: port, passive: false)
            return try await connect(to: Socket.Address(storage: storage, length: length), key: key, deadline: deadline)
        }
        return try await connect(toFirstOf: try await Socket.resolveOffPool(host: host, port: port), key: key, deadline: deadline)
    }

    /// Tries `addresses` in order, each with an equal share of what is left until `deadline`,
    /// until one connects; the last failure is thrown.
    static func connect(toFirstOf addresses: [Socket.Address], key: String, deadline: ContinuousClock.Instant) async throws -> ClientConnection {
        var failure: any Error = HTTPClientError.timeout
        for (i, address) in addresses.enumerated() {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { break }
            do {
                return try await connect(to: address, key: key, deadline: ContinuousClock.now + left / (addresses.count - i))
            } catch let error as SocketError {
                failure = error
            } catch HTTPClientError.timeout {
                failure = HTTPClientError.timeout
            }
        }
        throw failure
    }

    /// Connects to one address by `deadline`.
    private static func connect(to address: Socket.Address, key: String, deadline: ContinuousClock.Instant) async throws -> ClientConnection {
        let (fd, connected) = try Socket.connect(to: address)
        let connection = ClientConnection(fd: fd, key: key)
        if !connected {
            // Wait for the connect to finish. The Dispatch write source normally wakes us, but
            // it cannot be relied on alone: when the connect has already failed (a refused
            // loopback connect fails within microseconds; the socket then reports IN|OUT|ERR|HUP
            // at once) the event is lost in about half the attempts on Linux, the socket's
            // read and write sources sharing one epoll registration in libdispatch (seen with a
            // fresh descriptor number, no reuse involved). So poll(2) decides, first without
            // waiting, then every 50 ms while the source stays silent.
            while !Socket.isWritableOrFailed(fd) {
                guard ContinuousClock.now < deadline else {
                    connection.close()
                    throw HTTPClientError.timeout
                }
                do {
                    try await connection.waitWritable(timeout: min(.milliseconds(50), deadline - ContinuousClock.now))
                } catch HTTPClientError.timeout {
                    continue
                } catch {
                    connection.close()
                    throw error
                }
            }
            let err = Socket.pendingError(fd)
            if err != 0 {
                connection.close()
                throw SocketError(call: "connect", errno: err)
            }
        }
        return connection
    }

    /// Whether the peer has not closed or reset this idle connection, as far as the socket can
    /// tell without blocking (`recv` with `MSG_PEEK | MSG_DONTWAIT`): `false` on end of stream,
    /// an error, or bytes nobody asked for.
    var looksOpen: Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if n < 0 { return errno == EAGAIN || errno == EWOULDBLOCK }
        return false  // 0: the server closed it; > 0: unsolicited bytes
    }

    /// Closes the socket; pending waits fail.
    func close() {
        queue.async { self.closeOnQueue() }
    }

    private func closeOnQueue() {
        assertOnQueue()
        switch lifecycle {
        case .closed:
            return
        case .open(let r, let w):
            // A suspended source must be resumed before it is cancelled, or its cancel
            // handler never runs (and the descriptor is never closed).
            if r == nil { readSource.resume() }
            if w == nil { writeSource.resume() }
            lifecycle = .closed(sourcesOpen: 2)
            r?.continuation.resume(throwing: HTTPConnectionClosedError())
            w?.continuation.resume(throwing: HTTPConnectionClosedError())
        case .cancelled:
            readSource.resume()
            writeSource.resume()
            lifecycle = .closed(sourcesOpen: 2)
        }
        readSource.cancel()
        writeSource.cancel()
    }

    private func wait(read: Bool, timeout: Duration) async throws {
        let nanos = Int(timeout.nanoseconds)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                queue.async { self.beginWait(read: read, continuation: c, timeoutNanos: nanos) }
            }
        } onCancel: {
            queue.async { self.cancelWaits() }
        }
    }

    private func beginWait(read: Bool, continuation c: CheckedContinuation<Void, any Error>, timeoutNanos: Int) {
        assertOnQueue()
        guard case .open(var r, var w) = lifecycle else {
            if case .cancelled = lifecycle {
                c.resume(throwing: CancellationError())
            } else {
                c.resume(throwing: HTTPConnectionClosedError())
            }
            return
        }
        // One task uses a connection at a time: a second wait in one direction is a bug
        // (the first continuation would leak).
        guard (read ? r : w) == nil else {
            illegalTransition("second \(read ? "read" : "write") wait")
            c.resume(throwing: HTTPConnectionClosedError())
            return
        }
        nextWaitID &+= 1
        let wait = Wait(continuation: c, id: nextWaitID)
        if read {
            r = wait
            readSource.resume()
        } else {
            w = wait
            writeSource.resume()
        }
        lifecycle = .open(read: r, write: w)
        let id = wait.id
        queue.asyncAfter(deadline: .now() + .nanoseconds(timeoutNanos)) { [weak self] in
            // Only the wait this timer belongs to fails.
            self?.take(read: read, id: id)?.continuation.resume(throwing: HTTPClientError.timeout)
        }
    }

    /// The waiting task was cancelled: fail its wait and every later one.
    private func cancelWaits() {
        assertOnQueue()
        guard case .open = lifecycle else { return }
        let r = take(read: true)
        let w = take(read: false)
        lifecycle = .cancelled
        r?.continuation.resume(throwing: CancellationError())
        w?.continuation.resume(throwing: CancellationError())
    }

    private func waitWritable(timeout: Duration) async throws { try await wait(read: false, timeout: timeout) }

    /// Writes all bytes.
    func write(_ bytes: [UInt8], timeout: Duration) async throws {
        var offset = 0
        while offset < bytes.count {
            let r = try bytes.withUnsafeBytes { b throws(SocketError) in
                try Socket.write(fd, UnsafeRawBufferPointer(rebasing: b[offset...]))
            }
            switch r {
            case .done(let n): offset += n
            case .wouldBlock: try await waitWritable(timeout: timeout)
            }
        }
    }

    /// Reads what is available (waiting up to `timeout`); an empty result is end of input.
    func read(timeout: Duration) async throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let r = try buffer.withUnsafeMutableBytes { b throws(SocketError) in try Socket.read(fd, into: b) }
            switch r {
            case .done(let n):
                buffer.removeLast(buffer.count - n)
                return buffer
            case .wouldBlock:
                try await wait(read: true, timeout: timeout)
            }
        }
    }
}


import Dispatch
import Synchronization

/// A client socket with async `read`/`write`, driven by Dispatch sources on a
/// client event-loop queue: no blocking call ever runs on Swift's cooperative pool.
final class ClientConnection: @unchecked Sendable {
    // Invariant: every mutable property is touched only on `queue`.
    let fd: Int32
    let key: String
    private let queue: DispatchQueue
    private var readSource: DispatchSourceRead?
    private var writeSource: DispatchSourceWrite?
    private var readWaiter: CheckedContinuation<Void, any Error>?
    private var writeWaiter: CheckedContinuation<Void, any Error>?
    private var readActive = false
    private var writeActive = false
    private var closed = false
    /// Incremented per wait, so a timer only fails the wait it was set for.
    private var waitGeneration = 0
    /// Set when a waiting task was cancelled. A cancellation can arrive before the
    /// wait is registered (both hop onto `queue`); the flag makes the late wait fail too.
    private var cancelRequested = false
    private var openSources = 2
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
        queue = ClientConnection.loops[n % ClientConnection.loops.count]
        queue.sync { setUpSources() }
    }

    private func setUpSources() {
        let r = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        r.setEventHandler { [unowned self] in
            self.pauseRead()
            let w = self.readWaiter
            self.readWaiter = nil
            w?.resume()
        }
        r.setCancelHandler { [self] in self.sourceCancelled() }
        let w = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: queue)
        w.setEventHandler { [unowned self] in
            self.pauseWrite()
            let c = self.writeWaiter
            self.writeWaiter = nil
            c?.resume()
        }
        w.setCancelHandler { [self] in self.sourceCancelled() }
        readSource = r
        writeSource = w
        // Sources start inactive; activate then suspend so that suspend/resume balance.
        r.activate()
        r.suspend()
        w.activate()
        w.suspend()
    }

    private func sourceCancelled() {
        openSources -= 1
        if openSources == 0 { Socket.close(fd) }
    }

    private func pauseRead() {
        if readActive { readActive = false; readSource?.suspend() }
    }

    private func pauseWrite() {
        if writeActive { writeActive = false; writeSource?.suspend() }
    }

    /// Connects to `host:port` within `timeout`.
    static func connect(host: String, port: Int, timeout: Duration) async throws -> ClientConnection {
        _ = ignoreSIGPIPE
        let (fd, connected) = try Socket.connect(host: host, port: port)
        let connection = ClientConnection(fd: fd, key: "\(host):\(port)")
        if !connected {
            // Wait for the connect to finish. The Dispatch write source normally wakes us, but
            // it cannot be relied on alone: when the connect has already failed (a refused
            // loopback connect fails within microseconds; the socket then reports IN|OUT|ERR|HUP
            // at once) the event is lost in about half the attempts on Linux, the socket's
            // read and write sources sharing one epoll registration in libdispatch (seen with a
            // fresh descriptor number, no reuse involved). So poll(2) decides, first without
            // waiting, then every 50 ms while the source stays silent.
            let deadline = ContinuousClock.now + timeout
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

    /// Closes the socket; pending waits fail.
    func close() {
        queue.async { self.closeOnQueue() }
    }

    private func closeOnQueue() {
        if closed { return }
        closed = true
        readWaiter?.resume(throwing: HTTPConnectionClosedError())
        writeWaiter?.resume(throwing: HTTPConnectionClosedError())
        readWaiter = nil
        writeWaiter = nil
        if !readActive { readSource?.resume() }
        if !writeActive { writeSource?.resume() }
        readActive = true
        writeActive = true
        readSource?.cancel()
        writeSource?.cancel()
    }

    private func wait(read: Bool, timeout: Duration) async throws {
        let nanos = Int(timeout.nanoseconds)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                queue.async {
                    if self.closed {
                        c.resume(throwing: HTTPConnectionClosedError())
                        return
                    }
                    if self.cancelRequested {
                        c.resume(throwing: CancellationError())
                        return
                    }
                    self.waitGeneration += 1
                    let generation = self.waitGeneration
                    if read {
                        self.readWaiter = c
                        if !self.readActive { self.readActive = true; self.readSource?.resume() }
                    } else {
                        self.writeWaiter = c
                        if !self.writeActive { self.writeActive = true; self.writeSource?.resume() }
                    }
                    self.queue.asyncAfter(deadline: .now() + .nanoseconds(nanos)) { [weak self] in
                        guard let self else { return }
                        let pending = read ? self.readWaiter : self.writeWaiter
                        // Only fail the wait this timer belongs to.
                        guard let pending, self.waitGeneration == generation else { return }
                        if read { self.readWaiter = nil; self.pauseRead() } else { self.writeWaiter = nil; self.pauseWrite() }
                        pending.resume(throwing: HTTPClientError.timeout)
                    }
                }
            }
        } onCancel: {
            queue.async {
                self.cancelRequested = true
                let w = read ? self.readWaiter : self.writeWaiter
                if read { self.readWaiter = nil; self.pauseRead() } else { self.writeWaiter = nil; self.pauseWrite() }
                w?.resume(throwing: CancellationError())
            }
        }
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


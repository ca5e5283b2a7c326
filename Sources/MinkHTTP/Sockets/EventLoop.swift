import Dispatch

/// A serial queue that owns many connections: their sockets' read/write sources
/// run on it, and a periodic tick checks their timeouts.
///
/// A server has a few of these (one per core by default), never one per connection.
final class EventLoop: @unchecked Sendable {
    // Invariant: `connections`, `readBuffer` and `tickSource` are touched only on
    // `queue` (after `init`), which serialises all access.
    let queue: DispatchQueue
    var connections: [ObjectIdentifier: ServerConnection] = [:]
    /// One read buffer shared by the loop's connections: reads happen one at a time.
    let readBuffer: UnsafeMutableRawBufferPointer
    private var tickSource: DispatchSourceTimer?

    init(index: Int) {
        queue = DispatchQueue(label: "MinkHTTP.loop.\(index)", qos: .userInitiated)
        readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    }

    deinit {
        readBuffer.deallocate()
    }

    /// Starts the periodic timeout check.
    func startTicking(every interval: Duration) {
        queue.async { self.startTickingOnQueue(interval) }
    }

    private func startTickingOnQueue(_ interval: Duration) {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        let nanos = Int(max(interval.nanoseconds, 1_000_000))
        timer.schedule(deadline: .now() + .nanoseconds(nanos), repeating: .nanoseconds(nanos), leeway: .nanoseconds(nanos / 10))
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            let now = monotonicNanos()
            for connection in Array(self.connections.values) {
                connection.tick(now: now)
            }
        }
        timer.resume()
        tickSource = timer
    }

    /// Stops the periodic timeout check.
    func stopTicking() {
        queue.async {
            self.tickSource?.cancel()
            self.tickSource = nil
        }
    }
}

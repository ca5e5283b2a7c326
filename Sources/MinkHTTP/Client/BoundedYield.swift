extension AsyncThrowingStream.Continuation where Failure == any Error, Element: Sendable {
    /// Hands `value` to a stream made with a bounded buffer (`.bufferingOldest(n)`), waiting while
    /// the consumer is `n` elements behind instead of dropping — the reading task then stops
    /// reading the socket, and TCP's flow control holds the sender (for a subscription, the
    /// server's own per-subscriber limit takes over). Returns `false` when the consumer is gone.
    /// - Throws: `CancellationError` when the producing task is cancelled while it waits.
    @discardableResult
    public func send(_ value: Element) async throws -> Bool {
        var pending = value
        // Long enough for the consumer to take several elements (a full buffer refilled one element
        // per wake-up cost ~2.5 timer wake-ups per element), short against the buffer it still has.
        var wait = Duration.milliseconds(5)
        while true {
            switch yield(pending) {
            case .enqueued: return true
            case .terminated: return false
            case .dropped(let back):
                pending = back
                // The consumer is behind: look again soon (from 5 ms up to 20 ms).
                try await Task.sleep(for: wait)
                wait = min(wait * 2, .milliseconds(20))
            @unknown default: return false
            }
        }
    }
}

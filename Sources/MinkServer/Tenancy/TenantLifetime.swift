import MinkHTTP
import Synchronization

/// The life of one tenant in this process, from its first request until it is deleted.
///
/// Event streams of a tenant run inside its lifetime: when an administrator deletes the tenant,
/// ``end()`` cancels them, so no connection stays subscribed to data that no longer exists (and
/// a tenant created again under the same ID starts with new streams only).
final class TenantLifetime: Sendable {
    private let state = Mutex<(ended: Bool, waiters: [Int: AsyncStream<Void>.Continuation], next: Int)>((false, [:], 0))

    /// Ends the lifetime: every stream running in it is cancelled.
    func end() {
        let waiters = state.withLock { s in
            s.ended = true
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.finish() }
    }

    /// Returns when the lifetime ends, or when the calling task is cancelled.
    func waitUntilEnded() async {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self)
        let id = state.withLock { s -> Int? in
            if s.ended { return nil }
            s.next += 1
            s.waiters[s.next] = continuation
            return s.next
        }
        guard let id else { return }
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.waiters.removeValue(forKey: id) } }
        for await _ in stream {}
    }

    /// Runs an event stream's body until it finishes or the lifetime ends, whichever comes first.
    func run(_ body: @escaping @Sendable (any HTTPBodyWriter) async throws -> Void, writer: any HTTPBodyWriter) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await body(writer) }
            group.addTask { await self.waitUntilEnded() }
            defer { group.cancelAll() }
            try await group.next()
        }
    }
}

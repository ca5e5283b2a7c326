import Mink
import Synchronization

/// The queue of one tenant's batcher (``AppendBatcher``, ``ReadModelBatcher``): what waits, and
/// the one drain that takes it.
///
/// The item that finds no drain running starts one; the drain runs on a pooled connection — on an
/// idle one at once, from that caller's thread, so a lone item costs no task hop before it goes
/// out; else in a task that waits for a connection — and goes on with what is queued meanwhile
/// until the queue is empty. The drain outlives the wait of the caller that started it, so it is
/// never that caller's task: a caller that is answered returns at once, and cancelling it does not
/// stop the others' batch.
final class DrainQueue<Item: Sendable>: Sendable {
    private struct State {
        var pending: [Item] = []
        var draining = false
        var closed = false
        /// The last drain that had to wait for a connection in a task of its own (``close()``
        /// waits for it, so nobody's task outlives the storage).
        var drainTask: Task<Void, Never>?
    }

    /// How a drain writes: on the connection's queue, takes and writes batches (with
    /// ``DrainQueue/take(_:)``) and returns whether items may still wait (the connection broke, or
    /// the drain used its share of it); `fail` fails items when no connection could be had (the
    /// server is down, the pool is closed).
    struct Writer: Sendable {
        let run: @Sendable (PostgresConnection) -> Bool
        let fail: @Sendable ([Item], any Error) -> Void
    }

    private let state = Mutex(State())
    private let pool: ConnectionPool

    init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// Queues `item`, starting a drain with `writer` when none runs.
    /// - Returns: `false` when the queue is closed (nothing was queued).
    func enqueue(_ item: Item, writer: @autoclosure () -> Writer) -> Bool {
        let start: Bool? = state.withLock { s in
            if s.closed { return nil }
            s.pending.append(item)
            if s.draining { return false }
            s.draining = true
            return true
        }
        guard let start else { return false }
        if start { startDrain(writer()) }
        return true
    }

    /// Items queued and not yet taken.
    var pendingCount: Int { state.withLock { $0.pending.count } }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// For ``run``: takes the next batch off the queue — `body` removes it from the pending items
    /// and returns it. An empty batch ends the drain, in the same critical section that found
    /// nothing, so an item queued after it starts a new one.
    func take(_ body: (inout [Item]) -> [Item]) -> [Item] {
        state.withLock { s in
            let batch = body(&s.pending)
            if batch.isEmpty { s.draining = false }
            return batch
        }
    }

    /// Closes the queue: returns what still waits (for the caller to fail; a later item is refused)
    /// and the drain waiting for a connection in a task of its own, if any (for the caller to
    /// wait for, so nobody's task outlives the storage). A batch being written finishes.
    func close() -> (left: [Item], drain: Task<Void, Never>?) {
        state.withLock { s in
            s.closed = true
            defer { s.pending = [] }
            return (s.pending, s.drainTask)
        }
    }

    private func startDrain(_ writer: Writer) {
        let started = pool.runIfIdle(writer.run) { result in
            switch result {
            case .success(false): return
            // More may wait: go on with a connection borrowed again, after this one went back.
            case .success(true): self.startDrain(writer)
            case .failure(let error): self.failPending(error, writer)
            }
        }
        if !started {
            let task = Task { await self.drain(writer) }
            state.withLock { $0.drainTask = task }
        }
    }

    /// Runs until nothing waits, borrowing a pooled connection again each time the writer gives
    /// it back.
    private func drain(_ writer: Writer) async {
        while true {
            do {
                if try await !pool.withConnection(mappingErrors: false, writer.run) { return }
            } catch {
                failPending(error, writer)
                return
            }
        }
    }

    /// No connection: what waits now fails with `error`; a later item starts a new drain.
    private func failPending(_ error: any Error, _ writer: Writer) {
        let failed = state.withLock { s in
            s.draining = false
            defer { s.pending = [] }
            return s.pending
        }
        writer.fail(failed, error)
    }
}

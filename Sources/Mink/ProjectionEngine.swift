import Foundation
import Logging
import Metrics
import Synchronization

/// A projection whose read model is one named model of a ``ReadModelStore``; a rebuild drops it.
public protocol ReadModelProjection: Projection {
    /// The read model the projection writes.
    var readModelName: String { get }
}

/// Runs projections (seed: `ProjectionEngine`): inline ones inside every append, async ones in
/// the background from their checkpoints, woken by commits. Start, stop, pause, resume, rebuild,
/// and a status per projection.
///
/// A batch that keeps failing is retried per its ``RetryPolicy``; then the engine applies its
/// events one by one to find the poison event, checkpoints everything before it, and marks the
/// projection `faulted` with the event's position and the error — it never loops on it and never
/// skips it silently. ``resume(_:)`` retries it.
public actor ProjectionEngine {
    /// How a projection runs.
    public enum Mode: String, Sendable, Hashable { case inline, async }

    /// What a projection is doing.
    public enum State: String, Sendable, Hashable { case running, paused, rebuilding, faulted, stopped }

    /// A projection's status.
    public struct Status: Sendable, Hashable {
        /// The projection's name.
        public var name: String
        /// Inline or async.
        public var mode: Mode
        /// What it is doing.
        public var state: State
        /// The position up to which it has applied events.
        public var checkpoint: UInt64
        /// The log's head position.
        public var head: UInt64
        /// `head - checkpoint`.
        public var lag: UInt64 { head > checkpoint ? head - checkpoint : 0 }
        /// The last error, if it is faulted (or a retried error while running).
        public var lastError: String?
        /// The position of the event that faulted the projection.
        public var faultedPosition: UInt64?
        /// While rebuilding into a new copy of the read model: the new copy's checkpoint
        /// (`checkpoint` stays the serving copy's).
        public var rebuildCheckpoint: UInt64?
        /// Whether this process runs the projection. `false` with `state` `running`, `paused` or
        /// `rebuilding`: another process sharing the storage holds its lease, and the status is
        /// what that process last stored (the checkpoint up to one lease interval old).
        public var runningHere: Bool

        /// Creates a status (the engine makes them; a server answering for a tenant whose
        /// engine is not running makes one too).
        public init(
            name: String, mode: Mode, state: State, checkpoint: UInt64, head: UInt64, lastError: String? = nil,
            faultedPosition: UInt64? = nil, rebuildCheckpoint: UInt64? = nil, runningHere: Bool = true
        ) {
            self.runningHere = runningHere
            self.name = name
            self.mode = mode
            self.state = state
            self.checkpoint = checkpoint
            self.head = head
            self.lastError = lastError
            self.faultedPosition = faultedPosition
            self.rebuildCheckpoint = rebuildCheckpoint
        }
    }

    let store: EventStore
    let readModels: (any ReadModelStore)?
    let logger: Logger
    private var runners: [String: AsyncRunner] = [:]
    private var order: [String] = []
    private var inline: [String: any InlineProjection] = [:]
    private var controllers: [String: ReadModelProjectionController] = [:]
    /// Read-model projections whose inline hook this engine put in the store (not those
    /// registered with `installsInlineHook: false`, whose hook the caller installed).
    private var installedHooks: Set<String> = []
    private var started = false
    /// Signalled by every runner when its checkpoint moves or it faults: ``waitUntilCaughtUp(_:to:timeout:)`` waits on it.
    let progress = ProgressSignal()

    /// Where async projections record how long events take to show in their read models
    /// (`mink_projection_delay_seconds`, see ``ProjectionDelay``); `nil`: not recorded.
    let metrics: (any MetricsFactory)?

    /// Creates an engine for a store (seed: `NewProjectionEngine(store)`); `readModels` is needed
    /// to rebuild inline projections and to register inline projections as async ones. With
    /// `metrics` (by default the store's `Options.metrics`), async projections record
    /// `mink_projection_delay_seconds{projection}`: for each event, the time from its append to the
    /// commit of the batch that applied it.
    public init(store: EventStore, readModels: (any ReadModelStore)? = nil, metrics: (any MetricsFactory)? = nil) {
        self.store = store
        self.readModels = readModels
        self.logger = store.options.logger
        self.metrics = metrics ?? store.options.metrics
    }

    /// Registers a projection that runs inside every append's transaction (seed: `RegisterInline`).
    /// A name registered again, of any kind, replaces the earlier projection (see
    /// ``replace(_:)``).
    public func registerInline(_ projection: any InlineProjection) {
        let earlier = replace(projection.name)
        inline[projection.name] = projection
        order.append(projection.name)
        store.registerInline(projection)
        if let earlier { Task { await earlier() } }
    }

    /// Registers a background projection (seed: `RegisterAsync`). A name registered again
    /// replaces the earlier projection (see ``replace(_:)``).
    public func registerAsync(_ projection: any AsyncProjection, options: AsyncOptions = AsyncOptions()) {
        let earlier = replace(projection.name)
        let runner = AsyncRunner(
            projection: projection, options: options, store: store, logger: logger, progress: progress,
            delay: metrics.map { ProjectionDelay(projection: projection.name, factory: $0) }
        )
        runners[projection.name] = runner
        order.append(projection.name)
        startReplacing(earlier) { runner.start() }
    }

    /// A name is registered again: the earlier projection of that name (of any kind) is taken
    /// out — off the store's inline list, out of the status list — and the returned closure
    /// stops it when it runs in the background. The last registration wins: a name is the key of
    /// a projection's checkpoint and of its status, and two projections under one name ran side by
    /// side before (an inline one twice per event; an async one kept running, unstoppable, after
    /// ``stop()``; found by a review of the seed's API, session 23).
    private func replace(_ name: String) -> (@Sendable () async -> Void)? {
        guard order.contains(name) else { return nil }
        order.removeAll { $0 == name }
        if inline.removeValue(forKey: name) != nil { store.unregisterInline(named: name) }
        if let runner = runners.removeValue(forKey: name) { return { await runner.stop() } }
        if let controller = controllers.removeValue(forKey: name) {
            if installedHooks.remove(name) != nil { store.unregisterInline(named: name) }
            return { await controller.stop() }
        }
        return nil
    }

    /// Starts a newly registered background projection when the engine runs — after the earlier
    /// projection of its name has stopped, so the two never run at once.
    private func startReplacing(_ earlier: (@Sendable () async -> Void)?, _ start: @escaping @Sendable () -> Void) {
        guard let earlier else {
            if started { start() }
            return
        }
        Task {
            await earlier()
            if self.started { start() }
        }
    }

    /// Registers a transactional projection to run in the background: each batch's read-model
    /// writes and the checkpoint commit in one transaction of `readModels`, so a crash never
    /// applies an event twice or skips one (exactly-once effect). Runs with one worker.
    public func registerAsync(_ projection: any InlineProjection, readModels: any ReadModelStore, options: AsyncOptions = AsyncOptions()) {
        var opts = options
        opts.workers = 1
        registerAsync(TransactionalAsyncProjection(inner: projection, readModels: readModels), options: opts)
    }

    /// Registers a read-model projection that is rebuilt without downtime: a rebuild fills a new
    /// copy of its read model from position 0 while reads keep using the serving copy, then
    /// switches reads to the new copy in one transaction once it has caught up, and drops the old
    /// copy. Which copy serves is stored with the read model, so a restart during a rebuild
    /// resumes it. Read the model through ``withReadModel(_:_:)`` (or ``readModelName(_:)``),
    /// which resolves the model's name to the serving copy.
    ///
    /// - `.inline`: the projection runs inside every append's transaction (read-your-writes; a
    ///   throw rejects the append); the engine installs its hook into the store unless
    ///   `installsInlineHook` is false (then install ``inlineHook(for:)`` yourself, e.g. once in a
    ///   root store whose tenant stores inherit it).
    /// - `.async`: the projection runs in the background, each batch's writes and checkpoint in
    ///   one transaction of `readModels` (exactly-once effect), in the one process holding the
    ///   projection's lease from `leases`.
    /// - `indexes`: fields indexed on every copy (a failure to index is logged, not thrown).
    /// - `dropGrace`: how long a replaced copy stays readable after a switch (for processes
    ///   sharing the storage, which learn of the switch a little later).
    public func registerReadModel(
        _ projection: any InlineProjection & ReadModelProjection, mode: Mode, readModels: any ReadModelStore,
        options: AsyncOptions = AsyncOptions(), leases: any ProjectionLeaseProvider = LocalProjectionLeaseProvider(),
        indexes: [FieldPath] = [], installsInlineHook: Bool = true, dropGrace: Duration = .zero
    ) {
        let controller = ReadModelProjectionController(
            projection: projection, mode: mode, store: store, readModels: readModels, options: options, leases: leases,
            indexes: indexes, dropGrace: dropGrace, progress: progress,
            // An inline projection applies in the append's transaction: no delay to record.
            delay: mode == .async ? metrics.map { ProjectionDelay(projection: projection.name, factory: $0) } : nil
        )
        let earlier = replace(projection.name)
        controllers[projection.name] = controller
        order.append(projection.name)
        if mode == .inline, installsInlineHook {
            store.registerInline(Self.inlineHook(for: projection))
            installedHooks.insert(projection.name)
        }
        startReplacing(earlier) { controller.start() }
    }

    /// The append-transaction hook that runs an inline projection registered with
    /// ``registerReadModel(_:mode:readModels:options:leases:indexes:installsInlineHook:dropGrace:)``
    /// against the serving copy of its read model (and the copy being rebuilt).
    public static func inlineHook(for projection: any InlineProjection & ReadModelProjection) -> any InlineProjection {
        ReadModelInlineHook(inner: projection)
    }

    /// The physical name of the copy of `model` that reads are served from now (`model` itself
    /// when no registered projection writes it).
    public func readModelName(_ model: String) -> String {
        controllers.values.first { $0.model == model }?.servingModel ?? model
    }

    /// Runs `body` with the physical name of the serving copy of `model`; that copy is not
    /// dropped by a finishing rebuild while `body` runs.
    public func withReadModel<T: Sendable>(_ model: String, _ body: @Sendable (String) async throws -> T) async throws -> T {
        guard let controller = controllers.values.first(where: { $0.model == model }) else { return try await body(model) }
        return try await controller.withReadModel(body)
    }

    /// Starts every async projection from its checkpoint (seed: `Start`).
    public func start() async throws {
        started = true
        for name in order {
            runners[name]?.start()
            controllers[name]?.start()
        }
    }

    /// Stops every async projection after its current batch (seed: `Stop`).
    public func stop() async {
        started = false
        for name in order {
            await runners[name]?.stop()
            await controllers[name]?.stop()
        }
    }

    /// Pauses an async projection after its current batch. A read-model projection's pause is
    /// recorded in its storage: it holds across restarts and reaches the process running the
    /// projection when several share the storage (see `docs/projections.md`).
    /// - Throws: `.projectionNotFound`; storage errors.
    public func pause(_ name: String) async throws {
        if let c = controllers[name] { return try await c.pause() }
        guard let r = runners[name] else { throw inline[name] == nil ? MinkError.projectionNotFound(name) : Self.inlineControl(name) }
        r.pause()
    }

    /// Resumes a paused or faulted async projection (a faulted one retries its poison event),
    /// recorded in storage as ``pause(_:)`` is.
    /// - Throws: `.projectionNotFound`; storage errors.
    public func resume(_ name: String) async throws {
        if let c = controllers[name] { return try await c.resume() }
        guard let r = runners[name] else { throw inline[name] == nil ? MinkError.projectionNotFound(name) : Self.inlineControl(name) }
        r.resume()
    }

    /// Rebuilds a projection from position 0 (seed: `Rebuild`): an async projection is reset
    /// (`reset()`, or its read model dropped) and replays the whole log in the background, `rebuilding`
    /// until it has caught up; an inline projection's read model is dropped and replayed now,
    /// while the store's appends and stream deletions wait (in this process; see
    /// ``EventStore``'s inline rebuild gate).
    /// - Throws: `.projectionNotFound`; for inline projections, `.adapterNotSupported` without a
    ///   read-model store or for a projection that is not a ``ReadModelProjection`` (nothing to
    ///   drop: a replay would apply every event a second time). A replay that fails midway (a
    ///   storage error) leaves the inline projection's model holding part of the log: rebuild
    ///   again.
    public func rebuild(_ name: String) async throws {
        if let c = controllers[name] { return try await c.rebuild() }
        if let r = runners[name] {
            try await r.rebuild(restart: started)
            return
        }
        guard let p = inline[name] else { throw MinkError.projectionNotFound(name) }
        guard let readModels else {
            throw MinkError(.adapterNotSupported, "rebuilding inline projection \(name) needs the engine's read-model store")
        }
        // Its state must be dropped before the replay, or every event would be applied twice.
        guard let rm = p as? any ReadModelProjection else {
            throw MinkError(
                .adapterNotSupported,
                "rebuilding inline projection \(name) needs to know what to drop: make it a ReadModelProjection (its readModelName is dropped and refilled)"
            )
        }
        // The store's writes wait meanwhile: one committed during the replay would be applied by
        // both the projection's hook and the replay.
        try await store.inlineGate.closed {
            try await readModels.dropModel(rm.readModelName)
            var position: UInt64 = 0
            while true {
                let page = try await store.readAll(after: position, filter: EventFilter(eventTypes: p.handledEvents), limit: 500)
                guard let last = page.last else { break }
                try await readModels.transaction { tx in for e in page { try p.apply(e, in: tx) } }
                position = last.globalPosition
            }
        }
    }

    /// The status of one projection.
    /// - Throws: `.projectionNotFound`.
    public func status(_ name: String) async throws -> Status {
        if let c = controllers[name] {
            await c.waitForFirstRead()
            return c.status(head: try await store.headPosition())
        }
        let head = try await store.headPosition()
        if let r = runners[name] { return r.status(head: head) }
        guard inline[name] != nil else { throw MinkError.projectionNotFound(name) }
        return Status(name: name, mode: .inline, state: .running, checkpoint: head, head: head)
    }

    /// The status of every projection, in registration order.
    public func statuses() async throws -> [Status] {
        var out: [Status] = []
        for name in order { out.append(try await status(name)) }
        return out
    }

    /// Waits until an async projection's checkpoint reaches `position` (default: the current head),
    /// or it faults, or `timeout` passes. Returns its status then. Handy in tests.
    public func waitUntilCaughtUp(_ name: String, to position: UInt64? = nil, timeout: Duration = .seconds(30)) async throws -> Status {
        let target: UInt64
        if let position { target = position } else { target = try await store.headPosition() }
        let deadline = ContinuousClock.now + timeout
        while true {
            // Noted before the status is read: a move signalled after the read wakes the wait.
            let generation = progress.generation
            let s = try await status(name)
            if s.checkpoint >= target || s.state == .faulted || ContinuousClock.now >= deadline { return s }
            try Task.checkCancellation()
            await progress.wait(after: generation, until: deadline)
        }
    }

    private static func inlineControl(_ name: String) -> MinkError {
        MinkError(.adapterNotSupported, "projection \(name) is inline: it runs inside appends and cannot be paused")
    }
}

/// Runs one async projection. Its mutable state sits behind a mutex; the loop runs in one task.
///
/// Its lifecycle is one enum (``Lifecycle``, in `AsyncRunner+Lifecycle.swift`); a transition
/// the current state does not allow is a bug: an `assertionFailure` in debug builds and an
/// `error` log line in release builds, never a silent return.
final class AsyncRunner: Sendable {
    struct Shared {
        var lifecycle = Lifecycle.stopped(pausePending: false, rebuilding: false)
        var checkpoint: UInt64 = 0
        /// The last error retried while running (storage trouble), or the fault of a runner
        /// stopped while faulted; a fault holding the runner is in ``lifecycle``.
        var lastError: String?
    }

    let projection: any AsyncProjection
    let options: AsyncOptions
    let store: EventStore
    let logger: Logger
    /// Called each time the runner has caught up with the log; returning false ends the runner.
    let onCaughtUp: (@Sendable (UInt64) async -> Bool)?
    let shared = Mutex(Shared())
    /// Signalled when the checkpoint moves or the runner faults (``ProjectionEngine/waitUntilCaughtUp(_:to:timeout:)``).
    let progress: ProgressSignal
    /// Records how long the events this runner applies took to show (``ProjectionDelay``), while
    /// `recordsDelay` and not replaying the log for a rebuild.
    let delay: ProjectionDelay?
    /// Off while the runner fills a rebuild's new copy (the events show in the serving copy
    /// already); on once that copy serves.
    private let recordsDelay: Atomic<Bool>

    init(
        projection: any AsyncProjection, options: AsyncOptions, store: EventStore, logger: Logger,
        progress: ProgressSignal = ProgressSignal(), delay: ProjectionDelay? = nil, recordsDelay: Bool = true,
        onCaughtUp: (@Sendable (UInt64) async -> Bool)? = nil
    ) {
        self.progress = progress
        self.delay = delay
        self.recordsDelay = Atomic(recordsDelay)
        self.projection = projection
        self.options = options
        self.store = store
        self.logger = logger
        self.onCaughtUp = onCaughtUp
    }

    /// The copy this runner fills serves now: its batches record their delay from here on.
    func startRecordingDelay() {
        recordsDelay.store(true, ordering: .relaxed)
    }

    /// An event the current state does not allow: a bug in this runner. Loud in debug builds;
    /// logged (and survived) in release builds.
    private func illegalTransition(_ event: String, in lifecycle: Lifecycle) {
        let message = "illegal projection runner transition: \(event) in state \(lifecycle)"
        assertionFailure(message)
        logger.error("\(message)", metadata: ["mink.projection": "\(projection.name)"])
    }

    /// A new loop task; it leaves the lifecycle to `stopped` if it returns on its own.
    private func makeLoop() -> Task<Void, Never> {
        Task { [self] in
            await self.loop()
            let illegal = shared.withLock { s -> Lifecycle? in s.lifecycle.loopEnded() ? nil : s.lifecycle }
            if let illegal { illegalTransition("loop ended", in: illegal) }
        }
    }

    /// Starts the loop (held at once when a pause is pending). Already started: nothing
    /// changes. While a stop is under way, the new loop starts when the old one has ended.
    func start() {
        shared.withLock { s in
            switch s.lifecycle {
            case .stopped(let pausePending, let rebuilding):
                s.lifecycle = .started(makeLoop(), pausePending: pausePending, rebuilding: rebuilding)
            case .stopping(let task, let pausePending, _):
                s.lifecycle = .stopping(task, pausePending: pausePending, restart: true)
            case .running, .paused, .faulted:
                break
            }
        }
    }

    /// Stops the loop after its current batch (a parked loop is woken to see the cancellation)
    /// and waits until it has ended. A pending pause stays pending.
    func stop() async {
        let (task, wake) = shared.withLock { s -> (Task<Void, Never>?, CheckedContinuation<Void, Never>?) in
            switch s.lifecycle {
            case .stopped:
                return (nil, nil)
            case .running(let task, _):
                s.lifecycle = .stopping(task, pausePending: false, restart: false)
                return (task, nil)
            case .paused(let task, _, let wake):
                s.lifecycle = .stopping(task, pausePending: true, restart: false)
                return (task, wake)
            case .faulted(let task, let fault, _, let pausePending, let wake):
                // Stopped, the fault no longer holds anything (a start retries the event); its
                // message stays the last error.
                s.lastError = fault.message
                s.lifecycle = .stopping(task, pausePending: pausePending, restart: false)
                return (task, wake)
            case .stopping(let task, let pausePending, _):
                // A stop asked after a start that was asked during the first stop wins.
                s.lifecycle = .stopping(task, pausePending: pausePending, restart: false)
                return (task, nil)
            }
        }
        guard let task else { return }
        // Cancel before waking, so that the woken loop sees the cancellation and ends.
        task.cancel()
        wake?.resume()
        await task.value
        shared.withLock { s in
            // The first stop to see the loop end moves on (a second stop of the same loop finds
            // the state moved already).
            guard case .stopping(let t, let pausePending, let restart) = s.lifecycle, t == task else { return }
            s.lifecycle = restart ? .started(makeLoop(), pausePending: pausePending, rebuilding: false) : .stopped(pausePending: pausePending, rebuilding: false)
        }
    }

    /// Holds the loop after its current batch (kept while stopped or faulted).
    func pause() {
        shared.withLock { s in
            switch s.lifecycle {
            case .stopped(_, let rebuilding):
                s.lifecycle = .stopped(pausePending: true, rebuilding: rebuilding)
            case .running(let task, let rebuilding):
                s.lifecycle = .paused(task, rebuilding: rebuilding, wake: nil)
            case .paused:
                break
            case .faulted(let task, let fault, let rebuilding, _, let wake):
                s.lifecycle = .faulted(task, fault, rebuilding: rebuilding, pausePending: true, wake: wake)
            case .stopping(let task, _, let restart):
                s.lifecycle = .stopping(task, pausePending: true, restart: restart)
            }
        }
    }

    /// Releases a paused or faulted loop (a faulted one retries its poison event) at once:
    /// the parked loop is woken, not polled. Clears a pending pause.
    func resume() {
        let wake = shared.withLock { s -> CheckedContinuation<Void, Never>? in
            switch s.lifecycle {
            case .stopped(_, let rebuilding):
                s.lifecycle = .stopped(pausePending: false, rebuilding: rebuilding)
                return nil
            case .running:
                return nil
            case .paused(let task, let rebuilding, let wake), .faulted(let task, _, let rebuilding, _, let wake):
                s.lifecycle = .running(task, rebuilding: rebuilding)
                s.lastError = nil
                return wake
            case .stopping(let task, _, let restart):
                s.lifecycle = .stopping(task, pausePending: false, restart: restart)
                return nil
            }
        }
        wake?.resume()
    }

    /// Stops the loop, resets the projection and its checkpoint, and (when `restart`) starts
    /// it again to replay the log, `rebuilding` until it has caught up. A pending pause is
    /// dropped.
    func rebuild(restart: Bool) async throws {
        while true {
            await stop()
            try await projection.reset()
            try await projection.setCheckpoint(0)
            let reset = shared.withLock { s -> Bool in
                guard case .stopped = s.lifecycle else { return false }
                s.lifecycle = .stopped(pausePending: false, rebuilding: true)
                s.checkpoint = 0
                s.lastError = nil
                return true
            }
            if reset { break }
            // Started during the reset (the engine's `start` ran meanwhile): that loop may have
            // read the old checkpoint, so stop it and reset again.
        }
        if restart { start() }
    }

    func status(head: UInt64) -> ProjectionEngine.Status {
        shared.withLock { s in
            let fault = s.lifecycle.fault
            return ProjectionEngine.Status(
                name: projection.name, mode: .async, state: s.lifecycle.state, checkpoint: s.checkpoint, head: head,
                lastError: fault?.message ?? s.lastError, faultedPosition: fault?.position,
                runningHere: s.lifecycle.state != .stopped
            )
        }
    }

    /// The lifecycle now (tests check the transitions through it).
    var lifecycle: Lifecycle { shared.withLock { $0.lifecycle } }

    private var isHeld: Bool { shared.withLock { $0.lifecycle.isHeld } }

    /// Whether the loop is parked waiting for ``resume()`` (tests check that a held runner
    /// waits rather than polls).
    var isParked: Bool { shared.withLock { $0.lifecycle.isParked } }

    /// Waits while the runner is paused or faulted, until ``resume()`` or ``stop()`` wakes it
    /// or the task is cancelled; returns at once when it is not held.
    private func waitWhileHeld() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let (parked, illegal) = shared.withLock { s -> (Bool, Lifecycle?) in
                    // Checked under the lock: a cancellation whose handler ran before the
                    // continuation was stored has set the flag first, so it is seen here.
                    if Task.isCancelled { return (false, nil) }
                    guard let parked = s.lifecycle.park(c) else { return (false, s.lifecycle) }
                    return (parked, nil)
                }
                if let illegal { illegalTransition("park", in: illegal) }
                if !parked { c.resume() }
            }
        } onCancel: {
            shared.withLock { s in s.lifecycle.unpark() }?.resume()
        }
    }

    /// The checkpoint has moved: the runner's own copy follows, and waiters look again.
    private func moveCheckpoint(to position: UInt64) {
        shared.withLock { $0.checkpoint = position }
        progress.signal()
    }

    /// The loop has caught up with the log: a rebuild is over.
    private func caughtUp() {
        let illegal = shared.withLock { s -> Lifecycle? in s.lifecycle.caughtUp() ? nil : s.lifecycle }
        if let illegal { illegalTransition("caught up", in: illegal) }
    }

    private func loop() async {
        var loaded: UInt64?
        while loaded == nil, !Task.isCancelled {
            do {
                loaded = try await projection.checkpoint()
            } catch {
                shared.withLock { $0.lastError = "\(error)" }
                try? await Task.sleep(for: options.retryPolicy.backoff(afterAttempt: 2))
            }
        }
        guard var checkpoint = loaded else { return }
        moveCheckpoint(to: checkpoint)
        let filter = EventFilter(eventTypes: projection.handledEvents)
        var batch = BatchSize(options)
        // The next page, read while this one is applied (catching up: a full page means more is
        // waiting). Used only if the batch moved the checkpoint exactly to its `after`; otherwise
        // (a fault, a retry, an error) it is dropped and the page is read again.
        var ahead: ReadAhead?
        defer { ahead?.task.cancel() }
        while !Task.isCancelled {
            if isHeld {
                ahead?.task.cancel()
                ahead = nil
                await waitWhileHeld()
                continue
            }
            do {
                let head: UInt64
                let page: [Event]
                let limit: Int
                if let a = ahead, a.after == checkpoint, a.limit == batch.limit {
                    ahead = nil
                    limit = a.limit
                    (head, page) = try await a.task.value
                } else {
                    ahead?.task.cancel()
                    ahead = nil
                    limit = batch.limit
                    (head, page) = try await nextPage(after: checkpoint, filter: filter, limit: limit)
                }
                batch.observe(page)
                // A short page means every event up to `head` (read first) has been seen.
                let next = page.count < limit ? max(page.last?.globalPosition ?? 0, head, checkpoint) : page.last!.globalPosition
                if options.readAhead, page.count == limit, let last = page.last {
                    ahead = ReadAhead(store: store, after: last.globalPosition, filter: filter, limit: batch.limit)
                }
                if !page.isEmpty {
                    guard try await applyBatch(page, through: next, checkpoint: &checkpoint) else { continue }
                }
                if next > checkpoint {
                    try await projection.setCheckpoint(next)
                    checkpoint = next
                    moveCheckpoint(to: next)
                }
                if page.count < limit {
                    caughtUp()
                    if let onCaughtUp, !(await onCaughtUp(checkpoint)) { return }
                    _ = await store.hub.waitForEvents(after: checkpoint, timeout: options.batchTimeout)
                }
            } catch {
                if Task.isCancelled { return }
                if Self.isLeaseLost(error) {
                    // Another process took the projection over; what this one was writing was
                    // rolled back. The lease's owner stops the runner.
                    logger.warning("projection lease taken over: runner stops", metadata: ["mink.projection": "\(projection.name)"])
                    return
                }
                // Storage trouble while reading or checkpointing: note it, back off, try again.
                shared.withLock { $0.lastError = "\(error)" }
                logger.warning("projection read failed", metadata: ["mink.projection": "\(projection.name)", "error": "\(error)"])
                try? await Task.sleep(for: options.retryPolicy.backoff(afterAttempt: 1))
            }
        }
    }

    /// The head position (read first) and up to `limit` events after `checkpoint`. From the
    /// tenant's subscription hub when `checkpoint` is inside its ring — a live runner, woken by
    /// the hub that has just read the new events: no storage read at all (it was two per batch:
    /// the head, then the page; on PostgreSQL with three live projections the head query was
    /// the server's largest cost) — otherwise the hub's head and a page from storage. The hub's
    /// head is a position it has read, so every event up to it is committed and visible to the
    /// page read after it; when the page is short, every event up to `head` has been seen.
    private func nextPage(after checkpoint: UInt64, filter: EventFilter, limit: Int) async throws -> (UInt64, [Event]) {
        switch try await store.hub.read(after: checkpoint, filter: filter, limit: limit) {
        case .events(let events, let cursor):
            // `cursor` is the last position scanned: the ring's end when fewer than `limit`
            // events matched, else the last of them.
            return (cursor, events)
        case .upToDate(let head):
            return (head, [])
        case .fromStorage(let head, _):
            return (head, try await store.readAll(after: checkpoint, filter: filter, limit: limit))
        }
    }

    /// Applies a batch with retries; on persistent failure finds the poison event, checkpoints
    /// what precedes it and faults. Returns whether the whole batch was applied.
    ///
    /// A ``CheckpointingAsyncProjection`` (run with one worker) moves its checkpoint to `next`
    /// in the batch's own transaction — one commit per batch — and `checkpoint` follows.
    private func applyBatch(_ page: [Event], through next: UInt64, checkpoint: inout UInt64) async throws -> Bool {
        let checkpointing = options.workers <= 1 ? projection as? any CheckpointingAsyncProjection : nil
        var failure: (any Error)?
        do {
            try await options.retryPolicy.run(shouldRetry: { !Self.isLeaseLost($0) }, onRetry: { [projection, logger] error, attempt in
                logger.warning("projection batch failed, retrying", metadata: [
                    "mink.projection": "\(projection.name)", "attempt": "\(attempt)", "error": "\(error)",
                ])
            }) {
                if let checkpointing { try await checkpointing.apply(page, through: next) } else { try await self.apply(page) }
            }
            recordDelay(page)
            if checkpointing != nil {
                checkpoint = next
                moveCheckpoint(to: next)
            }
            return true
        } catch {
            if Task.isCancelled || Self.isLeaseLost(error) { throw error }
            failure = error
        }
        var rest = page[...]
        // The error names its event (a declared projection's does): everything before it goes in
        // one batch, so finding the poison event costs one commit rather than one per event.
        if let checkpointing, let position = (failure as? MinkError)?.position,
            let k = page.firstIndex(where: { $0.globalPosition == position }), k > 0
        {
            let prefix = Array(page[..<k])
            do {
                try await options.retryPolicy.run(shouldRetry: { !Self.isLeaseLost($0) }) {
                    try await checkpointing.apply(prefix, through: position - 1)
                }
                recordDelay(prefix)
                checkpoint = position - 1
                moveCheckpoint(to: position - 1)
                rest = page[k...]
            } catch {
                if Task.isCancelled || Self.isLeaseLost(error) { throw error }
            }
        }
        for event in rest {
            do {
                try await options.retryPolicy.run(shouldRetry: { !Self.isLeaseLost($0) }) {
                    // With its checkpoint, so that a retry after a commit whose answer was lost
                    // applies nothing twice.
                    if let checkpointing {
                        try await checkpointing.apply([event], through: event.globalPosition)
                    } else {
                        try await projection.apply([event])
                    }
                }
                try await projection.setCheckpoint(event.globalPosition)
                recordDelay(CollectionOfOne(event))
                checkpoint = event.globalPosition
                moveCheckpoint(to: event.globalPosition)
            } catch {
                if Task.isCancelled || Self.isLeaseLost(error) { throw error }
                fault(error, at: event.globalPosition)
                return false
            }
        }
        return true
    }

    /// Records the delay of events just committed (``ProjectionDelay``): only while the runner
    /// applies live (a rebuild's replay, or a batch finished after a pause, does not), on every
    /// path a batch takes — whole, the part before a poison event, event by event.
    private func recordDelay(_ events: some Collection<Event>) {
        guard let delay, recordsDelay.load(ordering: .relaxed), shared.withLock({ $0.lifecycle.appliesLive }) else { return }
        delay.record(events)
    }

    private func apply(_ page: [Event]) async throws {
        if options.workers <= 1 {
            try await projection.apply(page)
            return
        }
        var partitions = [[Event]](repeating: [], count: options.workers)
        for e in page { partitions[Int(UInt(bitPattern: stableHash(e.streamID)) % UInt(options.workers))].append(e) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for part in partitions where !part.isEmpty {
                group.addTask { try await self.projection.apply(part) }
            }
            try await group.waitForAll()
        }
    }

    /// Whether an error says the projection's lease was taken over (fencing): never retried, never
    /// a fault.
    static func isLeaseLost(_ error: any Error) -> Bool { (error as? MinkError)?.code == .leaseLost }

    private func fault(_ error: any Error, at position: UInt64?) {
        let message = (error as? MinkError)?.message ?? "\(error)"
        let illegal = shared.withLock { s -> Lifecycle? in
            s.lifecycle.failed(Fault(position: position, message: message)) ? nil : s.lifecycle
        }
        if let illegal { illegalTransition("fault", in: illegal) }
        progress.signal()
        logger.error("projection faulted", metadata: [
            "mink.projection": "\(projection.name)", "mink.position": "\(position.map(String.init) ?? "-")", "error": "\(message)",
        ])
    }
}

/// A page read in the background: the head position (read first), then up to `limit` events
/// after `after`.
struct ReadAhead {
    let after: UInt64
    let limit: Int
    let task: Task<(UInt64, [Event]), any Error>

    init(store: EventStore, after: UInt64, filter: EventFilter, limit: Int) {
        self.after = after
        self.limit = limit
        task = Task {
            let head = try await store.headPosition()
            return (head, try await store.readAll(after: after, filter: filter, limit: limit))
        }
    }
}

/// An async projection that stores its checkpoint in the transaction that applies a batch, so a
/// batch costs one commit rather than two.
protocol CheckpointingAsyncProjection: AsyncProjection {
    /// Applies `events` and moves the checkpoint to `position` (at or past the last event: the
    /// page may end with events the projection does not handle) in one transaction.
    func apply(_ events: [Event], through position: UInt64) async throws
}

/// The runner's page size: `batchSize` while the runner keeps up (a page is what is waiting, so
/// a live event goes out alone), doubling while pages come back full (catching up, a rebuild) up
/// to `maxBatchSize` events and about `maxBatchBytes` of event data, back to `batchSize` at the
/// first short page.
struct BatchSize {
    let minimum: Int
    let maximum: Int
    let maxBytes: Int
    private(set) var limit: Int

    init(_ options: AsyncOptions) {
        minimum = options.batchSize
        maximum = max(options.batchSize, options.maxBatchSize)
        maxBytes = options.maxBatchBytes
        limit = minimum
    }

    mutating func observe(_ page: [Event]) {
        guard page.count >= limit else {
            limit = minimum
            return
        }
        let bytes = page.reduce(0) { $0 + $1.data.count + 64 }
        let fitting = maxBytes / max(1, bytes / page.count)
        limit = max(minimum, min(limit * 2, maximum, fitting))
    }
}

/// A hash that is the same in every process (Swift's `Hasher` is seeded per process).
func stableHash(_ s: String) -> Int {
    Int(truncatingIfNeeded: FNV1a.hash64(s))
}

/// An inline projection run in the background, each batch in one read-model transaction together
/// with its checkpoint.
struct TransactionalAsyncProjection: CheckpointingAsyncProjection, ReadModelProjection {
    let inner: any InlineProjection
    let readModels: any ReadModelStore

    var name: String { inner.name }
    var handledEvents: [String] { inner.handledEvents }
    var readModelName: String { (inner as? any ReadModelProjection)?.readModelName ?? "" }

    /// One part of a batch split over several workers: the parts commit in any order, so the
    /// stored checkpoint says nothing about this part's events and is not consulted.
    func apply(_ events: [Event]) async throws {
        guard let last = events.last else { return }
        try await readModels.transaction(.relaxed) { [inner, name] tx in
            try inner.applyAll(events, in: tx)
            try tx.setCheckpoint(name, to: last.globalPosition)
        }
    }

    /// Applies the events after the stored checkpoint and moves it to `position`, in one
    /// transaction. Why read the checkpoint inside the transaction: a batch whose `COMMIT` was
    /// sent before a timeout may have committed although its caller got an error, and the runner
    /// then retries the same batch; the retry finds the checkpoint moved and applies nothing
    /// twice (the same rule as ``ReadModelCopyProjection``).
    func apply(_ events: [Event], through position: UInt64) async throws {
        try await readModels.transaction(.relaxed) { [inner, name] tx in
            let done = try tx.checkpoint(name)
            let pending = events.drop { $0.globalPosition <= done }
            if !pending.isEmpty { try inner.applyAll(Array(pending), in: tx) }
            if position > done { try tx.setCheckpoint(name, to: position) }
        }
    }

    func checkpoint() async throws -> UInt64 { try await readModels.transaction(.relaxed) { [name] tx in try tx.checkpoint(name) } }
    func setCheckpoint(_ position: UInt64) async throws {
        try await readModels.transaction(.relaxed) { [name] tx in try tx.setCheckpoint(name, to: position) }
    }
    func reset() async throws {
        if !readModelName.isEmpty { try await readModels.dropModel(readModelName) }
    }
}

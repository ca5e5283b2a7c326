import Foundation
import Logging
import Synchronization

/// Runs one read-model projection of one tenant with rebuilds into a new copy of its read model
/// (no downtime): the serving copy keeps answering reads while the new copy is filled from
/// position 0; when the new copy has caught up with the log and with the serving copy, one
/// transaction makes it the serving copy, reads switch to it, and the old copy is dropped once
/// the reads that were using it have finished.
///
/// Inline mode: the append hook (``ReadModelInlineHook``) writes the serving copy inside every
/// append; the new copy is filled by a background runner. Async mode: a runner per copy, each
/// with its writes and checkpoint in one transaction. Runners run only while this process holds
/// the projection's lease.
final class ReadModelProjectionController: Sendable {
    let projection: any InlineProjection & ReadModelProjection
    let mode: ProjectionEngine.Mode
    let store: EventStore
    let readModels: any ReadModelStore
    let options: AsyncOptions
    let leases: any ProjectionLeaseProvider
    let logger: Logger
    /// How long a replaced copy stays readable after the switch before it is dropped (other
    /// processes sharing the storage learn of the switch within their lease retry interval).
    let dropGrace: Duration
    /// How often a process without the lease asks for it again (and refreshes its view).
    let leaseRetryInterval: Duration
    /// Fields indexed on every copy of the read model.
    let indexes: [FieldPath]

    private struct Shared {
        var generations = ReadModelGenerations()
        var lifecycle = Lifecycle.stopped(Inactive(paused: false, storedCheckpoint: 0))
        var readers: [UInt32: Int] = [:]
        var drainWaiters: [UInt32: [CheckedContinuation<Void, Never>]] = [:]
        var lastError: String?
        /// The sequence of the last pause or resume applied here (``Control``).
        var controlSeen: UInt64 = 0
    }

    /// A pause or resume, asked through any process sharing the storage, kept in storage (the
    /// checkpoint `<projection>#control`, packed as `sequence << 1 | paused`) so that the process
    /// holding the lease applies it — a request may reach any process behind a load balancer —
    /// and the next holder starts paused after a failover. Each request increments `sequence`:
    /// a resume of a faulted projection (already unpaused) is seen as a new request too.
    struct Control: Sendable, Equatable {
        var sequence: UInt64
        var paused: Bool

        init(sequence: UInt64, paused: Bool) {
            self.sequence = sequence
            self.paused = paused
        }

        init(packed: UInt64) { self.init(sequence: packed >> 1, paused: packed & 1 == 1) }

        var packed: UInt64 { sequence << 1 | (paused ? 1 : 0) }

        static func key(_ projection: String) -> String { "\(projection)#control" }

        static func read(_ projection: String, in tx: any ReadModelTransaction) throws -> Control {
            Control(packed: try tx.checkpoint(key(projection)))
        }
    }

    private let shared = Mutex(Shared())
    /// Signalled when what ``status(head:)`` shows may have moved (shared with the runners).
    let progress: ProgressSignal
    /// Where the serving copy's runner records how long events took to show (a rebuild's
    /// builder starts recording when its copy serves: until then its events show in the serving
    /// copy already).
    let delay: ProjectionDelay?

    init(
        projection: any InlineProjection & ReadModelProjection, mode: ProjectionEngine.Mode, store: EventStore,
        readModels: any ReadModelStore, options: AsyncOptions, leases: any ProjectionLeaseProvider,
        indexes: [FieldPath] = [], dropGrace: Duration = .zero, leaseRetryInterval: Duration = .seconds(2),
        progress: ProgressSignal = ProgressSignal(), delay: ProjectionDelay? = nil
    ) {
        self.progress = progress
        self.delay = delay
        self.indexes = indexes
        self.projection = projection
        self.mode = mode
        self.store = store
        self.readModels = readModels
        var opts = options
        opts.workers = 1
        self.options = opts
        self.leases = leases
        self.logger = store.options.logger
        self.dropGrace = dropGrace
        self.leaseRetryInterval = leaseRetryInterval
    }

    var name: String { projection.name }
    var model: String { projection.readModelName }
    private var tenant: String { store.tenantID ?? TenantID.default }

    /// The lifecycle now (tests check the transitions through it).
    var lifecycle: Lifecycle { shared.withLock { $0.lifecycle } }

    /// An event the current state does not allow: a bug in this controller. Loud in debug
    /// builds; logged (and survived) in release builds.
    private func illegalTransition(_ event: String, in lifecycle: Lifecycle) {
        let message = "illegal projection controller transition: \(event) in state \(lifecycle)"
        assertionFailure(message)
        logger.error("\(message)", metadata: ["mink.projection": "\(name)"])
    }

    // MARK: Lifecycle

    /// A new lease loop; when it ends, the state is `stopping` (only ``stop()`` cancels it).
    private func makeLeaseLoop() -> Task<Void, Never> {
        Task { [self] in await self.leaseLoop() }
    }

    /// Starts asking for the lease; runners start once it is held. Already started: nothing
    /// changes. While a stop is under way, the lease loop starts again once the old one ended.
    func start() {
        shared.withLock { s in
            switch s.lifecycle {
            case .stopped(let i): s.lifecycle = .standby(makeLeaseLoop(), i)
            case .stopping(let t, let i, _): s.lifecycle = .stopping(t, i, restart: true)
            case .standby, .activating, .active: break
            }
        }
    }

    /// Stops the runners after their current batch, then gives the lease up (in this order, so
    /// that no batch of this process commits once another may hold the lease).
    func stop() async {
        let stopped = shared.withLock { s -> (Task<Void, Never>, [AsyncRunner])? in
            switch s.lifecycle {
            case .stopped:
                return nil
            case .standby(let t, let i), .activating(let t, _, let i), .stopping(let t, let i, _):
                // A stop asked after a start that was asked during the first stop wins.
                s.lifecycle = .stopping(t, i, restart: false)
                return (t, [])
            case .active(let t, let a):
                s.lifecycle = .stopping(t, Inactive(paused: a.paused, storedCheckpoint: Self.checkpoint(of: a.serving)), restart: false)
                return (t, a.runners)
            }
        }
        guard case let (task, runners)? = stopped else { return }
        for r in runners { await r.stop() }
        task.cancel()
        await task.value
        shared.withLock { s in
            // The first stop to see the loop end moves on.
            guard case .stopping(let t, let i, let restart) = s.lifecycle, t == task else { return }
            s.lifecycle = restart ? .standby(makeLeaseLoop(), i) : .stopped(i)
        }
    }

    private static func checkpoint(of runner: AsyncRunner?) -> UInt64 {
        runner?.shared.withLock { $0.checkpoint } ?? 0
    }

    private func leaseLoop() async {
        while !Task.isCancelled {
            var lease: (any ProjectionLease)?
            var answered = true
            do {
                lease = try await leases.tryAcquire(tenant: tenant, projection: name)
            } catch {
                answered = false
                shared.withLock { $0.lifecycle.leaseUnknown() }
                if !Task.isCancelled { note(error) }
            }
            if let lease {
                do {
                    if try await activate(lease) {
                        // Storage one process owns (SQLite, memory): nobody else records anything.
                        if leases is LocalProjectionLeaseProvider { await lease.lost() } else { await holdWhileFollowingStorage(lease) }
                    }
                } catch {
                    if !Task.isCancelled { note(error) }
                }
                await deactivate()
                await lease.release()
            } else {
                // Not granted without an error: another process holds it.
                await refreshFromStorage(heldElsewhere: answered)
            }
            try? await Task.sleep(for: leaseRetryInterval)
        }
    }

    /// Returns when `lease` is lost (or the loop is cancelled); meanwhile, every
    /// `leaseRetryInterval`, applies what other processes asked through storage
    /// (``followStorage()``).
    private func holdWhileFollowingStorage(_ lease: any ProjectionLease) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await lease.lost() }
            group.addTask { [self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: leaseRetryInterval)
                    if Task.isCancelled { break }
                    await followStorage()
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// While active: a pause or resume recorded by another process is applied to the runners,
    /// and a rebuild started by another process gets its builder here.
    private func followStorage() async {
        do {
            // Never creates the tenant's storage (a tenant deleted meanwhile stays deleted).
            guard let (g, control) = try await readModels.readTransaction(ifMissing: nil, { [name] tx -> (ReadModelGenerations, Control)? in
                (try ReadModelGenerations.read(name, in: tx), try Control.read(name, in: tx))
            }) else { return }
            apply(control)
            let building = shared.withLock { s -> UInt32? in
                guard case .active(_, let a) = s.lifecycle, a.builder == nil, g.building != 0, g.serving == s.generations.serving else {
                    return nil
                }
                s.generations = g
                return g.building
            }
            if let building {
                logger.notice("projection rebuild asked through another process: building here", metadata: [
                    "mink.projection": "\(name)", "mink.copy": "\(building)",
                ])
                try await startBuilder(building)
            }
        } catch {
            if !Task.isCancelled { note(error) }
        }
    }

    /// Applies a pause or resume not applied here yet (its sequence is new).
    ///
    /// Only newer sequences apply: a poll's read that began before a local request recorded the
    /// next one cannot undo it. The runners are told under the lock (as ``startBuilder(_:)``
    /// starts them), so that two applications cannot reach them in the other order. Inline mode
    /// has nothing to pause (a control row left by an earlier async configuration is ignored).
    private func apply(_ control: Control) {
        guard mode == .async else { return }
        shared.withLock { s in
            guard control.sequence > s.controlSeen else { return }
            s.controlSeen = control.sequence
            for r in s.lifecycle.setPaused(control.paused) {
                if control.paused { r.pause() } else { r.resume() }
            }
        }
    }

    private func note(_ error: any Error) {
        let message = (error as? MinkError)?.message ?? "\(error)"
        shared.withLock { $0.lastError = message }
        logger.warning("projection", metadata: ["mink.projection": "\(name)", "error": "\(message)"])
    }

    private func loadGenerations() async throws -> ReadModelGenerations {
        try await readModels.transaction { [name] tx in try ReadModelGenerations.read(name, in: tx) }
    }

    /// Prepares the copies and starts the runners under `lease`. Returns false when the
    /// controller is stopping (nothing was started).
    private func activate(_ lease: any ProjectionLease) async throws -> Bool {
        let illegal = shared.withLock { s -> Lifecycle? in
            switch s.lifecycle {
            case .standby(let t, let i):
                s.lifecycle = .activating(t, lease: lease, i)
                return nil
            case .stopping:
                return nil
            case .stopped, .activating, .active:
                return s.lifecycle
            }
        }
        if let illegal { illegalTransition("activate", in: illegal) }
        guard case .activating = self.lifecycle else { return false }
        // Read without creating anything: a tenant whose storage is gone (deleted through another
        // process, whose notice has not arrived yet) is not activated — what follows writes
        // (indexes, copies), and would create the tenant again.
        guard let (g, control) = try await readModels.readTransaction(ifMissing: nil, { [name] tx -> (ReadModelGenerations, Control)? in
            (try ReadModelGenerations.read(name, in: tx), try Control.read(name, in: tx))
        }) else { return false }
        shared.withLock { $0.generations = g }
        // A pause asked through any process holds here too (after a failover as well).
        apply(control)
        // Copies left behind by a crash between a switch and the drop of the old copy.
        for physical in try await readModels.modelNames() {
            guard let n = ReadModelGenerations.generation(of: physical, model: model), n != g.serving, n != g.building else { continue }
            try await readModels.dropModel(physical)
        }
        await createIndexes(g.serving)
        if g.building != 0 { await createIndexes(g.building) }
        let serving = mode == .async ? makeRunner(generation: g.serving, lease: lease, builder: false) : nil
        // The copy being built is read now, not from `g`: a rebuild may have begun meanwhile.
        let building = shared.withLock { s -> UInt32? in
            guard case .activating(let t, _, let i) = s.lifecycle else { return nil }
            if i.paused { serving?.pause() }
            // Started under the lock: a stop right after this transition finds it running.
            serving?.start()
            s.lifecycle = .active(t, Active(lease: lease, paused: i.paused, serving: serving, builder: nil))
            s.lastError = nil
            return s.generations.building
        }
        guard let building else { return false }  // stopping meanwhile
        if building != 0 { try await startBuilder(building) }
        return true
    }

    /// Indexes make queries faster but are not needed for correctness: a failure is logged.
    private func createIndexes(_ generation: UInt32) async {
        let physical = ReadModelGenerations.physicalName(model, generation: generation)
        for field in indexes {
            do { try await readModels.createIndex(physical, field: field) } catch {
                logger.warning("cannot index read model", metadata: ["mink.model": "\(physical)", "field": "\(field)", "error": "\(error)"])
            }
        }
    }

    /// The lease is lost or the activation failed: the runners stop, the status follows storage.
    private func deactivate() async {
        let (runners, illegal) = shared.withLock { s -> ([AsyncRunner], Lifecycle?) in
            switch s.lifecycle {
            case .active(let t, let a):
                s.lifecycle = .standby(t, Inactive(paused: a.paused, storedCheckpoint: Self.checkpoint(of: a.serving), read: true))
                return (a.runners, nil)
            case .activating(let t, _, let i):
                s.lifecycle = .standby(t, i)
                return ([], nil)
            case .stopping:
                return ([], nil)  // ``stop()`` stopped the runners
            case .stopped, .standby:
                return ([], s.lifecycle)
            }
        }
        if let illegal { illegalTransition("deactivate", in: illegal) }
        for r in runners { await r.stop() }
        // Stopping (the server, or the tenant's deletion): nothing to show from storage.
        if case .stopping = lifecycle { return }
        await refreshFromStorage()
    }

    /// A process without the lease shows what storage says (and reads follow the stored copy);
    /// `heldElsewhere`: another process holds the lease, so the status is that process's, as
    /// stored (``status(head:)``).
    private func refreshFromStorage(heldElsewhere: Bool = false) async {
        do {
            // Never creates the tenant's storage: a standby refreshing every lease interval
            // re-created a tenant deleted through another process.
            guard let (g, checkpoint, rebuild, control) = try await readModels.readTransaction(ifMissing: nil, {
                [name] tx -> (ReadModelGenerations, UInt64, UInt64?, Control)? in
                let g = try ReadModelGenerations.read(name, in: tx)
                let checkpoint = try tx.checkpoint(ReadModelGenerations.checkpointKey(name, generation: g.serving))
                let rebuild = g.building == 0 ? nil : try tx.checkpoint(ReadModelGenerations.checkpointKey(name, generation: g.building))
                return (g, checkpoint, rebuild, try Control.read(name, in: tx))
            }) else {
                shared.withLock { $0.lifecycle.leaseUnknown() }
                return
            }
            shared.withLock { s in
                s.generations = g
                s.lifecycle.stored(checkpoint: checkpoint, rebuildCheckpoint: rebuild, heldElsewhere: heldElsewhere)
            }
            apply(control)
            progress.signal()
        } catch {
            shared.withLock { $0.lifecycle.leaseUnknown() }
            if !Task.isCancelled { note(error) }
        }
    }

    private func makeRunner(generation: UInt32, lease: any ProjectionLease, builder: Bool) -> AsyncRunner {
        let copy = ReadModelCopyProjection(inner: projection, readModels: readModels, generation: generation, lease: lease)
        var onCaughtUp: (@Sendable (UInt64) async -> Bool)?
        if builder {
            onCaughtUp = { [weak self] _ in
                guard let self else { return false }
                return await self.finishRebuild(generation)
            }
        }
        return AsyncRunner(
            projection: copy, options: options, store: store, logger: logger, progress: progress, delay: delay, recordsDelay: !builder,
            onCaughtUp: onCaughtUp
        )
    }

    /// Starts the builder of copy `generation`, while active and without one.
    private func startBuilder(_ generation: UInt32) async throws {
        // Everything committed before this point is at or below the floor; everything after goes
        // through the hook (inline) or the serving runner (async), both compared at the switch.
        let floor = try await store.headPosition()
        shared.withLock { s in
            // Lease lost or stopped meanwhile (the next holder starts it), or started already.
            guard case .active(let t, var a) = s.lifecycle, a.builder == nil else { return }
            let runner = makeRunner(generation: generation, lease: a.lease, builder: true)
            if a.paused { runner.pause() }
            // Started under the lock: a stop right after this finds it running.
            runner.start()
            a.builder = Builder(runner: runner, generation: generation, floor: floor)
            s.lifecycle = .active(t, a)
        }
    }

    // MARK: Control

    /// Starts a rebuild into a new copy; nothing happens when one is already running.
    func rebuild() async throws {
        let current = try await loadGenerations()
        guard current.building == 0 else { return }
        // A copy number nobody can be filling: above the serving copy and every copy in storage,
        // so nothing is dropped here. (It dropped a leftover copy `serving + 1` first, which
        // raced with another process's rebuild of that very copy: the drop came after the other
        // process had claimed it and its builder had written — a black-box audit found 493 of
        // 1,388 documents missing. Leftover copies are dropped when a holder activates.)
        let copies = try await readModels.modelNames().compactMap { ReadModelGenerations.generation(of: $0, model: model) }
        let next = max(current.serving, copies.max() ?? 0) + 1
        await createIndexes(next)
        let head = try await store.headPosition()
        let started = try await readModels.transaction { [name, mode] tx -> ReadModelGenerations? in
            let g = try ReadModelGenerations.read(name, in: tx)
            guard g.building == 0, g.serving == current.serving else { return nil }
            try tx.setCheckpoint(ReadModelGenerations.checkpointKey(name, generation: next), to: 0)
            if mode == .inline {
                // The serving copy is level with the log: the hook moves this on from here.
                try tx.setCheckpoint(ReadModelGenerations.checkpointKey(name, generation: g.serving), to: head)
            }
            let updated = ReadModelGenerations(serving: g.serving, building: next)
            try updated.write(name, in: tx)
            return updated
        }
        guard let started else { return }
        // While activating, the activation starts the builder (it reads `generations` as it
        // becomes active); while inactive, the next activation does.
        let active = shared.withLock { s -> Bool in
            s.generations = started
            if case .active = s.lifecycle { return true }
            return false
        }
        logger.notice("projection rebuild started", metadata: ["mink.projection": "\(name)", "mink.copy": "\(next)"])
        if active { try await startBuilder(next) }
    }

    /// Called by the builder whenever it has caught up with the log: switches reads to the new
    /// copy when it has also caught up with the serving copy. Returns whether the builder should
    /// keep running (as the serving runner, in async mode).
    private func finishRebuild(_ generation: UInt32) async -> Bool {
        guard case let (builder, lease)? = shared.withLock({ $0.lifecycle.builder(of: generation) }) else {
            // Switched already: in async mode this runner serves now and goes on. Otherwise the
            // lease was lost or the controller stopped: it stops (the next holder finishes).
            return shared.withLock { s in
                guard case .active = s.lifecycle else { return false }
                return mode == .async && s.generations.serving == generation
            }
        }
        let known = shared.withLock { $0.generations.serving }
        let old: UInt32?
        var attempt = 0
        while true {
            do {
                old = try await readModels.transaction { [name, floor = builder.floor] tx -> UInt32? in
                    try lease.fence(tx)
                    // No append between its inline hook and its commit meanwhile: one whose hook
                    // saw the copy too far behind wrote only the serving copy, and committing
                    // after the switch it would never reach the new one.
                    try tx.excludeAppends()
                    let g = try ReadModelGenerations.read(name, in: tx)
                    // Switched already: an earlier attempt committed and its answer was lost (a broken
                    // connection after COMMIT). Finish what it did not: reads switch here, the copy
                    // this process served is dropped.
                    if g.serving == generation, g.building == 0 { return known }
                    guard g.building == generation else { return nil }
                    let builtKey = ReadModelGenerations.checkpointKey(name, generation: generation)
                    var built = try tx.checkpoint(builtKey)
                    let served = try tx.checkpoint(ReadModelGenerations.checkpointKey(name, generation: g.serving))
                    if built < served, served - built <= Self.switchCatchUpLimit,
                       let missing = try tx.events(after: built, limit: Int(served - built))
                    {
                        // The events committed since the builder's last batch (the serving copy
                        // has them): applied here, with appends kept out, so that the copy is
                        // level when reads switch. Without this a steady stream of appends kept
                        // an inline copy a few events behind at every catch-up, and the rebuild
                        // never finished (a black-box audit, 2026-12-07).
                        // A handler that fails here rolls the switch back; the builder then meets
                        // the event itself and faults as it would have.
                        do {
                            let copy = RedirectingTransaction.wrap(tx, model: model, generation: generation)
                            for e in missing where e.globalPosition <= served && projection.handles(e.type) {
                                try projection.apply(e, in: copy)
                            }
                            try tx.setCheckpoint(builtKey, to: served)
                        } catch {
                            throw SwitchCatchUpFailed(error: error)
                        }
                        built = served
                    }
                    guard built >= floor, built >= served else { return nil }
                    try ReadModelGenerations(serving: generation, building: 0).write(name, in: tx)
                    return g.serving
                }
                break
            } catch let failed as SwitchCatchUpFailed {
                // Not switched: the builder goes on (and meets the failing event itself).
                logger.debug("projection switch: catching the new copy up failed", metadata: [
                    "mink.projection": "\(name)", "error": "\(failed.error)",
                ])
                return true
            } catch {
                note(error)
                // Under a lost lease the builder stops; the new holder finishes the rebuild.
                if (error as? MinkError)?.code == .leaseLost { return false }
                // Tried again here, not at the builder's next catch-up: if the switch committed and
                // only its answer was lost, the copy serves already — in inline mode the append hook
                // writes it, and a builder batch in between would apply its events a second time.
                attempt += 1
                try? await Task.sleep(for: options.retryPolicy.backoff(afterAttempt: attempt))
                if Task.isCancelled { return true }
            }
        }
        guard let old else { return true }
        let previous = shared.withLock { s -> AsyncRunner? in
            s.generations = ReadModelGenerations(serving: generation, building: 0)
            // Deactivated during the switch: ``deactivate()`` or ``stop()`` stops the runners.
            guard case .active(let t, var a) = s.lifecycle, a.builder?.generation == generation else { return nil }
            let previous = a.serving
            // Async: the builder goes on as the serving runner. Inline: the hook serves; the
            // builder ends when this returns false.
            a.serving = mode == .async ? builder.runner : nil
            builder.runner.startRecordingDelay()
            a.builder = nil
            s.lifecycle = .active(t, a)
            return previous
        }
        progress.signal()
        logger.notice("projection rebuilt: reads switched", metadata: ["mink.projection": "\(name)", "mink.copy": "\(generation)"])
        await previous?.stop()
        guard old != generation else { return mode == .async }
        if dropGrace > .zero {
            // The grace (other processes still reading the old copy) is waited for on the side:
            // this runs in the new serving runner's catch-up callback, and sleeping here held the
            // runner — the projection applied nothing for `dropGrace` (5 s in minkd on
            // PostgreSQL) after every rebuild (a black-box audit, 2026-12-07). A copy left behind
            // by a crash meanwhile is dropped at the next activation.
            Task { [self] in await dropReplacedCopy(old) }
        } else {
            await dropReplacedCopy(old)
        }
        return mode == .async
    }

    /// The most events the switch applies to a rebuilt copy itself (see ``finishRebuild(_:)``);
    /// further behind, the builder goes on and the switch is tried at its next catch-up.
    static let switchCatchUpLimit: UInt64 = 500

    /// Drops a copy a rebuild replaced, once its readers are done and the grace has passed.
    private func dropReplacedCopy(_ old: UInt32) async {
        await waitForReaders(of: old)
        if dropGrace > .zero { try? await Task.sleep(for: dropGrace) }
        do {
            try await readModels.dropModel(ReadModelGenerations.physicalName(model, generation: old))
        } catch {
            note(error)
        }
    }

    /// Pauses the runners after their current batch (and those started later), wherever they
    /// run: the pause is recorded in storage (``Control``) and applied here at once; the process
    /// holding the lease applies it within `leaseRetryInterval`, and a later holder starts paused.
    func pause() async throws {
        guard mode == .async else { throw Self.inlineControl(name) }
        apply(try await record(paused: true))
    }

    /// Resumes paused or faulted runners (a faulted one retries its poison event), wherever they
    /// run (recorded in storage, as ``pause()``).
    func resume() async throws {
        if mode == .inline {
            // Inline mode has a runner only while rebuilding: a faulted builder resumes (here).
            let runners = shared.withLock { s -> [AsyncRunner]? in
                guard case .active(_, let a) = s.lifecycle, a.builder != nil else { return nil }
                return s.lifecycle.setPaused(false)
            }
            guard let runners else { throw Self.inlineControl(name) }
            for r in runners { r.resume() }
            return
        }
        apply(try await record(paused: false))
    }

    /// Records a pause or resume in storage under the next sequence. The tenant's append lock
    /// (`excludeAppends`, a moment) serializes concurrent requests, so that two of them never
    /// record the same sequence (each process would then apply whichever it saw first).
    private func record(paused: Bool) async throws -> Control {
        try await readModels.transaction { [name] tx in
            try tx.excludeAppends()
            var control = try Control.read(name, in: tx)
            control.sequence += 1
            control.paused = paused
            try tx.setCheckpoint(Control.key(name), to: control.packed)
            return control
        }
    }

    static func inlineControl(_ name: String) -> MinkError {
        MinkError(.adapterNotSupported, "projection \(name) is inline: it runs inside appends and cannot be paused")
    }

    // MARK: Status and reads

    /// Waits (up to 2 s) until a just-started lease loop has asked for the lease and read storage
    /// once, so that the status says what storage says: a process that had not yet served the
    /// tenant answered `stopped, checkpoint 0` while another process ran the projection (a
    /// black-box audit). No wait in any other state.
    func waitForFirstRead() async {
        let deadline = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < deadline {
            let waiting = shared.withLock { s -> Bool in
                if case .standby(_, let i) = s.lifecycle { return !i.read }
                return false
            }
            if !waiting { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The projection's status.
    func status(head: UInt64) -> ProjectionEngine.Status {
        shared.withLock { s in
            var status = ProjectionEngine.Status(name: name, mode: mode, state: .running, checkpoint: head, head: head)
            guard case .active(_, let a) = s.lifecycle else {
                status.state = .stopped
                status.runningHere = false
                if mode == .inline, case .standby = s.lifecycle {
                    // Inline runs in every process's appends, this one's too, whoever holds the
                    // lease (which only a rebuild's builder needs): it showed `stopped` for good
                    // on every process but the lease's holder.
                    status.state = .running
                    status.checkpoint = head
                    status.runningHere = true
                    return status
                }
                if mode == .async, case .standby(_, let i) = s.lifecycle, i.heldElsewhere {
                    // Another process runs it: what it stored (its fault, if any, is not stored).
                    status.state = i.paused ? .paused : i.storedRebuildCheckpoint != nil ? .rebuilding : .running
                    status.checkpoint = i.storedCheckpoint
                    status.rebuildCheckpoint = i.storedRebuildCheckpoint
                    status.lastError = nil
                    return status
                }
                switch s.lifecycle {
                case .stopped(let i), .standby(_, let i), .activating(_, _, let i), .stopping(_, let i, _):
                    status.checkpoint = mode == .inline ? head : i.storedCheckpoint
                case .active:
                    break
                }
                status.lastError = s.lastError
                return status
            }
            let served = a.serving?.status(head: head)
            let built = a.builder?.runner.status(head: head)
            if let served { status.checkpoint = served.checkpoint }
            status.rebuildCheckpoint = built?.checkpoint
            if let faulted = [served, built].compactMap({ $0 }).first(where: { $0.state == .faulted }) {
                status.state = .faulted
                status.lastError = faulted.lastError
                status.faultedPosition = faulted.faultedPosition
            } else if a.paused {
                status.state = .paused
            } else if built != nil {
                status.state = .rebuilding
            }
            if status.lastError == nil { status.lastError = served?.lastError ?? built?.lastError }
            return status
        }
    }

    /// Runs `body` with the physical name of the serving copy; the copy is not dropped while
    /// `body` runs.
    func withReadModel<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let g = shared.withLock { s in
            let g = s.generations.serving
            s.readers[g, default: 0] += 1
            return g
        }
        defer {
            shared.withLock { s in
                let n = (s.readers[g] ?? 1) - 1
                s.readers[g] = n == 0 ? nil : n
                if n == 0, let waiters = s.drainWaiters.removeValue(forKey: g) {
                    for w in waiters { w.resume() }
                }
            }
        }
        return try await body(ReadModelGenerations.physicalName(model, generation: g))
    }

    /// The physical name of the serving copy now.
    var servingModel: String { ReadModelGenerations.physicalName(model, generation: shared.withLock { $0.generations.serving }) }

    private func waitForReaders(of generation: UInt32) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            shared.withLock { s in
                if (s.readers[generation] ?? 0) == 0 { c.resume() } else { s.drainWaiters[generation, default: []].append(c) }
            }
        }
    }
}

/// The lease of a runner made while no lease is held (after the controller deactivated): such a
/// runner must not write, so its fence always fails.
private struct NoLease: ProjectionLease {
    let projection: String
    func lost() async {}
    func release() async {}
    func fence(_ tx: any ReadModelTransaction) throws { throw MinkError.leaseLost(projection) }
}

/// The switch of a rebuilt copy could not apply the events its builder had not (see
/// `ReadModelProjectionController.finishRebuild`): the switch is rolled back.
private struct SwitchCatchUpFailed: Error {
    let error: any Error
}

import Foundation

/// Fans committed events out to the subscriptions and async projections of one tenant.
///
/// The hub keeps one shared, bounded ring of the most recent events (oldest dropped first) and
/// the head position. It learns about commits from the store (local appends) and from the
/// adapter's `externalCommits()` (other processes), and then reads the new events from storage
/// itself — one read per wake-up, whatever the number of subscribers — so the ring is always a
/// contiguous, in-order suffix of the log. Subscribers keep only a cursor: when their cursor is
/// inside the ring they read from memory; when it is older (they fell behind, or started in the
/// past) they read from storage. Memory is therefore bounded by the ring, never by slow consumers.
///
/// A commit that nobody waits for is not read at all: the hub only marks itself stale, and the
/// next reader brings it up to date first (reading the new events, or — when more than the
/// ring's capacity was appended meanwhile — restarting the ring empty at the head, so that
/// readers behind it go to storage). An append therefore costs no read-back while a tenant has
/// no subscriber or async projection waiting.
public actor SubscriptionHub {
    private let adapter: any EventStoreAdapter
    private let capacity: Int
    /// The most the ring's live events may weigh (``cost(of:)``): events of up to a megabyte
    /// each made a ring of 10,000 hold ~10 GiB (measured: RSS 296 MB → 4.1 GB after 3,500
    /// events of 900 KiB with one subscriber). The newest event is kept whatever its size.
    private let capacityBytes: Int
    private var ring: [Event] = []
    private var ringStartIndex = 0  // ring[ringStartIndex...] are the live entries (amortised trimming)
    /// The last position the ring dropped for room (or skipped, catching up with a burst): a
    /// reader before it fell behind. Forgetting the ring (``forgetRecentEvents()``, on every
    /// LISTEN reconnect) does not move it: readers sent to storage then were not too slow.
    private var evictedThrough: UInt64 = 0
    /// What the live entries weigh (``cost(of:)``).
    private var ringBytes = 0
    /// How many events the pump reads per page, at most; a page also stops at ``pumpPageBytes``.
    private let pumpPageLimit = 1000
    private var head: UInt64 = 0
    private var lifecycle = Lifecycle.starting
    private var pump = Pump.idle(stale: false)
    /// Wakes the tasks waiting in ``waitForEvents(after:timeout:)`` (timers on a Dispatch
    /// queue, not a task per wait).
    private let arrivals = ProgressSignal()
    /// Tasks inside ``waitForEvents(after:timeout:)`` past their head check, counted on the
    /// actor: a commit seen while one waits must pump and signal, even if the waiter has not yet
    /// parked in ``arrivals`` (it parks after leaving the actor; asking `arrivals` whether anyone
    /// waits would miss it, and it would sleep until its timeout).
    private var waiting = 0
    /// Passes of the pump begun so far (each reads storage up to its head at that moment).
    private var passesStarted = 0
    /// Readers waiting for the pump: each for a pass begun after it asked.
    private var pumpWaiters: [(pass: Int, continuation: CheckedContinuation<Void, Never>)] = []
    /// The pass started for waiters by a commit, which does not wait for it
    /// (``notifyCommitted()``); at most one at a time, cancelled by ``shutdown()``.
    private var pumpTask: Task<Void, Never>?
    /// This process's commits notified ahead of a gap, by first position: the appends of one
    /// batch are answered together and their notifications race, so a later one often arrives
    /// first. Each waits for the gap's own notification (then both go into the ring, no read);
    /// a reader arriving meanwhile, or ``gapGrace`` passing, reads storage instead.
    private var ahead: [UInt64: [Event]] = [:]
    private var aheadTimer: Task<Void, Never>?
    /// How long commits ahead of a gap wait for it before the hub reads storage (the gap may be
    /// another process's commit, or an append whose caller was answered by its deadline).
    let gapGrace: Duration
    /// How long the hub listens for other processes' commits with nobody waiting
    /// (``EventStoreAdapter/externalCommitsIdleRelease``; `nil`: for as long as it serves).
    private let releaseAfter: Duration?
    /// The external streams were given back for want of waiters: other processes' commits go
    /// unnoticed, so every reader reads storage first, and the next waiter asks for them anew.
    private var released = false
    /// Tasks inside ``waitForEvents(after:timeout:)``, from its first line (``waiting`` counts
    /// them only once they park): none for ``releaseAfter`` gives the external streams back.
    private var visitors = 0
    /// When the last of them left.
    private var lastWaiterLeft = ContinuousClock.now
    private var releaseTimer: Task<Void, Never>?
    /// Times the external streams were given back (tests).
    private(set) var releases = 0

    /// Where the hub is in its life.
    private enum Lifecycle {
        /// The head has not been read from storage yet.
        case starting
        /// Serving readers; `external` listens for other processes' commits (when the adapter
        /// reports them).
        case serving(external: Task<Void, Never>?)
        /// Shut down: the external listener is stopped and is never started again.
        case shutDown
    }

    /// What the pump (reading new events into the ring) is doing.
    private enum Pump: Equatable {
        /// Not running. `stale`: commits were notified while nobody waited, so `head` and the
        /// ring may be behind the log (the next reader brings them up to date).
        case idle(stale: Bool)
        /// A pass is running. `again`: commits were notified after it began, so another pass
        /// follows it. (A running pass reads up to the storage's head, which covers whatever
        /// made the hub stale before it.)
        case running(again: Bool)
    }

    /// Creates a hub over an adapter; `capacity` is the number of recent events kept in memory,
    /// `gapGrace` how long commits notified ahead of a gap wait for it (see ``ahead``).
    public init(
        adapter: any EventStoreAdapter, capacity: Int = 10_000, capacityBytes: Int = SubscriptionHub.defaultCapacityBytes,
        gapGrace: Duration = .milliseconds(2)
    ) {
        self.adapter = adapter
        self.capacity = max(16, capacity)
        self.capacityBytes = max(1, capacityBytes)
        self.gapGrace = gapGrace
        self.releaseAfter = adapter.externalCommitsIdleRelease
    }

    /// The head position known to the hub.
    public func headPosition() async throws -> UInt64 {
        try await ensureInitialized()
        await refreshIfStale()
        return head
    }

    private func ensureInitialized() async throws {
        guard case .starting = lifecycle else { return }
        let h = try await adapter.headPosition()
        // Another reader may have finished starting (or the hub shut down) during the read.
        guard case .starting = lifecycle else { return }
        head = h
        lifecycle = .serving(external: listenExternally())
        // Started by a reader, not a waiter: give the streams back if no waiter ever comes.
        if visitors == 0 {
            lastWaiterLeft = .now
            scheduleRelease()
        }
    }

    /// Other processes' commits wake the hub; their removals (a scavenge) make it forget its
    /// ring, which may hold what was removed. `nil` when the adapter reports neither.
    private func listenExternally() -> Task<Void, Never>? {
        let commits = adapter.externalCommits(), removals = adapter.externalRemovals()
        guard commits != nil || removals != nil else { return nil }
        return Task { [weak self] in
            await withTaskGroup(of: Void.self) { group in
                if let commits { group.addTask { [weak self] in for await _ in commits { await self?.notifyCommitted() } } }
                if let removals { group.addTask { [weak self] in for await _ in removals { await self?.forgetRecentEvents() } } }
            }
        }
    }

    /// A waiter arrives at a hub that gave its external streams back: it asks for them again,
    /// then reads storage for what other processes committed meanwhile (the adapter wakes the
    /// streams once more after its listening connection is up: commits made before then are
    /// read at that wake-up).
    private func listenAgain() {
        guard released, case .serving = lifecycle else { return }
        released = false
        lifecycle = .serving(external: listenExternally())
        // Another process may have removed events meanwhile (a scavenge: its notice was missed).
        forgetRecentEvents()
        markStale()
    }

    /// Nobody is left in ``waitForEvents(after:timeout:)``: after ``releaseAfter`` with nobody
    /// there, the external streams are given back (see ``EventStoreAdapter/externalCommitsIdleRelease``).
    private func scheduleRelease(in delay: Duration? = nil) {
        guard let after = releaseAfter, releaseTimer == nil, !released, case .serving(.some) = lifecycle else { return }
        releaseTimer = Task { [weak self] in
            try? await Task.sleep(for: delay ?? after)
            if !Task.isCancelled { await self?.releaseIfIdle() }
        }
    }

    private func releaseIfIdle() {
        releaseTimer = nil
        guard let after = releaseAfter, visitors == 0, !released, case .serving(let external?) = lifecycle else { return }
        // Someone came meanwhile: count from when the last one left.
        let idle = ContinuousClock.now - lastWaiterLeft
        if idle < after {
            scheduleRelease(in: after - idle)
            return
        }
        external.cancel()
        lifecycle = .serving(external: nil)
        released = true
        releases += 1
    }

    /// From here on readers read storage before they answer.
    private func markStale() {
        switch pump {
        case .idle: pump = .idle(stale: true)
        case .running: pump = .running(again: true)
        }
    }

    /// Whether a task waits in ``waitForEvents(after:timeout:)`` (tests).
    var isWaitedFor: Bool { waiting > 0 }

    /// Stops listening for external commits and wakes every waiter.
    public func shutdown() {
        if case .serving(let external) = lifecycle { external?.cancel() }
        releaseTimer?.cancel()
        releaseTimer = nil
        pumpTask?.cancel()
        aheadTimer?.cancel()
        ahead = [:]
        lifecycle = .shutDown
        arrivals.signal(false)
    }

    /// Tells the hub that this process committed `events`, exactly as stored (an adapter's
    /// `AppendResult.events`, positions dense and increasing). When they follow the hub's head
    /// directly and nothing unread is pending, they go into the ring as they are and the waiters
    /// wake — no storage read: a live projection or subscriber sees an append one storage round
    /// trip sooner, and storage serves one query less per commit. Otherwise (commits answered
    /// out of order, another process's commits in between, a stale hub) this is
    /// ``notifyCommitted()``: the hub reads storage.
    ///
    /// Positions are given in commit order under the tenant's lock, so events whose first
    /// position is `head + 1` leave no gap: nobody else can hold a position between.
    public func notifyCommitted(_ events: [Event]) async {
        if case .serving = lifecycle, case .idle(stale: false) = pump, let first = events.first, let last = events.last,
            last.globalPosition == first.globalPosition + UInt64(events.count) - 1,
            zip(events, events.dropFirst()).allSatisfy({ $0.globalPosition + 1 == $1.globalPosition })
        {
            if first.globalPosition == head + 1 {
                appendToRing(events)
                head = last.globalPosition
                directCommits += 1
                // Commits notified ahead of this one that follow it now.
                while let next = ahead.removeValue(forKey: head + 1), let end = next.last {
                    appendToRing(next)
                    head = end.globalPosition
                    directCommits += 1
                }
                if ahead.isEmpty {
                    aheadTimer?.cancel()
                    aheadTimer = nil
                }
                wakeAll()
                return
            }
            // Read by the hub already (it read past them for a commit answered earlier).
            if last.globalPosition <= head { return }
            // Ahead of a gap: wait for the gap's notification (see `ahead`).
            ahead[first.globalPosition] = events
            if aheadTimer == nil {
                let grace = gapGrace
                aheadTimer = Task { [weak self] in
                    try? await Task.sleep(for: grace)
                    if !Task.isCancelled { await self?.gapTimedOut() }
                }
            }
            return
        }
        await notifyCommitted()
    }

    /// The gap before commits notified ahead was not notified in time: read storage.
    private func gapTimedOut() async {
        aheadTimer = nil
        guard !ahead.isEmpty else { return }
        await notifyCommitted()
    }

    /// Commits ahead of a gap are forgotten once the hub reads storage (the read covers them).
    private func dropAhead() {
        guard !ahead.isEmpty || aheadTimer != nil else { return }
        ahead = [:]
        aheadTimer?.cancel()
        aheadTimer = nil
    }

    /// Commits that went into the ring without a storage read (tests).
    private(set) var directCommits = 0

    /// Tells the hub that events were committed; it reads them from storage and wakes waiters.
    ///
    /// The committer does not wait for that read (it did until 2026-12-06: every append with a
    /// subscriber or an async projection waiting paid one more storage read before its answer).
    /// From here on the hub is stale, so a reader that comes before the pass brings the hub up to
    /// date itself (``refreshIfStale()``): nobody answers from a head older than this commit.
    public func notifyCommitted() async {
        dropAhead()
        switch pump {
        case .running:
            // The running pass reads up to the storage's head: another pass follows it.
            pump = .running(again: true)
        case .idle:
            pump = .idle(stale: true)
            // Nobody to wake: whoever reads next refreshes. A pass already started for waiters
            // finds the hub stale and reads this commit too.
            guard waiting > 0, pumpTask == nil, case .serving = lifecycle else { return }
            // High priority: the subscribers' own tasks must not delay the pass that wakes them
            // (at default priority SSE fan-out to 100 subscribers measured ~1 ms slower at p50).
            pumpTask = Task(priority: .high) { await self.pumpForWaiters() }
        }
    }

    /// The pass started by ``notifyCommitted()``: reads while commits are unread and someone
    /// waits. The last check and the reset of `pumpTask` run without a suspension between them,
    /// so a commit notified after that check starts a task of its own.
    private func pumpForWaiters() async {
        while case .idle(stale: true) = pump, waiting > 0, !Task.isCancelled { await runPump() }
        pumpTask = nil
    }

    /// Brings the hub up to date with every commit notified so far, before a reader looks at
    /// `head` or the ring: after commits nobody waited for, and while a pump is running (a
    /// reader must not answer "up to date" from a head the pump is about to move).
    private func refreshIfStale() async {
        if case .starting = lifecycle { return }
        // Not listening: another process may have committed since the last read — also since a
        // pass now running read (it is run again) — or removed events the ring holds.
        if released {
            forgetRecentEvents()
            markStale()
        }
        // Commits of this process wait ahead of a gap: a reader must see them (its own append may
        // be among them), so it reads storage now.
        if !ahead.isEmpty, case .idle(stale: false) = pump {
            dropAhead()
            pump = .idle(stale: true)
        }
        switch pump {
        case .idle(stale: false):
            return
        case .idle(stale: true):
            await runPump(mayRestartRing: true)
        case .running(let again):
            // Wait for the running pass to finish; when commits were notified after it began
            // (`again`, so the pump runs another), for that next pass instead — never for the
            // pump to stop, which a steady stream of commits could prevent.
            let pass = again ? passesStarted + 1 : passesStarted
            await withCheckedContinuation { pumpWaiters.append((pass, $0)) }
        }
    }

    /// Reads the events after `head` into the ring and wakes the waiters (and the readers
    /// waiting for the pump).
    ///
    /// - Parameter mayRestartRing: after commits nobody waited for: when more than the ring's
    ///   capacity was appended meanwhile, restart the ring empty at the head instead of reading
    ///   it all (the ring would keep only its last `capacity` events anyway). Done inside the
    ///   pass, so that readers arriving meanwhile wait for it and commits notified meanwhile
    ///   get another pass.
    private func runPump(mayRestartRing: Bool = false) async {
        if case .running = pump {
            pump = .running(again: true)
            return
        }
        defer {
            pump = .idle(stale: false)
            resumePumpWaiters(upTo: Int.max)
        }
        var mayRestart = mayRestartRing
        repeat {
            pump = .running(again: false)
            passesStarted += 1
            defer { resumePumpWaiters(upTo: passesStarted) }
            do {
                try await ensureInitialized()
                // Whether to check for a restart: only when the first page is full (more than a
                // page was appended unread), so a refresh after a few commits costs one read, not
                // a head query and a read (the head query was most of the hub's storage time on
                // PostgreSQL under live load).
                var checkRestart = mayRestart
                mayRestart = false
                while true {
                    let limit = pumpPageLimit
                    // Bounded by bytes in storage: a page of 1,000 events of a megabyte was a
                    // transient gigabyte (a page sized by the previous page's events was not
                    // enough: after small events, the next page could be all large ones).
                    let page = try await adapter.readAll(after: head, filter: .all, limit: limit, maxBytes: pumpPageBytes)
                    guard let last = page.last else { break }
                    // Full: the page stopped at its count or its bytes, and more may follow.
                    let full = page.count == limit || page.reduce(0, { $0 + $1.data.count }) >= pumpPageBytes
                    if checkRestart {
                        checkRestart = false
                        if full {
                            let h = try await adapter.headPosition()
                            if h > head, h - head > UInt64(capacity) {
                                evictedThrough = Swift.max(evictedThrough, h)
                                ring.removeAll()
                                ringBytes = 0
                                ringStartIndex = 0
                                head = h
                                wakeAll()
                                continue
                            }
                        }
                    }
                    appendToRing(page)
                    head = last.globalPosition
                    wakeAll()
                    if !full { break }
                }
            } catch {
                // Storage unavailable: waiters time out and subscribers read storage themselves later.
                wakeAll()
            }
        } while pump == .running(again: true)
    }

    private func resumePumpWaiters(upTo pass: Int) {
        guard !pumpWaiters.isEmpty else { return }
        var keep: [(pass: Int, continuation: CheckedContinuation<Void, Never>)] = []
        for w in pumpWaiters {
            if w.pass <= pass { w.continuation.resume() } else { keep.append(w) }
        }
        pumpWaiters = keep
    }

    /// The default of ``capacityBytes``: 64 MiB per tenant (10,000 events of up to ~6 KiB fit
    /// whole; larger ones make the ring shorter, and readers behind it read storage).
    public static let defaultCapacityBytes = 64 << 20

    /// What an event weighs in the ring: its payload and names, and a fixed allowance for the
    /// rest (ID, metadata, the value itself).
    static func cost(of e: Event) -> Int { e.data.count + e.streamID.utf8.count + e.type.utf8.count + 256 }

    /// The ring's live events and what they weigh (tests).
    var ringFootprint: (events: Int, bytes: Int) { (ring.count - ringStartIndex, ringBytes) }
    /// What one page the pump reads may weigh in event data: a quarter of the ring's budget.
    var pumpPageBytes: Int { Swift.max(1, capacityBytes / 4) }

    private func appendToRing(_ events: [Event]) {
        ring.append(contentsOf: events)
        for e in events { ringBytes += Self.cost(of: e) }
        // Oldest first out: past `capacity` events, or past `capacityBytes` (the newest stays).
        while ring.count - ringStartIndex > capacity || (ringBytes > capacityBytes && ring.count - ringStartIndex > 1) {
            evictedThrough = Swift.max(evictedThrough, ring[ringStartIndex].globalPosition)
            ringBytes -= Self.cost(of: ring[ringStartIndex])
            ringStartIndex += 1
        }
        // Dropped entries still hold their events until the array is compacted: compact once
        // they are as many as the live ones (amortised: each compaction moves no more entries
        // than were dropped since the last).
        if ringStartIndex > 0, ringStartIndex >= ring.count - ringStartIndex { ring.removeFirst(ringStartIndex); ringStartIndex = 0 }
        // A deletion's events are gone from storage (HTTP-API.md section 5: "the bytes are
        // gone"): a subscriber catching up from memory must not be sent them either. The
        // deletion record comes through the log, so this holds for another process's deletions
        // too.
        for e in events where e.streamID == ImportedDeletion.stream && e.type == ImportedDeletion.type {
            guard let d = try? ImportedDeletion.of(e) else { continue }  // not a record the server wrote
            removeFromRing { $0.streamID == d.streamID && $0.version <= d.lastVersion && $0.globalPosition < e.globalPosition }
        }
    }

    /// Removes the ring's entries matching `excluded`. The ring stays in position order (with
    /// gaps, which readers step over: the events are not in storage either); when its first
    /// entries go, readers behind the new first one read storage.
    private func removeFromRing(where excluded: (Event) -> Bool) {
        guard ring[ringStartIndex...].contains(where: excluded) else { return }
        ring = ring[ringStartIndex...].filter { !excluded($0) }
        ringStartIndex = 0
        ringBytes = ring.reduce(0) { $0 + Self.cost(of: $1) }
    }

    /// Checks the hub against storage before a new subscription catches up from it: reads what
    /// was committed since (a `$StreamDeleted` record another process wrote purges its events
    /// from the ring — without this, a subscriber starting right after another process's
    /// deletion was answered from memory still holding the stream), and starts over at storage's
    /// head when the log the hub remembers is not storage's any more — the tenant deleted (and
    /// perhaps created again) through another process: storage's head is behind the hub's, or
    /// the event at the ring's last position is another one. Starting over only forgets memory:
    /// readers then read storage. Costs a new subscription two small queries and the refresh.
    public func revalidate() async {
        guard case .serving = lifecycle else { return }
        do {
            let storageHead = try await adapter.headPosition()
            var stale = storageHead < head
            if !stale, ringStartIndex < ring.count, let last = ring.last {
                let found = try await adapter.readAll(after: last.globalPosition - 1, filter: .all, limit: 1).first
                stale = found?.globalPosition != last.globalPosition || found?.id != last.id
            }
            if stale {
                // Start over: the refresh below reads storage from the beginning (or, past the
                // ring's capacity, restarts the ring empty at storage's head).
                ring.removeAll()
                ringBytes = 0
                ringStartIndex = 0
                dropAhead()
                head = 0
                wakeAll()
            }
        } catch {
            // Storage unavailable: the reader's own reads will fail and be retried.
        }
        pump = pump == .idle(stale: false) ? .idle(stale: true) : pump
        await refreshIfStale()
    }

    /// Forgets the ring (the head stays): after a scavenge removed events from storage, readers
    /// catching up read storage rather than memory that may still hold them.
    public func forgetRecentEvents() {
        ring.removeAll()
        ringBytes = 0
        ringStartIndex = 0
    }

    private func wakeAll() {
        arrivals.signal()
    }

    /// What a reader at `position` should do next.
    enum Read: Sendable {
        /// Events from memory (possibly empty after filtering) and the cursor to continue from.
        case events([Event], cursor: UInt64)
        /// The cursor is older than the ring: read storage after it. `fellBehind`: the ring
        /// dropped events the reader had not read (it was too slow); otherwise the hub forgot its
        /// memory (a LISTEN reconnect, a scavenge) and the reader was not behind.
        case fromStorage(head: UInt64, fellBehind: Bool)
        /// Nothing new yet.
        case upToDate(head: UInt64)
    }

    func read(after position: UInt64, filter: EventFilter, limit: Int) async throws -> Read {
        try await ensureInitialized()
        await refreshIfStale()
        if position >= head { return .upToDate(head: head) }
        let live = ring[ringStartIndex...]
        let base = (live.first?.globalPosition ?? head + 1) - 1
        guard position >= base else { return .fromStorage(head: head, fellBehind: position < evictedThrough) }
        // Positions in the ring are increasing; find the first one after `position`.
        var lo = live.startIndex, hi = live.endIndex
        while lo < hi {
            let mid = (lo + hi) / 2
            if ring[mid].globalPosition <= position { lo = mid + 1 } else { hi = mid }
        }
        var out: [Event] = []
        var cursor = position
        var i = lo
        while i < live.endIndex, out.count < limit {
            let e = ring[i]
            if filter.matches(e) { out.append(e) }
            cursor = e.globalPosition
            i += 1
        }
        return .events(out, cursor: cursor)
    }

    /// Waits until the head moves past `position`, or `timeout` elapses, or the task is cancelled.
    /// Returns whether new events arrived.
    public func waitForEvents(after position: UInt64, timeout: Duration?) async -> Bool {
        visitors += 1
        defer {
            visitors -= 1
            if visitors == 0 {
                lastWaiterLeft = .now
                scheduleRelease()
            }
        }
        if (try? await ensureInitialized()) == nil { return false }
        listenAgain()
        await refreshIfStale()
        if head > position { return true }
        if Task.isCancelled { return false }
        if case .shutDown = lifecycle { return false }
        // Noted while the hub is isolated, after the head was checked: an arrival signalled from
        // here on has moved the generation, so the wait below cannot miss it.
        let generation = arrivals.generation
        waiting += 1
        defer { waiting -= 1 }
        return await arrivals.wait(after: generation, until: timeout.map { ContinuousClock.now + $0 })
    }
}

import Foundation
@testable import Mink
import MinkTesting
import Synchronization
import Testing

/// The hub reads commits back from storage only when someone waits for them, and a reader that
/// comes later still sees every event once, in order.
@Suite("Subscription hub", .timeLimit(.minutes(3)))
struct SubscriptionHubTests {
    /// Counts `readAll` calls of the adapter it wraps; each one can be made slow.
    final class CountingAdapter: EventStoreAdapter {
        let inner = InMemoryStorage()
        let readAlls = Atomic<Int>(0)
        let readDelay: Duration?
        let headDelay: Duration?
        /// When set, every `readAll` waits until it is open.
        let gate: Gate?

        init(readDelay: Duration? = nil, headDelay: Duration? = nil, gate: Gate? = nil) {
            self.readDelay = readDelay
            self.headDelay = headDelay
            self.gate = gate
        }

        func append(_ request: AppendRequest, hook: AppendTransactionHook?) async throws -> AppendResult {
            try await inner.append(request, hook: hook)
        }
        func readStream(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws -> [Event] {
            try await inner.readStream(streamID, from: version, limit: limit, direction: direction)
        }
        func streamInfo(_ streamID: String) async throws -> StreamInfo? { try await inner.streamInfo(streamID) }
        /// `readAll` calls with a filter other than "every event" (a projection's pages; the hub
        /// reads every event).
        let filteredReadAlls = Atomic<Int>(0)

        func readAll(after position: UInt64, filter: EventFilter, limit: Int) async throws -> [Event] {
            readAlls.add(1, ordering: .relaxed)
            if filter != EventFilter() { filteredReadAlls.add(1, ordering: .relaxed) }
            if let readDelay { try await Task.sleep(for: readDelay) }
            await gate?.pass()
            return try await inner.readAll(after: position, filter: filter, limit: limit)
        }
        /// `headPosition` calls.
        let heads = Atomic<Int>(0)

        func headPosition() async throws -> UInt64 {
            heads.add(1, ordering: .relaxed)
            if let headDelay { try await Task.sleep(for: headDelay) }
            return try await inner.headPosition()
        }
        func forTenant(_ tenantID: String) throws -> any EventStoreAdapter { try inner.forTenant(tenantID) }
    }

    static func event() -> EventData { EventData(type: "E", data: Data("{}".utf8)) }

    static func positions(_ store: EventStore, from: UInt64, count: Int) async throws -> [UInt64] {
        var seen: [UInt64] = []
        for try await e in store.subscribeAll(from: from) {
            seen.append(e.globalPosition)
            if seen.count == count { break }
        }
        return seen
    }

    @Test func appendsWithNobodyWaitingAreNotReadBack() async throws {
        let adapter = CountingAdapter()
        let store = EventStore(adapter: adapter, options: .init(subscriberBuffer: 16))
        for i in 0..<200 { try await store.append("s-\(i % 3)", events: [Self.event()]) }
        #expect(adapter.readAlls.load(ordering: .relaxed) == 0, "no subscriber, no read-back")
        #expect(try await store.hub.headPosition() == 200)
        // Subscribers arriving now, from the start and from near the head, see everything once.
        #expect(try await Self.positions(store, from: 0, count: 200) == Array(1...200))
        #expect(try await Self.positions(store, from: 195, count: 5) == Array(196...200))
    }

    /// A commit that lands while a waiter has checked the head but not yet parked wakes it: the
    /// hub counts waiters on the actor, not by asking the signal who has parked (that missed the
    /// window, and the waiter slept until its timeout — an SSE slice stalled for 10 s in CI).
    /// Many rounds of a wait racing one append, each bounded far below the wait's 30 s timeout.
    @Test func aCommitRacingAWaiterIsNeverMissed() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        for round in 0..<400 {
            let head = try await store.hub.headPosition()
            let started = ContinuousClock.now
            async let woken = store.hub.waitForEvents(after: head, timeout: .seconds(30))
            if round % 2 == 0 { await Task.yield() }
            try await store.append("race-\(round % 5)", events: [Self.event()])
            let got = await woken
            let waited = started.duration(to: .now)
            #expect(got, "round \(round): the wait ended without the commit")
            try #require(waited < .seconds(20), "round \(round): woken by the timeout after \(waited), not by the commit")
        }
    }

    @Test func aLiveSubscriberStillSeesEveryCommit() async throws {
        let adapter = CountingAdapter()
        let store = EventStore(adapter: adapter, options: .init(subscriberBuffer: 16))
        for _ in 0..<50 { try await store.append("a", events: [Self.event()]) }
        async let live = Self.positions(store, from: 0, count: 150)
        // Appends with pauses (the subscriber waits between them) and in bursts (it does not).
        for i in 0..<100 {
            try await store.append("b-\(i % 4)", events: [Self.event()])
            if i % 10 == 0 { try await Task.sleep(for: .milliseconds(2)) }
        }
        #expect(try await live == Array(1...150))
        // Quiet again: more appends are not read back until a reader comes.
        try await Task.sleep(for: .milliseconds(50))
        let before = adapter.readAlls.load(ordering: .relaxed)
        for _ in 0..<40 { try await store.append("c", events: [Self.event()]) }
        #expect(adapter.readAlls.load(ordering: .relaxed) == before)
        #expect(try await Self.positions(store, from: 140, count: 50) == Array(141...190))
    }

    /// An append does not wait for the hub to read it back for the waiting subscribers (it did:
    /// every append with a live subscriber or projection paid one more storage read), and the
    /// subscriber still gets every event once; a reader right after the appends sees their head.
    /// The read-back is held at a gate: the appends must finish while it is closed.
    @Test func anAppendDoesNotWaitForTheReadBack() async throws {
        let gate = Gate()
        let adapter = CountingAdapter(gate: gate)
        let store = EventStore(adapter: adapter)
        _ = try await store.hub.headPosition()
        let woken = Task { await store.hub.waitForEvents(after: 0, timeout: .seconds(60)) }
        for _ in 0..<400 {
            if await store.hub.isWaitedFor { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        try #require(await store.hub.isWaitedFor, "the waiter never waited")
        let appended = Appended()
        let appends = Task {
            for i in 0..<5 { try await store.append("s-\(i)", events: [Self.event()]) }
            appended.flag.store(true, ordering: .releasing)
        }
        var done = false
        for _ in 0..<2000 where !done {
            try await Task.sleep(for: .milliseconds(10))
            done = appended.flag.load(ordering: .acquiring)
        }
        await gate.open()
        try await appends.value
        #expect(done, "the appends waited for the hub's read-back (still held after 20 s)")
        #expect(await woken.value, "the waiter was woken by the read-back")
        #expect(try await store.hub.headPosition() == 5)
        #expect(try await Self.positions(store, from: 0, count: 5) == Array(1...5))
    }

    /// A stale hub brought up to date after a few commits reads one page and no head; after more
    /// than its ring holds (and more than a page) it asks for the head and restarts the ring
    /// there, and readers still see every event once.
    @Test func aStaleRefreshReadsTheHeadOnlyAfterAFullPage() async throws {
        let adapter = CountingAdapter()
        let store = EventStore(adapter: adapter, options: .init(subscriberBuffer: 16))
        #expect(try await store.hub.headPosition() == 0)
        // Commits of another process: the hub learns of them, not of their events.
        func external(_ stream: String) async throws {
            _ = try await adapter.append(
                AppendRequest(streamID: stream, events: [EventData(id: UUID().uuidString, type: "E", data: Data("{}".utf8))], expectedVersion: .any),
                hook: nil)
            await store.hub.notifyCommitted()
        }
        for i in 0..<5 { try await external("s-\(i)") }
        let heads = adapter.heads.load(ordering: .relaxed), reads = adapter.readAlls.load(ordering: .relaxed)
        #expect(try await store.hub.headPosition() == 5)
        #expect(adapter.heads.load(ordering: .relaxed) == heads, "no head query for a short page")
        #expect(adapter.readAlls.load(ordering: .relaxed) == reads + 1)
        for i in 0..<1_200 { try await external("t-\(i % 7)") }
        #expect(try await store.hub.headPosition() == 1_205)
        #expect(adapter.heads.load(ordering: .relaxed) == heads + 1, "a full page asks for the head once")
        #expect(try await Self.positions(store, from: 1_195, count: 10) == Array(1_196...1_205))
        #expect(try await Self.positions(store, from: 0, count: 1_205) == Array(1...1_205))
    }

    /// A new subscription is never answered from memory older than storage: a stream another
    /// process deleted (its `$StreamDeleted` record not yet seen by this hub), and a tenant
    /// deleted and written again elsewhere (the hub's log is not storage's any more). Two stores
    /// on one adapter stand for two processes: the memory adapter tells neither of the other's
    /// commits.
    @Test func aNewSubscriptionRevalidatesTheRingAgainstStorage() async throws {
        let adapter = InMemoryStorage()
        let here = EventStore(adapter: adapter), elsewhere = EventStore(adapter: adapter)
        func ids(_ store: EventStore) async throws -> [String] {
            var out: [String] = []
            for try await m in store.messages(.all, after: 0) {
                if case .event(let e) = m { out.append(e.streamID + ":" + e.type) }
                if case .caughtUp = m { break }
            }
            return out
        }
        #expect(try await ids(here) == [])
        try await here.append("a-1", events: [Self.event()])
        try await here.append("secret-1", events: [EventData(type: "Pii", data: Data(#"{"ssn":"1"}"#.utf8))])
        #expect(try await ids(here) == ["a-1:E", "secret-1:Pii"])
        try await elsewhere.deleteStream("secret-1")
        #expect(try await ids(here) == ["a-1:E", "$deletions:$StreamDeleted"], "the deleted stream is not served from memory")

        // The tenant deleted and written again elsewhere: positions start over with other events.
        #expect(try await adapter.createTenant("t1"))
        let tenantHere = try here.forTenant("t1"), tenantElsewhere = try elsewhere.forTenant("t1")
        #expect(try await ids(tenantHere) == [])  // the hub serves: these appends go into its ring
        for i in 0..<3 { try await tenantHere.append("old-\(i)", events: [Self.event()]) }
        #expect(try await ids(tenantHere).count == 3)
        #expect(try await adapter.deleteTenant("t1"))
        for i in 0..<5 { try await tenantElsewhere.append("new-\(i)", events: [Self.event()]) }
        #expect(try await ids(tenantHere) == (0..<5).map { "new-\($0):E" }, "no old event, no new one skipped")
    }

    /// This process's commits that follow the hub's head go into the ring as the adapter returned
    /// them, with no storage read; a commit after another process's (a gap) is read from storage,
    /// gap included; a notification for events the hub has already read changes nothing.
    @Test func aCommitFollowingTheHeadGoesIntoTheRingWithoutARead() async throws {
        let adapter = CountingAdapter()
        let store = EventStore(adapter: adapter)
        #expect(try await store.hub.headPosition() == 0)
        let reads = adapter.readAlls.load(ordering: .relaxed)
        for i in 0..<50 { try await store.append("s-\(i % 4)", events: [Self.event(), Self.event()]) }
        #expect(try await store.hub.headPosition() == 100)
        #expect(adapter.readAlls.load(ordering: .relaxed) == reads, "read back from storage")
        #expect(await store.hub.directCommits == 50)
        let stored = try await adapter.inner.readAll(after: 0, filter: .all, limit: 1_000)
        guard case .events(let ring, let cursor) = try await store.hub.read(after: 0, filter: .all, limit: 1_000) else {
            Issue.record("the ring does not hold the commits")
            return
        }
        #expect(ring == stored && cursor == 100, "the ring holds the events exactly as stored")

        // Another process commits position 101; this process's next commit (102) does not follow
        // the head: the hub reads both from storage.
        let other = try await adapter.inner.append(
            AppendRequest(streamID: "other", events: [EventData(id: UUID().uuidString, type: "E", data: Data("{}".utf8))], expectedVersion: .any),
            hook: nil)
        try await store.append("s-0", events: [Self.event()])
        #expect(try await store.hub.headPosition() == 102)
        #expect(adapter.readAlls.load(ordering: .relaxed) == reads + 1)
        #expect(try await Self.positions(store, from: 99, count: 3) == [100, 101, 102])
        // (The subscription checked the hub against storage as it started: two reads, the probe
        // of the ring's last event and the refresh; see `revalidate()`.)
        // The other process's notification arrives late: nothing to read, nothing changes.
        await store.hub.notifyCommitted(other.events)
        #expect(try await store.hub.headPosition() == 102)
        #expect(adapter.readAlls.load(ordering: .relaxed) == reads + 3)
        #expect(await store.hub.directCommits == 50)
    }

    /// The ring is bounded by what its events weigh as well as by their number: 40 events of
    /// 100 KB each with a 1 MiB budget keep ~10 in memory (all 40 were kept, and with events of a
    /// megabyte a ring of 10,000 held ~10 GiB), the newest always; a reader behind the ring is
    /// sent to storage.
    @Test func theRingIsBoundedByWhatItsEventsWeigh() async throws {
        let storage = InMemoryStorage()
        let hub = SubscriptionHub(adapter: storage, capacity: 10_000, capacityBytes: 1 << 20)
        #expect(try await hub.headPosition() == 0)
        let payload = Data(("\"" + String(repeating: "x", count: 100_000) + "\"").utf8)
        for i in 0..<40 {
            let r = try await storage.append(
                AppendRequest(streamID: "s-\(i % 3)", events: [EventData(id: UUID().uuidString, type: "Big", data: payload)], expectedVersion: .any),
                hook: nil)
            await hub.notifyCommitted(r.events)
        }
        let (events, bytes) = await hub.ringFootprint
        #expect(events >= 1 && events <= 11 && bytes <= (1 << 20), "\(events) events, \(bytes) bytes")
        // The newest is in memory; an old cursor reads storage.
        guard case .events(let newest, _) = try await hub.read(after: 39, filter: .all, limit: 10), newest.map(\.globalPosition) == [40],
              case .fromStorage = try await hub.read(after: 0, filter: .all, limit: 10) else {
            Issue.record("expected position 40 in the ring and position 1 in storage only")
            return
        }
        // Commits read back by the pump (another process's, say): each page stops at a quarter of
        // the budget (256 KiB: three events of ~100 KB), the ring stays bounded, every event is read.
        #expect(await hub.pumpPageBytes == 256 << 10)
        for i in 0..<30 {
            _ = try await storage.append(
                AppendRequest(streamID: "p-\(i % 3)", events: [EventData(id: UUID().uuidString, type: "Big", data: payload)], expectedVersion: .any),
                hook: nil)
        }
        await hub.notifyCommitted()
        #expect(try await hub.headPosition() == 70)
        #expect(await hub.ringFootprint.bytes <= (1 << 20))
        // One event larger than the budget is kept alone.
        let huge = Data(("\"" + String(repeating: "y", count: 2 << 20) + "\"").utf8)
        let r = try await storage.append(
            AppendRequest(streamID: "s-9", events: [EventData(id: UUID().uuidString, type: "Huge", data: huge)], expectedVersion: .any), hook: nil)
        await hub.notifyCommitted(r.events)
        #expect(await hub.ringFootprint.events == 1)
    }

    /// Commits of one batch notified out of order (the later append's notification first): the
    /// later one waits for the gap's notification and both go into the ring without a read; a
    /// gap never notified is read after the grace; a reader arriving while commits wait ahead of
    /// a gap reads storage at once (it must see its own append).
    @Test func commitsNotifiedOutOfOrderGoIntoTheRingWithoutARead() async throws {
        let adapter = CountingAdapter()
        // A grace long enough that a loaded CI machine cannot run it out between two notifications.
        let hub = SubscriptionHub(adapter: adapter, gapGrace: .milliseconds(500))
        #expect(try await hub.headPosition() == 0)
        func append(_ stream: String, _ n: Int) async throws -> AppendResult {
            try await adapter.inner.append(
                AppendRequest(streamID: stream, events: (0..<n).map { _ in EventData(id: UUID().uuidString, type: "E", data: Data("{}".utf8)) }, expectedVersion: .any),
                hook: nil)
        }
        func parkedWaiter(after position: UInt64) async throws -> Task<Bool, Never> {
            let waiter = Task { await hub.waitForEvents(after: position, timeout: .seconds(20)) }
            let deadline = ContinuousClock.now + .seconds(10)
            while !(await hub.isWaitedFor) {
                guard ContinuousClock.now < deadline else { throw CancellationError() }
                try await Task.sleep(for: .milliseconds(1))
            }
            return waiter
        }
        let reads = adapter.readAlls.load(ordering: .relaxed)
        let a = try await append("a", 2), b = try await append("b", 1)
        let first = try await parkedWaiter(after: 0)
        await hub.notifyCommitted(b.events)
        #expect(await hub.directCommits == 0, "position 3 went in before 1-2")
        await hub.notifyCommitted(a.events)
        #expect(await first.value)
        #expect(await hub.directCommits == 2)
        #expect(adapter.readAlls.load(ordering: .relaxed) == reads, "read from storage")
        guard case .events(let ring, let cursor) = try await hub.read(after: 0, filter: .all, limit: 100) else {
            Issue.record("the ring does not hold the commits")
            return
        }
        #expect(ring == (try await adapter.inner.readAll(after: 0, filter: .all, limit: 100)) && cursor == 3)

        // Position 4 is never notified (another process's, or an append answered by its
        // deadline): 5 waits the grace, then the hub reads both.
        _ = try await append("c", 1)
        let e = try await append("d", 1)
        let second = try await parkedWaiter(after: 3)
        await hub.notifyCommitted(e.events)
        #expect(await second.value)
        #expect(try await hub.headPosition() == 5)
        #expect(adapter.readAlls.load(ordering: .relaxed) > reads)

        // A reader while 7 waits ahead of 6: it reads storage and sees 7.
        _ = try await append("f", 1)
        let g = try await append("g", 1)
        await hub.notifyCommitted(g.events)
        let before = adapter.readAlls.load(ordering: .relaxed)
        #expect(try await hub.headPosition() == 7)
        #expect(adapter.readAlls.load(ordering: .relaxed) == before + 1)
    }

    /// A live async projection takes its pages from the hub's ring (which the hub read once for
    /// every waiter), not from storage: after it caught up, events appended one at a time cost
    /// it no storage read, and it still sees exactly the types it handles, each once, with its
    /// checkpoint past the ones it does not handle.
    @Test func aLiveProjectionReadsFromTheRing() async throws {
        let adapter = CountingAdapter()
        let store = EventStore(adapter: adapter)
        for i in 0..<20 { try await store.append("s-\(i % 3)", events: [EventData(type: i % 2 == 0 ? "A" : "B", data: Data("{}".utf8))]) }
        let box = RecordingProjection.Box()
        let engine = ProjectionEngine(store: store)
        await engine.registerAsync(RecordingProjection(handledEvents: ["A"], box: box))
        try await engine.start()
        _ = try await engine.waitUntilCaughtUp("recorder", to: 20)
        let before = adapter.filteredReadAlls.load(ordering: .relaxed)
        for i in 20..<60 {
            try await store.append("s-\(i % 3)", events: [EventData(type: i % 2 == 0 ? "A" : "B", data: Data("{}".utf8))])
            let status = try await engine.waitUntilCaughtUp("recorder", to: UInt64(i + 1), timeout: .seconds(20))
            #expect(status.checkpoint == UInt64(i + 1))
        }
        await engine.stop()
        #expect(adapter.filteredReadAlls.load(ordering: .relaxed) == before, "live pages came from storage, not the ring")
        let applied = box.applied.withLock { $0 }
        #expect(applied == stride(from: 1, through: 59, by: 2).map(UInt64.init), "each A once, in order, no B")
    }

    /// A reader arriving while the hub is reading new commits waits for that read: it must not
    /// report "caught up" from the head the pump is about to move.
    @Test func aReaderDuringAPumpWaitsForIt() async throws {
        let adapter = CountingAdapter(readDelay: .milliseconds(100))
        let store = EventStore(adapter: adapter)
        // A live subscriber, so that commits are read back at once (and slowly).
        let live = Task {
            var n = 0
            for try await _ in store.subscribeAll(from: 0) {
                n += 1
                if n == 2 { break }
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let first = Task { try await store.append("a", events: [Self.event()]) }
        try await Task.sleep(for: .milliseconds(30))
        try await store.append("b", events: [Self.event()])
        var messages: [String] = []
        for try await m in store.messages(.all, after: 0) {
            switch m {
            case .event(let e): messages.append("event \(e.globalPosition)")
            case .caughtUp(let p): messages.append("caught-up \(p)")
            default: continue
            }
            if messages.last?.hasPrefix("caught-up") == true { break }
        }
        #expect(messages == ["event 1", "event 2", "caught-up 2"])
        _ = try await first.value
        try await live.value
    }

    /// Collects a subscription's messages up to its first `caught-up`.
    static func untilCaughtUp(_ store: EventStore, after: UInt64) async throws -> [String] {
        var messages: [String] = []
        for try await m in store.messages(.all, after: after) {
            switch m {
            case .event(let e): messages.append("event \(e.globalPosition)")
            case .caughtUp(let p): messages.append("caught-up \(p)")
            default: continue
            }
            if messages.last?.hasPrefix("caught-up") == true { break }
        }
        return messages
    }

    /// While one reader brings a stale hub up to date (slowly), another reader must wait for it
    /// rather than answer from the old head.
    @Test func aReaderDuringAnotherReadersRefreshWaitsForIt() async throws {
        let adapter = CountingAdapter(headDelay: .milliseconds(50))
        let store = EventStore(adapter: adapter)
        _ = try await store.hub.headPosition()  // initialised at 0
        try await store.append("a", events: [Self.event()])  // nobody waits: the hub is stale
        async let first = Self.untilCaughtUp(store, after: 0)
        try await Task.sleep(for: .milliseconds(20))
        let second = try await Self.untilCaughtUp(store, after: 0)
        #expect(second == ["event 1", "caught-up 1"])
        #expect(try await first == ["event 1", "caught-up 1"])
    }
}

/// Holds whoever calls ``pass()`` until ``open()``.
actor Gate {
    private var isOpen = false
    private var held: [CheckedContinuation<Void, Never>] = []

    func pass() async {
        if isOpen { return }
        await withCheckedContinuation { held.append($0) }
    }

    func open() {
        isOpen = true
        for c in held { c.resume() }
        held = []
    }
}

/// Set once the appends of a test returned.
final class Appended: Sendable {
    let flag = Atomic<Bool>(false)
}

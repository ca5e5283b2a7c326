import Foundation
import Mink
import MinkTestFixtures
import MinkTesting
import Synchronization
import Testing

/// Fails the next `failures` reads (`readAll`, `readStream`, `headPosition`) with `error`.
final class ReadFlakyAdapter: EventStoreAdapter {
    let inner = InMemoryStorage()
    let failures = Mutex(0)
    let error: MinkError
    init(error: MinkError = .unavailable("storage restarting")) { self.error = error }

    private func failMaybe() throws {
        if failures.withLock({ f in defer { f = Swift.max(f - 1, 0) }; return f > 0 }) { throw error }
    }
    func append(_ request: AppendRequest, hook: AppendTransactionHook?) async throws -> AppendResult {
        try await inner.append(request, hook: hook)
    }
    func readStream(_ s: String, from v: Int64, limit: Int, direction: ReadDirection) async throws -> [Event] {
        try failMaybe()
        return try await inner.readStream(s, from: v, limit: limit, direction: direction)
    }
    func streamInfo(_ s: String) async throws -> StreamInfo? { try await inner.streamInfo(s) }
    func readAll(after p: UInt64, filter: EventFilter, limit: Int) async throws -> [Event] {
        try failMaybe()
        return try await inner.readAll(after: p, filter: filter, limit: limit)
    }
    func headPosition() async throws -> UInt64 {
        try failMaybe()
        return try await inner.headPosition()
    }
    func forTenant(_ t: String) throws -> any EventStoreAdapter { try inner.forTenant(t) }
}

@Suite("Subscriptions", .timeLimit(.minutes(3)))
struct SubscriptionTests {
    /// A transient storage error (`.unavailable`) does not end a subscription — the read is made
    /// again after a pause, and every event comes once, in order (before 2026-12-07 the first one
    /// ended it); another error is thrown.
    @Test func transientStorageErrorsAreWaitedOut() async throws {
        let adapter = ReadFlakyAdapter()
        // Written through another store: the subscriber's hub has none of them in memory, so
        // its catch-up reads storage.
        let writer = EventStore(adapter: adapter)
        for i in 0..<6 { try await writer.append("order-\(i % 2)", events: [raw("E\(i)")]) }
        let store = EventStore(adapter: adapter)

        adapter.failures.withLock { $0 = 3 }
        var all = store.subscribeAll(from: 0).makeAsyncIterator()
        var positions: [UInt64] = []
        while positions.count < 6, let e = try await all.next() { positions.append(e.globalPosition) }
        #expect(positions == [1, 2, 3, 4, 5, 6])
        #expect(all.transientFailures == 3)

        adapter.failures.withLock { $0 = 2 }
        var stream = EventStore(adapter: adapter).subscribeStream("order-1").makeAsyncIterator()
        var versions: [Int64] = []
        while versions.count < 3, let e = try await stream.next() { versions.append(e.version) }
        #expect(versions == [1, 2, 3])
        #expect(stream.transientFailures == 2)

        let broken = ReadFlakyAdapter(error: MinkError(.serializationFailed, "a row that does not decode"))
        try await EventStore(adapter: broken).append("s", events: [raw("E")])
        broken.failures.withLock { $0 = 1 }
        var failing = EventStore(adapter: broken).subscribeAll(from: 0).makeAsyncIterator()
        await #expect(throws: MinkError.self) { _ = try await failing.next() }
    }

    @Test func allFromZeroWhileFourTasksAppendSeesEveryPositionOnceInOrder() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        try await store.append("pre-1", events: (0..<100).map { _ in raw("Pre") })
        let total = 100 + 4 * 500
        let seen = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            group.addTask {
                var positions: [UInt64] = []
                for try await e in store.subscribeAll(from: 0) {
                    positions.append(e.globalPosition)
                    if positions.count == total { break }
                }
                return positions
            }
            for w in 0..<4 {
                group.addTask {
                    for i in 0..<500 { try await store.append("w\(w)-\(i % 7)", events: [raw("E")]) }
                    return []
                }
            }
            var result: [UInt64] = []
            for try await r in group where !r.isEmpty { result = r }
            return result
        }
        #expect(seen == Array(1...UInt64(total)))
    }

    @Test func streamAndCategorySubscriptions() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        try await store.append("order-1", events: [raw("A"), raw("B")])
        try await store.append("user-1", events: [raw("U")])
        try await store.append("order-2", events: [raw("C")])
        async let streamEvents: [Int64] = {
            var versions: [Int64] = []
            for try await e in store.subscribeStream("order-1", fromVersion: 1) {
                versions.append(e.version)
                if versions.count == 3 { break }
            }
            return versions
        }()
        async let categoryEvents: [String] = {
            var streams: [String] = []
            for try await e in store.subscribeCategory("order", from: 1) {
                streams.append(e.streamID)
                if streams.count == 4 { break }
            }
            return streams
        }()
        try await Task.sleep(for: .milliseconds(20))
        try await store.append("user-2", events: [raw("U")])
        try await store.append("order-1", events: [raw("D"), raw("E")])
        #expect(try await streamEvents == [2, 3, 4])
        #expect(try await categoryEvents == ["order-1", "order-2", "order-1", "order-1"])
    }

    /// A stream subscription starting beyond the stream's version (a cursor from another
    /// database, say) keeps its start, as the global log's subscriptions do: `caught-up` carries
    /// it and only versions after it are delivered. It answered `caught-up` with the start and
    /// then delivered the next live events below it (a reconnect with the same start did not).
    @Test func aStreamStartBeyondItsVersionIsKept() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        try await store.append("s-1", events: [raw("A"), raw("B"), raw("C"), raw("D")])
        for start: UInt64 in [100, UInt64(Int64.max)] {
            var iterator = store.messages(.stream("s-1"), after: start).makeAsyncIterator()
            guard case .caughtUp(let p)? = try await iterator.next() else {
                Issue.record("after \(start): expected caught-up first")
                continue
            }
            #expect(p == start, "after \(start): caught-up at the start")
        }
        var live = store.messages(.stream("s-1"), after: 5, heartbeat: .milliseconds(100)).makeAsyncIterator()
        _ = try await live.next()
        try await store.append("s-1", events: [raw("E")])  // version 5: not after the start
        let next = try await live.next()
        guard case .heartbeat? = next else {
            Issue.record("version 5 is not after 5: expected a heartbeat, got \(String(describing: next))")
            return
        }
        try await store.append("s-1", events: [raw("F")])  // version 6
        var after: SubscriptionMessage? = .heartbeat
        while case .heartbeat? = after { after = try await live.next() }
        guard case .event(let e)? = after else {
            Issue.record("expected version 6, got \(String(describing: after))")
            return
        }
        #expect(e.version == 6)
    }

    /// A subscription whose filter matches none of a busy tenant's traffic still gets its
    /// heartbeats: the interval counts from the last message it got, not from the last commit
    /// that woke it (no keepalive ever came, and proxies cut such streams).
    @Test(arguments: [SubscriptionTarget.all, .category("other"), .stream("other-1")])
    func heartbeatsReachAFilteredSubscriptionOfABusyTenant(_ target: SubscriptionTarget) async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let types: [String] = if case .all = target { ["Zzz"] } else { [] }
        var live = store.messages(target, after: 0, eventTypes: types, heartbeat: .milliseconds(200)).makeAsyncIterator()
        guard case .caughtUp? = try await live.next() else {
            Issue.record("expected caught-up first")
            return
        }
        let writing = WriterRunning()
        let writer = Task {
            defer { writing.value.withLock { $0 = false } }
            for i in 0..<400 {
                if Task.isCancelled { return }
                try await store.append("busy-1", events: [raw("A\(i)")])
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        defer { writer.cancel() }
        let start = ContinuousClock.now
        var heartbeats = 0
        while heartbeats < 3, ContinuousClock.now - start < .seconds(10) {
            guard let m = try await live.next() else { break }
            if case .heartbeat = m { heartbeats += 1 } else { Issue.record("\(target): unexpected \(m)") }
        }
        // The writer appends for 8 s or more (longer on a loaded machine: it is slowed as well):
        // the three heartbeats came while it was still appending, i.e. while the tenant was busy.
        let elapsed = ContinuousClock.now - start
        let busy = writing.value.withLock { $0 }
        #expect(heartbeats == 3 && busy, "\(target): \(heartbeats) heartbeats in \(elapsed), writer still appending: \(busy)")
        #expect(elapsed >= .milliseconds(550), "three intervals of 200 ms at least: \(elapsed)")
    }

    /// A subscription waiting for events when its hub shuts down (a tenant deleted, the server
    /// stopping) hands control back at once with a heartbeat, so its consumer can end the stream.
    /// Counting the heartbeat from the last message (ca896c2) first dropped that: the loop spun
    /// on the cooperative pool until the interval passed, stalling the whole process (~15 s).
    @Test func aWaitingSubscriptionYieldsAtOnceWhenItsHubShutsDown() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let waiting = Task { () throws -> (SubscriptionMessage?, Duration) in
            var live = store.messages(.all, after: 0, heartbeat: .seconds(30)).makeAsyncIterator()
            guard case .caughtUp? = try await live.next() else { return (nil, .zero) }
            let start = ContinuousClock.now
            let next = try await live.next()
            return (next, start.duration(to: .now))
        }
        try await Task.sleep(for: .milliseconds(300))  // waiting for events by then (either way it must yield)
        await store.hub.shutdown()
        let (message, waited) = try await waiting.value
        guard case .heartbeat? = message else {
            Issue.record("expected a heartbeat when the hub shut down, got \(String(describing: message))")
            return
        }
        #expect(waited < .seconds(5), "the subscription gave control back after \(waited), not at once")
    }

    @Test func typeFilterAndMessages() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        try await store.append("s-1", events: [raw("A"), raw("B"), raw("A")])
        var messages: [SubscriptionMessage] = []
        for try await m in store.messages(.all, after: 0, eventTypes: ["A"]) {
            messages.append(m)
            if case .caughtUp = m { break }
        }
        #expect(messages.count == 3)
        if case .caughtUp(let p) = messages.last { #expect(p == 3) } else { Issue.record("expected caughtUp, got \(messages)") }
        let types = messages.compactMap { if case .event(let e) = $0 { return e.type } else { return nil } }
        #expect(types == ["A", "A"])
    }

    @Test func cancellingEndsTheSubscription() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let task = Task {
            var n = 0
            for try await _ in store.subscribeAll() { n += 1 }
            return n
        }
        try await store.append("s-1", events: [raw("A")])
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let n = try await task.value
        #expect(n == 1)
    }

    @Test func heartbeatsWhenIdle() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        var kinds: [String] = []
        for try await m in store.messages(.all, after: 0, heartbeat: .milliseconds(20)) {
            switch m {
            case .caughtUp: kinds.append("caughtUp")
            case .heartbeat: kinds.append("heartbeat")
            default: kinds.append("other")
            }
            if kinds.count == 2 { break }
        }
        #expect(kinds == ["caughtUp", "heartbeat"])
    }

    /// A consumer that falls more than the buffer behind is switched to reading storage and comes
    /// back live, losing and repeating nothing; the hub's memory stays at its capacity.
    @Test func slowConsumerFallsBehindAndCatchesUpWithoutLoss() async throws {
        let store = EventStore(adapter: InMemoryStorage(), options: EventStore.Options(subscriberBuffer: 16))
        var iterator = store.messages(.all, after: 0, pageSize: 8).makeAsyncIterator()
        // Catch up on the empty log, then go live.
        guard case .caughtUp(0) = try await iterator.next() else { Issue.record("expected caughtUp(0)"); return }
        try await store.append("s-1", events: [raw("E")])
        guard case .event(let first) = try await iterator.next() else { Issue.record("expected an event"); return }
        #expect(first.globalPosition == 1)
        // Now 200 events arrive while the consumer does not read: far more than the buffer of 16.
        for _ in 0..<200 { try await store.append("s-1", events: [raw("E")]) }
        var positions: [UInt64] = [1]
        var fellBehind: [UInt64] = []
        var caughtUp: [UInt64] = []
        while positions.count < 201 {
            switch try await iterator.next() {
            case .event(let e)?: positions.append(e.globalPosition)
            case .fellBehind(let p)?: fellBehind.append(p)
            case .caughtUp(let p)?: caughtUp.append(p)
            case .heartbeat?: break
            case nil:
                Issue.record("the subscription ended after \(positions.count) events")
                return
            }
        }
        #expect(positions == Array(1...201))
        #expect(fellBehind == [1])
        // After catching up from storage it announces `caughtUp` again, then continues live.
        if case .caughtUp(let p)? = try await iterator.next() { caughtUp.append(p) }
        #expect(caughtUp == [201])
        try await store.append("s-1", events: [raw("E")])
        let next = try await iterator.next()
        if case .event(let e)? = next { #expect(e.globalPosition == 202) } else { Issue.record("expected event 202, got \(String(describing: next))") }
    }
    /// `fell-behind` carries the last position *delivered* (contract section 7): with a type
    /// filter the subscription has read past it (events the filter drops), and still reports
    /// the last event the subscriber received.
    @Test func fellBehindReportsTheLastPositionDeliveredUnderAFilter() async throws {
        let store = EventStore(adapter: InMemoryStorage(), options: EventStore.Options(subscriberBuffer: 16))
        var iterator = store.messages(.all, after: 0, eventTypes: ["Wanted"], pageSize: 8).makeAsyncIterator()
        guard case .caughtUp(0) = try await iterator.next() else { Issue.record("expected caughtUp(0)"); return }
        try await store.append("s-1", events: [raw("Wanted")])  // position 1
        try await store.append("s-1", events: [raw("Other")])  // position 2: read, not delivered
        guard case .event(let first) = try await iterator.next() else { Issue.record("expected an event"); return }
        #expect(first.globalPosition == 1)
        // Far more than the buffer while the consumer does not read; none of them wanted.
        for _ in 0..<100 { try await store.append("s-1", events: [raw("Other")]) }
        try await store.append("s-1", events: [raw("Wanted")])  // position 103
        var fellBehind: [UInt64] = []
        var delivered: [UInt64] = [1]
        while delivered.count < 2 {
            switch try await iterator.next() {
            case .event(let e)?: delivered.append(e.globalPosition)
            case .fellBehind(let p)?: fellBehind.append(p)
            case .caughtUp?, .heartbeat?: break
            case nil:
                Issue.record("the subscription ended")
                return
            }
        }
        #expect(delivered == [1, 103])
        #expect(fellBehind == [1], "the last position delivered before falling behind")
    }

    /// The hub forgetting its memory (what every LISTEN reconnect does, e.g. after a PostgreSQL
    /// restart) sends live readers to storage, but they did not fall behind: no `fellBehind`,
    /// every event once, and still live. Before, every up-to-date subscriber got `fell-behind`.
    @Test func aForgottenRingIsNotFallingBehind() async throws {
        let store = EventStore(adapter: InMemoryStorage(), options: EventStore.Options(subscriberBuffer: 16))
        var iterator = store.messages(.all, after: 0, pageSize: 8).makeAsyncIterator()
        guard case .caughtUp(0) = try await iterator.next() else { Issue.record("expected caughtUp(0)"); return }
        try await store.append("s-1", events: [raw("E")])
        guard case .event(let first) = try await iterator.next() else { Issue.record("expected an event"); return }
        #expect(first.globalPosition == 1)
        // New events reach the ring (local appends go in at commit), then the hub forgets it
        // before the reader reads them.
        for _ in 0..<5 { try await store.append("s-1", events: [raw("E")]) }
        await store.hub.forgetRecentEvents()
        var positions: [UInt64] = [1]
        var other: [String] = []
        while positions.count < 6 {
            switch try await iterator.next() {
            case .event(let e)?: positions.append(e.globalPosition)
            case .fellBehind(let p)?: other.append("fellBehind(\(p))")
            case .caughtUp(let p)?: other.append("caughtUp(\(p))")
            case .heartbeat?: break
            case nil:
                Issue.record("the subscription ended")
                return
            }
        }
        #expect(positions == Array(1...6))
        #expect(other.isEmpty, "\(other)")
        // Still live: the next event comes from memory, with no message before it.
        try await store.append("s-1", events: [raw("E")])
        let next = try await iterator.next()
        if case .event(let e)? = next { #expect(e.globalPosition == 7) } else { Issue.record("expected event 7, got \(String(describing: next))") }
    }
}

/// Whether a test's writer task is still appending.
private final class WriterRunning: Sendable {
    let value = Mutex(true)
}

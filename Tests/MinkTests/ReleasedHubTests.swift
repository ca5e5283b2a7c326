import Foundation
@testable import Mink
import Synchronization
import Testing

/// A subscription hub over storage that reports other processes' commits and asks for its
/// streams to be given back when idle (``EventStoreAdapter/externalCommitsIdleRelease``, as
/// PostgreSQL with a database per tenant does): while released it reads storage before every
/// answer and forgets what it held, and the next waiter listens again.
@Suite("Subscription hub: released when idle", .timeLimit(.minutes(1)))
struct ReleasedHubTests {
    /// In-memory storage whose "other processes" are the test: it commits to `inner` directly
    /// and signals through the streams the hub asked for.
    final class ExternalAdapter: EventStoreAdapter {
        let inner = InMemoryStorage()
        /// The streams' continuations, in the order the hub asked for them.
        let commits = Mutex<[AsyncStream<Void>.Continuation]>([])
        /// Streams the hub ended (both kinds).
        let ended = Atomic<Int>(0)
        /// While set, `readAll` reads, then waits until it is cleared (its answer predates
        /// what is committed meanwhile); `heldReads` counts the reads waiting.
        let holdReads = Atomic<Bool>(false)
        let heldReads = Atomic<Int>(0)

        var externalCommitsIdleRelease: Duration? { .milliseconds(100) }

        func externalCommits() -> AsyncStream<Void>? {
            let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            continuation.onTermination = { [weak self] _ in self?.ended.add(1, ordering: .relaxed) }
            commits.withLock { $0.append(continuation) }
            return stream
        }
        func externalRemovals() -> AsyncStream<Void>? {
            let (stream, continuation) = AsyncStream.makeStream(of: Void.self)
            continuation.onTermination = { [weak self] _ in self?.ended.add(1, ordering: .relaxed) }
            return stream
        }

        func append(_ request: AppendRequest, hook: AppendTransactionHook?) async throws -> AppendResult {
            try await inner.append(request, hook: hook)
        }
        func readStream(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws -> [Event] {
            try await inner.readStream(streamID, from: version, limit: limit, direction: direction)
        }
        func streamInfo(_ streamID: String) async throws -> StreamInfo? { try await inner.streamInfo(streamID) }
        func readAll(after position: UInt64, filter: EventFilter, limit: Int) async throws -> [Event] {
            let page = try await inner.readAll(after: position, filter: filter, limit: limit)
            if holdReads.load(ordering: .relaxed) {
                heldReads.add(1, ordering: .relaxed)
                while holdReads.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(2)) }
            }
            return page
        }
        func headPosition() async throws -> UInt64 { try await inner.headPosition() }
        func forTenant(_ tenantID: String) throws -> any EventStoreAdapter { try inner.forTenant(tenantID) }
    }

    static func append(_ a: ExternalAdapter, _ stream: String, _ n: Int = 1) async throws -> AppendResult {
        try await a.inner.append(
            AppendRequest(streamID: stream, events: (0..<n).map { _ in EventData(type: "E", data: Data("{}".utf8)) }, expectedVersion: .any),
            hook: nil)
    }

    static func until(_ what: String, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while await !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting for \(what)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    static func positions(_ read: SubscriptionHub.Read) -> [UInt64]? {
        if case .events(let events, _) = read { return events.map(\.globalPosition) }
        return nil
    }

    @Test func aReleasedHubAnswersFromStorageAndTheNextWaiterListensAgain() async throws {
        let a = ExternalAdapter()
        let hub = SubscriptionHub(adapter: a)
        defer { Task { await hub.shutdown() } }
        // This process's own commits go into the ring.
        #expect(try await hub.headPosition() == 0)
        let own = try await Self.append(a, "s", 2)
        await hub.notifyCommitted(own.events)
        #expect(await hub.waitForEvents(after: 0, timeout: .milliseconds(10)) == true)
        #expect(Self.positions(try await hub.read(after: 0, filter: .all, limit: 10)) == [1, 2])
        #expect(a.commits.withLock { $0.count } == 1)

        // Nobody waits: the streams are given back.
        try await Self.until("the hub to give its streams back") { await hub.releases == 1 }
        try await Self.until("both streams to end") { a.ended.load(ordering: .relaxed) == 2 }

        // Another process commits (no notice reaches the hub): answered all the same.
        _ = try await Self.append(a, "t")
        #expect(try await hub.headPosition() == 3)
        // Another process's scavenge removes position 1 (its notice missed too): not served
        // from what the hub held.
        try await a.inner.setStreamRetention("s", StreamRetention(maxCount: 1))
        #expect(try await a.inner.scavengeBatch(now: Date(), limit: 100) == 1)
        let read = try await hub.read(after: 0, filter: .all, limit: 10)
        if let served = Self.positions(read) { #expect(!served.contains(1), "a removed event served from memory: \(served)") }

        // The next waiter asks for the streams again and is woken through them.
        let waiter = Task { await hub.waitForEvents(after: 3, timeout: .seconds(20)) }
        try await Self.until("the hub to listen again") { a.commits.withLock { $0.count } == 2 }
        _ = try await Self.append(a, "u")
        _ = a.commits.withLock { $0[1].yield() }
        #expect(await waiter.value == true)
        #expect(try await hub.headPosition() == 4)
    }

    /// Released, a reader arriving while another reader's pass runs does not take that pass's
    /// answer, read before a commit that ended before the second reader asked.
    @Test func aReaderOfAReleasedHubWaitsForAPassBegunAfterIt() async throws {
        let a = ExternalAdapter()
        let hub = SubscriptionHub(adapter: a)
        defer { Task { await hub.shutdown() } }
        #expect(try await hub.headPosition() == 0)
        try await Self.until("the hub to give its streams back") { await hub.releases == 1 }

        a.holdReads.store(true, ordering: .relaxed)
        let first = Task { try await hub.headPosition() }
        try await Self.until("the first reader's pass to read") { a.heldReads.load(ordering: .relaxed) == 1 }
        _ = try await Self.append(a, "s")
        let second = Task { try await hub.headPosition() }
        try await Task.sleep(for: .milliseconds(50))
        a.holdReads.store(false, ordering: .relaxed)
        _ = try await first.value
        #expect(try await second.value == 1, "answered from a pass that read before the commit")
    }
}

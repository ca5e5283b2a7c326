import Foundation
@testable import Mink
import Testing

/// The hub's lifecycle (uninitialized → idle ⇄ pumping, stale or not): the legal sequences
/// and the facts readers rely on.
@Suite("Subscription hub lifecycle")
struct SubscriptionHubLifecycleTests {
    typealias CountingAdapter = SubscriptionHubTests.CountingAdapter

    static func eventually(_ seconds: Double = 30, _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return await condition()
    }

    @Test func commitsBeforeAndAfterInitializationMakeTheHubStaleUntilRead() async throws {
        let adapter = CountingAdapter()
        let store = EventStore(adapter: adapter, options: .init(subscriberBuffer: 16))
        let hub = store.hub
        #expect(await hub.lifecycle == .uninitialized(stale: false))
        try await store.append("s", events: [SubscriptionHubTests.event()])
        #expect(await hub.lifecycle == .uninitialized(stale: true), "a head read under way may predate the commit")
        #expect(try await hub.headPosition() == 1)
        #expect(await hub.lifecycle == .idle(stale: false), "the first reader refreshed")

        try await store.append("s", events: [SubscriptionHubTests.event()])
        #expect(await hub.lifecycle == .idle(stale: true), "nobody waits: nothing is read back")
        #expect(adapter.readAlls.load(ordering: .relaxed) == 1)
        #expect(try await hub.headPosition() == 2)
        #expect(await hub.lifecycle == .idle(stale: false))
    }

    @Test func aCommitDuringAPumpAsksForAnotherPass() async throws {
        let adapter = CountingAdapter(readDelay: .milliseconds(200))
        let store = EventStore(adapter: adapter, options: .init(subscriberBuffer: 16))
        let hub = store.hub
        #expect(try await hub.headPosition() == 0)
        let waiter = Task { await hub.waitForEvents(after: 0, timeout: .seconds(10)) }
        // The waiter registers, then a commit starts the pump (the append awaits its pass).
        try await Task.sleep(for: .milliseconds(50))
        let pump = Task { try await store.append("s", events: [SubscriptionHubTests.event()]) }
        #expect(await Self.eventually { await hub.lifecycle == .pumping(again: false) })
        await hub.notifyCommitted()
        #expect(await hub.lifecycle == .pumping(again: true))
        #expect(await waiter.value, "the waiter was woken by the pass")
        _ = try await pump.value
        #expect(await Self.eventually { await hub.lifecycle == .idle(stale: false) })
        #expect(try await hub.headPosition() == 1)
    }
}

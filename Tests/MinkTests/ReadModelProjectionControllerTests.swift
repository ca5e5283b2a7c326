import Foundation
@testable import Mink
import MinkTestFixtures
import MinkTesting
import Testing

/// The read-model projection controller's lifecycle: stopped → standby → activating → active,
/// and back through stopping; a pause asked in any state is kept and applied to the runners.
@Suite("Read-model projection controller lifecycle", .timeLimit(.minutes(3)))
struct ReadModelProjectionControllerTests {
    static func makeController(
        _ store: EventStore, _ storage: InMemoryStorage, leases: any ProjectionLeaseProvider = LocalProjectionLeaseProvider(),
        mode: ProjectionEngine.Mode = .async
    ) -> ReadModelProjectionController {
        ReadModelProjectionController(
            projection: OrderSummaryProjection(), mode: mode, store: store, readModels: storage,
            options: AsyncOptions(batchSize: 2, retryPolicy: fastRetry), leases: leases, leaseRetryInterval: .milliseconds(50)
        )
    }

    static func isActive(_ c: ReadModelProjectionController) -> Bool {
        if case .active = c.lifecycle { return true }
        return false
    }

    static func isStopped(_ c: ReadModelProjectionController) -> Bool {
        if case .stopped = c.lifecycle { return true }
        return false
    }

    @Test func aPauseAskedBeforeTheStartHoldsTheRunnersUntilResumed() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let controller = Self.makeController(store, storage)
        try await store.append("order-1", events: [raw("OrderCreated"), raw("ItemAdded"), raw("ItemAdded")])
        #expect(Self.isStopped(controller) && !controller.lifecycle.paused)
        try await controller.pause()
        #expect(Self.isStopped(controller) && controller.lifecycle.paused, "kept while stopped")
        #expect(controller.status(head: 3).state == .stopped)

        controller.start()
        #expect(await AsyncRunnerTests.eventually { Self.isActive(controller) })
        guard case .active(_, let active) = controller.lifecycle, let serving = active.serving else {
            Issue.record("expected active with a serving runner, got \(controller.lifecycle)")
            return
        }
        #expect(active.paused && active.builder == nil)
        #expect(await AsyncRunnerTests.eventually { serving.isParked }, "the serving runner starts held")
        #expect(controller.status(head: 3).state == .paused)
        #expect(controller.status(head: 3).checkpoint == 0)

        try await controller.resume()
        #expect(await AsyncRunnerTests.eventually { controller.status(head: 3).checkpoint == 3 }, "resumed, it catches up")
        #expect(controller.status(head: 3).state == .running && !controller.lifecycle.paused)

        await controller.stop()
        #expect(Self.isStopped(controller))
        #expect(serving.status(head: 3).state == .stopped, "the runner stopped with the controller")
        let stopped = controller.status(head: 3)
        #expect(stopped.state == .stopped && stopped.checkpoint == 3)
        // Started again, it serves again from its checkpoint.
        controller.start()
        #expect(await AsyncRunnerTests.eventually { Self.isActive(controller) })
        try await store.append("order-1", events: [raw("ItemAdded")])
        #expect(await AsyncRunnerTests.eventually { controller.status(head: 4).checkpoint == 4 })
        await controller.stop()
        #expect(Self.isStopped(controller))
    }

    /// Without the lease the controller stays on standby (status from storage: the holder's,
    /// `runningHere` false), asking again; a stop then ends the lease loop.
    @Test func withoutTheLeaseItStaysOnStandby() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let controller = Self.makeController(store, storage, leases: NeverGranted())
        controller.start()
        guard case .standby = controller.lifecycle else {
            Issue.record("expected standby, got \(controller.lifecycle)")
            return
        }
        try await Task.sleep(for: .milliseconds(200))
        guard case .standby = controller.lifecycle else {
            Issue.record("expected still standby, got \(controller.lifecycle)")
            return
        }
        var status = controller.status(head: 0)
        #expect(status.state == .running && !status.runningHere, "another process holds the lease: \(status)")
        try await controller.pause()
        #expect(controller.lifecycle.paused)
        status = controller.status(head: 0)
        #expect(status.state == .paused && !status.runningHere, "the stored pause shows: \(status)")
        await controller.stop()
        #expect(Self.isStopped(controller) && controller.lifecycle.paused, "the pause outlives the stop")
        status = controller.status(head: 0)
        #expect(status.state == .stopped && !status.runningHere, "\(status)")
    }

    /// An inline projection runs in every process's appends: without the lease (another process
    /// holds it, for rebuilds only) it is `running` at the head here too — it showed `stopped`
    /// for good on every process but the holder.
    @Test func anInlineProjectionWithoutTheLeaseRunsHere() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let controller = Self.makeController(store, storage, leases: NeverGranted(), mode: .inline)
        controller.start()
        try await Task.sleep(for: .milliseconds(200))
        let status = controller.status(head: 7)
        #expect(status.state == .running && status.runningHere && status.checkpoint == 7, "\(status)")
        await controller.stop()
        #expect(controller.status(head: 7).state == .stopped)
    }

    /// When asking for the lease fails, nobody is known to run the projection: `stopped`, not
    /// the last holder's status.
    @Test func aFailingLeaseRequestShowsStopped() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let controller = Self.makeController(store, storage, leases: FailingLeases())
        controller.start()
        #expect(await AsyncRunnerTests.eventually { controller.status(head: 0).lastError != nil })
        let status = controller.status(head: 0)
        #expect(status.state == .stopped && !status.runningHere, "\(status)")
        await controller.stop()
    }

    /// Two processes on one storage: pause, resume and rebuild asked through the one without the
    /// lease reach the one running the projection (they were recorded only where asked: answered
    /// 200/202 and nothing happened), and a pause holds after a failover.
    @Test func controlAskedThroughAnotherProcessReachesTheHolder() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        // Leases of shared storage (not ``LocalProjectionLeaseProvider``: with storage one
        // process owns, the holder does not follow storage).
        let holder = Self.makeController(store, storage, leases: SharedStorageLeases())
        let other = Self.makeController(store, storage, leases: NeverGranted())
        try await store.append("order-1", events: [raw("OrderCreated"), raw("ItemAdded")])
        holder.start()
        other.start()
        #expect(await AsyncRunnerTests.eventually { holder.status(head: 2).checkpoint == 2 })

        try await other.pause()
        #expect(await AsyncRunnerTests.eventually(10) { holder.status(head: 2).state == .paused }, "\(holder.lifecycle)")
        try await store.append("order-1", events: [raw("ItemAdded")])
        try await Task.sleep(for: .milliseconds(200))
        #expect(holder.status(head: 3).checkpoint == 2, "paused, the holder applies nothing")

        try await other.resume()
        #expect(await AsyncRunnerTests.eventually(10) { holder.status(head: 3).checkpoint == 3 && holder.status(head: 3).state == .running })

        try await other.rebuild()
        #expect(await AsyncRunnerTests.eventually(10) { holder.servingModel == "orders__g2" }, "\(holder.lifecycle)")
        #expect(await AsyncRunnerTests.eventually(10) { holder.status(head: 3).checkpoint == 3 && holder.status(head: 3).state == .running })

        // Paused through the other process, then the holder goes away: the next holder starts paused.
        try await other.pause()
        #expect(await AsyncRunnerTests.eventually(10) { holder.status(head: 3).state == .paused })
        await holder.stop()
        await other.stop()
        let next = Self.makeController(store, storage, leases: SharedStorageLeases())
        next.start()
        #expect(await AsyncRunnerTests.eventually { Self.isActive(next) })
        #expect(next.status(head: 3).state == .paused, "\(next.lifecycle)")
        try await store.append("order-1", events: [raw("ItemAdded")])
        try await Task.sleep(for: .milliseconds(200))
        #expect(next.status(head: 4).checkpoint == 3)
        try await next.resume()
        #expect(await AsyncRunnerTests.eventually(10) { next.status(head: 4).checkpoint == 4 })
        await next.stop()
    }
}

extension ReadModelProjectionControllerTests {
    /// A rebuild claims a copy number above every copy in storage and drops nothing: a copy it
    /// did not claim may be another process's rebuild in progress (it dropped copy
    /// `serving + 1` first, and with two rebuilds asked at once through two processes the drop
    /// came after the other's builder had written: documents were lost for good).
    @Test func aRebuildNeverDropsACopyItDidNotClaim() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        try await store.append("order-1", events: [raw("OrderCreated"), raw("ItemAdded")])
        let controller = Self.makeController(store, storage)
        controller.start()
        #expect(await AsyncRunnerTests.eventually { Self.isActive(controller) && controller.status(head: 2).checkpoint == 2 })
        // Copy 2 appears in storage, named by no generations row (another process's claim in flight).
        try await storage.transaction { tx in try tx.putDocument("orders__g2", id: "foreign", json: Data(#"{"id":"foreign"}"#.utf8)) }
        try await controller.rebuild()
        #expect(await AsyncRunnerTests.eventually(10) { controller.servingModel == "orders__g3" }, "\(controller.lifecycle)")
        #expect(try await storage.document("orders__g2", id: "foreign") != nil, "the rebuild left the copy it did not claim alone")
        let rebuilt = try #require(try await storage.document("orders__g3", id: "order-1"), "the rebuilt copy holds the order")
        let summary = try JSONDecoder().decode(OrderSummary.self, from: rebuilt)
        #expect(summary.items == 1 && summary.status == "created", "\(summary)")
        await controller.stop()
    }

    /// Pause and resume asked at once through two processes: each is recorded under its own
    /// sequence (they once both wrote the next one, and each process applied whichever it saw
    /// first), so the holder ends in the state of the last one recorded.
    @Test func concurrentRequestsGetTheirOwnSequence() async throws {
        let storage = InMemoryStorage()
        let store = EventStore(adapter: storage)
        let holder = Self.makeController(store, storage, leases: SharedStorageLeases())
        let a = Self.makeController(store, storage, leases: NeverGranted())
        let b = Self.makeController(store, storage, leases: NeverGranted())
        holder.start()
        #expect(await AsyncRunnerTests.eventually { Self.isActive(holder) })
        for round in 0..<20 {
            async let x: Void = a.pause()
            async let y: Void = b.resume()
            _ = try await (x, y)
            let stored = try await storage.transaction { tx in
                try ReadModelProjectionController.Control.read("order-summary", in: tx)
            }
            #expect(stored.sequence == UInt64(2 * round + 2), "two requests, two sequences: \(stored)")
            #expect(await AsyncRunnerTests.eventually(10) { holder.lifecycle.paused == stored.paused }, "round \(round): \(stored)")
        }
        await holder.stop()
    }
}

/// A lease provider whose lease is always held by another process.
struct NeverGranted: ProjectionLeaseProvider {
    func tryAcquire(tenant: String, projection: String) async throws -> (any ProjectionLease)? { nil }
}

/// A lease provider whose storage does not answer.
struct FailingLeases: ProjectionLeaseProvider {
    func tryAcquire(tenant: String, projection: String) async throws -> (any ProjectionLease)? {
        throw MinkError(.adapterNotSupported, "the lease storage does not answer")
    }
}

/// A lease provider of storage that several processes share, granting every lease (the test
/// decides which controller asks): its holder follows what others record in storage.
struct SharedStorageLeases: ProjectionLeaseProvider {
    func tryAcquire(tenant: String, projection: String) async throws -> (any ProjectionLease)? { HeldLease() }

    private struct HeldLease: ProjectionLease {
        func lost() async {
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
        }

        func release() async {}
    }
}

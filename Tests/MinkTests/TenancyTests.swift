import Foundation
import Synchronization
import Mink
import MinkTestFixtures
import MinkTesting
import Testing

/// Records which tenant's events it was applied to.
private final class TenantRecorder: InlineProjection {
    let name: String
    let handledEvents: [String] = []
    let seen = Mutex<[String]>([])
    init(_ name: String) { self.name = name }
    func apply(_ event: Event, in transaction: any ReadModelTransaction) throws {
        seen.withLock { $0.append(event.metadata.tenantID ?? "root") }
    }
}

@Suite("Multi-tenancy", .timeLimit(.minutes(3)))
struct TenancyTests {
    /// An inline projection registered on the root store runs for every tenant — also for a
    /// tenant whose store was made before the registration (it kept a copy of the list before
    /// 2026-12-07, and never ran the projection) — once per event; one registered on a tenant's
    /// store runs for that tenant alone.
    @Test func inlineProjectionsOfTheRootRunForTenantStoresMadeBeforeThem() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let early = try store.forTenant("early")
        let everyone = TenantRecorder("everyone")
        await ProjectionEngine(store: store).registerInline(everyone)
        let late = try store.forTenant("late")
        try await early.append("s-1", events: [raw("E")])
        try await late.append("s-1", events: [raw("E")])
        try await store.append("s-1", events: [raw("E")])
        #expect(everyone.seen.withLock { $0 }.sorted() == ["early", "late", "root"])

        let own = TenantRecorder("early-only")
        early.registerInline(own)
        #expect(early.inlineProjections.map(\.name) == ["everyone", "early-only"])
        #expect(late.inlineProjections.map(\.name) == ["everyone"])
        try await early.append("s-2", events: [raw("E")])
        try await late.append("s-2", events: [raw("E")])
        #expect(own.seen.withLock { $0 } == ["early"])
        #expect(everyone.seen.withLock { $0 }.sorted() == ["early", "early", "late", "late", "root"])

        // A projection registered on the root and, by name, on a tenant's store (a tenant's own
        // engine) runs once for that tenant: its own registration.
        let shared = TenantRecorder("shared")
        late.registerInline(shared)
        store.registerInline(TenantRecorder("shared"))
        #expect(late.inlineProjections.map(\.name) == ["everyone", "shared"])
        try await late.append("s-3", events: [raw("E")])
        #expect(shared.seen.withLock { $0 } == ["late"])
    }

    @Test func tenantStoresAreIsolatedAndStamped() async throws {
        let store = EventStore(adapter: InMemoryStorage(), registry: orderRegistry())
        let acme = try store.forTenant("acme-corp"), globex = try store.forTenant("globex")
        try await acme.append("order-123", [OrderCreated(customerID: "a")])
        try await globex.append("order-123", [OrderCreated(customerID: "g"), OrderShipped()])
        #expect(try await acme.load("order-123").map(\.type) == ["OrderCreated"])
        #expect(try await globex.load("order-123").count == 2)
        #expect(try await acme.load("order-123").first?.metadata.tenantID == "acme-corp")
        let (ha, hg) = (try await acme.headPosition(), try await globex.headPosition())
        #expect(ha == 1 && hg == 2)
        #expect(try await store.headPosition() == 0)
        #expect(try store.forTenant("acme-corp") === acme, "one store per tenant")
        #expect(try acme.forTenant("globex") === globex)
    }

    @Test func tenantMetadataCannotBeForged() async throws {
        let acme = try EventStore(adapter: InMemoryStorage()).forTenant("acme")
        try await acme.append("s-1", events: [raw("E")], metadata: Metadata(tenantID: "globex"))
        #expect(try await acme.load("s-1").first?.metadata.tenantID == "acme")
    }

    @Test func subscriptionsArePerTenant() async throws {
        let store = EventStore(adapter: InMemoryStorage())
        let a = try store.forTenant("a"), b = try store.forTenant("b")
        let seen = Task { () -> [String] in
            var types: [String] = []
            for try await e in a.subscribeAll() {
                types.append(e.type)
                if types.count == 2 { break }
            }
            return types
        }
        try await b.append("s-1", events: [raw("FromB")])
        try await a.append("s-1", events: [raw("FromA1")])
        try await b.append("s-1", events: [raw("FromB")])
        try await a.append("s-1", events: [raw("FromA2")])
        #expect(try await seen.value == ["FromA1", "FromA2"])
    }

    @Test func invalidTenantIDsAreRefused() {
        let store = EventStore(adapter: InMemoryStorage())
        for bad in ["../x", "A", String(repeating: "a", count: 64), "a%00", "", "_x", "a b"] {
            #expect(throws: MinkError.self, "\(bad)") { _ = try store.forTenant(bad) }
        }
    }
}

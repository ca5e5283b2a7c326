import Foundation
import Mink
import MinkConfig
import MinkServer
import MinkWire
import Testing

/// Two tenants with the same stream IDs and read models, on every storage and strategy: each
/// endpoint, called with each tenant's token, returns only that tenant's data, positions and counts.
@Suite("Tenant isolation matrix", .timeLimit(.minutes(3)))
struct TenantIsolationTests {
    /// What each tenant wrote: acme has more of everything, so a leak shows in every count.
    struct Expected: Sendable {
        let token: String
        let streamTypes: [String]  // order-1
        let allTypes: [String]  // the tenant's whole log
        let orderTypes: [String]  // category order
        let snapshot: String
        let document: String
        let documentCount: Int64
    }

    static let acme = Expected(
        token: "acme-rw", streamTypes: ["A1", "A2"], allTypes: ["A1", "A2", "AU", "A3"], orderTypes: ["A1", "A2", "A3"],
        snapshot: #"{"owner":"acme"}"#, document: #"{"owner":"acme","status":"open"}"#, documentCount: 2
    )
    static let globex = Expected(
        token: "globex-rw", streamTypes: ["G1"], allTypes: ["G1"], orderTypes: ["G1"],
        snapshot: #"{"owner":"globex"}"#, document: #"{"owner":"globex","status":"open"}"#, documentCount: 1
    )

    @Test(arguments: TenantStorageKind.allCases)
    func everyEndpointSeesOnlyItsTenant(_ kind: TenantStorageKind) async throws {
        try await withTenantServer(kind) { s, storage, _ in
            let a = TestToken.headers("acme-rw"), g = TestToken.headers("globex-rw")
            // Interleaved writes, so that shared positions would show holes or foreign events.
            #expect(try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A1"]), headers: a).status == 201)
            #expect(try await s.request("POST", "/v1/streams/order-1", json: appendBody(["G1"]), headers: g).status == 201)
            #expect(try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A2"]), headers: a).status == 201)
            #expect(try await s.request("POST", "/v1/streams/user-1", json: appendBody(["AU"]), headers: a).status == 201)
            #expect(try await s.request("POST", "/v1/streams/order-2", json: appendBody(["A3"]), headers: a).status == 201)
            // Same stream, same expected version: each tenant has its own versions.
            let conflictFree = try await s.request("POST", "/v1/streams/order-9", json: appendBody(["X"], expected: "0"), headers: g)
            #expect(conflictFree.status == 201)
            #expect(try await s.request("POST", "/v1/streams/order-9", json: appendBody(["X"], expected: "0"), headers: a).status == 201)
            for (h, e) in [(a, Self.acme), (g, Self.globex)] {
                #expect(try await s.request("PUT", "/v1/streams/order-1/snapshot", json: #"{"version":1,"state":\#(e.snapshot)}"#, headers: h).status == 200)
            }
            for (tenant, e) in [("acme", Self.acme), ("globex", Self.globex)] {
                try await putDocument(storage, tenant: tenant, model: "orders", id: "o-1", json: e.document)
            }
            try await putDocument(storage, tenant: "acme", model: "orders", id: "o-2", json: #"{"owner":"acme","status":"open"}"#)

            for (tenant, e) in [("acme", Self.acme), ("globex", Self.globex)] {
                try await Self.check(s, tenant: tenant, e, headers: TestToken.headers(e.token))
                // A `*` token selecting the tenant by header sees the same.
                try await Self.check(s, tenant: tenant, e, headers: TestToken.headers("ops", tenant: tenant))
                // A token bound to the tenant, naming the other one: 403, whatever the endpoint.
                let other = tenant == "acme" ? "globex" : "acme"
                for target in ["/v1/streams/order-1", "/v1/events", "/v1/events/head", "/v1/readmodels/orders/o-1", "/v1/subscriptions/all"] {
                    let r = try await s.request("GET", target, headers: TestToken.headers(e.token, tenant: other))
                    #expect(r.status == 403 && r.errorCode == "forbidden", "\(target)")
                    #expect(!r.text.contains(other) && !r.text.contains(tenant), "the 403 names no tenant: \(r.text)")
                }
                let post = try await s.request("POST", "/v1/streams/order-1", json: appendBody(["Z"]), headers: TestToken.headers(e.token, tenant: other))
                #expect(post.status == 403)
                // Naming its own tenant is fine.
                #expect(try await s.request("GET", "/v1/events/head", headers: TestToken.headers(e.token, tenant: tenant)).status == 200)
            }
            // The default tenant saw nothing.
            #expect(try await s.request("GET", "/v1/events/head", headers: TestToken.headers("ops"))["position"] == .int(0))
            // Metrics never carry tenant IDs.
            let metrics = try await s.request("GET", "/metrics").text
            #expect(!metrics.contains("acme") && !metrics.contains("globex"))
        }
    }

    /// Checks every read endpoint of one tenant against what it wrote.
    static func check(_ s: TestServer, tenant: String, _ e: Expected, headers h: [(String, String)]) async throws {
        let load = try await s.request("GET", "/v1/streams/order-1", headers: h)
        #expect(load.status == 200)
        #expect(load["version"] == .int(Int64(e.streamTypes.count)))
        let loaded = load["events"]?.arrayValue ?? []
        #expect(loaded.compactMap { $0.objectValue?["type"]?.stringValue } == e.streamTypes)
        for event in loaded {
            #expect(event.objectValue?["metadata"]?.objectValue?["tenantId"] == .string(tenant))
        }

        let info = try await s.request("GET", "/v1/streams/order-1/info", headers: h)
        #expect(info["eventCount"] == .int(Int64(e.streamTypes.count)))
        // A stream only the other tenant has does not exist here.
        if tenant == "globex" {
            let r = try await s.request("GET", "/v1/streams/user-1", headers: h)
            #expect(r.status == 404 && r.errorCode == "stream_not_found")
            #expect(try await s.request("GET", "/v1/streams/user-1/info", headers: h).status == 404)
        }

        let snapshot = try await s.request("GET", "/v1/streams/order-1/snapshot", headers: h)
        #expect(snapshot["state"]?.objectValue?["owner"] == .string(tenant))

        let log = try await s.request("GET", "/v1/events", headers: h)
        let logged = log["events"]?.arrayValue ?? []
        let allTypes = e.allTypes + ["X"]
        #expect(logged.compactMap { $0.objectValue?["type"]?.stringValue } == allTypes)
        // Dense positions 1...n: no holes made by the other tenant's events.
        #expect(logged.compactMap { $0.objectValue?["globalPosition"]?.int64Value } == Array(1...Int64(allTypes.count)))
        #expect(try await s.request("GET", "/v1/events/head", headers: h)["position"] == .int(Int64(allTypes.count)))
        let filtered = try await s.request("GET", "/v1/events?category=order", headers: h)
        #expect((filtered["events"]?.arrayValue ?? []).compactMap { $0.objectValue?["type"]?.stringValue } == e.orderTypes + ["X"])

        let all = try await s.caughtUp("/v1/subscriptions/all", headers: h)
        #expect(all.map { (try? JSONValue(jsonString: $0.data))?.objectValue?["type"]?.stringValue } == allTypes)
        let category = try await s.caughtUp("/v1/subscriptions/categories/order", headers: h)
        #expect(category.count == e.orderTypes.count + 1)
        let stream = try await s.caughtUp("/v1/subscriptions/streams/order-1", headers: h)
        #expect(stream.map(\.lastEventID) == (1...e.streamTypes.count).map(String.init))

        let doc = try await s.request("GET", "/v1/readmodels/orders/o-1", headers: h)
        #expect(doc["owner"] == .string(tenant))
        let list = try await s.request("GET", "/v1/readmodels/orders", headers: h)
        #expect(list["total"] == .int(e.documentCount), "\(list.status) \(list.text)")
        let query = #"{"where":[[{"field":"status","op":"=","value":"open"}]]}"#
        let found = try await s.request("POST", "/v1/readmodels/orders/query", json: query, headers: h)
        #expect(found["total"] == .int(e.documentCount))
        #expect((found["items"]?.arrayValue ?? []).allSatisfy { $0.objectValue?["owner"] == .string(tenant) })
        #expect(try await s.request("POST", "/v1/readmodels/orders/count", json: query, headers: h)["count"] == .int(e.documentCount))
        if tenant == "globex" {
            #expect(try await s.request("GET", "/v1/readmodels/orders/o-2", headers: h).status == 404)
        }
    }

    /// A live subscription of one tenant never receives the other's new events.
    @Test(arguments: TenantStorageKind.allCases)
    func liveSubscriptionsStayInTheirTenant(_ kind: TenantStorageKind) async throws {
        try await withTenantServer(kind) { s, _, _ in
            let a = TestToken.headers("acme-rw"), g = TestToken.headers("globex-rw")
            async let acmeLive = s.sse("/v1/subscriptions/all", headers: a) { $0.filter { $0.event == "message" }.count == 1 }
            async let globexLive = s.sse("/v1/subscriptions/all", headers: g) { $0.filter { $0.event == "message" }.count == 1 }
            try await Task.sleep(for: .milliseconds(200))
            try await s.request("POST", "/v1/streams/order-1", json: appendBody(["G1"]), headers: g)
            try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A1"]), headers: a)
            let acme = try await acmeLive.filter { $0.event == "message" }
            let globex = try await globexLive.filter { $0.event == "message" }
            #expect(acme.first?.data.contains(#""type":"A1""#) == true)
            #expect(globex.first?.data.contains(#""type":"G1""#) == true)
            #expect(acme.first?.lastEventID == "1" && globex.first?.lastEventID == "1")
        }
    }
}

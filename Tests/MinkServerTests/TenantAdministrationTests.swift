import Foundation
import Mink
import MinkConfig
import MinkHTTP
import MinkServer
import MinkTestFixtures
import MinkWire
import Testing

/// Tenant creation, listing and deletion (HTTP-API.md section 9), `tenancy.autoCreate`, and the
/// validation of tenant IDs before any storage is touched.
@Suite("Tenant administration", .timeLimit(.minutes(3)))
struct TenantAdministrationTests {
    static let ops = TestToken.headers("ops")

    static func tenantIDs(_ s: TestServer) async throws -> [String] {
        let r = try await s.request("GET", "/v1/admin/tenants", headers: ops)
        #expect(r.status == 200)
        return (r["tenants"]?.arrayValue ?? []).compactMap { $0.objectValue?["id"]?.stringValue }
    }

    @Test(arguments: TenantStorageKind.allCases)
    func withoutAutoCreateOnlyAnAdministratorCreates(_ kind: TenantStorageKind) async throws {
        try await withTenantServer(kind, autoCreate: false) { (s, storage, directory) async throws in
            let a = TestToken.headers("acme-rw")
            let write = try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A"]), headers: a)
            #expect(write.status == 404 && write.errorCode == "not_found" && write.text.contains("unknown tenant"), "\(write.text)")
            #expect(try await s.request("PUT", "/v1/streams/order-1/snapshot", json: #"{"version":1,"state":{}}"#, headers: a).status == 404)
            let read = try await s.request("GET", "/v1/events", headers: a)
            #expect(read.status == 404 && read.text.contains("unknown tenant"))
            #expect(try await Self.tenantIDs(s) == ["default"])
            #expect(try await kind.ownStorageExists(storage, directory: directory, tenant: "acme") == false)

            let created = try await s.request("POST", "/v1/admin/tenants", json: #"{"id":"acme"}"#, headers: Self.ops)
            #expect(created.status == 201 && created["id"] == .string("acme"))
            #expect(try await s.request("POST", "/v1/admin/tenants", json: #"{"id":"acme"}"#, headers: Self.ops).status == 200)
            #expect(try await Self.tenantIDs(s) == ["acme", "default"])
            #expect(try await kind.ownStorageExists(storage, directory: directory, tenant: "acme") == true)
            #expect(try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A"]), headers: a).status == 201)
            #expect(try await s.request("GET", "/v1/events/head", headers: a)["position"] == .int(1))
        }
    }

    @Test(arguments: TenantStorageKind.allCases)
    func autoCreateOnFirstWriteButNotOnReads(_ kind: TenantStorageKind) async throws {
        // With a projection configured: reading a tenant's projections or read models must not
        // start its projection engine, which would create the tenant's storage.
        let projections = try MinkdConfiguration.parse(yaml: """
            projections:
              - name: orders
                mode: async
                handlers:
                  - event: A
                    id: "$.streamId"
                    set: { seen: "$.type" }
            """).projections
        try await withTenantServer(kind, configure: { $0.projections = projections }) { (s, storage, directory) async throws in
            let a = TestToken.headers("acme-rw")
            // Reads of an unknown tenant answer as an empty tenant and create nothing.
            #expect(try await s.request("GET", "/v1/events/head", headers: a)["position"] == .int(0))
            #expect(try await s.request("GET", "/v1/streams/order-1", headers: a).status == 404)
            #expect(try await s.caughtUp("/v1/subscriptions/all", headers: a).isEmpty)
            #expect(try await s.request("GET", "/v1/readmodels/orders/o-1", headers: a).status == 404)
            #expect(try await s.request("GET", "/v1/readmodels/orders", headers: a)["total"] == .int(0))
            let list = try await s.request("GET", "/v1/projections", headers: a)
            #expect(list.status == 200)
            let status = try await s.request("GET", "/v1/projections/orders", headers: a)
            #expect(status.status == 200 && status["checkpoint"] == .int(0) && status["status"] == .string("running"))
            #expect(status["runningHere"] == .bool(false), "nothing runs for a tenant that does not exist: \(status.text)")
            #expect(try await s.request("GET", "/v1/projections/nope", headers: a).status == 404)
            let acmeOps = TestToken.headers("ops", tenant: "acme")
            #expect(try await s.request("POST", "/v1/projections/orders/rebuild", headers: acmeOps).status == 404)
            #expect(try await Self.tenantIDs(s) == ["default"])
            #expect(try await kind.ownStorageExists(storage, directory: directory, tenant: "acme") == false)
            // Writes refused for their input alone create nothing either (no new, empty tenant).
            let refused: [(String, String, String, [(String, String)], Int)] = [
                ("POST", "/v1/streams/order-1", "notjson", [], 400),
                ("POST", "/v1/streams/order-1", #"{"events":[]}"#, [], 422),
                ("POST", "/v1/streams/order-1", #"{"events":[{"type":"$X","data":{}}]}"#, [], 422),
                ("POST", "/v1/streams/$order-1", appendBody(["A"]), [], 400),
                ("POST", "/v1/streams/order-1", appendBody(["A"]), [("Content-Type", "text/plain")], 415),
                ("PUT", "/v1/streams/order-1/snapshot", #"{"version":0,"state":{}}"#, [], 422),
                ("PUT", "/v1/streams/order-1/metadata", #"{"maxCount":"x"}"#, [], 400),
                ("POST", "/v1/streams/order-1?x=%ZZ", appendBody(["A"]), [], 400),
                // Checks against the (empty) tenant's state: every stream is at version 0.
                ("POST", "/v1/streams/order-1", #"{"expectedVersion":3,"events":[{"type":"A","data":{}}]}"#, [], 409),
                ("POST", "/v1/streams/order-1", #"{"expectedVersion":"stream_exists","events":[{"type":"A","data":{}}]}"#, [], 404),
            ]
            for (method, target, body, extra, status) in refused {
                let r = try await s.request(method, target, json: body, headers: a + extra)
                #expect(r.status == status, "\(method) \(target) \(body): \(r.status) \(r.text)")
            }
            let badImport = try await s.request(
                "POST", "/v1/admin/import", json: "{}", headers: TestToken.headers("ops", tenant: "acme") + [("Content-Type", "text/plain")]
            )
            #expect(badImport.status == 415, "\(badImport.text)")
            #expect(try await Self.tenantIDs(s) == ["default"])
            #expect(try await kind.ownStorageExists(storage, directory: directory, tenant: "acme") == false)
            // The first write creates it, and its projection runs.
            #expect(try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A"]), headers: a).status == 201)
            #expect(try await Self.tenantIDs(s) == ["acme", "default"])
            var checkpoint: JSONValue?
            for _ in 0..<500 where checkpoint != .int(1) {
                checkpoint = try await s.request("GET", "/v1/projections/orders", headers: a)["checkpoint"]
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(checkpoint == .int(1))
            #expect(try await s.request("GET", "/v1/projections/orders", headers: a)["runningHere"] == .bool(true))
            #expect(try await s.request("GET", "/v1/readmodels/orders/order-1", headers: a)["seen"] == .string("A"))
        }
    }

    @Test(arguments: TenantStorageKind.allCases)
    func deletionNeedsConfirmationAndRemovesTheData(_ kind: TenantStorageKind) async throws {
        try await withTenantServer(kind) { (s, storage, directory) async throws in
            let a = TestToken.headers("acme-rw"), g = TestToken.headers("globex-rw")
            try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A1", "A2"]), headers: a)
            try await s.request("PUT", "/v1/streams/order-1/snapshot", json: #"{"version":2,"state":{"a":1}}"#, headers: a)
            // Retention rules, on a stream with events and on one without any yet.
            for stream in ["order-1", "order-9"] {
                let put = try await s.request("PUT", "/v1/streams/\(stream)/metadata", json: #"{"maxCount":1,"truncateBefore":3}"#, headers: a)
                #expect(put.status == 200, "\(put.text)")
            }
            try await s.request("POST", "/v1/streams/order-1", json: appendBody(["G1"]), headers: g)

            for target in ["/v1/admin/tenants/acme", "/v1/admin/tenants/acme?confirm=globex", "/v1/admin/tenants/acme?confirm=Acme"] {
                let r = try await s.request("DELETE", target, headers: Self.ops)
                #expect(r.status == 400 && r.errorCode == "bad_request", "\(target)")
            }
            #expect(try await s.request("DELETE", "/v1/admin/tenants/default?confirm=default", headers: Self.ops).status == 400)
            #expect(try await s.request("DELETE", "/v1/admin/tenants/nobody?confirm=nobody", headers: Self.ops).status == 404)
            #expect(try await s.request("GET", "/v1/events/head", headers: a)["position"] == .int(2))

            // A live subscription of the tenant ends when the tenant is deleted: opened and read
            // up to `caught-up` first (its two events), then the deletion; the stream must end
            // (the iterator returns nil; with no byte for 10 s the client throws instead) with
            // nothing more delivered.
            var (live, replayed) = try await s.openLive("/v1/subscriptions/all", headers: a)
            #expect(replayed.filter { $0.event == "message" }.count == 2, "\(replayed)")
            let deleted = try await s.request("DELETE", "/v1/admin/tenants/acme?confirm=acme", headers: Self.ops)
            #expect(deleted.status == 200 && deleted["id"] == .string("acme"))
            try await s.request("POST", "/v1/streams/order-1", json: appendBody(["G2"]), headers: g)
            var after: [SSEEvent] = []
            while let e = try await live.next() { after.append(e) }
            #expect(after.filter { $0.event == "message" }.isEmpty, "after the deletion: \(after)")

            #expect(try await Self.tenantIDs(s) == ["default", "globex"])
            #expect(try await kind.ownStorageExists(storage, directory: directory, tenant: "acme") == false)
            #expect(try await s.request("GET", "/v1/events/head", headers: a)["position"] == .int(0))
            #expect(try await s.request("GET", "/v1/streams/order-1", headers: a).status == 404)
            #expect(try await s.request("GET", "/v1/streams/order-1/snapshot", headers: a).status == 404)
            // The other tenant is untouched.
            #expect(try await s.request("GET", "/v1/events/head", headers: g)["position"] == .int(2))

            // Created again under the same ID: a fresh tenant, positions from 1, no old events live.
            async let fresh = s.sse("/v1/subscriptions/all", headers: a) { $0.filter { $0.event == "message" }.count == 1 }
            try await Task.sleep(for: .milliseconds(100))
            let again = try await s.request("POST", "/v1/streams/order-1", json: appendBody(["N1"]), headers: a)
            #expect(again["fromPosition"] == .int(1) && again["toVersion"] == .int(1))
            let events = try await fresh.filter { $0.event == "message" }
            #expect(events.count == 1 && events[0].data.contains(#""type":"N1""#))
            // No retention rule of the deleted tenant applies to the new one (they were kept on
            // shared storage, and truncated the new streams).
            for stream in ["order-1", "order-9"] {
                let m = try await s.request("GET", "/v1/streams/\(stream)/metadata", headers: a)
                #expect(m.status == 200 && m.json == .object([:]), "\(kind) \(stream): \(m.text)")
            }
            try await s.request("POST", "/v1/streams/order-1", json: appendBody(["N2", "N3", "N4"]), headers: a)
            let read = try await s.request("GET", "/v1/streams/order-1", headers: a)
            #expect(read["events"]?.arrayValue?.count == 4, "\(kind): \(read.text)")
        }
    }

    /// A deletion waits for the tenant's writes in flight: the append commits and is answered,
    /// and only then is the tenant removed (with that event); writes arriving meanwhile get 503.
    @Test func deletionWaitsForWritesInFlight() async throws {
        let (storage, spy) = SpyStorage.make()
        var config = MinkdConfiguration()
        config.auth.enabled = true
        config.auth.tokens = TestToken.standard
        try await withServer(storage: storage, configure: { $0.auth = config.auth }) { s in
            let a = TestToken.headers("acme-rw")
            #expect(try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A1"]), headers: a).status == 201)
            spy.holdAppends.withLock { $0 = true }
            async let inFlight = s.request("POST", "/v1/streams/order-1", json: appendBody(["A2"]), headers: a)
            let deadline = Deadline(.seconds(10))
            while spy.held.withLock({ $0 }) == 0 { try deadline.check("the append to reach storage"); try await Task.sleep(for: .milliseconds(5)) }
            async let deletion = s.request("DELETE", "/v1/admin/tenants/acme?confirm=acme", headers: Self.ops)
            // While the deletion waits: it has not answered, and a new write of the tenant is refused.
            try await Task.sleep(for: .milliseconds(200))
            let meanwhile = try await s.request("POST", "/v1/streams/order-2", json: appendBody(["B"]), headers: a)
            #expect(meanwhile.status == 503 && meanwhile.headers["Retry-After"] != nil, "\(meanwhile.status) \(meanwhile.text)")
            #expect(!spy.calls.withLock { $0 }.contains("deleteTenant(acme)"), "the deletion did not wait for the write in flight")
            spy.holdAppends.withLock { $0 = false }
            let written = try await inFlight
            #expect(written.status == 201 && written["toVersion"] == .int(2), "\(written.text)")
            let deleted = try await deletion
            #expect(deleted.status == 200, "\(deleted.text)")
            #expect(spy.calls.withLock { $0 }.contains("deleteTenant(acme)"))
            #expect(try await s.request("GET", "/v1/streams/order-1", headers: a).status == 404, "the tenant's data went with it")
        }
    }

    static let invalidIDs = ["../x", "A", String(repeating: "a", count: 64), "%00", "a b", "-a", "a.b", "ü", ""]

    /// The raw reply to `GET /v1/events/head` sent with exactly these header lines (repeated
    /// headers cannot go through the test client's dictionary).
    static func rawHead(_ s: TestServer, headers: [(String, String)]) async throws -> String {
        let c = try await RawConnection.open(port: s.port)
        let lines = headers.map { "\($0.0): \($0.1)\r\n" }.joined()
        try await c.send("GET /v1/events/head HTTP/1.1\r\nHost: x\r\n\(lines)\r\n")
        return try await c.read(untilContains: "}}", timeout: .seconds(5))
    }

    /// Two `Mink-Tenant` headers (a proxy adding its own, say): `400 invalid_tenant`, whether
    /// they agree or not — the first was silently used.
    @Test func aRepeatedTenantHeaderIsRefused() async throws {
        try await withTenantServer(.memory) { (s, _, _) async throws in
            for tenants in [["acme", "globex"], ["acme", "acme"]] {
                let reply = try await Self.rawHead(s, headers: Self.ops + tenants.map { ("Mink-Tenant", $0) })
                #expect(reply.hasPrefix("HTTP/1.1 400 ") && reply.contains(#""code":"invalid_tenant""#), "\(tenants): \(reply.prefix(300))")
            }
            #expect(try await s.request("GET", "/v1/events/head", headers: Self.ops + [("Mink-Tenant", "acme")]).status == 200)
        }
    }

    /// Two `Authorization` headers: `400 bad_request`, whichever comes first — the first was
    /// silently used, while a proxy authorizing on the last one would have let another through.
    @Test func aRepeatedAuthorizationHeaderIsRefused() async throws {
        try await withTenantServer(.memory) { (s, _, _) async throws in
            let ops = "Bearer \(TestToken.secret("ops"))", acme = "Bearer \(TestToken.secret("acme-rw"))"
            for pair in [[ops, acme], [acme, ops], [ops, ops], ["Bearer nope", ops]] {
                let reply = try await Self.rawHead(s, headers: [("Mink-Tenant", "acme")] + pair.map { ("Authorization", $0) })
                #expect(reply.hasPrefix("HTTP/1.1 400 ") && reply.contains(#""code":"bad_request""#), "\(reply.prefix(300))")
            }
            #expect(try await s.request("GET", "/v1/events/head", headers: Self.ops + [("Mink-Tenant", "acme")]).status == 200)
        }
    }

    @Test func invalidTenantIDsAreRefusedBeforeStorageIsTouched() async throws {
        let (storage, spy) = SpyStorage.make()
        var config = MinkdConfiguration()
        config.auth.enabled = true
        config.auth.tokens = TestToken.standard
        try await withServer(storage: storage, configure: { $0.auth = config.auth }) { s in
            _ = try await s.request("GET", "/v1/events/head", headers: Self.ops)  // the server's own start-up reads
            let before = spy.count
            for id in Self.invalidIDs where !id.isEmpty {
                for (method, target, body) in [
                    ("GET", "/v1/events", nil), ("GET", "/v1/streams/s-1", nil), ("POST", "/v1/streams/s-1", appendBody(["A"])),
                    ("GET", "/v1/readmodels/m/1", nil), ("PUT", "/v1/streams/s-1/snapshot", #"{"version":1,"state":{}}"#),
                ] as [(String, String, String?)] {
                    let r = try await s.request(method, target, json: body, headers: Self.ops + [("Mink-Tenant", id)])
                    #expect(r.status == 400 && r.errorCode == "invalid_tenant", "\(method) \(target) with \(id): \(r.status)")
                }
            }
            for id in Self.invalidIDs {
                let escaped = id.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? id
                let json = #"{"id":"\#(id)"}"#
                let create = try await s.request("POST", "/v1/admin/tenants", json: json, headers: Self.ops)
                #expect(create.status == 400, "create \(id): \(create.text)")
                if !id.isEmpty {
                    let delete = try await s.request("DELETE", "/v1/admin/tenants/\(escaped)?confirm=\(escaped)", headers: Self.ops)
                    #expect(delete.status == 400 && delete.errorCode == "invalid_tenant", "delete \(id): \(delete.text)")
                }
            }
            #expect(spy.count == before, "storage calls: \(spy.calls.withLock { Array($0.dropFirst(before)) })")
        }
    }

    @Test(arguments: [TenantStorageKind.memory, .sqliteShared, .postgresShared, .postgresSchema])
    func readModelQueriesNeverCarrySQLThroughFieldNames(_ kind: TenantStorageKind) async throws {
        try await withTenantServer(kind) { (s, storage, _) async throws in
            try await putDocument(storage, tenant: "acme", model: "orders", id: "o-1", json: #"{"status":"open"}"#)
            try await putDocument(storage, tenant: "globex", model: "orders", id: "o-9", json: #"{"status":"open"}"#)
            let a = TestToken.headers("acme-rw")
            let fields = [
                "status; DROP TABLE mink_documents; --", "status') OR 1=1 --", "x\" OR tenant_id != '", "tenant_id",
                "$.status", "status OR 1", "a..b", "1abc", "doc->>'$.x'",
            ]
            for field in fields {
                let escaped = field.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                let filter = #"{"where":[[{"field":"\#(escaped)","op":"=","value":"open"}]]}"#
                let order = #"{"orderBy":[{"field":"\#(escaped)","desc":true}]}"#
                for (target, body) in [("query", filter), ("count", filter), ("query", order)] {
                    let r = try await s.request("POST", "/v1/readmodels/orders/\(target)", json: body, headers: a)
                    if field == "tenant_id" {
                        // A plain path: a document field named tenant_id, not the column.
                        #expect(r.status == 200, "\(field): \(r.text)")
                        if target == "count", body == filter { #expect(r["count"] == .int(0)) }
                    } else {
                        #expect(r.status == 400 && r.errorCode == "invalid_query", "\(field) \(target): \(r.text)")
                    }
                }
            }
            let q = "orderBy=" + ("status;DROP TABLE x".addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            #expect(try await s.request("GET", "/v1/readmodels/orders?\(q)", headers: a).errorCode == "invalid_query")
            let count = try await s.request("POST", "/v1/readmodels/orders/count", json: #"{"where":[]}"#, headers: a)
            #expect(count["count"] == .int(1))
        }
    }
}

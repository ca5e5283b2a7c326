import Foundation
import Mink
import MinkServer
import Testing

/// Revision 2's stream and administration routes on a tenant that does not exist, under every
/// storage and tenancy strategy: only a write that stores something creates the tenant (with
/// `tenancy.autoCreate`); a deletion, a scavenge, an export, a listing or a metadata read answer
/// as for an empty tenant and create nothing (no catalog entry, file, schema or database);
/// without `autoCreate` every one of them is `404 not_found` ("unknown tenant").
@Suite("Unknown tenants on the stream life-cycle routes", .timeLimit(.minutes(3)))
struct UnknownTenantRouteTests {
    static let acme = TestToken.headers("acme-rw")
    static let opsAcme = TestToken.headers("ops", tenant: "acme")

    static func tenantIDs(_ s: TestServer) async throws -> [String] {
        try await TenantAdministrationTests.tenantIDs(s)
    }

    @Test(arguments: TenantStorageKind.allCases)
    func withAutoCreateOnlyAWriteCreatesTheTenant(_ kind: TenantStorageKind) async throws {
        try await withTenantServer(kind) { (s, storage, directory) async throws in
            var r = try await s.request("DELETE", "/v1/streams/order-1", headers: Self.acme)
            #expect(r.status == 404 && r.errorCode == "stream_not_found", "\(r.text)")
            r = try await s.request("DELETE", "/v1/streams/order-1?hard=true&expectedVersion=any", headers: Self.acme)
            #expect(r.status == 404 && r.errorCode == "stream_not_found", "\(r.text)")
            // Bad input is still bad input first.
            #expect(try await s.request("DELETE", "/v1/streams/order-1?hard=maybe", headers: Self.acme).errorCode == "bad_request")
            #expect(try await s.request("DELETE", "/v1/streams/%24deletions", headers: Self.acme).errorCode == "invalid_stream_id")
            r = try await s.request("POST", "/v1/admin/scavenge", headers: Self.opsAcme)
            #expect(r.status == 200 && r.text == #"{"deletedEvents":0}"#, "\(r.text)")
            r = try await s.request("GET", "/v1/admin/export", headers: Self.opsAcme)
            #expect(r.status == 200 && r.body.isEmpty, "\(r.text)")
            r = try await s.request("GET", "/v1/streams", headers: Self.acme)
            #expect(r.status == 200 && r["streams"] == [] && r["next"] == .null, "\(r.text)")
            r = try await s.request("GET", "/v1/streams/order-1/metadata", headers: Self.acme)
            #expect(r.status == 200 && r.text == "{}", "\(r.text)")
            #expect(try await Self.tenantIDs(s) == ["default"])
            #expect(try await kind.ownStorageExists(storage, directory: directory, tenant: "acme") == false)

            // Setting retention rules stores them: a write, which creates the tenant.
            r = try await s.request("PUT", "/v1/streams/order-1/metadata", json: #"{"maxCount":3}"#, headers: Self.acme)
            #expect(r.status == 200, "\(r.text)")
            #expect(try await Self.tenantIDs(s) == ["acme", "default"])
            #expect(try await kind.ownStorageExists(storage, directory: directory, tenant: "acme") == true)
            #expect(try await s.request("DELETE", "/v1/streams/order-1", headers: Self.acme).errorCode == "stream_not_found")
            #expect(try await s.request("POST", "/v1/streams/order-1", json: appendBody(["A"]), headers: Self.acme).status == 201)
            r = try await s.request("DELETE", "/v1/streams/order-1", headers: Self.acme)
            #expect(r.status == 200 && r["deletedEvents"] == .int(1), "\(r.text)")
        }
    }

    @Test(arguments: TenantStorageKind.allCases)
    func withoutAutoCreateEveryRouteIsUnknownTenant(_ kind: TenantStorageKind) async throws {
        try await withTenantServer(kind, autoCreate: false) { (s, storage, directory) async throws in
            let attempts: [(String, String, String?, [(String, String)])] = [
                ("DELETE", "/v1/streams/order-1", nil, Self.acme),
                ("DELETE", "/v1/streams/order-1?hard=true", nil, Self.acme),
                ("PUT", "/v1/streams/order-1/metadata", #"{"maxCount":3}"#, Self.acme),
                ("GET", "/v1/streams/order-1/metadata", nil, Self.acme),
                ("GET", "/v1/streams", nil, Self.acme),
                ("POST", "/v1/admin/scavenge", nil, Self.opsAcme),
                ("GET", "/v1/admin/export", nil, Self.opsAcme),
            ]
            for (method, target, body, headers) in attempts {
                let r = try await s.request(method, target, json: body, headers: headers)
                #expect(r.status == 404 && r.errorCode == "not_found" && r.text.contains("unknown tenant"), "\(method) \(target): \(r.text)")
            }
            let line = #"{"id":"\#(UUID().uuidString.lowercased())","streamId":"s-1","type":"A","data":{},"version":1,"globalPosition":1,"timestamp":"2026-01-01T00:00:00.000000Z"}"#
            let imported = try await s.request("POST", "/v1/admin/import", json: line, headers: Self.opsAcme + [("Content-Type", "application/x-ndjson")])
            #expect(imported.status == 404 && imported.text.contains("unknown tenant"), "\(imported.text)")
            #expect(try await Self.tenantIDs(s) == ["default"])
            #expect(try await kind.ownStorageExists(storage, directory: directory, tenant: "acme") == false)
        }
    }
}

import Foundation
import Mink
import MinkConfig
import MinkServer
import MinkWire
import Testing

@Suite("Projections over HTTP", .timeLimit(.minutes(3)))
struct ProjectionEndpointTests {
    @Test(arguments: ProjectionStorage.allCases, ["inline", "async"])
    func ordersEndToEnd(_ kind: ProjectionStorage, mode: String) async throws {
        try await withProjectionServer(kind, yaml: ordersYAML(mode: mode)) { s, _ in
            try await s.append("order-1", [("OrderCreated", #"{"orderId":"o1","total":10}"#)], metadata: #"{"userId":"u-7"}"#)
            try await s.append("order-1", [
                ("ItemAdded", #"{"orderId":"o1","price":5,"sku":"a"}"#), ("ItemAdded", #"{"orderId":"o1","price":7.5,"sku":"b"}"#),
                ("Unrelated", #"{"orderId":"o1"}"#),
            ])
            try await s.append("order-2", [("OrderCreated", #"{"orderId":"o2","total":12345678901234567}"#), ("ItemAdded", #"{"orderId":"o2","price":1,"sku":"c"}"#)])
            if mode == "async" { try await s.waitForProjection("orders") }
            var o1 = try #require(try await s.document("orders", "o1"))
            #expect(o1["status"] == "pending" && o1["itemCount"] == .int(2) && o1["total"] == .number("22.5"))
            #expect(o1["skus"] == ["a", "b"] && o1["createdBy"] == "u-7" && o1["stream"] == "order-1" && o1["orderId"] == "o1")
            let o2 = try #require(try await s.document("orders", "o2"))
            #expect(o2["total"] == .number("12345678901234568"), "integers stay exact integers: \(o2)")
            let shipped = try await s.append("order-1", [("OrderShipped", #"{"orderId":"o1","carrier":{"name":"DHL"}}"#)])
            try await s.append("order-2", [("OrderCancelled", #"{"orderId":"o2"}"#)])
            if mode == "async" { try await s.waitForProjection("orders") }
            o1 = try #require(try await s.document("orders", "o1"))
            #expect(o1["status"] == "shipped" && o1["carrier"] == "DHL" && o1["shippedAtPosition"] == shipped["toPosition"])
            #expect(o1["shippedAt"]?.stringValue?.count == 27, "the event's RFC 3339 timestamp")
            #expect(try await s.document("orders", "o2") == nil, "cancelled: deleted")
            #expect(try await s.request("GET", "/v1/readmodels/orders/o2").errorCode == "not_found")

            let list = try await s.request("GET", "/v1/projections")
            let p = try #require(list["projections"]?.arrayValue?.first?.objectValue)
            let head = try await s.request("GET", "/v1/events/head")["position"]
            #expect(p["name"] == "orders" && p["mode"] == .string(mode) && p["status"] == "running")
            #expect(p["checkpoint"] == head && p["head"] == head && p["lag"] == .int(0) && p["lastError"] == .null)
            #expect(p["readModel"] == "orders")
            // An async projection records each event's delay (append → its batch committed):
            // the seven events it handles; an inline one applies in the append and records nothing.
            let metrics = try await s.request("GET", "/metrics").text
            let count = #"mink_projection_delay_seconds_count{projection="orders"}"#
            if mode == "async" {
                #expect(metrics.contains("\(count) 7\n"), "\(metrics.split(separator: "\n").filter { $0.contains("delay") })")
                #expect(metrics.contains("# HELP mink_projection_delay_seconds Time from an event's append"))
            } else {
                #expect(!metrics.contains(count))
            }
            let missing = try await s.request("GET", "/v1/projections/nope")
            #expect(missing.status == 404 && missing.errorCode == "projection_not_found")
            #expect(try await s.request("POST", "/v1/projections/nope/rebuild").errorCode == "projection_not_found")
        }
    }

    @Test func readYourWritesInline() async throws {
        try await withProjectionServer(.sqlite, yaml: ordersYAML(mode: "inline")) { s, _ in
            for i in 0..<20 {
                try await s.append("order-\(i)", [("OrderCreated", #"{"orderId":"o\#(i)","total":\#(i)}"#)])
                #expect(try await s.document("orders", "o\(i)")?["total"] == .int(Int64(i)), "visible right after the 201")
            }
        }
    }

    @Test(arguments: ProjectionStorage.allCases)
    func inlineFailureRejectsTheAppend(_ kind: ProjectionStorage) async throws {
        try await withProjectionServer(kind, yaml: ordersYAML(mode: "inline")) { s, _ in
            try await s.append("order-1", [("OrderCreated", #"{"orderId":"o1","total":10}"#)])
            let r = try await s.request("POST", "/v1/streams/order-1", json: #"{"events":[{"type":"ItemAdded","data":{"orderId":"o1","price":1}},{"type":"ItemAdded","data":{"orderId":"o1","price":"abc"}}]}"#)
            #expect(r.status == 422 && r.errorCode == "validation_failed", "\(r.text)")
            let message = r.json.objectValue?["error"]?.objectValue?["message"]?.stringValue ?? ""
            #expect(message.contains("projection orders") && message.contains("increment total") && message.contains("not a number"), "\(message)")
            #expect(try await s.request("GET", "/v1/events/head")["position"] == .int(1), "nothing written")
            #expect(try await s.request("GET", "/v1/streams/order-1")["version"] == .int(1))
            #expect(try await s.document("orders", "o1")?["itemCount"] == .int(0))
            // A missing id is an error too; a new stream is then not created.
            let noID = try await s.request("POST", "/v1/streams/order-9", json: #"{"events":[{"type":"OrderCreated","data":{"total":1}}]}"#)
            #expect(noID.status == 422)
            #expect(try await s.request("GET", "/v1/streams/order-9").status == 404)
        }
    }

    @Test(arguments: ProjectionStorage.allCases)
    func asyncFaultPauseResumeRebuild(_ kind: ProjectionStorage) async throws {
        try await withProjectionServer(kind, yaml: ordersYAML(mode: "async")) { s, storage in
            try await s.append("order-1", [("OrderCreated", #"{"orderId":"o1","total":10}"#), ("ItemAdded", #"{"orderId":"o1","price":2,"sku":"a"}"#)])
            try await s.waitForProjection("orders")

            // Pause: events wait; resume: they are applied.
            var r = try await s.request("POST", "/v1/projections/orders/pause")
            #expect(r.status == 200 && r["status"] == "paused")
            try await s.append("order-1", [("ItemAdded", #"{"orderId":"o1","price":3,"sku":"b"}"#)])
            try await Task.sleep(for: .milliseconds(100))
            var p = try await s.projection("orders")
            #expect(p["status"] == "paused" && p["lag"] == .int(1) && p["checkpoint"] == .int(2))
            #expect(try await s.document("orders", "o1")?["total"] == .int(12))
            r = try await s.request("POST", "/v1/projections/orders/resume")
            #expect(r.status == 200)
            try await s.waitForProjection("orders")
            #expect(try await s.document("orders", "o1")?["total"] == .int(15))

            // A poison event faults the projection at its position; resume retries it.
            try await s.append("order-1", [("ItemAdded", #"{"orderId":"o1","price":1,"sku":"c"}"#), ("ItemAdded", #"{"orderId":"o1","price":"x","sku":"d"}"#)])
            p = try await s.waitForProjection("orders") { $0["status"] == "faulted" }
            #expect(p["status"] == "faulted" && p["faultedPosition"] == .int(5) && p["checkpoint"] == .int(4), "\(p)")
            #expect(p["lastError"]?.stringValue?.contains("event 5 (ItemAdded): increment total") == true, "\(p)")
            #expect(try await s.document("orders", "o1")?["total"] == .int(16), "events before the poison one are applied")
            r = try await s.request("POST", "/v1/projections/orders/resume")
            #expect(r.status == 200 && r["status"] == "running" && r["lastError"] == .null, "\(r.text)")
            p = try await s.waitForProjection("orders") { $0["status"] == "faulted" }
            #expect(p["faultedPosition"] == .int(5), "retried, still poison: \(p)")

            // Rebuild: into a new copy, which faults at the same event; reads stay on the old copy.
            r = try await s.request("POST", "/v1/projections/orders/rebuild")
            #expect(r.status == 202 && (r["status"] == "rebuilding" || r["status"] == "faulted"), "\(r.text)")
            p = try await s.waitForProjection("orders") { $0["rebuildCheckpoint"] == .int(4) }
            #expect(p["status"] == "faulted" && p["checkpoint"] == .int(4), "\(p)")
            #expect(try await s.document("orders", "o1")?["total"] == .int(16))
            #expect(try await storage.readModels.modelNames().sorted() == ["orders", "orders__g2"])
        }
    }

    @Test(arguments: ProjectionStorage.allCases)
    func inlineProjectionsCannotBePausedButRebuild(_ kind: ProjectionStorage) async throws {
        try await withProjectionServer(kind, yaml: ordersYAML(mode: "inline")) { s, storage in
            try await s.append("order-1", [("OrderCreated", #"{"orderId":"o1","total":10}"#), ("ItemAdded", #"{"orderId":"o1","price":2,"sku":"a"}"#)])
            #expect(try await s.request("POST", "/v1/projections/orders/pause").status == 400)
            let r = try await s.request("POST", "/v1/projections/orders/rebuild")
            #expect(r.status == 202)
            try await s.waitForProjection("orders")
            try await s.append("order-1", [("ItemAdded", #"{"orderId":"o1","price":3,"sku":"b"}"#)])
            #expect(try await s.document("orders", "o1")?["total"] == .int(15))
            #expect(try await s.document("orders", "o1")?["skus"] == ["a", "b"])
            #expect(try await ProjectionRebuildTests.modelsAfterDrop(storage, expecting: ["orders__g2"]) == ["orders__g2"], "the old copy is dropped")
        }
    }
}

@Suite("Declared projection compilation", .timeLimit(.minutes(3)))
struct ProjectionCompileTests {
    @Test func aConfigErrorStopsTheStartNamingProjectionHandlerAndKey() async throws {
        let yaml = """
            projections:
              - name: orders
                handlers:
                  - event: OrderCreated
                    id: "$.data.orderId"
                    set: {total: "$.data.total"}
                  - event: ItemAdded
                    id: "$.data.orderId"
                    set: {total: 0}
                    increment: {total: "$.data.price"}
            """
        var config = MinkdConfiguration()
        config.listen.port = 0
        config.projections = try MinkdConfiguration.parse(yaml: yaml).projections
        let server = MinkServer(configuration: config, storage: .memory())
        do {
            try await server.start()
            Issue.record("started with a bad projection")
            await server.shutdown()
        } catch {
            #expect("\(error)" == "config: projections[0].handlers[1].increment.total: projection orders, handler ItemAdded: total clashes with set.total in the same handler")
        }
        let reserved = try MinkdConfiguration.parse(yaml: "projections:\n  - name: x\n    readModel: orders__g2\n    handlers:\n      - {event: A, id: \"$.id\", delete: true}\n")
        #expect(throws: ConfigError.self) { try DeclaredProjection.compile(reserved.projections) }
    }
}

@Suite("Projections of every tenant after a restart", .timeLimit(.minutes(3)))
struct ProjectionRestartTenantsTests {
    /// After a restart, a tenant's async projections catch up at start-up, before any request
    /// names the tenant (seen through the projection gauges, which carry no tenant).
    @Test func tenantsProjectionsStartWithTheServer() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = ordersYAML(mode: "async")
        try await withProjectionServer(.sqlite, yaml: yaml, directory: dir) { s, _ in
            for i in 0..<5 {
                let r = try await s.request("POST", "/v1/streams/order-\(i)", json: #"{"events":[{"type":"OrderCreated","data":{"orderId":"o\#(i)","total":1}}]}"#, headers: [("Mink-Tenant", "acme")])
                #expect(r.status == 201)
            }
        }
        // A new server on the same files: nothing asks for tenant acme.
        try await withProjectionServer(.sqlite, yaml: yaml, directory: dir) { s, _ in
            var text = ""
            for _ in 0..<250 {
                text = try await s.request("GET", "/metrics").text
                if text.contains(#"minkd_projection_checkpoint{projection="orders"} 5"#) { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(text.contains(#"minkd_projection_checkpoint{projection="orders"} 5"#), "acme's projection did not start")
        }
    }
}

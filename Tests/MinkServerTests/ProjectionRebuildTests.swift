import Foundation
import MinkServer
import MinkTestFixtures
import MinkWire
import Synchronization
import Testing

/// Rebuilds into a new copy: reads keep answering from the old copy, then switch at once.
@Suite("Projection rebuilds", .timeLimit(.minutes(3)))
struct ProjectionRebuildTests {
    /// Appends `appends` × 1,000 events: per order an `OrderCreated` and an `ItemAdded`.
    static func seed(_ s: TestServer, appends: Int) async throws -> Int {
        for a in 0..<appends {
            var events: [(String, String)] = []
            for j in 0..<500 {
                let o = a * 500 + j
                events.append(("OrderCreated", #"{"orderId":"o\#(o)","total":\#(o % 7)}"#))
                events.append(("ItemAdded", #"{"orderId":"o\#(o)","price":\#(o % 5),"sku":"s\#(o)"}"#))
            }
            try await s.append("load-\(a)", events)
        }
        return appends * 500
    }

    /// The stored model names once the old copy is dropped (it is dropped just after the switch;
    /// with PostgreSQL 5 s after it, when other processes have learnt of the switch).
    static func modelsAfterDrop(_ storage: ServerStorage, expecting wanted: [String]) async throws -> [String] {
        let deadline = ContinuousClock.now + .seconds(12)
        while true {
            let names = try await storage.readModels.modelNames()
            if names == wanted || ContinuousClock.now > deadline { return names }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    static func everything(_ s: TestServer) async throws -> TestServer.Reply {
        try await s.request("GET", "/v1/readmodels/orders?limit=10000&orderBy=orderId")
    }

    @Test(arguments: ProjectionStorage.allCases)
    func readsDuringARebuildAnswerFromTheOldCopy(_ kind: ProjectionStorage) async throws {
        try await withProjectionServer(kind, yaml: ordersYAML(mode: "async")) { s, storage in
            // PostgreSQL keeps a replaced copy 5 s for other processes: fewer events keep the test
            // short. In memory a rebuild of 10,000 events could end before the first status
            // request of a loaded machine came back: more there.
            let orders = try await Self.seed(s, appends: kind == .postgres ? 2 : kind == .memory ? 40 : 10)
            try await s.waitForProjection("orders")
            let baseline = try await Self.everything(s)
            #expect(baseline["total"] == .int(Int64(orders)))

            let r = try await s.request("POST", "/v1/projections/orders/rebuild")
            #expect(r.status == 202 && r["status"] == "rebuilding", "\(r.text)")
            var readsWhileRebuilding = 0
            let deadline = Deadline(.seconds(60))
            while true {
                try deadline.check("the rebuild to end (\(readsWhileRebuilding) reads so far)")
                let status = try await s.projection("orders")["status"]
                let count = try await s.request("POST", "/v1/readmodels/orders/count", json: "{}")
                #expect(count["count"] == .int(Int64(orders)), "never empty or half-built")
                let doc = try await s.document("orders", "o\(readsWhileRebuilding % orders)")
                #expect(doc?["itemCount"] == .int(1))
                if status != "rebuilding" { break }
                readsWhileRebuilding += 1
            }
            #expect(readsWhileRebuilding > 0)
            let after = try await Self.everything(s)
            #expect(after.text == baseline.text, "the rebuilt copy equals the old one")
            #expect(try await Self.modelsAfterDrop(storage, expecting: ["orders__g2"]) == ["orders__g2"], "reads switched, the old copy dropped")
            // The physical copy is internal: clients address the model by its name only.
            #expect(try await s.request("GET", "/v1/readmodels/orders__g2/o1").status == 404)
            #expect(try await s.request("POST", "/v1/readmodels/orders__g2/count", json: #"{"where":[]}"#).status == 404)
            // Every name of that form, copy or not (they were empty 200s): `__g1`, `__g0`, `__g07`.
            for name in ["orders__g1", "orders__g0", "orders__g07"] {
                #expect(try await s.request("GET", "/v1/readmodels/\(name)").status == 404, "\(name)")
                #expect(try await s.request("POST", "/v1/readmodels/\(name)/count", json: #"{"where":[]}"#).status == 404, "\(name)")
            }
            #expect(try await s.request("GET", "/v1/readmodels/orders__gx").status == 200, "not the form: an ordinary (empty) model")
            // A second rebuild goes on to copy 3; reads keep working throughout.
            #expect(try await s.request("POST", "/v1/projections/orders/rebuild").status == 202)
            try await s.waitForProjection("orders")
            #expect(try await Self.everything(s).text == baseline.text)
            #expect(try await Self.modelsAfterDrop(storage, expecting: ["orders__g3"]) == ["orders__g3"])
        }
    }

    @Test func aRestartDuringARebuildResumesIt() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let baseline = Mutex("")
        try await withProjectionServer(.sqlite, yaml: ordersYAML(mode: "async"), directory: dir) { s, _ in
            _ = try await Self.seed(s, appends: 2)
            try await s.waitForProjection("orders")
            let text = try await Self.everything(s).text
            baseline.withLock { $0 = text }
            // Paused, the new copy stays empty: the server stops in the middle of the rebuild.
            #expect(try await s.request("POST", "/v1/projections/orders/pause").status == 200)
            #expect(try await s.request("POST", "/v1/projections/orders/rebuild").status == 202)
            #expect(try await s.projection("orders")["rebuildCheckpoint"] == .int(0))
        }
        try await withProjectionServer(.sqlite, yaml: ordersYAML(mode: "async"), directory: dir) { s, storage in
            #expect(try await Self.everything(s).text == baseline.withLock { $0 }, "served from the old copy after the restart")
            // The pause is kept in storage: still paused, mid-rebuild, until resumed.
            // (The builder starts just after the serving runner: wait for both.)
            let paused = try await s.waitForProjection("orders") { $0["status"] == "paused" && $0["rebuildCheckpoint"] != nil }
            #expect(paused["status"] == "paused" && paused["rebuildCheckpoint"] == .int(0), "\(paused)")
            #expect(try await s.request("POST", "/v1/projections/orders/resume").status == 200)
            try await s.waitForProjection("orders")
            #expect(try await Self.everything(s).text == baseline.withLock { $0 })
            #expect(try await Self.modelsAfterDrop(storage, expecting: ["orders__g2"]) == ["orders__g2"])
            try await s.append("order-x", [("OrderCreated", #"{"orderId":"ox","total":1}"#)])
            try await s.waitForProjection("orders")
            #expect(try await s.document("orders", "ox")?["total"] == .int(1))
        }
    }
}

import Foundation
import Mink
import MinkHTTP
import MinkTestFixtures
import MinkWire
import Testing

/// kill -9 of a real minkd in the middle of a catch-up of 100,000 events, then a restart: every
/// document must be what a from-scratch run of the projection gives (nothing applied twice,
/// nothing missed).
@Suite("Projection crash recovery", .timeLimit(.minutes(3)))
struct ProjectionCrashTests {
    static let appends = 100  // × 1,000 events
    static let ordersPerAppend = 100  // × 10 events: created, 8 items, shipped or cancelled

    /// A minkd on `dir` and a client to it.
    struct Daemon {
        let minkd: MinkdProcess
        let port: Int
        let client = HTTPClient()

        init(dir: URL, config: URL?) async throws {
            var args = ["serve", "--storage", "sqlite", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "notice"]
            if let config { args += ["--config", config.path] }
            minkd = try MinkdProcess(args)
            // Lowest CPU priority: the other suites run in parallel with timing-sensitive
            // expectations, and this test only needs the daemon to finish eventually.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(minkd.process.processIdentifier), 19)
            port = try await minkd.waitUntilReady()
        }

        func request(_ method: String, _ target: String, body: String = "") async throws -> (status: Int, json: JSONValue) {
            var h = HTTPHeaders()
            if !body.isEmpty { h.add(name: "Content-Type", value: "application/json") }
            let r = try await client.execute(HTTPClientRequest(method: method, host: "127.0.0.1", port: port, target: target, headers: h, body: Array(body.utf8)))
            return (r.status, (try? JSONValue(jsonBytes: r.body)) ?? .null)
        }
    }

    static func expected(_ o: Int) -> (total: Int64, shippedAt: Int64)? {
        if o % 10 == 0 { return nil }  // cancelled: deleted
        let a = o / ordersPerAppend, j = o % ordersPerAppend
        return (Int64(o % 13 + 8 * (o % 7) + 36), Int64(a * 1000 + j * 10 + 10))
    }

    @Test func killedDuringCatchUpThenRestartedMatchesARebuild() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("minkd.yaml")
        try ordersYAML(mode: "async").write(to: config, atomically: true, encoding: .utf8)

        // 1. Seed 100,000 events with no projection configured.
        let seeder = try await Daemon(dir: dir, config: nil)
        for a in 0..<Self.appends {
            var events: [String] = []
            for j in 0..<Self.ordersPerAppend {
                let o = a * Self.ordersPerAppend + j
                events.append(#"{"type":"OrderCreated","data":{"orderId":"o\#(o)","total":\#(o % 13)}}"#)
                for i in 0..<8 { events.append(#"{"type":"ItemAdded","data":{"orderId":"o\#(o)","price":\#(o % 7 + i + 1),"sku":"s\#(i)"}}"#) }
                events.append(o % 10 == 0 ? #"{"type":"OrderCancelled","data":{"orderId":"o\#(o)"}}"# : #"{"type":"OrderShipped","data":{"orderId":"o\#(o)"}}"#)
            }
            let r = try await seeder.request("POST", "/v1/streams/load-\(a)", body: #"{"events":[\#(events.joined(separator: ","))]}"#)
            try #require(r.status == 201)
        }
        seeder.client.shutdown()
        kill(seeder.minkd.process.processIdentifier, SIGTERM)
        #expect(try await seeder.minkd.finish().status == 0)

        // 2. Start with the projection; kill -9 in the middle of its catch-up.
        let first = try await Daemon(dir: dir, config: config)
        var killedAt: Int64 = 0
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let p = try await first.request("GET", "/v1/projections/orders").json.objectValue ?? [:]
            killedAt = p["checkpoint"]?.int64Value ?? 0
            if killedAt >= 10_000 { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        kill(first.minkd.process.processIdentifier, SIGKILL)
        #expect(await ProcessLaunch.exit(of: first.minkd.process) != nil)
        first.client.shutdown()
        #expect(killedAt >= 10_000 && killedAt < 100_000, "killed mid catch-up (checkpoint \(killedAt))")

        // 3. Restart: it resumes from the stored checkpoint and catches up.
        let second = try await Daemon(dir: dir, config: config)
        defer {
            second.client.shutdown()
            kill(second.minkd.process.processIdentifier, SIGKILL)
        }
        var status: [String: JSONValue] = [:]
        let end = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < end {
            status = try await second.request("GET", "/v1/projections/orders").json.objectValue ?? [:]
            if status["checkpoint"] == .int(100_000) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(status["checkpoint"] == .int(100_000) && status["status"] == "running" && status["lastError"] == .null, "\(status)")

        let r = try await second.request("GET", "/v1/readmodels/orders?limit=10000&orderBy=orderId")
        let items = r.json.objectValue?["items"]?.arrayValue ?? []
        let orders = Self.appends * Self.ordersPerAppend
        #expect(r.json.objectValue?["total"] == .int(Int64(orders - orders / 10)))
        var byID: [String: [String: JSONValue]] = [:]
        for item in items { if let o = item.objectValue, let id = o["orderId"]?.stringValue { byID[id] = o } }
        var wrong = 0
        for o in 0..<orders {
            let doc = byID["o\(o)"]
            guard let want = Self.expected(o) else {
                if doc != nil { wrong += 1 }
                continue
            }
            let skus: JSONValue = .array((0..<8).map { .string("s\($0)") })
            let ok = doc?["status"] == "shipped" && doc?["total"] == .int(want.total) && doc?["itemCount"] == .int(8)
                && doc?["skus"] == skus && doc?["shippedAtPosition"] == .int(want.shippedAt) && doc?["stream"] == .string("load-\(o / Self.ordersPerAppend)")
            if !ok {
                if wrong < 3 { Issue.record("o\(o): \(String(describing: doc))") }
                wrong += 1
            }
        }
        #expect(wrong == 0, "\(wrong) documents differ from a from-scratch run")
    }
}

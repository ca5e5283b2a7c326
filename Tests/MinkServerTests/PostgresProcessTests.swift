import Foundation
import Mink
import MinkHTTP
import MinkTestFixtures
import MinkPostgres
import MinkWire
import Synchronization
import Testing

/// Real minkd processes on one PostgreSQL database (a fresh database per test): projections run
/// in exactly one process and move when it dies; subscriptions wake for other processes' commits;
/// `minkd migrate`.
@Suite("minkd processes on PostgreSQL", .timeLimit(.minutes(3)))
struct PostgresProcessTests {
    /// A minkd serving on a PostgreSQL database, and a client to it.
    final class Daemon: Sendable {
        let minkd: MinkdProcess
        let port: Int
        let client = HTTPClient()

        init(url: String, config: URL) async throws {
            minkd = try MinkdProcess([
                "serve", "--storage", "postgres", "--database-url", url, "--config", config.path,
                "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "notice",
            ])
            port = try await minkd.waitUntilReady()
            // Keep reading the log so that the daemon never blocks on a full pipe.
            let handle = minkd.stderr
            Thread.detachNewThread { while !handle.availableData.isEmpty {} }
        }

        var pid: Int32 { minkd.process.processIdentifier }

        func request(_ method: String, _ target: String, body: String = "") async throws -> (status: Int, json: JSONValue) {
            var h = HTTPHeaders()
            if !body.isEmpty { h.add(name: "Content-Type", value: "application/json") }
            let r = try await client.execute(HTTPClientRequest(
                method: method, host: "127.0.0.1", port: port, target: target, headers: h, body: Array(body.utf8)
            ))
            return (r.status, (try? JSONValue(jsonBytes: r.body)) ?? .null)
        }

        func status() async throws -> [String: JSONValue] {
            try await request("GET", "/v1/projections/orders").json.objectValue ?? [:]
        }

        /// Kills the process (it is not waited for: SIGKILL cannot be ignored, and Foundation
        /// reaps the child).
        func stop() {
            client.shutdown()
            if minkd.process.isRunning { kill(pid, SIGKILL) }
        }
    }

    /// What the orders read model must hold after `orders` orders with `items` items each:
    /// order i has total i + the item prices (1, 2, …), and orders i % 5 == 0 are cancelled.
    static func expected(_ i: Int, items: Int) -> (total: Int64, items: Int64)? {
        i % 5 == 0 ? nil : (Int64(i + items * (items + 1) / 2), Int64(items))
    }

    static func checkDocuments(_ d: Daemon, orders: Int, items: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let r = try await d.request("GET", "/v1/readmodels/orders?limit=1000&orderBy=orderId")
        let docs = (r.json.objectValue?["items"]?.arrayValue ?? []).compactMap(\.objectValue)
        var byID: [String: [String: JSONValue]] = [:]
        for doc in docs { if let id = doc["orderId"]?.stringValue { byID[id] = doc } }
        var wrong: [String] = []
        for i in 1...orders {
            let doc = byID["o\(i)"]
            if let want = expected(i, items: items) {
                if doc?["total"] != .int(want.total) || doc?["itemCount"] != .int(want.items) || doc?["status"] != "shipped" {
                    wrong.append("o\(i): \(String(describing: doc))")
                }
            } else if doc != nil {
                wrong.append("o\(i) should be deleted")
            }
        }
        #expect(docs.count == orders - orders / 5 && wrong.isEmpty, "\(wrong.prefix(3))", sourceLocation: sourceLocation)
    }

    /// Waits until `condition` holds for the statuses of both daemons (or `timeout` passes).
    static func waitForStatuses(
        _ a: Daemon, _ b: Daemon, timeout: Duration = .seconds(10),
        until condition: ([String: JSONValue], [String: JSONValue]) -> Bool
    ) async throws -> ([String: JSONValue], [String: JSONValue]) {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (sa, sb) = (try await a.status(), try await b.status())
            #expect(!(sa["runningHere"] == true && sb["runningHere"] == true), "the projection runs in both processes: \(sa) \(sb)")
            if condition(sa, sb) || ContinuousClock.now > deadline { return (sa, sb) }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until exactly one of the two runs the `orders` projection (it took the lease; the
    /// other shows the holder's status, `running`, with `runningHere` false); returns that one
    /// first.
    static func holderAndOther(_ a: Daemon, _ b: Daemon) async throws -> (holder: Daemon, other: Daemon) {
        let (sa, sb) = try await waitForStatuses(a, b) { x, y in
            x["status"] == "running" && y["status"] == "running" && Set([x["runningHere"], y["runningHere"]]) == Set<JSONValue?>([true, false])
        }
        try #require(sa["status"] == "running" && sb["status"] == "running", "\(sa) \(sb)")
        try #require(Set([sa["runningHere"], sb["runningHere"]]) == Set<JSONValue?>([true, false]), "\(sa) \(sb)")
        return sa["runningHere"] == true ? (a, b) : (b, a)
    }

    @Test func twoProcessesShareProjectionsAndCommits() async throws {
        let url = try await PostgresTestDatabase.freshDatabase()
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-pg-\(UUID()).yaml")
        try ordersYAML(mode: "async").write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let a = try await Daemon(url: url, config: config)
        defer { a.stop() }
        let b = try await Daemon(url: url, config: config)
        defer { b.stop() }

        // Exactly one process takes the projection's lease.
        let (holder, other) = try await Self.holderAndOther(a, b)

        // A subscription on B wakes for commits made through A (LISTEN/NOTIFY: nothing polls).
        let orders = 20, items = 3
        let perOrder = 2 + items
        let received = Mutex<[Int64]>([])
        let subscription = Task {
            for try await e in b.client.events(host: "127.0.0.1", port: b.port, target: "/v1/subscriptions/all", readTimeout: .seconds(10)) {
                guard e.event == "message", let json = try? JSONValue(jsonBytes: Array(e.data.utf8)),
                      let p = json.objectValue?["globalPosition"]?.int64Value else { continue }
                if received.withLock({ $0.append(p); return $0.count }) == orders * perOrder { return }
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        for i in 1...orders {
            var events = [#"{"type":"OrderCreated","data":{"orderId":"o\#(i)","total":\#(i)}}"#]
            for j in 1...items { events.append(#"{"type":"ItemAdded","data":{"orderId":"o\#(i)","price":\#(j),"sku":"s\#(j)"}}"#) }
            events.append(i % 5 == 0 ? #"{"type":"OrderCancelled","data":{"orderId":"o\#(i)"}}"# : #"{"type":"OrderShipped","data":{"orderId":"o\#(i)","carrier":{"name":"c"}}}"#)
            let r = try await a.request("POST", "/v1/streams/order-\(i)", body: #"{"events":[\#(events.joined(separator: ","))]}"#)
            try #require(r.status == 201)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while received.withLock({ $0.count }) < orders * perOrder, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        subscription.cancel()
        let positions = received.withLock { $0 }
        // Within the 10 s deadline above: a machine busy with other tests makes a tighter
        // bound flaky, and the bound is not the point (benchmarks measure latency).
        #expect(positions == (1...Int64(orders * perOrder)).map { $0 }, "B's subscription saw A's commits in order")

        // The read model, built by whichever process holds the lease, reads the same through both.
        _ = try await Self.waitForStatuses(a, b) { x, y in x["runningHere"] == true ? x["lag"] == .int(0) : y["lag"] == .int(0) }
        try await Self.checkDocuments(a, orders: orders, items: items)
        try await Self.checkDocuments(b, orders: orders, items: items)

        // The holder is paused, more events arrive, then it is killed: the other process takes
        // the lease over — paused, as the pause is kept in the database — and once resumed (through
        // itself) catches up, every event applied exactly once.
        #expect(try await holder.request("POST", "/v1/projections/orders/pause").status == 200)
        for i in 1...orders where i % 5 != 0 {
            let r = try await other.request(
                "POST", "/v1/streams/order-\(i)", body: #"{"events":[{"type":"ItemAdded","data":{"orderId":"o\#(i)","price":\#(items + 1)}}]}"#
            )
            try #require(r.status == 201)
        }
        let head = Int64(orders * perOrder + orders - orders / 5)
        kill(holder.pid, SIGKILL)
        #expect(await ProcessLaunch.exit(of: holder.minkd.process) != nil)
        let deadline1 = ContinuousClock.now + .seconds(10)
        var status: [String: JSONValue] = [:]
        while ContinuousClock.now < deadline1 {
            status = try await other.status()
            if status["status"] == "paused", status["runningHere"] == true { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(status["status"] == "paused" && status["runningHere"] == true && status["checkpoint"] != .int(head), "the pause survived the failover: \(status)")
        #expect(try await other.request("POST", "/v1/projections/orders/resume").status == 200)
        let deadline2 = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline2 {
            status = try await other.status()
            if status["status"] == "running", status["runningHere"] == true, status["checkpoint"] == .int(head) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(status["status"] == "running" && status["checkpoint"] == .int(head) && status["lag"] == .int(0), "\(status)")
        try await Self.checkDocuments(other, orders: orders, items: items + 1)
    }

    /// Pause, resume and rebuild sent to the process that does not run the projection (behind a
    /// load balancer, any of them) reach the one that does: they were applied only where they
    /// were asked — answered 200/202, and nothing happened.
    @Test func controlThroughTheOtherProcessReachesTheHolder() async throws {
        let url = try await PostgresTestDatabase.freshDatabase()
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-pg-\(UUID()).yaml")
        try ordersYAML(mode: "async").write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let a = try await Daemon(url: url, config: config)
        defer { a.stop() }
        let b = try await Daemon(url: url, config: config)
        defer { b.stop() }
        let (holder, other) = try await Self.holderAndOther(a, b)

        func order(_ i: Int) -> String {
            #"{"events":[{"type":"OrderCreated","data":{"orderId":"o\#(i)","total":\#(i)}},"#
                + #"{"type":"ItemAdded","data":{"orderId":"o\#(i)","price":1,"sku":"s1"}},"#
                + #"{"type":"OrderShipped","data":{"orderId":"o\#(i)","carrier":{"name":"c"}}}]}"#
        }
        for i in 1...4 { try #require(try await other.request("POST", "/v1/streams/order-\(i)", body: order(i)).status == 201) }
        /// A daemon's status once `condition` holds (or after 10 s).
        func status(of daemon: Daemon, _ condition: ([String: JSONValue]) -> Bool) async throws -> [String: JSONValue] {
            let deadline = ContinuousClock.now + .seconds(10)
            var s: [String: JSONValue] = [:]
            while ContinuousClock.now < deadline {
                s = try await daemon.status()
                if condition(s) { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            return s
        }
        func holderStatus(_ condition: ([String: JSONValue]) -> Bool) async throws -> [String: JSONValue] {
            try await status(of: holder, condition)
        }
        var s = try await holderStatus { $0["status"] == "running" && $0["lag"] == .int(0) }
        #expect(s["status"] == "running" && s["checkpoint"] == .int(12), "\(s)")

        // The other process shows the holder's status as stored (within a lease interval).
        func otherStatus(_ condition: ([String: JSONValue]) -> Bool) async throws -> [String: JSONValue] {
            try await status(of: other, condition)
        }
        var o = try await otherStatus { $0["checkpoint"] == .int(12) }
        #expect(o["status"] == "running" && o["runningHere"] == false && o["checkpoint"] == .int(12), "\(o)")

        #expect(try await other.request("POST", "/v1/projections/orders/pause").status == 200)
        s = try await holderStatus { $0["status"] == "paused" }
        #expect(s["status"] == "paused", "the holder applied a pause asked through the other process: \(s)")
        o = try await otherStatus { $0["status"] == "paused" }
        #expect(o["status"] == "paused" && o["runningHere"] == false, "the other process shows the stored pause: \(o)")
        try #require(try await other.request("POST", "/v1/streams/order-5", body: order(5)).status == 201)
        try await Task.sleep(for: .milliseconds(500))
        s = try await holder.status()
        #expect(s["status"] == "paused" && s["checkpoint"] == .int(12), "paused, it applies nothing: \(s)")

        #expect(try await other.request("POST", "/v1/projections/orders/resume").status == 200)
        s = try await holderStatus { $0["status"] == "running" && $0["checkpoint"] == .int(15) }
        #expect(s["status"] == "running" && s["checkpoint"] == .int(15), "resumed through the other process: \(s)")
        o = try await otherStatus { $0["status"] == "running" && $0["checkpoint"] == .int(15) }
        #expect(o["status"] == "running" && o["checkpoint"] == .int(15) && o["runningHere"] == false, "\(o)")

        // A rebuild asked through the other process: the holder builds copy 2 and switches to it
        // (serving 2, building 0, packed `2 << 32`, in the generations checkpoint).
        #expect(try await other.request("POST", "/v1/projections/orders/rebuild").status == 202)
        let generations = "SELECT position FROM public.mink_checkpoints WHERE tenant_id = 'default' AND projection = 'orders#generations'"
        let deadline = ContinuousClock.now + .seconds(10)
        var packed: String?
        while ContinuousClock.now < deadline {
            packed = try await PostgresTestDatabase.value(url, generations)
            if packed == String(UInt64(2) << 32) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(packed == String(UInt64(2) << 32), "the rebuild ran on the holder and switched: \(packed ?? "nil")")
        s = try await holderStatus { $0["status"] == "running" && $0["lag"] == .int(0) }
        #expect(s["status"] == "running", "\(s)")
        // The rebuilt copy serves through both processes: order i has total i + 1.
        for d in [holder, other] {
            let r = try await d.request("GET", "/v1/readmodels/orders?limit=100&orderBy=orderId")
            let totals = (r.json.objectValue?["items"]?.arrayValue ?? []).compactMap { $0.objectValue?["total"] }
            #expect(totals == (1...5).map { .int(Int64($0 + 1)) }, "\(r.json)")
        }
    }

    /// A database written with one tenancy layout, opened with another (a wrong
    /// `tenancy.strategy` or `schemaPrefix`): `export` refuses and creates nothing (it used to
    /// create the other layout's schema and export an empty store); `serve` warns, naming where
    /// the data is, and starts over the new, empty layout (one database may hold several
    /// deployments, and a setup reusing one for another strategy must still start). An export
    /// from a database minkd never wrote is empty and creates nothing.
    @Test func aDifferentTenancyLayoutIsNamedAndExportCreatesNothing() async throws {
        let url = try await PostgresTestDatabase.freshDatabase()
        var r = try await MinkdProcess(["export", "--storage", "postgres", "--database-url", url, "--tenant", "default"]).finish()
        #expect(r.status == 0 && r.out.isEmpty && r.err.contains("0 events of tenant default"), "\(r.status) \(r.err)")
        r = try await MinkdProcess(["export", "--storage", "postgres", "--database-url", url, "--tenant", "acme"]).finish()
        #expect(r.status != 0 && r.err.contains("does not exist"), "\(r.err)")
        #expect(try await PostgresTestDatabase.value(url, "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')") == "0")

        // Data in the shared layout (schema public).
        let shared = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-pg-\(UUID()).yaml")
        try "tenancy:\n  strategy: shared\n".write(to: shared, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: shared) }
        let writer = try await Daemon(url: url, config: shared)
        #expect(try await writer.request("POST", "/v1/streams/order-1", body: #"{"events":[{"type":"A","data":{}}]}"#).status == 201)
        writer.stop()

        let perSchema = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-pg-\(UUID()).yaml")
        try "tenancy:\n  strategy: schema\n  schemaPrefix: wrong_\n".write(to: perSchema, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: perSchema) }
        r = try await MinkdProcess(["export", "--tenant", "default", "--storage", "postgres", "--database-url", url, "--config", perSchema.path]).finish()
        #expect(r.status != 0 && r.err.contains("public") && r.err.contains("tenancy.strategy schema"), "\(r.err)")
        #expect(try await PostgresTestDatabase.value(url, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'wrong%'") == "0")

        // serve: a warning naming the data's schema, then the new layout, empty.
        let minkd = try MinkdProcess([
            "serve", "--storage", "postgres", "--database-url", url, "--config", perSchema.path, "--listen", "127.0.0.1:0", "--log-format", "json",
        ])
        let (log, _) = await minkd.stderr.read(until: { $0.contains("minkd ready") }, timeout: .seconds(30))
        #expect(log.contains(#""level":"warning""#) && log.contains("minkd data in schema(s) public") && log.contains("tenancy.strategy schema"), "\(log)")
        kill(minkd.process.processIdentifier, SIGTERM)
        #expect(try await minkd.finish(timeout: .seconds(15)).status == 0)
        // The data is still there, served with the right settings.
        let again = try await Daemon(url: url, config: shared)
        #expect(try await again.request("GET", "/v1/streams/order-1").status == 200)
        again.stop()
    }

    @Test func migrateAppliesTheSchemaEverywhere() async throws {
        let url = try await PostgresTestDatabase.freshDatabase()
        var r = try await MinkdProcess(["migrate", "--database-url", url]).finish()
        #expect(r.status == 0 && r.out.contains("migrations applied"), "\(r.out) \(r.err)")
        #expect(try await PostgresTestDatabase.value(url, "SELECT max(version) FROM public.mink_schema_migrations") == "4")
        #expect(try await PostgresTestDatabase.value(url, "SELECT count(*) FROM public.mink_tenants") == "1")
        r = try await MinkdProcess(["migrate", "--database-url", url]).finish()
        #expect(r.status == 0, "idempotent: \(r.err)")

        // Schema per tenant: an existing tenant's schema written before migration 2 is upgraded.
        let storage = try await PostgresStorage(configuration: PostgresConfiguration(connectionString: url, tenancy: .schema(prefix: "tn_")))
        try await storage.createTenant("acme")
        _ = try await storage.scoped("acme").append(.init(streamID: "s-1", events: [.init(type: "A", data: Data("{}".utf8))], expectedVersion: .any), hook: nil)
        await storage.shutdown()
        try await PostgresTestDatabase.execute(url, "DROP TABLE tn_acme.mink_tenants; DELETE FROM tn_acme.mink_schema_migrations WHERE version = 2")
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-pg-\(UUID()).yaml")
        try "tenancy:\n  strategy: schema\n  schemaPrefix: tn_\n".write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        r = try await MinkdProcess(["migrate", "--config", config.path, "--database-url", url]).finish()
        #expect(r.status == 0 && r.out.contains("2 tenants"), "\(r.out) \(r.err)")
        #expect(try await PostgresTestDatabase.value(url, "SELECT max(version) FROM tn_acme.mink_schema_migrations") == "4")
        #expect(try await PostgresTestDatabase.value(url, "SELECT string_agg(tenant_id, ',') FROM tn_acme.mink_tenants") == "acme")

        // Without a URL it fails and says why.
        r = try await MinkdProcess(["migrate"]).finish()
        #expect(r.status != 0 && r.err.contains("url"), "\(r.err)")
    }
}

// The orders projection of CONFIG.md (async), on SQLite and in memory:
//
// 1. catch-up speed: N events (orders of 10 events: created, 8 items, shipped) are appended
//    first, 1,000 per append; then the server starts and the time until the projection's
//    checkpoint reaches the head gives events/s;
// 2. visibility latency: single-event appends over HTTP; from each append's `201` to the
//    new document being visible through `GET /v1/readmodels/orders/{id}` (polled without
//    pause), median and p99.
//
//   swift run -c release ProjectionBenchmark [events, default 100000] [latency samples, default 1000]
import Foundation
import Logging
import Mink
import MinkConfig
import MinkHTTP
import MinkServer
import MinkStorageWiring

let events = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 100_000 : 100_000
let samples = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 1000 : 1000

let yaml = """
    projections:
      - name: orders
        mode: async
        indexes: [status]
        handlers:
          - event: OrderCreated
            id: "$.data.orderId"
            set: {orderId: "$.data.orderId", status: "pending", total: "$.data.total", itemCount: 0}
          - event: ItemAdded
            id: "$.data.orderId"
            increment: {itemCount: 1, total: "$.data.price"}
          - event: OrderShipped
            id: "$.data.orderId"
            set: {status: "shipped", shippedAt: "$.timestamp"}
          - event: OrderCancelled
            id: "$.data.orderId"
            delete: true
    """

func openStorage(_ kind: String, _ dir: String) async throws -> ServerStorage {
    var config = MinkdConfiguration()
    config.storage.kind = kind == "sqlite" ? .sqlite : .memory
    config.storage.dataDir = dir
    return try await ServerStorage.open(config)
}

func makeServer(_ storage: ServerStorage) async throws -> MinkServer {
    var config = MinkdConfiguration()
    config.listen.port = 0
    config.projections = try MinkdConfiguration.parse(yaml: yaml).projections
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    let server = MinkServer(configuration: config, storage: storage, logger: logger)
    try await server.start()
    return server
}

func seed(_ storage: ServerStorage, events: Int) async throws {
    let store = EventStore(adapter: storage.events)
    var o = 0
    for a in 0..<(events / 1000) {
        var batch: [EventData] = []
        for _ in 0..<100 {
            batch.append(EventData(type: "OrderCreated", data: Data(#"{"orderId":"o\#(o)","total":\#(o % 13)}"#.utf8)))
            for i in 0..<8 { batch.append(EventData(type: "ItemAdded", data: Data(#"{"orderId":"o\#(o)","price":\#(i + 1).5}"#.utf8))) }
            batch.append(EventData(type: "OrderShipped", data: Data(#"{"orderId":"o\#(o)"}"#.utf8)))
            o += 1
        }
        try await store.append("load-\(a)", events: batch)
    }
}

func catchUp(_ kind: String) async throws -> Double {
    let dir = NSTemporaryDirectory() + "mink-projbench-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let storage = try await openStorage(kind, dir)
    try await seed(storage, events: events)
    let start = ContinuousClock.now
    let server = try await makeServer(storage)
    let engine = try await server.projections.engine(forTenant: "default")
    let status = try await engine.waitUntilCaughtUp("orders", to: UInt64(events), timeout: .seconds(600))
    let elapsed = ContinuousClock.now - start
    precondition(status.checkpoint == UInt64(events), "not caught up: \(status)")
    await server.shutdown()
    return Double(events) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

func latency(_ kind: String) async throws -> (median: Double, p99: Double) {
    let dir = NSTemporaryDirectory() + "mink-projbench-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let storage = try await openStorage(kind, dir)
    let server = try await makeServer(storage)
    let port = server.port!
    let client = HTTPClient()
    var h = HTTPHeaders()
    h.add(name: "Content-Type", value: "application/json")
    var ms: [Double] = []
    for i in 0..<samples {
        let body = Array(#"{"events":[{"type":"OrderCreated","data":{"orderId":"l\#(i)","total":1}}]}"#.utf8)
        let r = try await client.execute(HTTPClientRequest(method: "POST", host: "127.0.0.1", port: port, target: "/v1/streams/order-l\(i)", headers: h, body: body))
        precondition(r.status == 201)
        let t0 = ContinuousClock.now
        while try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/v1/readmodels/orders/l\(i)")).status != 200 {}
        let d = ContinuousClock.now - t0
        ms.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }
    client.shutdown()
    await server.shutdown()
    ms.sort()
    return (ms[ms.count / 2], ms[min(ms.count - 1, Int(Double(ms.count) * 0.99))])
}

print("orders projection (async), \(events) events to catch up, \(samples) latency samples")
for kind in ["sqlite", "memory"] {
    let rate = try await catchUp(kind)
    let l = try await latency(kind)
    print(String(format: "%@: catch-up %.0f events/s; append 201 → visible: median %.2f ms, p99 %.2f ms", kind, rate, l.median, l.p99))
}

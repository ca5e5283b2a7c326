// Worst append latency while the scavenger removes a million events (issue 14).
//
// Usage: swift run -c release ScavengeBenchmark [events] [full|normal] [batch size] [sqlite|postgres]
//
// PostgreSQL: the server of MINK_TEST_POSTGRES_URL (a fresh schema per run), e.g.
//   scripts/with-postgres .build/release/ScavengeBenchmark 1000000 full 100 postgres
// (`full|normal` is SQLite's synchronous mode; PostgreSQL's durability is the server's own:
// scripts/with-postgres runs it with fsync off unless MINK_PG_DURABLE=1.)
//
// Fills one stream with `events` events (default 1,000,000) in appends of 1,000, sets
// its retention to `maxCount: 1`, then measures single-event appends to another stream by one
// client: for 3 s without scavenging (the baseline), then during `EventStore.scavenge()`, which
// removes all but one of those events in batches of 1,000 (each its own write transaction of
// the group commit). Prints the scavenge's duration and the appends' p50/p99/max latency in
// both phases.
import Foundation
import Mink
import MinkPostgres
import MinkSQLite
import Synchronization

let args = CommandLine.arguments
let total = args.count > 1 ? Int(args[1]) ?? 1_000_000 : 1_000_000
let sync: SQLiteConfiguration.Synchronous = args.count > 2 && args[2] == "normal" ? .normal : .full
let batchSize = args.count > 3 ? Int(args[3]) ?? 1000 : 1000
let kind = args.count > 4 ? args[4] : "sqlite"

let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mink-scavenge-\(UUID().uuidString)").path
defer { try? FileManager.default.removeItem(atPath: dir) }
let adapter: any EventStoreAdapter
let close: () async -> Void
switch kind {
case "sqlite":
    var configuration = SQLiteConfiguration()
    configuration.synchronous = sync
    let storage = try await SQLiteStorage.open(directory: dir, configuration: configuration)
    adapter = storage
    close = { await storage.close() }
case "postgres":
    guard let url = ProcessInfo.processInfo.environment["MINK_TEST_POSTGRES_URL"] else {
        print("MINK_TEST_POSTGRES_URL is not set: run it through scripts/with-postgres")
        exit(1)
    }
    let schema = "scav_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
    let storage = try await PostgresStorage(configuration: PostgresConfiguration(connectionString: url, poolSize: 4, schema: String(schema)))
    adapter = storage
    close = { await storage.shutdown() }
default:
    print("usage: ScavengeBenchmark [events] [full|normal] [batch size] [sqlite|postgres]")
    exit(2)
}
let store = EventStore(adapter: adapter)
print("\(kind)\(kind == "sqlite" ? " (synchronous \(sync == .full ? "FULL" : "NORMAL"))" : ""): \(total) events, scavenger batches of \(batchSize)")

let payload = Data(#"{"temperature":21.5,"sensor":"s-1","note":"some telemetry"}"#.utf8)
let fillStart = ContinuousClock.now
var written = 0
while written < total {
    let n = min(1000, total - written)
    try await store.append("tele-1", events: (0..<n).map { _ in EventData(type: "Reading", data: payload) })
    written += n
}
print("filled \(total) events in \(ContinuousClock.now - fillStart)")
try await store.setRetention(StreamRetention(maxCount: 1), of: "tele-1")

/// A stop flag shared with an append loop.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Appends one event at a time until `stop`, returning each append's latency in milliseconds.
func appendLoop(until stop: Flag) async throws -> [Double] {
    var latencies: [Double] = []
    while !stop.isSet {
        let t = ContinuousClock.now
        try await store.append("live-1", events: [EventData(type: "Tick", data: payload)])
        let d = ContinuousClock.now - t
        latencies.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }
    return latencies
}

func summary(_ values: [Double]) -> String {
    guard !values.isEmpty else { return "no appends" }
    let s = values.sorted()
    func q(_ p: Double) -> Double { s[min(s.count - 1, Int(Double(s.count) * p))] }
    return String(format: "%d appends, p50 %.2f ms, p99 %.2f ms, max %.2f ms", s.count, q(0.5), q(0.99), s.last!)
}

let baselineStop = Flag()
async let baseline = appendLoop(until: baselineStop)
try await Task.sleep(for: .seconds(3))
baselineStop.set()
print("baseline (no scavenge): \(summary(try await baseline))")

let stop = Flag()
async let during = appendLoop(until: stop)
let start = ContinuousClock.now
let removed = try await store.scavenge(batchSize: batchSize)
let took = ContinuousClock.now - start
stop.set()
print("scavenged \(removed) events in \(took), batches of \(batchSize)")
print("during the scavenge: \(summary(try await during))")
await close()

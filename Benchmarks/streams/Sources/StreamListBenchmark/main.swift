// Listing a million streams (issue 14): constant memory, no full scan per page.
//
// Usage: swift run -c release StreamListBenchmark [streams] [sqlite|postgres] [page size]
//        (PostgreSQL: MINK_TEST_POSTGRES_URL, which scripts/with-postgres sets; see bench.sh)
//
// Creates `streams` streams (default 1,000,000) of one event each through the storage's import
// (one transaction, batches of 10,000 events, the path `minkd import` takes), prints the query
// plan of a first page and of a page from the middle, then pages through every stream with
// `listStreams` (what `GET /v1/streams` calls; page size default 1,000, the API's maximum),
// timing each page. Prints the first, middle and last page's latency, p50/p99/max over all
// pages, and the process's resident memory (VmRSS) at the first, middle and last page, with
// its peak (VmHWM) before and after the listing: constant memory means the listing does not
// raise the peak the import left, and the last page is as fast as the first.
import Foundation
import Mink
import MinkPostgres
import MinkSQLite
import Synchronization

let args = CommandLine.arguments
let total = args.count > 1 ? Int(args[1]) ?? 1_000_000 : 1_000_000
let kind = args.count > 2 ? args[2] : "sqlite"
let pageSize = args.count > 3 ? Int(args[3]) ?? 1000 : 1000

/// `VmRSS` and `VmHWM` of this process, in MiB.
func memory() -> (rss: Double, peak: Double) {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    func kib(_ key: String) -> Double {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return 0 }
        return Double(line.split(separator: " ").compactMap { Double($0) }.first ?? 0) / 1024
    }
    return (kib("VmRSS:"), kib("VmHWM:"))
}

/// `s-0000042`: zero-padded, so that the bytewise order is the numeric one.
func streamID(_ i: Int) -> String {
    let digits = String(i)
    return "s-" + String(repeating: "0", count: max(0, 7 - digits.utf8.count)) + digits
}

func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }

/// `streams` one-event streams `s-0000000`…, in global order, 10,000 per batch.
final class Streams: EventImportSource {
    let total: Int
    let next = Mutex(0)
    let payload = Data(#"{"kind":"created","note":"one event per stream"}"#.utf8)
    let now = Date()

    init(total: Int) { self.total = total }

    func nextBatch() throws -> [Event]? {
        let start = next.withLock { n -> Int in
            defer { n = min(total, n + 10_000) }
            return n
        }
        guard start < total else { return nil }
        return (start..<min(total, start + 10_000)).map { i in
            Event(
                id: UUID().uuidString.lowercased(), streamID: streamID(i), type: "Created", data: payload,
                version: 1, globalPosition: UInt64(i + 1), timestamp: now
            )
        }
    }
}

let adapter: any EventStoreAdapter & EventImporting & StreamLifecycleAdapter
let plan: (StreamListQuery) async throws -> [String]
let close: () async -> Void
let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mink-streams-\(UUID().uuidString)").path
switch kind {
case "sqlite":
    let s = try await SQLiteStorage.open(directory: dir)
    adapter = s
    plan = { try await s.listStreamsQueryPlan($0) }
    close = { await s.close(); try? FileManager.default.removeItem(atPath: dir) }
case "postgres":
    guard let url = ProcessInfo.processInfo.environment["MINK_TEST_POSTGRES_URL"] else {
        print("MINK_TEST_POSTGRES_URL is not set: run Benchmarks/streams/bench.sh postgres")
        exit(1)
    }
    let schema = "bench_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
    let s = try await PostgresStorage(configuration: PostgresConfiguration(connectionString: url, poolSize: 2, schema: String(schema)))
    adapter = s
    plan = { try await s.listStreamsQueryPlan($0, analyze: true) }
    close = { await s.shutdown() }
default:
    print("usage: StreamListBenchmark [streams] [sqlite|postgres] [page size]")
    exit(2)
}

let importStart = ContinuousClock.now
let summary = try await adapter.importEvents(from: Streams(total: total), hook: nil)
print("\(kind): imported \(summary.streams) streams (\(summary.events) events) in \(ContinuousClock.now - importStart)")
let before = memory()
print(String(format: "memory after the import: RSS %.1f MiB, peak %.1f MiB", before.rss, before.peak))

let middleID = streamID(total / 2)
for (name, query) in [("first page", StreamListQuery(limit: pageSize)), ("a middle page", StreamListQuery(after: middleID, limit: pageSize))] {
    print("plan of \(name):")
    for line in try await plan(query) { print("  " + line) }
}

var latencies: [Double] = []
var samples: [(page: Int, rss: Double)] = []
var after: String?
var listed = 0
let pages = (total + pageSize - 1) / pageSize
let listStart = ContinuousClock.now
while true {
    let t = ContinuousClock.now
    let page = try await adapter.listStreams(StreamListQuery(after: after, limit: pageSize))
    latencies.append(ms(ContinuousClock.now - t))
    listed += page.count
    let n = latencies.count
    if n == 1 || n == pages / 2 || n == pages { samples.append((n, memory().rss)) }
    guard page.count == pageSize, let last = page.last else { break }
    after = last.streamID
}
let listTook = ContinuousClock.now - listStart
let end = memory()
precondition(listed == total, "listed \(listed) of \(total) streams")

let sorted = latencies.sorted()
func q(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
print("listed \(listed) streams in \(latencies.count) pages of \(pageSize) in \(listTook)")
print(String(format: "page latency: first %.2f ms, middle %.2f ms, last full %.2f ms; p50 %.2f ms, p99 %.2f ms, max %.2f ms",
             latencies[0], latencies[min(latencies.count - 1, pages / 2 - 1)], latencies[min(latencies.count - 1, pages - 1)],
             q(0.5), q(0.99), sorted.last!))
print("RSS at pages " + samples.map { String(format: "%d: %.1f MiB", $0.page, $0.rss) }.joined(separator: ", "))
print(String(format: "peak RSS: %.1f MiB after the import, %.1f MiB after the listing", before.peak, end.peak))
await close()

// PostgreSQL append throughput: single-event appends by 1 and by 16 concurrent writers, each
// writer on its own stream with an exact expected version, on a fresh schema per run.
//
//   MINK_TEST_POSTGRES_URL=postgresql://... swift run -c release PostgresBenchmark [seconds per run, default 3]
//
// (bench.sh starts a throwaway server through scripts/with-postgres.)
import Foundation
import Mink
import MinkPostgres

guard let url = ProcessInfo.processInfo.environment["MINK_TEST_POSTGRES_URL"] else {
    print("MINK_TEST_POSTGRES_URL is not set: run Benchmarks/storage-postgres/bench.sh")
    exit(1)
}
let seconds = CommandLine.arguments.count > 1 ? Double(CommandLine.arguments[1]) ?? 3 : 3

func run(writers: Int, tenancy: PostgresConfiguration.Tenancy) async throws -> (events: Int, elapsed: Duration) {
    let schema = "bench_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
    let config = PostgresConfiguration(connectionString: url, poolSize: max(writers, 1), schema: String(schema), tenancy: tenancy)
    let root = try await PostgresStorage(configuration: config)
    let storage = try root.scoped("bench")
    _ = try await storage.headPosition()  // migrates a per-tenant schema before timing
    let payload = Data(#"{"sku":"abc-123","quantity":2,"price":19.99}"#.utf8)
    let clock = ContinuousClock()
    let start = clock.now
    let deadline = start + .seconds(seconds)
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for w in 0..<writers {
            group.addTask {
                var version: Int64 = 0
                while clock.now < deadline {
                    let request = AppendRequest(
                        streamID: "bench-\(w)", events: [EventData(id: UUID().uuidString, type: "ItemAdded", data: payload)],
                        expectedVersion: .exact(version)
                    )
                    version = try await storage.append(request, hook: nil).toVersion
                }
                return Int(version)
            }
        }
        return try await group.reduce(0, +)
    }
    let elapsed = clock.now - start
    await root.shutdown()
    return (total, elapsed)
}

let durable = ProcessInfo.processInfo.environment["MINK_PG_DURABLE"] == "1"
print("PostgreSQL single-event appends, \(durable ? "fsync=on synchronous_commit=on" : "fsync=off synchronous_commit=off"), \(seconds) s per run")
for name in ["shared", "schema"] {
    for writers in [1, 16] {
        let tenancy: PostgresConfiguration.Tenancy = name == "shared" ? .shared : .schema(prefix: "b\(UInt32.random(in: 0...UInt32.max))_")
        let (events, elapsed) = try await run(writers: writers, tenancy: tenancy)
        let s = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(String(format: "%@ %2d writer(s): %7d events in %.2f s = %8.0f events/s", name, writers, events, s, Double(events) / s))
    }
}

// Append throughput of the SQLite `shared` tenancy strategy: 100 tenants writing at once against
// one tenant writing alone, with the same total load — 100 concurrent writers, each appending
// single events to its own stream with an exact expected version, the same number of appends
// each. Only where the streams live differs: 100 tenants × 1 writer, or 1 tenant × 100 writers.
// A third run, 1 tenant × 1 writer, shows what one writer without group commit gets.
//
//   swift run -c release TenancyBenchmark [appends per writer, default 200] [rounds, default 3]
import Foundation
import Mink
import MinkSQLite

let perWriter = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200 : 200
let rounds = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 3 : 3

/// Runs `writers` writers spread over `tenants` tenants (writer w writes to tenant w % tenants).
func run(tenants: Int, writers: Int, appends: Int) async throws -> Double {
    let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("mink-tenancy-bench-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let root = try await SQLiteStorage.open(directory: dir, strategy: .shared)
    let views = try (0..<tenants).map { try root.scoped("tenant-\($0)") }
    for t in 0..<tenants { try await root.createTenant("tenant-\(t)") }
    let payload = Data(#"{"sku":"abc-123","quantity":2,"price":19.99}"#.utf8)
    let clock = ContinuousClock()
    let start = clock.now
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for w in 0..<writers {
            let storage = views[w % tenants]
            group.addTask {
                var version: Int64 = 0
                for _ in 0..<appends {
                    let request = AppendRequest(
                        streamID: "order-\(w)", events: [EventData(id: UUID().uuidString, type: "ItemAdded", data: payload)],
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
    // Every tenant's log is dense: positions 1...n with n its own event count.
    for (t, view) in views.enumerated() {
        let expected = UInt64((0..<writers).filter { $0 % tenants == t }.count * appends)
        let head = try await view.headPosition()
        precondition(head == expected, "tenant-\(t): head \(head), expected \(expected)")
    }
    await root.close()
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Double(total) / seconds
}

print("SQLite shared strategy, synchronous=FULL, single-event appends, \(perWriter) per writer, best of \(rounds)")
for (label, tenants, writers, appends) in [
    ("100 tenants x 1 writer ", 100, 100, perWriter),
    ("  1 tenant  x 100 writers", 1, 100, perWriter),
    ("  1 tenant  x 1 writer ", 1, 1, perWriter),
] {
    var results: [Double] = []
    for _ in 0..<rounds { results.append(try await run(tenants: tenants, writers: writers, appends: appends)) }
    let line = results.map { String(format: "%.0f", $0) }.joined(separator: ", ")
    print(String(format: "%@: %8.0f appends/s (rounds: %@; %d appends each)", label, results.max()!, line, writers * appends))
}

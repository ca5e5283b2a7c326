// SQLite append throughput: single-event appends by 1 and by 16 concurrent writers, each writer
// on its own stream with an exact expected version, on a fresh temporary file per run.
//
//   swift run -c release StorageBenchmark [seconds per run, default 3] [synchronous: full|normal]
import Foundation
import Mink
import MinkSQLite

let seconds = CommandLine.arguments.count > 1 ? Double(CommandLine.arguments[1]) ?? 3 : 3
let synchronous: SQLiteConfiguration.Synchronous = CommandLine.arguments.dropFirst(2).first == "normal" ? .normal : .full

func run(writers: Int) async throws -> (events: Int, elapsed: Duration) {
    let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("mink-bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let storage = try await SQLiteStorage.open(path: (dir as NSString).appendingPathComponent("bench.sqlite"), configuration: SQLiteConfiguration(synchronous: synchronous))
    let payload = Data(#"{"sku":"abc-123","quantity":2,"price":19.99}"#.utf8)
    let clock = ContinuousClock()
    let start = clock.now
    let deadline = start + .seconds(seconds)
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for w in 0..<writers {
            group.addTask {
                var version: Int64 = 0
                while clock.now < deadline {
                    let request = AppendRequest(streamID: "bench-\(w)", events: [EventData(id: UUID().uuidString, type: "ItemAdded", data: payload)], expectedVersion: .exact(version))
                    version = try await storage.append(request, hook: nil).toVersion
                }
                return Int(version)
            }
        }
        return try await group.reduce(0, +)
    }
    let elapsed = clock.now - start
    await storage.close()
    return (total, elapsed)
}

print("SQLite single-event appends, synchronous=\(synchronous.rawValue), \(seconds) s per run")
for writers in [1, 16] {
    let (events, elapsed) = try await run(writers: writers)
    let s = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print(String(format: "%2d writer(s): %7d events in %.2f s = %8.0f events/s", writers, events, s, Double(events) / s))
}

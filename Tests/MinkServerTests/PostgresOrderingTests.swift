import Foundation
import Mink
import MinkHTTP
import MinkTestFixtures
import MinkWire
import Synchronization
import Testing

/// The global-order guarantee across processes: two minkd processes append to one PostgreSQL
/// database under load while a reader follows the global log through one of them. Positions only
/// ever grow and none is skipped — a position that became visible after a higher one had been
/// read would be lost to every reader that had moved past it.
@Suite("minkd processes on PostgreSQL: global order", .timeLimit(.minutes(3)))
struct PostgresOrderingTests {
    /// What the writers and the reader share.
    final class Shared: Sendable {
        let stop = Atomic<Bool>(false)
        /// Events acknowledged with a 201.
        let acknowledged = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
    }

    @Test(.timeLimit(.minutes(2)))
    func twoProcessesAppendingNeverShowPositionsOutOfOrder() async throws {
        let url = try await PostgresTestDatabase.freshDatabase()
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-pg-\(UUID()).yaml")
        try ordersYAML(mode: "async").write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let a = try await PostgresProcessTests.Daemon(url: url, config: config)
        defer { a.stop() }
        let b = try await PostgresProcessTests.Daemon(url: url, config: config)
        defer { b.stop() }

        let shared = Shared()
        let writersPerProcess = 12
        let writers = Task {
            await withTaskGroup(of: Void.self) { group in
                for (p, daemon) in [a, b].enumerated() {
                    for w in 0..<writersPerProcess {
                        group.addTask {
                            var n = 0
                            while !shared.stop.load(ordering: .relaxed) {
                                n += 1
                                // One to three events, to streams shared by both processes.
                                let count = 1 + (n + w) % 3
                                let events = (0..<count).map { _ in #"{"type":"Appended","data":{"p":\#(p),"w":\#(w),"n":\#(n)}}"# }
                                do {
                                    let r = try await daemon.request(
                                        "POST", "/v1/streams/shared-\((w + n) % 5)", body: #"{"events":[\#(events.joined(separator: ","))]}"#
                                    )
                                    guard r.status == 201 else {
                                        shared.failures.withLock { $0.append("\(r.status) \(r.json)") }
                                        return
                                    }
                                    shared.acknowledged.add(count, ordering: .relaxed)
                                } catch {
                                    shared.failures.withLock { $0.append("\(error)") }
                                    return
                                }
                            }
                        }
                    }
                }
            }
        }

        // The reader: pages of the global log through process A, while both write.
        var last: Int64 = 0
        var read = 0
        var problems: [String] = []
        func readPage() async throws -> Int {
            let r = try await a.request("GET", "/v1/events?after=\(last)&limit=500")
            try #require(r.status == 200, "\(r.json)")
            let events = r.json.objectValue?["events"]?.arrayValue ?? []
            for e in events {
                guard let p = e.objectValue?["globalPosition"]?.int64Value else {
                    problems.append("no position in \(e)")
                    continue
                }
                if p != last + 1 { problems.append("position \(p) after \(last)") }
                last = max(last, p)
            }
            read += events.count
            return events.count
        }
        let until = ContinuousClock.now + .seconds(6)
        while ContinuousClock.now < until, shared.failures.withLock({ $0.isEmpty }) {
            _ = try await readPage()
        }
        shared.stop.store(true, ordering: .relaxed)
        await writers.value
        // Then to the end of the log.
        let deadline = ContinuousClock.now + .seconds(30)
        while try await readPage() > 0, ContinuousClock.now < deadline {}

        #expect(shared.failures.withLock { $0 }.isEmpty, "\(shared.failures.withLock { $0.prefix(3) })")
        #expect(problems.isEmpty, "\(problems.count) positions out of order or skipped, e.g. \(problems.prefix(5))")
        let acknowledged = shared.acknowledged.load(ordering: .relaxed)
        #expect(acknowledged > 100, "only \(acknowledged) events were appended: no load")
        #expect(read == acknowledged && last == Int64(acknowledged), "read \(read) events up to \(last); \(acknowledged) acknowledged")
    }
}

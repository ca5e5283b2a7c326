import Foundation
import Mink
import MinkHTTP
import MinkPostgres
import MinkTestFixtures
import MinkWire
import Synchronization
import Testing

/// kill -9 of a minkd on PostgreSQL while many clients append at once (so appends are committed
/// in batches, with an inline projection running in each append's savepoint): every append a
/// client saw acknowledged is stored exactly once, with its version and position, and its
/// read-model document committed with it.
@Suite("minkd on PostgreSQL across kill -9", .timeLimit(.minutes(3)))
struct PostgresCrashTests {
    struct Ack: Hashable, Sendable {
        let stream: String
        let version: Int64
        let position: Int64
        let id: String
        let order: String
    }

    /// What the writers share.
    final class Load: Sendable {
        let acks = Mutex<[Ack]>([])
        let killed = Atomic<Bool>(false)
        let failuresBeforeKill = Mutex<[String]>([])
    }

    @Test func killedDuringBatchedAppendsLosesNoAcknowledgedAppend() async throws {
        let url = try await PostgresTestDatabase.freshDatabase()
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-pg-\(UUID()).yaml")
        try ordersYAML(mode: "inline").write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let daemon = try await PostgresProcessTests.Daemon(url: url, config: config)
        defer { daemon.stop() }

        let shared = Load()
        let writers = 32
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for w in 0..<writers {
                    group.addTask {
                        var version: Int64 = 0
                        while !shared.killed.load(ordering: .relaxed) {
                            let id = UUID().uuidString.lowercased()
                            let order = "o\(w)-\(version + 1)"
                            let body = #"{"expectedVersion":\#(version),"events":[{"id":"\#(id)","type":"OrderCreated","data":{"orderId":"\#(order)","total":1}}]}"#
                            let reply: (status: Int, json: JSONValue)
                            do {
                                reply = try await daemon.request("POST", "/v1/streams/order-\(w)", body: body)
                            } catch {
                                // Expected once the daemon is killed; before, it is a failure.
                                if !shared.killed.load(ordering: .relaxed) { shared.failuresBeforeKill.withLock { $0.append("\(error)") } }
                                return
                            }
                            let result = reply.json.objectValue
                            guard reply.status == 201, let to = result?["toVersion"]?.int64Value,
                                  let position = result?["toPosition"]?.int64Value else {
                                if !shared.killed.load(ordering: .relaxed) { shared.failuresBeforeKill.withLock { $0.append("\(reply.status) \(reply.json)") } }
                                return
                            }
                            shared.acks.withLock { $0.append(Ack(stream: "order-\(w)", version: to, position: position, id: id, order: order)) }
                            version = to
                        }
                    }
                }
            }
        }
        // Let the clients get a few hundred appends acknowledged, then kill in mid-flight.
        let deadline = ContinuousClock.now + .seconds(30)
        while shared.acks.withLock({ $0.count }) < 300, ContinuousClock.now < deadline, shared.failuresBeforeKill.withLock({ $0.isEmpty }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        shared.killed.store(true, ordering: .relaxed)
        kill(daemon.pid, SIGKILL)
        let exit = await ProcessLaunch.exit(of: daemon.minkd.process)
        #expect(exit == ProcessLaunch.Exit(reason: .uncaughtSignal, status: SIGKILL))
        await load.value
        #expect(shared.failuresBeforeKill.withLock { $0 }.isEmpty, "\(shared.failuresBeforeKill.withLock { $0.prefix(3) })")
        let acknowledged = shared.acks.withLock { $0 }
        #expect(acknowledged.count >= 300, "only \(acknowledged.count) appends were acknowledged before the kill")

        let storage = try await PostgresStorage(configuration: PostgresConfiguration(connectionString: url, poolSize: 2, migrateOnStart: false))
        defer { Task { await storage.shutdown() } }
        let all = try await storage.readAll(after: 0, filter: .all, limit: 1_000_000)
        #expect(all.map(\.globalPosition) == (0..<UInt64(all.count)).map { $0 + 1 }, "positions dense")
        let byID = Dictionary(grouping: all, by: \.id)
        var missing: [Ack] = []
        for ack in acknowledged {
            let found = byID[ack.id] ?? []
            if found.count != 1 { missing.append(ack) }
            if let e = found.first {
                #expect(e.streamID == ack.stream && e.version == ack.version && Int64(e.globalPosition) == ack.position, "\(ack) stored as \(e)")
            }
        }
        #expect(missing.isEmpty, "\(missing.count) acknowledged appends not stored exactly once, e.g. \(missing.prefix(3))")
        var versions: [String: [Int64]] = [:]
        for e in all { versions[e.streamID, default: []].append(e.version) }
        for (stream, v) in versions { #expect(v == (0..<Int64(v.count)).map { $0 + 1 }, "versions of \(stream) dense") }

        // The inline projection committed with each append: one document per stored event, and
        // one for every acknowledged append.
        let documents = try await PostgresTestDatabase.value(url, "SELECT count(*) FROM public.mink_documents WHERE model = 'orders'")
        #expect(documents == String(all.count), "\(documents ?? "nil") documents for \(all.count) events")
        for ack in acknowledged.prefix(50) {
            #expect(try await storage.document("orders", id: ack.order) != nil, "document of \(ack.order)")
        }
    }
}

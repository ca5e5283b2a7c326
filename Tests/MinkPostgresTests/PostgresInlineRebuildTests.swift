import Foundation
import Mink
@testable import MinkPostgres
import Testing

/// Counts the events it sees in one document.
private struct Cnt: InlineProjection, ReadModelProjection {
    let tag: String
    var name: String { "cnt-\(tag)" }
    var handledEvents: [String] { ["Tick"] }
    var readModelName: String { "cnt_\(tag)" }
    func apply(_ event: Event, in tx: any ReadModelTransaction) throws {
        let n = try tx.document(readModelName, id: "c").flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
        try tx.putDocument(readModelName, id: "c", json: Data("\(n + 1)".utf8))
    }
}

@Suite("PostgreSQL inline rebuild under appends", .timeLimit(.minutes(3)))
struct PostgresInlineRebuildTests {
    /// An inline projection rebuilt while eight writers append: the rebuilt copy counts every
    /// event once — none applied twice, none lost at the switch (an append in flight when reads
    /// switch must reach the new copy).
    @Test func anInlineRebuildUnderAppendsCountsEveryEventOnce() async throws {
        let s = try await TestServer.storage(timeout: .seconds(120))
        defer { Task { await s.shutdown() } }
        let store = EventStore(adapter: s)
        let engine = ProjectionEngine(store: store, readModels: s)
        for t in ["a", "b", "c"] {
            await engine.registerReadModel(Cnt(tag: t), mode: .inline, readModels: s, options: AsyncOptions(batchSize: 3), leases: s)
        }
        try await engine.start()
        let writers = (0..<8).map { w in
            Task {
                for i in 0..<40 {
                    _ = try await store.append("s-\(w)-\(i % 3)", events: [
                        EventData(type: "Tick", data: Data("{}".utf8)), EventData(type: "Tick", data: Data("{}".utf8)),
                    ])
                    if w == 0, i == 5 { try await engine.rebuild("cnt-b") }
                }
            }
        }
        for w in writers { try await w.value }
        let deadline = ContinuousClock.now + .seconds(60)
        while await engine.readModelName("cnt_b") != "cnt_b__g2", ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(await engine.readModelName("cnt_b") == "cnt_b__g2")
        for t in ["a", "b", "c"] {
            let physical = await engine.readModelName("cnt_\(t)")
            let v = try await s.document(physical, id: "c").map { String(decoding: $0, as: UTF8.self) }
            #expect(v == "640", "\(physical): \(v ?? "nil")")
        }
        await engine.stop()
    }
}

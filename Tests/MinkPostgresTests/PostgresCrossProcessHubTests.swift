import Foundation
import Mink
@testable import MinkPostgres
import Testing

/// Two storages on one schema stand for two minkd processes: what one removes or deletes is
/// never sent by the other's subscriptions from memory.
@Suite("PostgreSQL hubs across processes", .timeLimit(.minutes(2)))
struct PostgresCrossProcessHubTests {
    /// The events a new `all` subscription catches up with after `after`, as stream:type.
    static func caughtUp(_ store: EventStore, after: UInt64) async throws -> [String] {
        var out: [String] = []
        for try await m in store.messages(.all, after: after) {
            if case .event(let e) = m { out.append("\(e.streamID):\(e.type)") }
            if case .caughtUp = m { break }
        }
        return out
    }

    /// A scavenge in process A: process B's hub forgets its ring when A's removal notification
    /// arrives, so B's next catch-up reads storage (before: B sent the scavenged events until
    /// its own scavenger pass, up to ten minutes later).
    @Test func anotherProcessesScavengeEmptiesThisHubsMemory() async throws {
        let schema = TestServer.freshName()
        let a = try await TestServer.storage(schema: schema), b = try await TestServer.storage(schema: schema)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        let storeA = EventStore(adapter: a), storeB = EventStore(adapter: b)
        #expect(try await Self.caughtUp(storeB, after: 0) == [])  // B's hub serves from here on
        for i in 0..<4 { try await storeB.append("tele-1", events: [EventData(type: "T\(i)", data: Data("{}".utf8))]) }
        #expect(try await Self.caughtUp(storeB, after: 0) == ["tele-1:T0", "tele-1:T1", "tele-1:T2", "tele-1:T3"])
        try await storeA.setRetention(StreamRetention(maxCount: 1), of: "tele-1")
        #expect(try await storeA.scavenge() == 3)
        // The notification reaches B's hub within moments; until then B may still answer from
        // memory (the window this closes was a whole scavenger interval).
        let deadline = ContinuousClock.now + .seconds(20)
        var seen: [String] = []
        while ContinuousClock.now < deadline {
            seen = try await Self.caughtUp(storeB, after: 0)
            if seen == ["tele-1:T3"] { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(seen == ["tele-1:T3"], "B still sends scavenged events: \(seen)")
    }

    /// A stream deleted through A, B subscribing at once: B's catch-up never sends the deleted
    /// events, even before A's commit notification reaches it (the subscription revalidates the
    /// hub against storage first).
    @Test func aDeletionThroughAnotherProcessIsNeverServedFromMemory() async throws {
        let schema = TestServer.freshName()
        let a = try await TestServer.storage(schema: schema), b = try await TestServer.storage(schema: schema)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        let storeA = EventStore(adapter: a), storeB = EventStore(adapter: b)
        #expect(try await Self.caughtUp(storeB, after: 0) == [])
        for round in 0..<5 {
            let head = try await storeB.headPosition()
            try await storeB.append("secret-\(round)", events: [EventData(type: "Pii", data: Data(#"{"ssn":"1"}"#.utf8))])
            #expect(try await Self.caughtUp(storeB, after: head) == ["secret-\(round):Pii"])
            try await storeA.deleteStream("secret-\(round)")
            let seen = try await Self.caughtUp(storeB, after: head)
            #expect(seen == ["$deletions:$StreamDeleted"], "round \(round): \(seen)")
        }
    }
}
